"""The single table of the agent's settings, and how a raw value becomes a typed one.

Every setting is named by its key in harperdb-config.yaml (dotted, HarperDB's names where
HarperDB has the key) and by HarperDB's flattened environment name (`replication.port` ->
`REPLICATION_PORT`), which is also the command-line flag (`--REPLICATION_PORT`). This table
drives parsing, validation, `harper-agent --help`, the default config file and the man page.

Pure: no file, environment or yaml access here; `agent.config` feeds raw values in.

Kinds and what `parse_value` returns for them:

    str        str | None
    int        int | None
    bool       bool (true/false, yes/no, on/off, 1/0)
    path       str | None (relative paths are resolved against the root by Config.path)
    port       int 1-65535 | None; "host:port" is accepted, split on the last colon
    duration   float seconds ("1d", "12h", "30m", "45s", "1500ms"; bare numbers in `unit`)
    size       int bytes ("16mb", "1gb", "512kb"; bare numbers are bytes; 1kb = 1024)
    enum       one of `choices`, lower-cased
    databases  "*" | list[str]
    routes     list[str | dict] (validated, kept as given; a yaml date startTime becomes text)
    list       list[str]
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from typing import Any

from agent.errors import ConfigError

KINDS = ("str", "int", "bool", "path", "port", "duration", "size", "enum")
KINDS += ("databases", "routes", "list")
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "fatal", "notify")

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NULL = ("", "null")
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$")
_BYTES = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


@dataclass(frozen=True)
class Setting:
    """One setting: its yaml key, kind, default (as it would be written in the file) and help."""

    key: str
    kind: str
    default: Any
    help: str
    choices: tuple = ()
    unit: str = "s"
    minimum: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.key}: unknown kind {self.kind!r}")
        if self.unit not in ("s", "ms"):
            raise ValueError(f"{self.key}: unit must be 's' or 'ms'")

    @property
    def env(self) -> str:
        """The name HarperDB flattens the key to: dots become underscores, upper-cased."""
        return self.key.replace(".", "_").upper()

    @property
    def section(self) -> str:
        """The dotted section holding the key ("" for top-level keys)."""
        return self.key.rpartition(".")[0]


# Order matters: --help, `harper-agent settings` and the default file follow it, and keys of
# one section stay together so the generated yaml nests cleanly.
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "rootPath",
        "path",
        None,
        "Root folder of this node: config, database, keys and log live here. Empty means the "
        "--root folder.",
    ),
    Setting(
        "operationsApi.network.host",
        "str",
        "127.0.0.1",
        "Address every listener of this node binds to unless its own host is given "
        "(replication.host, or a 'host:port' port). Give each node on one machine its own "
        "127.0.0.x.",
    ),
    Setting(
        "operationsApi.network.port",
        "port",
        9925,
        "Operations API port (plain HTTP); 'host:port' also sets the bind address. Empty "
        "disables it.",
    ),
    Setting(
        "operationsApi.network.securePort",
        "port",
        None,
        "Operations API HTTPS port, using operationsApi.tls (or tls) certificates. Empty "
        "disables it.",
    ),
    Setting(
        "operationsApi.network.maxBodySize",
        "size",
        "16mb",
        "Largest request body accepted; larger bodies are refused with 413.",
    ),
    Setting(
        "operationsApi.network.timeout",
        "duration",
        "120s",
        "Longest silence while a request body arrives, and longest wait for a request's "
        "headers; the connection is then closed (HarperDB's default; bare numbers in ms).",
        unit="ms",
    ),
    Setting(
        "operationsApi.network.keepAliveTimeout",
        "duration",
        "30s",
        "A connection that has not sent the headers of its next request this long after "
        "opening or after its last answer is closed; upgraded replication connections are "
        "not (bare numbers in ms).",
        unit="ms",
    ),
    Setting(
        "operationsApi.network.maxConnections",
        "int",
        4096,
        "Most connections open at once on each operations API listener, replication "
        "WebSockets included; more are answered 503 and closed at once.",
        minimum=1,
    ),
    Setting(
        "operationsApi.tls.certificate",
        "path",
        None,
        "PEM certificate for the HTTPS operations API; defaults to tls.certificate.",
    ),
    Setting(
        "operationsApi.tls.privateKey",
        "path",
        None,
        "PEM private key for operationsApi.tls.certificate; defaults to tls.privateKey.",
    ),
    Setting(
        "operationsApi.tls.certificateAuthority",
        "path",
        None,
        "PEM CA bundle for the HTTPS operations API; defaults to tls.certificateAuthority.",
    ),
    Setting(
        "authentication.operationTokenTimeout",
        "duration",
        "1d",
        "Lifetime of operation tokens from create_authentication_tokens (bare numbers in seconds).",
    ),
    Setting(
        "authentication.refreshTokenTimeout",
        "duration",
        "30d",
        "Lifetime of refresh tokens (bare numbers in seconds).",
    ),
    Setting(
        "logging.level",
        "enum",
        "warn",
        "Least severe level written to the log.",
        choices=LOG_LEVELS,
    ),
    Setting(
        "logging.path",
        "path",
        None,
        "Log file, or a folder to hold hdb.log. Empty means <root>/log/hdb.log.",
    ),
    Setting(
        "logging.stdStreams",
        "bool",
        False,
        "Also write the log to standard error (useful under systemd or in a container).",
    ),
    Setting(
        "logging.format",
        "enum",
        "text",
        "Log line format: text (`<time> [<level>] [<logger>]: <message>`, as HarperDB) or json "
        "(one object a line: time, level, logger, message, exception), for log collectors.",
        choices=("text", "json"),
    ),
    Setting(
        "logging.auditRetention",
        "duration",
        "3d",
        "How long transaction-log entries are kept; a peer away longer catches up by snapshot "
        "merge (bare numbers in ms).",
        unit="ms",
    ),
    Setting(
        "storage.path",
        "path",
        None,
        "Folder for the database files (<db>.sqlite). Empty means <root>/database.",
    ),
    Setting(
        "storage.writeAsync",
        "bool",
        False,
        "Skip fsync on commit: faster, but a power loss can lose the last transactions.",
    ),
    Setting(
        "tls.certificate",
        "path",
        None,
        "Your own PEM certificate (or chain) for this node, loaded into system.hdb_certificate "
        "at start and preferred for HTTPS and WSS; its CN or a SAN must name "
        "replication.hostname. Empty: the certificate generated by init.",
    ),
    Setting(
        "tls.privateKey",
        "path",
        None,
        "PEM private key for tls.certificate (copied into <rootPath>/keys, mode 0600).",
    ),
    Setting(
        "tls.certificateAuthority",
        "path",
        None,
        "PEM CA that signed tls.certificate; peers presenting certificates from it are trusted.",
    ),
    Setting(
        "replication.hostname",
        "str",
        None,
        "This node's name (its hdb_nodes key); must match its certificate's CN or a SAN.",
    ),
    Setting(
        "replication.url",
        "str",
        None,
        "URL peers use to reach this node, e.g. wss://server-one:9933. Empty builds it from "
        "hostname and port.",
    ),
    Setting(
        "replication.host",
        "str",
        None,
        "Bind address of the replication listeners. Empty means operationsApi.network.host.",
    ),
    Setting(
        "replication.port",
        "port",
        None,
        "Insecure WebSocket replication port; peers are admitted by IP (dev, private "
        "networks), with a warning at start and in cluster_status. 'host:port' also sets the "
        "bind address.",
    ),
    Setting(
        "replication.securePort",
        "port",
        None,
        "TLS replication port with mutual TLS: a peer is admitted if its certificate chains to "
        "a trusted CA and names a node in hdb_nodes or routes. With neither port set, "
        "replication shares the operations API listener.",
    ),
    Setting(
        "replication.routes",
        "routes",
        [],
        "Peers to connect to: hostnames, URLs (wss://server-two:9933) or {hostname, port, "
        "startTime} mappings.",
    ),
    Setting(
        "replication.databases",
        "databases",
        "*",
        'Databases to replicate: "*" for all (system included) or a list of names.',
    ),
    Setting(
        "replication.enableRootCAs",
        "bool",
        True,
        "Also trust the system's public root CAs for peer certificates on TLS links.",
    ),
    Setting(
        "replication.certificate",
        "path",
        None,
        "Another PEM certificate for this node (as the seed shows), loaded like tls.certificate.",
    ),
    Setting(
        "replication.privateKey",
        "path",
        None,
        "PEM private key for replication.certificate.",
    ),
    Setting(
        "replication.certificateAuthority",
        "path",
        None,
        "PEM CA trusted for replication peers, loaded like tls.certificateAuthority.",
    ),
    Setting(
        "replication.compression",
        "bool",
        False,
        "Compress replication frames (permessage-deflate). Off: it costs 2x-10x throughput here.",
    ),
    Setting(
        "replication.pingInterval",
        "duration",
        "30s",
        "Time between pings on an idle replication link (bare numbers in ms).",
        unit="ms",
    ),
    Setting(
        "replication.pingTimeout",
        "duration",
        "60s",
        "A link with no answer to a ping for this long is closed and re-dialled (bare numbers "
        "in ms).",
        unit="ms",
    ),
    Setting(
        "replication.stallTimeout",
        "duration",
        "10s",
        "A link whose peer says data is pending but sends none for this long is re-dialled "
        "(bare numbers in ms).",
        unit="ms",
    ),
    Setting(
        "replication.maxClockSkew",
        "duration",
        "5s",
        "A replicated version further ahead of this node's wall clock than this is refused "
        "(the link closes, naming the peer and the offset); 0 turns the guard off "
        "(bare numbers in ms).",
        unit="ms",
    ),
    Setting(
        "replication.tombstoneRetention",
        "duration",
        "10d",
        "How long tombstones (deleted records) are kept, much longer than the transaction log; "
        "a node away longer is re-seeded so no delete comes back (bare numbers in ms).",
        unit="ms",
    ),
    Setting(
        "replication.copyTimeout",
        "duration",
        "300s",
        "Longest silence allowed during an initial copy before it is resumed on a new link "
        "(bare numbers in ms).",
        unit="ms",
    ),
    Setting(
        "replication.maxPayload",
        "size",
        "100mb",
        "Largest replication frame accepted.",
    ),
    Setting(
        "replication.retryInterval",
        "duration",
        "500ms",
        "First re-dial delay of a lost link; it doubles up to 5 s (bare numbers in ms).",
        unit="ms",
    ),
    Setting(
        "replication.failOver",
        "bool",
        True,
        "Receive an unreachable origin's transactions through another peer until its direct "
        "link returns.",
    ),
    Setting(
        "replication.verifyInterval",
        "duration",
        "1m",
        "Background verify: compare the next replicated table with every peer (and repair "
        "what differs) this often; 0 turns it off (bare numbers in ms).",
        unit="ms",
    ),
    Setting(
        "replication.verifyCpuPercent",
        "int",
        2,
        "Background verify: most CPU of one core it may use, averaged over each check.",
        minimum=1,
    ),
    Setting(
        "replication.verifyBytesPerSecond",
        "size",
        "256kb",
        "Background verify: most bytes per second it may exchange with peers, averaged.",
    ),
    Setting(
        "replication.copyChunkRecords",
        "int",
        1000,
        "Records per chunk (and per resumable checkpoint) of an initial copy.",
        minimum=1,
    ),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
BY_ENV: dict[str, Setting] = {s.env: s for s in SETTINGS}


class _Bad(Exception):
    """A raw value is invalid; the argument is the human reason."""


def parse_value(setting: Setting, raw: Any, source: str) -> Any:
    """Turn a raw value (from yaml, the environment or a flag) into the setting's typed value.

    Raise ConfigError(key, raw, reason); the reason names `source` so the user knows which
    file, variable or flag to fix.
    """
    try:
        if _is_unset(raw):
            return _unset_value(setting)
        if setting.kind == "port":
            return _parse_port(setting, raw)[1]
        return _PARSERS[setting.kind](setting, raw)
    except _Bad as bad:
        raise ConfigError(setting.key, raw, f"{bad} (from {source})") from None


def parse_listen(setting: Setting, raw: Any, source: str) -> tuple[str | None, int | None]:
    """Split a port setting's raw value into (host or None, port or None)."""
    if setting.kind != "port":
        raise TypeError(f"{setting.key} is not a port setting")
    try:
        return (None, None) if _is_unset(raw) else _parse_port(setting, raw)
    except _Bad as bad:
        raise ConfigError(setting.key, raw, f"{bad} (from {source})") from None


def format_value(setting: Setting, value: Any) -> Any:
    """Return a typed value as it should be written in harperdb-config.yaml.

    Durations and sizes are written with their unit so a bare number is never misread in
    the setting's `unit`; parse_value(format_value(v)) == v.
    """
    if value is None:
        return None
    if setting.kind == "duration":
        return format_duration(value)
    if setting.kind == "size":
        return format_size(value)
    if isinstance(value, list):
        return [dict(item) if isinstance(item, dict) else item for item in value]
    return value


def format_duration(seconds: float) -> str:
    """Write seconds in the largest unit that keeps them whole: 86400 -> "1d", 1.5 -> "1500ms"."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _SECONDS[unit]
        if count >= 1 and float(count).is_integer():
            return f"{int(count)}{unit}"
    ms = seconds * 1000
    if float(ms).is_integer():
        return f"{int(ms)}ms"
    return f"{seconds!r}s"


def format_size(size: int) -> str | int:
    """Write bytes in the largest unit that keeps them whole: 16777216 -> "16mb"."""
    for unit in ("t", "g", "m", "k"):
        if size and size % _BYTES[unit] == 0:
            return f"{size // _BYTES[unit]}{unit}b"
    return size


def default_text(setting: Setting) -> str:
    """Return the default as people read it in help: "9925", "16mb", "none", "[]"."""
    default = setting.default
    if default is None:
        return "none"
    if isinstance(default, bool):
        return str(default).lower()
    return "[]" if default == [] else str(default)


def _is_unset(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip().lower() in _NULL)


def _unset_value(setting: Setting) -> Any:
    if setting.kind in ("routes", "list"):
        return []
    if setting.kind == "databases":
        return "*"
    if setting.default is None:
        return None
    raise _Bad(f"must have a value (default {setting.default!r})")


def _is_number(raw: Any) -> bool:
    return isinstance(raw, (int, float)) and not isinstance(raw, bool)


def _parse_str(setting: Setting, raw: Any) -> str:
    if isinstance(raw, (dict, list, tuple, bool)):
        raise _Bad("must be a string")
    return str(raw).strip()


def _parse_path(setting: Setting, raw: Any) -> str:
    if not isinstance(raw, str):
        raise _Bad("must be a file or folder path")
    return raw.strip()


def _parse_int(setting: Setting, raw: Any) -> int:
    value = _to_int(raw)
    if value is None:
        raise _Bad("must be a whole number")
    if setting.minimum is not None and value < setting.minimum:
        raise _Bad(f"must be a whole number of at least {setting.minimum}")
    return value


def _to_int(raw: Any) -> int | None:
    if _is_number(raw) and float(raw).is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"\s*[-+]?\d+\s*", raw):
        return int(raw)
    return None


def _parse_bool(setting: Setting, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, (str, int)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Bad("must be true or false (yes/no, on/off and 1/0 also work)")


def _parse_port(setting: Setting, raw: Any) -> tuple[str | None, int]:
    host, text = None, raw
    if isinstance(raw, str) and ":" in raw:
        # Split on the LAST colon, as HarperDB does, so "::1:9925" keeps its IPv6 host.
        host_part, _, text = raw.strip().rpartition(":")
        host = host_part.strip().strip("[]") or None
    port = _to_int(text) if not isinstance(text, bool) else None
    if port is None or not 1 <= port <= 65535:
        raise _Bad("must be a port number 1-65535, or host:port")
    return host, port


def _parse_duration(setting: Setting, raw: Any) -> float:
    unit_name = "milliseconds" if setting.unit == "ms" else "seconds"
    reason = f"must be a duration like 1d, 12h, 30s, 500ms or a number of {unit_name}"
    if _is_number(raw):
        number, unit = float(raw), setting.unit
    elif isinstance(raw, str) and (match := _DURATION.match(raw.strip().lower())):
        number, unit = float(match.group(1)), match.group(2) or setting.unit
    else:
        raise _Bad(reason)
    if number < 0:
        raise _Bad(reason)
    return number * _SECONDS[unit]


def _parse_size(setting: Setting, raw: Any) -> int:
    if _is_number(raw) and raw >= 0:
        return int(raw)
    match = _SIZE.match(raw.strip().lower()) if isinstance(raw, str) else None
    if match is None:
        raise _Bad("must be a size like 16mb, 1gb, 512kb or a number of bytes")
    unit = (match.group(2) or "b")[0]
    return int(round(float(match.group(1)) * _BYTES[unit]))


def _parse_enum(setting: Setting, raw: Any) -> str:
    text = str(raw).strip().lower() if isinstance(raw, str) else None
    if text not in setting.choices:
        raise _Bad(f"must be one of {', '.join(setting.choices)}")
    return text


def _parse_databases(setting: Setting, raw: Any) -> str | list[str]:
    items = _split_list(raw, 'must be "*" or a list of database names')
    names: list[str] = []
    for item in items:
        if isinstance(item, dict):  # HarperDB also allows {name, sharded, replicateTo}
            item = item.get("name")
        if not isinstance(item, str) or not item.strip():
            raise _Bad(f'must be "*" or a list of database names (not {item!r})')
        if item.strip() not in names:
            names.append(item.strip())
    return "*" if "*" in names else names


def _parse_routes(setting: Setting, raw: Any) -> list[Any]:
    items = _split_list(raw, "must be a list of routes: hostnames, URLs or {hostname, port}")
    return [_check_route(number, item) for number, item in enumerate(items, start=1)]


def _check_route(number: int, item: Any) -> str | dict:
    if isinstance(item, str) and item.strip():
        return item.strip()
    if not isinstance(item, dict):
        raise _Bad(f"route {number} must be a hostname, a URL or a mapping with hostname")
    target = next((item[k] for k in ("hostname", "host", "url") if item.get(k)), None)
    if not isinstance(target, str):
        raise _Bad(f"route {number} needs a hostname, host or url")
    if item.get("port") is not None:
        port = _to_int(item["port"]) if not isinstance(item["port"], bool) else None
        if port is None or not 1 <= port <= 65535:
            raise _Bad(f"route {number}: port must be a port number 1-65535")
    route = dict(item)
    start = route.get("startTime")
    if isinstance(start, datetime.date):  # yaml reads an unquoted ISO date as a datetime
        route["startTime"] = start.isoformat()
    elif start is not None and not (isinstance(start, str) or _is_number(start)):
        raise _Bad(f"route {number}: startTime must be a date string or epoch milliseconds")
    return route


def _parse_list(setting: Setting, raw: Any) -> list[str]:
    items = _split_list(raw, "must be a list of strings")
    if not all(isinstance(item, (str, int, float)) for item in items):
        raise _Bad("must be a list of strings")
    return [str(item).strip() for item in items if str(item).strip()]


def _split_list(raw: Any, reason: str) -> list[Any]:
    """Accept a yaml list, a JSON array string or a comma-separated string."""
    if isinstance(raw, (list, tuple)):
        return list(raw)
    if not isinstance(raw, str):
        raise _Bad(reason)
    text = raw.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError as err:
            raise _Bad(f"{reason}; the JSON array does not parse: {err}") from None
        if not isinstance(value, list):
            raise _Bad(reason)
        return value
    return [part.strip() for part in text.split(",") if part.strip()]


_PARSERS = {
    "str": _parse_str,
    "int": _parse_int,
    "bool": _parse_bool,
    "path": _parse_path,
    "duration": _parse_duration,
    "size": _parse_size,
    "enum": _parse_enum,
    "databases": _parse_databases,
    "routes": _parse_routes,
    "list": _parse_list,
}


# HarperDB settings harper-agent accepts and ignores, each with the reason given in the one
# warning logged when a config file, the environment or a flag sets one. Not in SETTINGS: no
# help, no default file entry, no man page, until they do something here.
UNSUPPORTED: dict[str, str] = {
    "replication.shard": "harper-agent does not shard: every node that replicates a database "
    "holds all of it",
    "replication.replicateTo": "harper-agent does not shard: each write reaches every node "
    "that replicates its database",
    "logging.auditLog": "the transaction (audit) log is always kept: replication resumes from it",
}
UNSUPPORTED_BY_ENV: dict[str, str] = {key.replace(".", "_").upper(): key for key in UNSUPPORTED}


def unsupported_key(name: str) -> str | None:
    """Return the dotted key of an unsupported HarperDB setting named by key or env name."""
    return name if name in UNSUPPORTED else UNSUPPORTED_BY_ENV.get(name)
