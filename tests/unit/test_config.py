"""Loading the config (defaults < file < env < flags), the default file, and logging set-up."""

from __future__ import annotations

import io
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from agent.config import CONFIG_FILE_NAME, Config, load_config, render_config, write_default_config
from agent.errors import ConfigError
from agent.logs import LEVELS, NOTIFY, TRACE, configure_logging, level_number, redact
from agent.settings import BY_ENV, BY_KEY, SETTINGS


def write(root: Path, text: str) -> Path:
    path = root / CONFIG_FILE_NAME
    path.write_text(text, encoding="utf-8")
    return path


def load(root: Path, **kwargs: object) -> Config:
    kwargs.setdefault("env", {})
    return load_config(root, **kwargs)  # type: ignore[arg-type]


# --- defaults and precedence ---


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.get("operationsApi.network.port") == 9925
    assert config["logging.level"] == "warn"
    assert config.source("operationsApi.network.port") == "default"
    assert config.root == tmp_path
    assert config.get("rootPath") == str(tmp_path)
    assert config.config_path == tmp_path / CONFIG_FILE_NAME


@pytest.mark.parametrize(
    ("file", "env", "flag", "value", "source"),
    [
        (None, None, None, None, "default"),
        ("9931", None, None, 9931, "file"),
        ("9931", "9932", None, 9932, "env"),
        ("9931", "9932", "9933", 9933, "flag"),
        (None, None, "9933", 9933, "flag"),
        ("9931", None, "9933", 9933, "flag"),
        (None, "9932", None, 9932, "env"),
    ],
)
def test_precedence_flags_env_file_default(
    tmp_path: Path,
    file: str | None,
    env: str | None,
    flag: str | None,
    value: int | None,
    source: str,
) -> None:
    if file is not None:
        write(tmp_path, f"replication:\n  port: {file}\n")
    environ = {"REPLICATION_PORT": env} if env is not None else {}
    config = load(tmp_path, env=environ, flags={"REPLICATION_PORT": flag})
    assert config.get("replication.port") == value
    assert config.source("replication.port") == source


def test_flags_by_dotted_key_or_env_name(tmp_path: Path) -> None:
    flags = {"replication.hostname": "node1", "LOGGING_LEVEL": "debug", "LOGGING_PATH": None}
    config = load(tmp_path, flags=flags)
    assert config.get("replication.hostname") == "node1"
    assert config.get("logging.level") == "debug"
    assert config.source("logging.path") == "default"


def test_unknown_flag_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load(tmp_path, flags={"NOT_A_SETTING": "1"})


def test_env_reads_only_setting_names_and_skips_empty(tmp_path: Path) -> None:
    env = {"LOGGING_LEVEL": "info", "REPLICATION_PORT": "", "PATH": "/usr/bin", "PORT": "1"}
    config = load(tmp_path, env=env)
    assert config.get("logging.level") == "info"
    assert config.source("replication.port") == "default"


def test_env_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATION_HOSTNAME", "from-env")
    assert load_config(tmp_path).get("replication.hostname") == "from-env"


def test_env_value_is_parsed(tmp_path: Path) -> None:
    env = {"REPLICATION_ROUTES": "a,b", "LOGGING_STDSTREAMS": "yes"}
    config = load(tmp_path, env=env)
    assert config.get("replication.routes") == ["a", "b"]
    assert config.get("logging.stdStreams") is True


# --- the file ---


NESTED = """
rootPath: null
operationsApi:
  network: {host: 127.0.0.3, port: "127.0.0.3:9925"}
replication:
  hostname: node3
  port: 9930
  routes:
    - {hostname: 127.0.0.1, port: 9930}
    - ws://127.0.0.2:9930
  databases: [dev]
logging:
  level: INFO
"""


def test_nested_file(tmp_path: Path) -> None:
    write(tmp_path, NESTED)
    config = load(tmp_path)
    assert config.get("replication.hostname") == "node3"
    assert config.get("replication.routes") == [
        {"hostname": "127.0.0.1", "port": 9930},
        "ws://127.0.0.2:9930",
    ]
    assert config.get("replication.databases") == ["dev"]
    assert config.get("logging.level") == "info"
    assert config.source("replication.hostname") == "file"


def test_unknown_keys_warn_once_and_do_not_fail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "http: {port: 9926}\nthreads:\n  count: 1\nreplication: {mtls: true}\n")
    with caplog.at_level(logging.WARNING, logger="agent.config"):
        load(tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "http" in warnings[0] and "threads" in warnings[0]
    assert "replication.mtls" in warnings[0]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_unsupported_harperdb_key_in_the_file_warns_why_and_is_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "replication: {shard: 1, port: 9930}\nlogging: {auditLog: false}\n")
    with caplog.at_level(logging.WARNING, logger="agent.config"):
        config = load(tmp_path)
    assert config.get("replication.port") == 9930
    assert sorted(warnings_of(caplog)) == [
        f"logging.auditLog (from {path}) is ignored: the transaction (audit) log is always "
        "kept: replication resumes from it",
        f"replication.shard (from {path}) is ignored: harper-agent does not shard: every node "
        "that replicates a database holds all of it",
    ]
    with pytest.raises(KeyError):
        config.get("replication.shard")


def test_unsupported_key_from_env_and_flags_warns_once_naming_every_source(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "replication:\n  replicateTo: 2\n")
    env = {"REPLICATION_REPLICATETO": "3", "LOGGING_AUDITLOG": ""}  # empty: not set
    flags = {"REPLICATION_REPLICATETO": "4", "logging.auditLog": None}  # None: not given
    with caplog.at_level(logging.WARNING, logger="agent.config"):
        load(tmp_path, env=env, flags=flags)
    (warning,) = warnings_of(caplog)
    assert warning.startswith(
        f"replication.replicateTo (from {path}, environment REPLICATION_REPLICATETO, "
        "--REPLICATION_REPLICATETO) is ignored: harper-agent does not shard"
    )


def test_unsupported_key_as_a_dotted_flag(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.config"):
        load(tmp_path, flags={"logging.auditLog": "false", "LOGGING_LEVEL": "info"})
    (warning,) = warnings_of(caplog)
    assert warning.startswith("logging.auditLog (from --LOGGING_AUDITLOG) is ignored: ")


def test_unsupported_keys_are_not_unknown_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "replication: {shard: 1, mtls: true}\n")
    with caplog.at_level(logging.WARNING, logger="agent.config"):
        load(tmp_path)
    unknown, shard = warnings_of(caplog)
    assert unknown.endswith("ignoring keys harper-agent does not use: replication.mtls")
    assert shard.startswith("replication.shard (from ")


def test_empty_file_and_empty_sections_are_fine(tmp_path: Path) -> None:
    write(tmp_path, "replication:\n")
    assert load(tmp_path).get("replication.port") is None
    write(tmp_path, "")
    assert load(tmp_path).get("operationsApi.network.port") == 9925


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "replication:\n  port: 9930\n bad: [\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    assert caught.value.key == str(path)
    assert str(caught.value.value).startswith("line ")
    assert "invalid YAML" in caught.value.reason


def test_yaml_error_line_number(tmp_path: Path) -> None:
    write(tmp_path, "a: 1\nb: 2\nc: : :\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    assert "line 3" in str(caught.value.value)


def test_non_mapping_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping") as caught:
        load(tmp_path)
    assert caught.value.key == str(path)


def test_section_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "replication: 5\n")
    with pytest.raises(ConfigError, match="must be a section") as caught:
        load(tmp_path)
    assert caught.value.key == "replication"


def test_bad_value_in_file_names_key_value_reason_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "replication:\n  pingInterval: soon\n")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    error = caught.value
    assert (error.key, error.value) == ("replication.pingInterval", "soon")
    assert "must be a duration" in error.reason
    assert str(path) in error.reason


def test_bad_value_in_env_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(from environment REPLICATION_PORT\)"):
        load(tmp_path, env={"REPLICATION_PORT": "many"})


def test_bad_value_in_flag_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(from --LOGGING_LEVEL\)"):
        load(tmp_path, flags={"logging.level": "loud"})


def test_flag_hides_a_bad_file_value(tmp_path: Path) -> None:
    write(tmp_path, "replication:\n  port: many\n")
    assert load(tmp_path, flags={"REPLICATION_PORT": "9930"}).get("replication.port") == 9930


def test_explicit_config_file(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.yaml"
    other.write_text("replication: {hostname: n9}\n")
    config = load(tmp_path / "root", config_file=other)
    assert config.get("replication.hostname") == "n9"
    assert config.config_path == other


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path, config_file=tmp_path / "missing.yaml")


def test_root_path_setting_moves_the_root(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    config = load(tmp_path, env={"ROOTPATH": str(elsewhere)})
    assert config.root == elsewhere
    assert config.database_path == elsewhere / "database"


# --- listeners ---


def test_listener_defaults_to_operations_host(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.listener("operationsApi.network.port") == ("127.0.0.1", 9925)
    assert config.listener("replication.port") is None


def test_listener_host_port_splits_on_last_colon(tmp_path: Path) -> None:
    flags = {"OPERATIONSAPI_NETWORK_PORT": "::1:9925", "REPLICATION_PORT": "127.0.0.9:9930"}
    config = load(tmp_path, flags=flags)
    assert config.listener("operationsApi.network.port") == ("::1", 9925)
    assert config.listener("replication.port") == ("127.0.0.9", 9930)
    assert config.get("operationsApi.network.port") == 9925


def test_listener_replication_host_applies_to_replication_ports(tmp_path: Path) -> None:
    flags = {
        "OPERATIONSAPI_NETWORK_HOST": "127.0.0.2",
        "REPLICATION_HOST": "10.0.0.2",
        "REPLICATION_PORT": "9930",
        "REPLICATION_SECUREPORT": "127.0.0.7:9933",
    }
    config = load(tmp_path, flags=flags)
    assert config.listener("replication.port") == ("10.0.0.2", 9930)
    assert config.listener("replication.securePort") == ("127.0.0.7", 9933)
    assert config.listener("operationsApi.network.port") == ("127.0.0.2", 9925)


def test_listener_without_replication_host_uses_operations_host(tmp_path: Path) -> None:
    config = load(
        tmp_path, flags={"OPERATIONSAPI_NETWORK_HOST": "127.0.0.4", "REPLICATION_PORT": 1}
    )
    assert config.listener("replication.port") == ("127.0.0.4", 1)


def test_listener_of_a_non_port_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        load(tmp_path).listener("replication.hostname")


# --- the Config object ---


def test_unknown_key_is_a_key_error(tmp_path: Path) -> None:
    config = load(tmp_path)
    with pytest.raises(KeyError):
        config.get("replication.nope")
    with pytest.raises(KeyError):
        config.source("replication.nope")


def test_config_is_immutable(tmp_path: Path) -> None:
    config = load(tmp_path, flags={"REPLICATION_ROUTES": "a,b"})
    with pytest.raises(AttributeError):
        config.root = tmp_path  # type: ignore[misc]
    config.get("replication.routes").append("c")
    assert config.get("replication.routes") == ["a", "b"]


def test_as_dict_is_nested_like_the_file(tmp_path: Path) -> None:
    write(tmp_path, NESTED)
    nested = load(tmp_path).as_dict()
    assert nested["replication"]["hostname"] == "node3"
    assert nested["operationsApi"]["network"]["port"] == "127.0.0.3:9925"
    assert nested["replication"]["pingInterval"] == "30s"
    assert nested["operationsApi"]["network"]["maxBodySize"] == "16mb"
    assert nested["rootPath"] == str(tmp_path)


def test_paths(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.database_path == tmp_path / "database"
    assert config.log_path == tmp_path / "log"
    assert config.log_file == tmp_path / "log" / "hdb.log"
    assert config.path("tls.certificate") is None


def test_paths_from_settings(tmp_path: Path) -> None:
    flags = {
        "STORAGE_PATH": "/srv/db",
        "LOGGING_PATH": "logs/agent.log",
        "TLS_CERTIFICATE": "k.pem",
    }
    config = load(tmp_path, flags=flags)
    assert config.database_path == Path("/srv/db")
    assert config.log_file == tmp_path / "logs" / "agent.log"
    assert config.log_path == tmp_path / "logs"
    assert config.path("tls.certificate") == tmp_path / "k.pem"


def test_logging_path_folder(tmp_path: Path) -> None:
    config = load(tmp_path, flags={"LOGGING_PATH": str(tmp_path / "var")})
    assert config.log_file == tmp_path / "var" / "hdb.log"


# --- the default file ---


def test_default_file_round_trips_to_the_defaults(tmp_path: Path) -> None:
    write_default_config(tmp_path / CONFIG_FILE_NAME)
    from_file = load(tmp_path)
    defaults = load(tmp_path / "empty")
    for setting in SETTINGS:
        if setting.key != "rootPath":
            assert from_file.get(setting.key) == defaults.get(setting.key), setting.key
        assert from_file.source(setting.key) == "file"


def test_default_file_is_nested_commented_and_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / CONFIG_FILE_NAME
    write_default_config(path)
    text = path.read_text()
    data = yaml.safe_load(text)
    assert data["replication"]["databases"] == "*"
    assert data["operationsApi"]["network"]["port"] == 9925
    assert "# Operations API port" in text
    assert "[OPERATIONSAPI_NETWORK_PORT]" in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(path.parent) == [CONFIG_FILE_NAME]


def test_default_file_with_values_round_trips(tmp_path: Path) -> None:
    values = {
        "replication.hostname": "node1",
        "REPLICATION_PORT": "127.0.0.2:9930",
        "replication.pingInterval": 5000,  # bare: milliseconds
        "replication.routes": '[{"hostname": "node2", "port": 9930}]',
        "replication.databases": "dev,data",
        "operationsApi.network.maxBodySize": "1mb",
    }
    write_default_config(tmp_path / CONFIG_FILE_NAME, values)
    from_file = load(tmp_path)
    from_flags = load(tmp_path / "other", flags=values)
    for key in keys_of(values):
        assert from_file.get(key) == from_flags.get(key), key
    assert from_file.listener("replication.port") == ("127.0.0.2", 9930)
    assert from_file.get("replication.pingInterval") == 5.0


def keys_of(values: dict[str, object]) -> list[str]:
    return [(BY_KEY.get(name) or BY_ENV[name]).key for name in values]


def test_default_file_replaces_atomically(tmp_path: Path) -> None:
    path = write(tmp_path, "old: true\n")
    write_default_config(path, {"replication.hostname": "n1"})
    assert "old:" not in path.read_text()
    assert sorted(os.listdir(tmp_path)) == [CONFIG_FILE_NAME]


def test_default_file_refuses_bad_values_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port number"):
        write_default_config(tmp_path / CONFIG_FILE_NAME, {"replication.port": "x"})
    assert os.listdir(tmp_path) == []


def test_render_config_lists_every_key_once(tmp_path: Path) -> None:
    text = render_config()
    for setting in SETTINGS:
        assert text.count(f"[{setting.env}]") == 1, setting.key


# --- logging from the config ---


@pytest.fixture
def clean_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_harperdb_levels_map_in_order() -> None:
    assert [level_number(name) for name in LEVELS] == sorted(LEVELS.values())
    assert level_number("WARN") == logging.WARNING
    assert level_number("trace") == TRACE < logging.DEBUG
    assert level_number("notify") == NOTIFY > logging.CRITICAL


def test_redact_blanks_credentials() -> None:
    text = redact('{"password": "hunter2", "x": 1} Authorization: Basic YWRtaW46cGFzcw==')
    assert "hunter2" not in text and "YWRtaW46cGFzcw" not in text
    assert '"x": 1' in text


@pytest.mark.usefixtures("clean_root_logger")
def test_configure_logging_writes_file_and_stderr(tmp_path: Path) -> None:
    config = load(tmp_path, flags={"LOGGING_STDSTREAMS": "true", "LOGGING_LEVEL": "info"})
    stream = io.StringIO()
    log_file = configure_logging(config, stream=stream)
    configure_logging(config, stream=stream)  # again: must not double the lines
    logging.getLogger("agent.test").info("started with password=%s", "hunter2")
    logging.getLogger("agent.test").debug("not at info")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert log_file == tmp_path / "log" / "hdb.log"
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1
    assert "[info] [agent.test]: started with password=***" in lines[0]
    assert stream.getvalue().splitlines() == lines


@pytest.mark.usefixtures("clean_root_logger")
def test_configure_logging_without_std_streams(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure_logging(load(tmp_path), stream=stream)
    logging.getLogger("agent.test").warning("careful")
    assert stream.getvalue() == ""
