"""Load the agent's configuration: defaults < harperdb-config.yaml < environment < flags.

The file is nested as HarperDB writes it (`replication: {port: 9930, routes: [...]}`); the
environment and flags use HarperDB's flattened names (`REPLICATION_PORT`). Which keys exist,
their kinds and defaults come from `agent.settings`; this module only gathers raw values,
lets the winner of each key be parsed, and writes the commented default file.

The only importer of yaml (pyyaml).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from agent.errors import ConfigError
from agent.settings import (
    BY_ENV,
    BY_KEY,
    SETTINGS,
    UNSUPPORTED,
    UNSUPPORTED_BY_ENV,
    Setting,
    format_value,
    parse_listen,
    parse_value,
    unsupported_key,
)

CONFIG_FILE_NAME = "harperdb-config.yaml"
LOG_FILE_NAME = "hdb.log"

log = logging.getLogger(__name__)

# Every dotted prefix of a key, so the reader can tell a section from an unknown key.
_SECTIONS = frozenset(
    ".".join(s.key.split(".")[:depth]) for s in SETTINGS for depth in range(1, s.key.count(".") + 1)
)

# One raw value and where it came from: (raw, source kind, label for messages).
_Raw = tuple[Any, str, str]
# Unsupported HarperDB settings given, by dotted key: where each was given.
_Ignored = dict[str, list[str]]


class Config:
    """The node's settings after load: typed values, and where each one came from.

    Immutable: the node and its parts read it, nothing writes it. Get a value with
    `config.get("replication.port")` or `config["replication.port"]`.
    """

    __slots__ = ("_root", "_config_path", "_values", "_sources", "_hosts")

    def __init__(
        self,
        root: Path,
        config_path: Path,
        values: Mapping[str, Any],
        sources: Mapping[str, str],
        hosts: Mapping[str, str],
    ) -> None:
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_config_path", config_path)
        object.__setattr__(self, "_values", MappingProxyType(dict(values)))
        object.__setattr__(self, "_sources", MappingProxyType(dict(sources)))
        object.__setattr__(self, "_hosts", MappingProxyType(dict(hosts)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is immutable")

    def __repr__(self) -> str:
        return f"Config(root={str(self._root)!r}, config_path={str(self._config_path)!r})"

    @property
    def root(self) -> Path:
        """The node's root folder (rootPath when set, else the --root folder)."""
        return self._root

    @property
    def config_path(self) -> Path:
        """The harperdb-config.yaml this was loaded from (it may not exist yet)."""
        return self._config_path

    def get(self, key: str) -> Any:
        """Return the typed value of `key`; KeyError for a key not in the settings table."""
        value = self._values[key]
        return copy.deepcopy(value) if isinstance(value, (list, dict)) else value

    __getitem__ = get

    def source(self, key: str) -> str:
        """Return where the value of `key` came from: "default", "file", "env" or "flag"."""
        return self._sources[key]

    def listener(self, key: str) -> tuple[str, int] | None:
        """Return (bind host, port) for a port setting, or None when the port is unset.

        The host is the one written as "host:port", else replication.host for replication
        ports, else operationsApi.network.host.
        """
        if BY_KEY[key].kind != "port":
            raise KeyError(f"{key} is not a port setting")
        port = self._values[key]
        if port is None:
            return None
        host = self._hosts.get(key)
        if host is None and key.startswith("replication."):
            host = self._values["replication.host"]
        return (host or self._values["operationsApi.network.host"], port)

    def path(self, key: str) -> Path | None:
        """Return a path setting as a Path, relative paths taken from the root; None if unset."""
        value = self._values[key]
        if value is None:
            return None
        return self._root / Path(value).expanduser()

    @property
    def database_path(self) -> Path:
        """Folder of the database files: storage.path, else <root>/database."""
        return self.path("storage.path") or self._root / "database"

    @property
    def log_file(self) -> Path:
        """The log file: logging.path when it names a .log file, else <folder>/hdb.log."""
        configured = self.path("logging.path")
        if configured is None:
            return self._root / "log" / LOG_FILE_NAME
        return configured if configured.suffix == ".log" else configured / LOG_FILE_NAME

    @property
    def log_path(self) -> Path:
        """Folder of the log: logging.path (or its folder), else <root>/log."""
        return self.log_file.parent

    def flat(self) -> dict[str, Any]:
        """Return every setting by dotted key, as it would be written in the yaml file."""
        return {s.key: self._file_form(s) for s in SETTINGS}

    def as_dict(self) -> dict[str, Any]:
        """Return the settings nested like harperdb-config.yaml (for get_configuration)."""
        nested: dict[str, Any] = {}
        for key, value in self.flat().items():
            *sections, name = key.split(".")
            node = nested
            for section in sections:
                node = node.setdefault(section, {})
            node[name] = value
        return nested

    def _file_form(self, setting: Setting) -> Any:
        value = self._values[setting.key]
        host = self._hosts.get(setting.key)
        if host is not None and value is not None:
            return f"{host}:{value}"
        return format_value(setting, value)


def load_config(
    root: Path,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Config:
    """Load the settings of the node rooted at `root`: flags > env > file > defaults.

    The file is `config_file`, else <root>/harperdb-config.yaml (absent is fine; an absent
    `config_file` is not). `env` defaults to os.environ; `flags` maps dotted keys or
    environment names to raw values, None meaning "not given". Raise ConfigError naming the
    key, the value and the reason for anything invalid. A HarperDB setting harper-agent does
    not support (settings.UNSUPPORTED) is no error: one warning names it and says why.
    """
    root = Path(root)
    config_path = Path(config_file) if config_file is not None else root / CONFIG_FILE_NAME
    chosen: dict[str, _Raw] = {}
    ignored: _Ignored = {}
    chosen.update(_file_layer(config_path, ignored, required=config_file is not None))
    chosen.update(_env_layer(os.environ if env is None else env, ignored))
    chosen.update(_flag_layer(flags or {}, ignored))
    config = _build(root, config_path, chosen)
    _warn_ignored(ignored)
    return config


def write_default_config(path: Path, values: Mapping[str, Any] | None = None) -> None:
    """Write a commented harperdb-config.yaml with every setting, `values` filled in.

    `values` maps dotted keys (or environment names) to raw or typed values; they are
    validated and written in canonical form. The write is atomic and the file mode is 0600.
    """
    chosen = {}
    for name, raw in (values or {}).items():
        setting = _lookup(name, raw)
        chosen[setting.key] = _canonical(setting, raw, "write_default_config")
    _write_atomic(Path(path), render_config(chosen))


def render_config(values: Mapping[str, Any] | None = None) -> str:
    """Return the text of a commented config file: defaults, overridden by canonical `values`."""
    values = values or {}
    lines = list(_HEADER)
    opened: list[str] = []
    for setting in SETTINGS:
        *sections, name = setting.key.split(".")
        lines.extend(_open_sections(opened, sections))
        opened = sections
        indent = "  " * len(sections)
        lines.extend(_comment(setting, indent))
        lines.append(f"{indent}{name}: {_yaml_inline(values.get(setting.key, setting.default))}")
    return "\n".join(lines) + "\n"


_HEADER = (
    "# harperdb-config.yaml: the settings of this harper-agent node, with HarperDB's key names.",
    "# Precedence: command-line flags > environment > this file > defaults. Each key's",
    "# environment variable and flag is its flattened name, shown in [brackets], e.g.",
    "#   OPERATIONSAPI_NETWORK_PORT=9930 harper-agent run",
    "#   harper-agent run --OPERATIONSAPI_NETWORK_PORT 9930",
    "# Durations take d, h, m, s or ms; sizes take kb, mb or gb; null means unset.",
    "# Keys harper-agent does not use (HarperDB has many more) are ignored with a warning.",
)


def _open_sections(opened: list[str], sections: list[str]) -> Iterator[str]:
    """Yield the `name:` lines that open `sections` below what is already open."""
    common = 0
    while common < min(len(opened), len(sections)) and opened[common] == sections[common]:
        common += 1
    for depth in range(common, len(sections)):
        if depth == 0:
            yield ""
        yield f"{'  ' * depth}{sections[depth]}:"


def _comment(setting: Setting, indent: str) -> list[str]:
    text = f"{setting.help} [{setting.env}]"
    if setting.choices:
        text = f"{setting.help} One of: {', '.join(setting.choices)}. [{setting.env}]"
    return [f"{indent}# {line}" for line in textwrap.wrap(text, 94 - len(indent))]


def _yaml_inline(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and os.replace, mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the root: private
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _lookup(name: str, raw: Any) -> Setting:
    setting = BY_KEY.get(name) or BY_ENV.get(name)
    if setting is None:
        raise ConfigError(name, raw, "unknown setting (see `harper-agent settings`)")
    return setting


def _canonical(setting: Setting, raw: Any, source: str) -> Any:
    """Return a raw value the way the file writes it, so it reads back the same."""
    if setting.kind == "port":
        host, port = parse_listen(setting, raw, source)
        return f"{host}:{port}" if host is not None else port
    return format_value(setting, parse_value(setting, raw, source))


def _build(root: Path, config_path: Path, chosen: Mapping[str, _Raw]) -> Config:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    hosts: dict[str, str] = {}
    for setting in SETTINGS:
        raw, sources[setting.key], label = chosen.get(
            setting.key, (setting.default, "default", "default")
        )
        if setting.kind == "port":
            host, values[setting.key] = parse_listen(setting, raw, label)
            if host is not None:
                hosts[setting.key] = host
        else:
            values[setting.key] = parse_value(setting, raw, label)
    if values["rootPath"]:  # relative to the working directory, like any path on a command line
        root = Path(values["rootPath"]).expanduser().absolute()
    values["rootPath"] = str(root)
    return Config(root, config_path, values, sources, hosts)


def _env_layer(env: Mapping[str, str], ignored: _Ignored) -> dict[str, _Raw]:
    """Read the settings' environment names; an empty variable counts as not set."""
    for name, key in UNSUPPORTED_BY_ENV.items():
        if env.get(name, "") != "":
            ignored.setdefault(key, []).append(f"environment {name}")
    return {
        setting.key: (env[name], "env", f"environment {name}")
        for name, setting in BY_ENV.items()
        if env.get(name, "") != ""
    }


def _flag_layer(flags: Mapping[str, Any], ignored: _Ignored) -> dict[str, _Raw]:
    layer: dict[str, _Raw] = {}
    for name, raw in flags.items():
        if raw is None:
            continue
        key = unsupported_key(name)
        if key is not None:
            ignored.setdefault(key, []).append(f"--{key.replace('.', '_').upper()}")
            continue
        setting = _lookup(name, raw)
        layer[setting.key] = (raw, "flag", f"--{setting.env}")
    return layer


def _file_layer(path: Path, ignored: _Ignored, *, required: bool) -> dict[str, _Raw]:
    found: dict[str, Any] = {}
    unknown: list[str] = []
    _flatten(_read_yaml(path, required=required), "", found, unknown, path)
    for key in [k for k in unknown if k in UNSUPPORTED]:
        ignored.setdefault(key, []).append(str(path))
        unknown.remove(key)
    if unknown:
        log.warning("%s: ignoring keys harper-agent does not use: %s", path, ", ".join(unknown))
    return {key: (raw, "file", str(path)) for key, raw in found.items()}


def _warn_ignored(ignored: _Ignored) -> None:
    """Log one warning per unsupported HarperDB setting given: where, and why it is ignored."""
    for key, sources in ignored.items():
        log.warning("%s (from %s) is ignored: %s", key, ", ".join(sources), UNSUPPORTED[key])


def _flatten(
    data: Mapping[Any, Any], prefix: str, found: dict[str, Any], unknown: list[str], path: Path
) -> None:
    """Collect the settings of a nested yaml mapping by dotted key; note unknown keys."""
    for name, value in data.items():
        key = f"{prefix}{name}"
        if key in BY_KEY:
            found[key] = value
        elif key in _SECTIONS and isinstance(value, dict):
            _flatten(value, f"{key}.", found, unknown, path)
        elif key in _SECTIONS and value is not None:
            raise ConfigError(key, value, f"must be a section of keys (from {path})")
        elif key not in _SECTIONS:
            unknown.append(key)


def _read_yaml(path: Path, *, required: bool) -> dict[Any, Any]:
    """Return the file's top-level mapping ({} for an absent optional or empty file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError("--config", str(path), "no such file") from None
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), "", f"cannot read the config file: {err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise _yaml_error(path, err) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        reason = "must be a mapping of sections and keys, like `replication: {port: 9930}`"
        raise ConfigError(str(path), type(data).__name__, reason)
    return data


def _yaml_error(path: Path, err: yaml.YAMLError) -> ConfigError:
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
    problem = getattr(err, "problem", None) or str(err)
    return ConfigError(str(path), where, f"invalid YAML: {problem}")


def update_config_file(path: Path, key: str, value: Any) -> None:
    """Set one dotted key in the yaml file (creating sections), keeping the other keys."""
    setting = _lookup(key, value)
    parse_value(setting, value, str(path))
    data = _read_yaml(Path(path), required=False) or {}
    node = data
    *sections, name = setting.key.split(".")
    for section in sections:
        child = node.get(section)
        if not isinstance(child, dict):
            child = node[section] = {}
        node = child
    node[name] = value
    _write_atomic(Path(path), yaml.safe_dump(data, sort_keys=False))
