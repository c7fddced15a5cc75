"""The settings table and the parsing rule of every kind."""

from __future__ import annotations

import ast
import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ConfigError
from agent.settings import (
    BY_ENV,
    BY_KEY,
    SETTINGS,
    UNSUPPORTED,
    UNSUPPORTED_BY_ENV,
    Setting,
    default_text,
    format_duration,
    format_size,
    format_value,
    parse_listen,
    parse_value,
    unsupported_key,
)

REQUIRED_KEYS = """
rootPath operationsApi.network.host operationsApi.network.port operationsApi.network.securePort
operationsApi.network.maxBodySize operationsApi.network.timeout
operationsApi.network.keepAliveTimeout operationsApi.tls.certificate operationsApi.tls.privateKey
operationsApi.tls.certificateAuthority authentication.operationTokenTimeout
authentication.refreshTokenTimeout logging.level logging.path logging.stdStreams
logging.auditRetention storage.path storage.writeAsync tls.certificate tls.privateKey
tls.certificateAuthority replication.hostname replication.url replication.host replication.port
replication.securePort replication.routes replication.databases replication.enableRootCAs
replication.certificate replication.privateKey replication.certificateAuthority
replication.compression replication.pingInterval replication.pingTimeout
replication.stallTimeout replication.copyTimeout replication.maxPayload replication.retryInterval
replication.failOver replication.copyChunkRecords
""".split()


def parse(key: str, raw: object, source: str = "test") -> object:
    return parse_value(BY_KEY[key], raw, source)


def reason(key: str, raw: object, source: str = "test") -> str:
    with pytest.raises(ConfigError) as caught:
        parse_value(BY_KEY[key], raw, source)
    assert caught.value.key == key
    assert caught.value.value == raw
    return caught.value.reason


# --- the table ---


@pytest.mark.parametrize(
    ("key", "env"),
    [
        ("operationsApi.network.port", "OPERATIONSAPI_NETWORK_PORT"),
        ("replication.hostname", "REPLICATION_HOSTNAME"),
        ("rootPath", "ROOTPATH"),
        ("logging.auditRetention", "LOGGING_AUDITRETENTION"),
    ],
)
def test_env_name_is_harperdb_flattening(key: str, env: str) -> None:
    assert BY_KEY[key].env == env
    assert BY_ENV[env] is BY_KEY[key]


def test_table_has_every_required_key() -> None:
    assert set(REQUIRED_KEYS) <= set(BY_KEY)


def test_keys_and_env_names_are_unique() -> None:
    assert len(BY_KEY) == len(SETTINGS)
    assert len(BY_ENV) == len(SETTINGS)


def test_every_setting_has_help_sentence() -> None:
    for setting in SETTINGS:
        assert setting.help.strip().endswith("."), setting.key
        assert len(setting.help) > 20, setting.key


def test_no_key_is_also_a_section() -> None:
    sections = {s.section for s in SETTINGS}
    assert not sections & set(BY_KEY)


def test_sections_are_contiguous_so_the_yaml_nests_once() -> None:
    seen: list[str] = []
    for setting in SETTINGS:
        top = setting.key.split(".")[0]
        if seen and seen[-1] == top:
            continue
        assert top not in seen, f"section {top} is split in the table"
        seen.append(top)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.key)
def test_every_default_parses(setting: Setting) -> None:
    parse_value(setting, setting.default, "default")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("operationsApi.network.host", "127.0.0.1"),
        ("operationsApi.network.port", 9925),
        ("operationsApi.network.securePort", None),
        ("operationsApi.network.maxBodySize", 16 * 1024 * 1024),
        ("operationsApi.network.timeout", 120.0),
        ("authentication.operationTokenTimeout", 86400.0),
        ("authentication.refreshTokenTimeout", 30 * 86400.0),
        ("logging.level", "warn"),
        ("logging.stdStreams", False),
        ("logging.auditRetention", 3 * 86400.0),
        ("storage.writeAsync", False),
        ("replication.routes", []),
        ("replication.databases", "*"),
        ("replication.enableRootCAs", True),
        ("replication.compression", False),
        ("replication.pingInterval", 30.0),
        ("replication.pingTimeout", 60.0),
        ("replication.stallTimeout", 10.0),
        ("replication.copyTimeout", 300.0),
        ("replication.maxPayload", 100 * 1024 * 1024),
        ("replication.retryInterval", 0.5),
        ("replication.failOver", True),
        ("replication.copyChunkRecords", 1000),
    ],
)
def test_defaults(key: str, expected: object) -> None:
    assert parse(key, BY_KEY[key].default) == expected


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        Setting("x.y", "colour", None, "Bad.")


def test_default_text() -> None:
    assert default_text(BY_KEY["operationsApi.network.port"]) == "9925"
    assert default_text(BY_KEY["replication.port"]) == "none"
    assert default_text(BY_KEY["replication.failOver"]) == "true"
    assert default_text(BY_KEY["replication.routes"]) == "[]"


# --- ports ---


@pytest.mark.parametrize(
    ("raw", "host", "port"),
    [
        (9930, None, 9930),
        ("9930", None, 9930),
        (" 9930 ", None, 9930),
        ("127.0.0.2:9930", "127.0.0.2", 9930),
        ("::1:9930", "::1", 9930),  # the LAST colon separates the port
        ("[::1]:9930", "::1", 9930),
        (":9930", None, 9930),
        ("server-one:1", "server-one", 1),
        ("server-one:65535", "server-one", 65535),
    ],
)
def test_port_accepts_number_or_host_port(raw: object, host: str | None, port: int) -> None:
    assert parse_listen(BY_KEY["replication.port"], raw, "test") == (host, port)
    assert parse("replication.port", raw) == port


@pytest.mark.parametrize("raw", [0, 65536, -1, "abc", "host:", "host:abc", True, 99.5, [9925]])
def test_port_refuses_non_ports(raw: object) -> None:
    assert "must be a port number 1-65535" in reason("replication.port", raw)


@pytest.mark.parametrize("raw", [None, "", "null", " NULL "])
def test_unset_port_is_none(raw: object) -> None:
    assert parse("replication.port", raw) is None
    assert parse_listen(BY_KEY["replication.port"], raw, "test") == (None, None)


def test_parse_listen_only_for_ports() -> None:
    with pytest.raises(TypeError):
        parse_listen(BY_KEY["replication.hostname"], "x", "test")


def test_reason_names_the_source() -> None:
    text = reason("replication.port", "abc", "environment REPLICATION_PORT")
    assert text.endswith("(from environment REPLICATION_PORT)")


def test_config_error_message_names_key_value_reason() -> None:
    with pytest.raises(ConfigError) as caught:
        parse("replication.port", "abc", "--REPLICATION_PORT")
    assert str(caught.value).startswith("replication.port: 'abc': must be a port number")


# --- durations ---


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("1d", 86400.0),
        ("30d", 30 * 86400.0),
        ("12h", 43200.0),
        ("30m", 1800.0),
        ("45s", 45.0),
        ("1500ms", 1.5),
        ("1.5s", 1.5),
        (" 2 H ", 7200.0),
        ("0s", 0.0),
        (90, 90.0),  # bare numbers are in the setting's unit: seconds here
        ("90", 90.0),
    ],
)
def test_duration_in_seconds_unit(raw: object, seconds: float) -> None:
    assert parse("authentication.operationTokenTimeout", raw) == pytest.approx(seconds)


@pytest.mark.parametrize(("raw", "seconds"), [(1500, 1.5), ("1500", 1.5), (30000, 30.0)])
def test_bare_duration_in_milliseconds_unit(raw: object, seconds: float) -> None:
    assert parse("replication.pingInterval", raw) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["soon", "10x", "-1s", -5, True, "1d2h", [1]])
def test_duration_refuses(raw: object) -> None:
    text = reason("replication.pingInterval", raw)
    assert "must be a duration like 1d, 12h, 30s" in text
    assert "number of milliseconds" in text


def test_duration_reason_names_seconds_for_second_unit() -> None:
    assert "number of seconds" in reason("authentication.refreshTokenTimeout", "later")


# --- sizes ---


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        ("16mb", 16 << 20),
        ("16MB", 16 << 20),
        ("1gb", 1 << 30),
        ("512kb", 512 << 10),
        ("64M", 64 << 20),
        ("100", 100),
        (100, 100),
        ("1.5kb", 1536),
    ],
)
def test_size(raw: object, size: int) -> None:
    assert parse("replication.maxPayload", raw) == size


@pytest.mark.parametrize("raw", ["lots", "16 parsecs", -1, True, "-1mb"])
def test_size_refuses(raw: object) -> None:
    assert "must be a size like 16mb" in reason("replication.maxPayload", raw)


# --- booleans, ints, enums, strings ---


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("False", False),
        ("yes", True),
        ("NO", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
        ("on", True),
    ],
)
def test_bool(raw: object, value: bool) -> None:
    assert parse("logging.stdStreams", raw) is value


@pytest.mark.parametrize("raw", ["maybe", 2, 1.0, [True]])
def test_bool_refuses(raw: object) -> None:
    assert "must be true or false" in reason("logging.stdStreams", raw)


def test_empty_value_for_a_setting_with_a_default_is_an_error() -> None:
    assert "must have a value" in reason("logging.stdStreams", "")


def test_int() -> None:
    assert parse("replication.copyChunkRecords", "250") == 250
    assert parse("replication.copyChunkRecords", 250) == 250
    assert parse_value(Setting("x.count", "int", None, "A count."), None, "test") is None
    assert "whole number" in reason("replication.copyChunkRecords", "1.5")
    assert "at least 1" in reason("replication.copyChunkRecords", 0)


def test_enum_is_case_insensitive() -> None:
    assert parse("logging.level", "DEBUG") == "debug"
    assert parse("logging.level", "notify") == "notify"


def test_enum_refuses_with_the_choices() -> None:
    text = reason("logging.level", "loud")
    assert "must be one of trace, debug, info, warn, error, fatal, notify" in text


def test_str_and_path() -> None:
    assert parse("replication.hostname", " node1 ") == "node1"
    assert parse("replication.hostname", "") is None
    assert parse("tls.certificate", "/etc/ssl/node.pem") == "/etc/ssl/node.pem"
    assert "must be a string" in reason("replication.hostname", ["a"])
    assert "path" in reason("tls.certificate", 5)


# --- databases, routes, lists ---


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("*", "*"),
        (None, "*"),
        ("dev,data", ["dev", "data"]),
        (" dev , data ", ["dev", "data"]),
        (["dev", "system"], ["dev", "system"]),
        (["dev", "dev"], ["dev"]),
        ('["dev", "data"]', ["dev", "data"]),
        ([{"name": "dev", "sharded": True}], ["dev"]),
        (["dev", "*"], "*"),
        ([], []),
    ],
)
def test_databases(raw: object, value: object) -> None:
    assert parse("replication.databases", raw) == value


@pytest.mark.parametrize("raw", [5, [""], [3], [{"sharded": True}], "[1, 2]", "[oops"])
def test_databases_refuses(raw: object) -> None:
    assert 'must be "*" or a list of database names' in reason("replication.databases", raw)


def test_routes_from_yaml_list_kept_as_given() -> None:
    routes = [
        "server-two",
        "wss://server-three:9933",
        {"hostname": "server-four", "port": 9933},
        {"host": "127.0.0.5", "port": "9930", "startTime": "2024-01-01T00:00:00Z"},
        {"url": "ws://127.0.0.6:9930", "subscriptions": []},
    ]
    assert parse("replication.routes", routes) == routes


def test_routes_from_a_comma_separated_string() -> None:
    raw = "server-two, ws://127.0.0.2:9930 ,"
    assert parse("replication.routes", raw) == ["server-two", "ws://127.0.0.2:9930"]


def test_routes_from_a_json_array_string() -> None:
    raw = '[{"hostname": "server-two", "port": 9933}, "server-three"]'
    expected = [{"hostname": "server-two", "port": 9933}, "server-three"]
    assert parse("replication.routes", raw) == expected


def test_routes_unset_is_empty() -> None:
    assert parse("replication.routes", None) == []


def test_route_yaml_datetime_start_time_becomes_text() -> None:
    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    route = parse("replication.routes", [{"hostname": "a", "startTime": when}])
    assert route == [{"hostname": "a", "startTime": "2024-01-01T00:00:00+00:00"}]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["a", {"port": 9930}], "route 2 needs a hostname, host or url"),
        (["a", ""], "route 2 must be a hostname"),
        ([{"hostname": "a", "port": 70000}], "route 1: port must be a port number"),
        ([{"hostname": "a", "port": "x"}], "route 1: port must be a port number"),
        ([{"hostname": "a", "startTime": [1]}], "route 1: startTime"),
        ([7], "route 1 must be a hostname"),
        ({"hostname": "a"}, "must be a list of routes"),
        ("[{bad json", "JSON array does not parse"),
    ],
)
def test_routes_refuses(raw: object, expected: str) -> None:
    assert expected in reason("replication.routes", raw)


def test_list_kind() -> None:
    setting = Setting("x.names", "list", [], "Names.")
    assert parse_value(setting, "a, b", "test") == ["a", "b"]
    assert parse_value(setting, ["a", 2], "test") == ["a", "2"]
    with pytest.raises(ConfigError, match="must be a list of strings"):
        parse_value(setting, [{"a": 1}], "test")


# --- writing values back ---


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(86400.0, "1d"), (43200.0, "12h"), (90.0, "90s"), (1.5, "1500ms"), (0.0, "0ms")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_size() -> None:
    assert format_size(16 << 20) == "16mb"
    assert format_size(1 << 30) == "1gb"
    assert format_size(1000) == 1000


@given(ms=st.integers(min_value=0, max_value=10**10))
def test_durations_round_trip_through_the_file_form(ms: int) -> None:
    for key in ("replication.pingInterval", "authentication.operationTokenTimeout"):
        setting = BY_KEY[key]
        value = parse_value(setting, f"{ms}ms", "test")
        written = format_value(setting, value)
        assert parse_value(setting, written, "test") == pytest.approx(value)


@given(size=st.integers(min_value=0, max_value=1 << 45))
def test_sizes_round_trip_through_the_file_form(size: int) -> None:
    setting = BY_KEY["replication.maxPayload"]
    assert parse_value(setting, format_value(setting, size), "test") == size


# --- every setting is read by some code; unsupported HarperDB keys are not settings ---

AGENT = Path(__file__).resolve().parents[2] / "agent"


def _string_constants(path: Path) -> set[str]:
    """Return the string literals of a module (f-string parts included, docstrings not)."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    }


READERS = {
    path.relative_to(AGENT).as_posix(): _string_constants(path)
    for path in sorted(AGENT.rglob("*.py"))
    if path.name != "settings.py"  # the table itself names every key
}


def _readers_of(key: str) -> list[str]:
    """Return the modules that name `key` whole, or as two literals of one module.

    Code reads a setting as `config.get("replication.pingInterval")`, `config.listener(...)`,
    `config.path(...)`, or composes the key from a prefix and a name (`network + "timeout"`,
    `f"{prefix}.certificate"` over a tuple of prefixes). A key counts as read when a module
    holds the key as one literal, or holds two literals that are the key's two halves. Only
    whole literals count, so a message quoting a key ("...(replication.copyTimeout)") or a
    docstring does not. Why this and not recording Config.get calls of a running agent: a
    recorded run sees only the branches that run took (TLS keys only with a TLS listener,
    copyTimeout only during a copy, verify keys only when a verify runs), so it would need a
    cluster exercising every feature to be right; the literals are there whichever branch runs.
    """
    found = []
    for module, constants in READERS.items():
        halves = any(key[:i] in constants and key[i:] in constants for i in range(1, len(key)))
        if key in constants or halves:
            found.append(module)
    return found


def test_the_scan_finds_plain_and_composed_reads() -> None:
    assert "node.py" in _readers_of("operationsApi.network.maxBodySize")  # network + "..."
    assert "certs/setup.py" in _readers_of("operationsApi.tls.privateKey")  # f"{prefix}..."
    assert "replication/replicator.py" in _readers_of("replication.pingInterval")
    assert _readers_of("replication.noSuchKey") == []
    # core/subscription.py quotes it in a message; replicator.py reads it
    assert _readers_of("replication.copyTimeout") == ["replication/replicator.py"]
    for key in UNSUPPORTED:  # what the table held, read by nothing, before issue 10
        assert _readers_of(key) == [], key


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.key)
def test_every_setting_is_read_by_some_code(setting: Setting) -> None:
    assert _readers_of(setting.key), (
        f"{setting.key} is in the settings table but no agent module reads it: wire it, or "
        "take it out of the table (and into settings.UNSUPPORTED if HarperDB has it)"
    )


def test_unsupported_harperdb_keys_are_not_settings_and_say_why() -> None:
    assert set(UNSUPPORTED) == {"replication.shard", "replication.replicateTo", "logging.auditLog"}
    assert not set(UNSUPPORTED) & set(BY_KEY)
    assert not set(UNSUPPORTED_BY_ENV) & set(BY_ENV)
    for key, why in UNSUPPORTED.items():
        assert len(why) > 20, key
    assert UNSUPPORTED_BY_ENV["REPLICATION_REPLICATETO"] == "replication.replicateTo"
    assert unsupported_key("LOGGING_AUDITLOG") == unsupported_key("logging.auditLog")
    assert unsupported_key("logging.auditLog") == "logging.auditLog"
    assert unsupported_key("LOGGING_LEVEL") is None
