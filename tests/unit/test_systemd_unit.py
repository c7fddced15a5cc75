"""The systemd unit `harper-agent install-service` writes: its lines, and systemd's verdict."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from agent.systemd.unit import render_unit, service_command

ROOT = Path("/srv/harper-agent")


def rendered() -> str:
    return render_unit(ROOT, "harper-agent", service_command())


def service_lines(unit: str) -> list[str]:
    """Return the [Service] section's settings, without comments."""
    section = unit.split("[Service]", 1)[1].split("\n[", 1)[0]
    return [line for line in section.splitlines() if line and not line.startswith("#")]


def test_notify_type_watchdog_and_restart() -> None:
    lines = service_lines(rendered())
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30s",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "KillSignal=SIGTERM",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert line in lines, line


def test_hardening_with_the_root_writable() -> None:
    lines = service_lines(rendered())
    for line in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        f"ReadWritePaths={ROOT}",
        f"WorkingDirectory={ROOT}",
    ):
        assert line in lines, line


def test_one_umask_and_it_is_private() -> None:
    lines = service_lines(rendered())
    assert [line for line in lines if line.startswith("UMask=")] == ["UMask=0077"]


def test_every_setting_is_given_once() -> None:
    names = [line.partition("=")[0] for line in service_lines(rendered())]
    repeated = {name for name in names if names.count(name) > 1}
    assert not repeated


def test_execstart_is_absolute_and_runs_the_root() -> None:
    exec_start = next(line for line in service_lines(rendered()) if line.startswith("ExecStart="))
    program = exec_start.removeprefix("ExecStart=").split()[0]
    assert Path(program).is_absolute(), exec_start
    assert exec_start.endswith(f" run --root {ROOT}"), exec_start


def test_header_no_longer_says_type_simple() -> None:
    unit = rendered()
    assert "Type=simple" not in unit
    assert "READY=1" in unit.split("[Unit]")[0]


def test_python_dash_m_agent_starts_the_agent() -> None:
    """The fallback ExecStart (`<python> -m agent`) is a working command."""
    command = service_command()  # under pytest, argv[0] is not the harper-agent script
    assert command[1:] == ["-m", "agent"]
    result = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("harper-agent")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    path = tmp_path / "harper-agent.service"
    path.write_text(rendered())
    # --man=no: the man page is not installed where the tests run
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    about_ours = [line for line in result.stderr.splitlines() if "harper-agent" in line]
    assert result.returncode == 0 and not about_ours, result.stderr
