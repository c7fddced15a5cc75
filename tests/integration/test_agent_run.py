"""`harper-agent run` on a new root, at a real terminal (a pty) and in the background."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import requests
import yaml
from harness import free_port, next_host

from agent.settings import SETTINGS


class Terminal:
    """A process started on a new pseudo-terminal it controls, in the foreground."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.seen = b""

    def expect(self, text: str, timeout: float = 30.0) -> None:
        """Read what the process writes until `text` appears (or fail after `timeout`)."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} on the terminal; it shows {self.seen[-800:]!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:  # the process closed the terminal (exited)
                    raise AssertionError(f"exited before {text!r}: {self.seen[-800:]!r}") from None

    def send(self, line: str) -> None:
        os.write(self.fd, f"{line}\n".encode())

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            select.select([self.fd], [], [], 0.05)  # drain, so the child never blocks writing
            try:
                self.seen += os.read(self.fd, 4096)
            except OSError:
                pass
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("the agent did not stop on SIGTERM")


def agent_argv(root: Path, host: str, port: int) -> list[str]:
    listen = ["--OPERATIONSAPI_NETWORK_HOST", host, "--OPERATIONSAPI_NETWORK_PORT", str(port)]
    return [sys.executable, "-m", "agent", "run", "--root", str(root), *listen]


def clean_env() -> dict[str, str]:
    """This environment without admin credentials or agent settings."""
    drop = {"HDB_ADMIN_USERNAME", "HDB_ADMIN_PASSWORD", *(s.env for s in SETTINGS)}
    return {name: value for name, value in os.environ.items() if name not in drop}


def test_run_on_a_terminal_prompts_for_the_admin_and_writes_the_config(tmp_path: Path) -> None:
    host = next_host()
    port = free_port(host)
    root = tmp_path / "fresh"
    terminal = Terminal(agent_argv(root, host, port), clean_env())
    try:
        terminal.expect("Admin username")
        terminal.send("carol")
        terminal.expect("Admin password")
        terminal.send("s3cret-pw")
        terminal.expect("Repeat for confirmation")
        terminal.send("s3cret-pw")
        terminal.expect("serving on")
        body = {"operation": "user_info"}
        url = f"http://{host}:{port}/"
        answer = requests.post(url, json=body, auth=("carol", "s3cret-pw"), timeout=10)
        assert answer.status_code == 200 and answer.json()["username"] == "carol"
        assert b"s3cret-pw" not in terminal.seen  # typed without echo, never printed
        assert b"generated" not in terminal.seen and b"with password" not in terminal.seen
    finally:
        assert terminal.stop() == 0, terminal.seen[-800:]
    text = (root / "harperdb-config.yaml").read_text()
    assert all(f"[{setting.env}]" in text for setting in SETTINGS)
    network = yaml.safe_load(text)["operationsApi"]["network"]
    assert (network["host"], network["port"]) == (host, port)  # the flags, recorded


# A job control shell's `cmd &`: the agent in its own process group, not the terminal's
# foreground one; SIGTERM to the wrapper is passed on (with SIGCONT, should a prompt have
# stopped the agent).
BACKGROUND = """
import signal, subprocess, sys
child = subprocess.Popen(sys.argv[1:], process_group=0)
signal.signal(signal.SIGTERM, lambda *_: [child.terminate(), child.send_signal(signal.SIGCONT)])
sys.exit(child.wait())
"""


def test_run_in_the_background_of_a_terminal_prints_a_generated_password(tmp_path: Path) -> None:
    host = next_host()
    port = free_port(host)
    root = tmp_path / "fresh"
    argv = [sys.executable, "-c", BACKGROUND, *agent_argv(root, host, port)]
    terminal = Terminal(argv, clean_env())
    try:
        # a prompt would stop the agent (SIGTTIN): it must print a password and serve instead
        terminal.expect("serving on")
        found = re.search(rb"created super user 'admin' with password: (\S+)", terminal.seen)
        assert found, terminal.seen[-800:]
        assert b"Admin username" not in terminal.seen
        body = {"operation": "user_info"}
        auth = ("admin", found.group(1).decode())
        answer = requests.post(f"http://{host}:{port}/", json=body, auth=auth, timeout=10)
        assert answer.status_code == 200
    finally:
        assert terminal.stop() == 0, terminal.seen[-800:]
