"""The harper-agent command line, with a fake agent.node put in through sys.modules."""

from __future__ import annotations

import logging
import os
import stat
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from agent import cli as agent_cli
from agent.config import CONFIG_FILE_NAME, Config, render_config
from agent.errors import ConfigError
from agent.settings import SETTINGS
from agent.systemd.unit import render_unit, service_command


class FakeNode(types.ModuleType):
    """Stands in for agent.node: records calls, returns what the test says."""

    def __init__(self) -> None:
        super().__init__("agent.node")
        self.calls: list[tuple[str, Config, Any, Any]] = []
        self.serve_code = 0
        self.error: Exception | None = None

    def initialize(self, config: Config, admin_user: str, admin_password: str | None) -> None:
        self.calls.append(("initialize", config, admin_user, admin_password))
        if self.error:
            raise self.error

    def serve(
        self,
        config: Config,
        *,
        admin_user: str,
        admin_password: str | None,
        reload: Callable[[], Config] | None = None,
    ) -> int:
        self.calls.append(("serve", config, admin_user, admin_password))
        self.reload = reload
        if self.error:
            raise self.error
        return self.serve_code


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> FakeNode:
    fake = FakeNode()
    monkeypatch.setitem(sys.modules, "agent.node", fake)
    return fake


@pytest.fixture(autouse=True)
def quiet_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the developer's own settings out, and leave the root logger as found."""
    for name in [s.env for s in SETTINGS] + ["HDB_ADMIN_USERNAME", "HDB_ADMIN_PASSWORD"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(agent_cli, "_stdin_is_tty", lambda: False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(agent_cli.cli, list(args), env=env, input=input)


# --- help ---


def test_help_lists_commands_and_an_example() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("init", "run", "settings", "install-service"):
        assert command in result.output
    assert "Examples:" in result.output


@pytest.mark.parametrize("command", ["init", "run", "settings", "install-service"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert f"harper-agent {command}" in result.output


@pytest.mark.parametrize("command", ["init", "run"])
def test_every_setting_is_a_flag_named_by_its_env_name(command: str) -> None:
    output = invoke(command, "--help").output
    for setting in SETTINGS:
        assert f"--{setting.env}" in output, setting.env
    assert "Operations API port" in output


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert "harper-agent" in result.output


def test_settings_prints_the_table() -> None:
    output = invoke("settings").output
    for setting in SETTINGS:
        assert setting.key in output and setting.env in output
    assert "duration (bare numbers in ms)" in output


def test_settings_yaml_is_the_default_file() -> None:
    result = invoke("settings", "--yaml")
    assert result.output == render_config()


# --- run ---


def test_run_passes_flags_and_exits_with_serve_code(node: FakeNode, tmp_path: Path) -> None:
    node.serve_code = 3
    result = invoke(
        "run",
        "--root",
        str(tmp_path),
        "--OPERATIONSAPI_NETWORK_PORT",
        "127.0.0.2:9930",
        "--REPLICATION_HOSTNAME",
        "node1",
    )
    assert result.exit_code == 3, result.output
    (name, config, user, password) = node.calls[0]
    assert name == "serve"
    assert config.root == tmp_path
    assert config.get("replication.hostname") == "node1"
    assert config.listener("operationsApi.network.port") == ("127.0.0.2", 9930)
    assert config.source("replication.hostname") == "flag"
    assert (user, password) == ("admin", None)


def test_run_flag_beats_env_beats_file(node: FakeNode, tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE_NAME).write_text("logging: {level: error}\nreplication: {port: 1}\n")
    env = {"LOGGING_LEVEL": "info", "REPLICATION_PORT": "2"}
    result = invoke("run", "--root", str(tmp_path), "--REPLICATION_PORT", "3", env=env)
    assert result.exit_code == 0, result.output
    config = node.calls[0][1]
    assert config.get("replication.port") == 3
    assert config.get("logging.level") == "info"


def test_run_configures_the_log_file(node: FakeNode, tmp_path: Path) -> None:
    invoke("run", "--root", str(tmp_path))
    assert (tmp_path / "log" / "hdb.log").exists()


def test_run_root_from_rootpath_env(node: FakeNode, tmp_path: Path) -> None:
    result = invoke("run", env={"ROOTPATH": str(tmp_path / "env-root")})
    assert result.exit_code == 0, result.output
    assert node.calls[0][1].root == tmp_path / "env-root"


def test_explicit_root_beats_rootpath_env(node: FakeNode, tmp_path: Path) -> None:
    invoke("run", "--root", str(tmp_path / "flag"), env={"ROOTPATH": str(tmp_path / "env")})
    assert node.calls[0][1].root == tmp_path / "flag"


def test_run_default_root_is_data(
    node: FakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("run")
    assert result.exit_code == 0, result.output
    assert node.calls[0][1].root == tmp_path / "data"


def test_relative_rootpath_flag_is_not_applied_twice(
    node: FakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    invoke("run", "--ROOTPATH", "n1")
    invoke("run", env={"ROOTPATH": "n2"})
    assert [call[1].root for call in node.calls] == [tmp_path / "n1", tmp_path / "n2"]


def test_run_admin_from_env(node: FakeNode, tmp_path: Path) -> None:
    env = {"HDB_ADMIN_USERNAME": "root", "HDB_ADMIN_PASSWORD": "pw"}
    invoke("run", "--root", str(tmp_path), env=env)
    assert node.calls[0][2:] == ("root", "pw")


def test_run_on_an_empty_root_writes_the_default_config_with_flags(
    node: FakeNode, tmp_path: Path
) -> None:
    root = tmp_path / "fresh"
    args = ["run", "--root", str(root), "--REPLICATION_HOSTNAME", "node1"]
    result = invoke(*args, "--LOGGING_FORMAT", "json", env={"REPLICATION_PORT": "9930"})
    assert result.exit_code == 0, result.output
    path = root / CONFIG_FILE_NAME
    text = path.read_text()
    for setting in SETTINGS:  # every key, commented, as init writes it
        assert f"[{setting.env}]" in text, setting.key
    data = yaml.safe_load(text)
    assert data["replication"]["hostname"] == "node1"
    assert data["logging"]["format"] == "json"
    assert data["replication"]["port"] is None  # as init: flags are recorded, not the env
    assert data["rootPath"] is None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_run_keeps_an_existing_config_file(node: FakeNode, tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILE_NAME
    path.write_text("replication: {hostname: kept}\n")
    invoke("run", "--root", str(tmp_path), "--REPLICATION_HOSTNAME", "other")
    assert path.read_text() == "replication: {hostname: kept}\n"


def test_run_prompts_for_the_admin_on_a_terminal_for_a_new_root(
    node: FakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_cli, "_stdin_is_tty", lambda: True)
    result = invoke("run", "--root", str(tmp_path), input="carol\ns3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    assert node.calls[0][2:] == ("carol", "s3cret")
    assert "Admin password" in result.output and "s3cret" not in result.output


def test_run_does_not_prompt_for_a_root_that_has_users(
    node: FakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "database").mkdir()
    (tmp_path / "database" / "system.sqlite").write_bytes(b"")
    monkeypatch.setattr(agent_cli, "_stdin_is_tty", lambda: True)
    result = invoke("run", "--root", str(tmp_path), input="")
    assert result.exit_code == 0, result.output
    assert "Admin" not in result.output
    assert node.calls[0][2:] == ("admin", None)


def test_run_without_a_terminal_leaves_the_password_to_be_generated(
    node: FakeNode, tmp_path: Path
) -> None:
    result = invoke("run", "--root", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert node.calls[0][2:] == ("admin", None)


def test_run_help_says_what_happens_without_a_password() -> None:
    output = " ".join(invoke("run", "--help").output.split())
    assert "prompted on a terminal, else generated and printed once" in output
    assert "SIGHUP" in output and "READY=1" in output


def test_run_hands_the_node_a_reload_that_reads_file_env_and_flags(
    node: FakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("run", "--root", str(tmp_path), "--REPLICATION_HOSTNAME", "node1")
    path = tmp_path / CONFIG_FILE_NAME
    path.write_text("logging: {level: debug}\nreplication: {hostname: from-file}\n")
    monkeypatch.setenv("LOGGING_FORMAT", "json")
    fresh = node.reload()
    assert fresh.get("logging.level") == "debug"
    assert fresh.get("logging.format") == "json"
    assert fresh.get("replication.hostname") == "node1"  # the original flag still wins
    path.write_text("logging: {level: loud}\n")
    with pytest.raises(ConfigError, match="logging.level"):
        node.reload()


def test_enum_flags_name_their_value() -> None:
    output = invoke("run", "--help").output
    assert "--LOGGING_LEVEL LEVEL" in output
    assert "--LOGGING_FORMAT FORMAT" in output


# --- config errors: one line, exit code 2 ---


def test_bad_flag_value_exits_2_with_key_value_reason(node: FakeNode, tmp_path: Path) -> None:
    result = invoke("run", "--root", str(tmp_path), "--REPLICATION_PORT", "abc")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "harper-agent: replication.port: 'abc': must be a port number 1-65535"
    )
    assert "--REPLICATION_PORT" in result.stderr
    assert node.calls == []


def test_bad_env_value_exits_2(node: FakeNode, tmp_path: Path) -> None:
    result = invoke("run", "--root", str(tmp_path), env={"LOGGING_LEVEL": "loud"})
    assert result.exit_code == 2
    assert "harper-agent: logging.level: 'loud': must be one of" in result.stderr


def test_bad_yaml_exits_2_naming_file_and_line(node: FakeNode, tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILE_NAME
    path.write_text("replication:\n  port: [\n")
    result = invoke("init", "--root", str(tmp_path))
    assert result.exit_code == 2
    assert f"harper-agent: {path}: 'line " in result.stderr


def test_config_error_from_the_node_exits_2(node: FakeNode, tmp_path: Path) -> None:
    node.error = ConfigError("tls.certificate", "/nope.pem", "no such file")
    result = invoke("run", "--root", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == "harper-agent: tls.certificate: '/nope.pem': no such file\n"


# --- init ---


def test_init_writes_the_default_file_with_flags(node: FakeNode, tmp_path: Path) -> None:
    args = ["init", "--root", str(tmp_path), "--REPLICATION_HOSTNAME", "node1"]
    result = invoke(*args, "--REPLICATION_PINGINTERVAL", "5000", "--REPLICATION_PORT", "h:9930")
    assert result.exit_code == 0, result.output
    path = tmp_path / CONFIG_FILE_NAME
    data = yaml.safe_load(path.read_text())
    assert data["replication"]["hostname"] == "node1"
    assert data["replication"]["pingInterval"] == "5s"
    assert data["replication"]["port"] == "h:9930"
    assert data["rootPath"] is None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_init_keeps_an_existing_file(node: FakeNode, tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILE_NAME
    path.write_text("replication: {hostname: kept}\n")
    invoke("init", "--root", str(tmp_path), "--REPLICATION_HOSTNAME", "other")
    assert path.read_text() == "replication: {hostname: kept}\n"
    assert node.calls[0][1].get("replication.hostname") == "other"


def test_init_admin_from_flags(node: FakeNode, tmp_path: Path) -> None:
    invoke("init", "--root", str(tmp_path), "--admin-user", "bob", "--admin-password", "pw")
    assert node.calls[0][0] == "initialize"
    assert node.calls[0][2:] == ("bob", "pw")


def test_init_admin_harperdb_flag_names(node: FakeNode, tmp_path: Path) -> None:
    args = ["--HDB_ADMIN_USERNAME", "bob", "--HDB_ADMIN_PASSWORD", "pw"]
    invoke("init", "--root", str(tmp_path), *args)
    assert node.calls[0][2:] == ("bob", "pw")


def test_init_admin_flags_beat_env(node: FakeNode, tmp_path: Path) -> None:
    env = {"HDB_ADMIN_USERNAME": "envuser", "HDB_ADMIN_PASSWORD": "envpw"}
    invoke("init", "--root", str(tmp_path), "--admin-user", "bob", env=env)
    assert node.calls[0][2:] == ("bob", "envpw")


def test_init_without_terminal_defaults_to_admin_and_no_password(
    node: FakeNode, tmp_path: Path
) -> None:
    result = invoke("init", "--root", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert node.calls[0][2:] == ("admin", None)


def test_init_prompts_on_a_terminal(
    node: FakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_cli, "_stdin_is_tty", lambda: True)
    result = invoke("init", "--root", str(tmp_path), input="carol\ns3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    assert node.calls[0][2:] == ("carol", "s3cret")
    assert "s3cret" not in result.output


def test_init_prompts_only_for_the_password_when_the_user_is_given(
    node: FakeNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_cli, "_stdin_is_tty", lambda: True)
    result = invoke("init", "--root", str(tmp_path), "--admin-user", "dan", input="pw\npw\n")
    assert result.exit_code == 0, result.output
    assert node.calls[0][2:] == ("dan", "pw")
    assert "Admin username" not in result.output


# --- install-service ---


def test_unit_template_is_a_notify_service_with_a_watchdog() -> None:
    unit = render_unit(Path("/var/lib/harper-agent"), "harper-agent", ["/usr/bin/ha"])
    lines = unit.splitlines()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "Restart=on-failure"):
        assert line in lines, line
    assert "ExecStart=/usr/bin/ha run --root /var/lib/harper-agent" in lines
    assert "Type=simple" not in unit
    assert "LimitNOFILE=65536" in lines
    assert "User=harper-agent" in lines
    assert "/health" in unit


def test_install_service_dry_run_substitutes_root_and_user() -> None:
    result = invoke("install-service", "--root", "/srv/h", "--user", "hdb", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "User=hdb\n" in result.output and "Group=hdb\n" in result.output
    assert " run --root /srv/h\n" in result.output
    assert "ReadWritePaths=/srv/h\n" in result.output
    assert "/var/lib/harper-agent" not in result.output


def test_install_service_execstart_is_an_absolute_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "argv", ["pytest"])  # not the harper-agent script
    result = invoke("install-service", "--root", "/srv/h", "--dry-run")
    exec_start = next(line for line in result.output.splitlines() if line.startswith("ExecStart="))
    program = exec_start.removeprefix("ExecStart=").split()[0]
    assert Path(program).is_absolute() and os.access(program, os.X_OK), exec_start
    assert exec_start.endswith(" -m agent run --root /srv/h"), exec_start


def test_service_command_is_the_running_script_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "bin" / "harper-agent"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["bin/harper-agent", "install-service"])
    assert service_command() == [str(script.resolve())]


def test_service_command_without_the_script_is_python_dash_m_agent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "argv", ["/somewhere/agent/__main__.py"])
    command = service_command()
    assert command[1:] == ["-m", "agent"]
    assert Path(command[0]).is_absolute()
    assert Path(command[0]) == Path(sys.executable).absolute()  # not resolved out of the venv


def test_render_unit_refuses_a_bare_program_name() -> None:
    with pytest.raises(ValueError, match="absolute program path"):
        render_unit(Path("/srv/h"), "hdb", ["harper-agent"])


def test_execstart_quotes_and_escapes_a_program_path() -> None:
    unit = render_unit(Path("/srv/h"), "hdb", ["/opt/my venv/bin/py%1", "-m", "agent"])
    assert 'ExecStart="/opt/my venv/bin/py%%1" -m agent run --root /srv/h\n' in unit


def test_install_service_uses_the_full_executable_path() -> None:
    unit = render_unit(Path("/srv/h"), "hdb", ["/opt/venv/bin/harper-agent"])
    assert "ExecStart=/opt/venv/bin/harper-agent run --root /srv/h\n" in unit


def test_install_service_under_home_lifts_protect_home() -> None:
    unit = render_unit(Path("/home/me/harper"), "me", ["/usr/bin/harper-agent"])
    assert "ProtectHome=no" in unit


def test_a_program_under_home_is_made_readable() -> None:
    unit = render_unit(Path("/srv/h"), "hdb", ["/home/me/venv/bin/harper-agent"])
    assert "ProtectHome=read-only\n" in unit


def test_install_service_refuses_a_root_with_blanks() -> None:
    result = invoke("install-service", "--root", "/srv/my data", "--dry-run")
    assert result.exit_code == 2
    assert "--root" in result.output and "blanks" in result.output
    assert "Traceback" not in result.output


def test_install_service_writes_the_unit_and_prints_next_steps(tmp_path: Path) -> None:
    result = invoke("install-service", "--root", "/srv/h", "--unit-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    unit = (tmp_path / "harper-agent.service").read_text()
    assert " run --root /srv/h\n" in unit
    assert "systemctl daemon-reload" in result.output
    assert "systemctl enable --now harper-agent" in result.output
    init_step = next(line for line in result.output.splitlines() if " init --root " in line)
    assert init_step.split()[3].startswith("/"), init_step  # sudo -u USER /abs/program ...


def test_main_is_the_console_script() -> None:
    with pytest.raises(SystemExit) as caught:
        agent_cli.main(["settings"])
    assert caught.value.code == 0
