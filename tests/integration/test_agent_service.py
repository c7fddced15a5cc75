"""harper-agent as a service: sd_notify to a real datagram socket, and SIGHUP reloads.

The tests bind the unix datagram socket systemd would, pass it in NOTIFY_SOCKET to a real
agent, and read what arrives. Reloads are driven the way `systemctl reload` does: edit
harperdb-config.yaml, send SIGHUP, and look at the log and the node's behaviour.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import yaml
from harness import FAST_REPLICATION, Agent, search_ids, wait_for
from test_replication_config import common_free_port


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket where systemd's would be (short path: 108-byte limit)."""
    folder = Path(tempfile.mkdtemp(prefix="sd", dir="/tmp"))
    path = str(folder / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield path, sock
    sock.close()
    shutil.rmtree(folder, ignore_errors=True)


def receive_until(
    sock: socket.socket, wanted: Callable[[str], bool], timeout: float = 20.0
) -> tuple[str, list[str]]:
    """Read datagrams until one satisfies `wanted`; return it and the ones before it."""
    deadline = time.monotonic() + timeout
    before: list[str] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no wanted notification in {timeout}s; got {before[-10:]}")
        sock.settimeout(left)
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            continue
        if wanted(message):
            return message, before
        before.append(message)


def fields(message: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in message.splitlines())


def log_text(agent: Agent) -> str:
    path = agent.root / "log" / "hdb.log"
    return path.read_text(errors="replace") if path.exists() else ""


def edit_config(agent: Agent, change: Callable[[dict], None]) -> None:
    """Change the agent's harperdb-config.yaml in place (as an operator would)."""
    path = agent.root / "harperdb-config.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def reload(agent: Agent, done: str) -> str:
    """Send SIGHUP and wait until the log shows `done` one more time; return the log."""
    seen = log_text(agent).count(done)
    agent.proc.send_signal(signal.SIGHUP)
    return wait_for(lambda: (t := log_text(agent)).count(done) > seen and t, 15, what=done)


def failed_login(agent: Agent, username: str) -> None:
    """A login with an unknown user: logged at debug level only ("login failed: no user")."""
    status, _ = agent.request({"operation": "user_info"}, auth=(username, "wrong"))
    assert status == 401


# --- sd_notify ---


def test_ready_after_health_then_watchdog_then_stopping(agent_factory, notify_socket) -> None:
    path, sock = notify_socket
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    agent = agent_factory("svc", start=False, env=env)
    agent.start(wait=False)
    ready, _ = receive_until(sock, lambda m: "READY=1" in m.splitlines())
    # READY=1 is sent only once the operations API serves: /health answers at once
    assert requests.get(agent.url + "/health", timeout=5).status_code == 200
    sent = fields(ready)
    assert sent["MAINPID"] == str(agent.proc.pid)
    assert agent.url in sent["STATUS"]
    for _ in range(3):  # the watchdog keeps pinging after READY
        receive_until(sock, lambda m: m == "WATCHDOG=1", timeout=10)
    agent.proc.send_signal(signal.SIGTERM)
    stopping, _ = receive_until(sock, lambda m: "STOPPING=1" in m.splitlines())
    assert agent.stop() == 0, agent.output()


def test_sighup_is_reloading_then_ready(agent_factory, notify_socket) -> None:
    path, sock = notify_socket
    agent = agent_factory("svc", start=False, env={"NOTIFY_SOCKET": path})
    agent.start(wait=False)
    receive_until(sock, lambda m: "READY=1" in m.splitlines())
    agent.proc.send_signal(signal.SIGHUP)
    receive_until(sock, lambda m: "RELOADING=1" in m.splitlines())
    again, before = receive_until(sock, lambda m: "READY=1" in m.splitlines())
    assert not any("WATCHDOG=1" in m for m in before)  # no WATCHDOG_USEC: no pings at all
    assert agent.proc.poll() is None


# --- SIGHUP: logging ---


def test_sighup_applies_a_new_log_level_and_names_what_needs_a_restart(agent_factory) -> None:
    agent = agent_factory("hup")  # logging.level: info
    failed_login(agent, "ghost-before")

    def change(data: dict) -> None:
        data["logging"]["level"] = "debug"
        data["operationsApi"]["network"]["maxBodySize"] = "1mb"

    edit_config(agent, change)
    text = reload(agent, "settings reloaded")
    assert "applied logging.level" in text
    assert "needs a restart to apply: operationsApi.network.maxBodySize" in text
    failed_login(agent, "ghost-after")
    text = wait_for(lambda: "ghost-after" in (t := log_text(agent)) and t, 10, what="debug line")
    assert "ghost-before" not in text  # logged only once the reload lowered the level
    assert agent.proc.poll() is None


def test_sighup_switches_the_log_to_json(agent_factory) -> None:
    agent = agent_factory("json")
    edit_config(agent, lambda data: data["logging"].update(format="json"))
    text = reload(agent, "settings reloaded")
    last = json.loads(text.strip().splitlines()[-1])
    assert last["level"] == "warn" and last["logger"] == "agent.systemd.reload"
    assert last["message"].startswith("settings reloaded from ")
    assert last["message"].endswith("applied logging.format")
    assert last["time"].endswith("Z")


def test_sighup_with_a_bad_file_keeps_the_node_and_its_settings(agent_factory) -> None:
    agent = agent_factory("bad", config={"logging": {"level": "debug"}})
    edit_config(agent, lambda data: data["logging"].update(level="loud"))
    text = reload(agent, "reload refused")
    line = next(line for line in text.splitlines() if "reload refused" in line)
    assert "[error]" in line and "logging.level: 'loud': must be one of" in line
    (agent.root / "harperdb-config.yaml").write_text("logging: [\n")  # not YAML at all
    text = reload(agent, "reload refused")
    assert "invalid YAML" in text.strip().splitlines()[-1]
    # still serving, still at debug level
    assert requests.get(agent.url + "/health", timeout=5).status_code == 200
    failed_login(agent, "ghost-still-debug")
    wait_for(lambda: "ghost-still-debug" in log_text(agent), 10, what="a debug line")
    assert agent.proc.poll() is None


# --- SIGHUP: routes ---


def test_sighup_applies_new_routes(tmp_path) -> None:
    first, second = Agent(tmp_path / "a"), Agent(tmp_path / "b")
    port = common_free_port([first.host, second.host])
    for agent, routes in ((first, []), (second, [first.host])):
        replication = {**FAST_REPLICATION["replication"], "port": port, "routes": routes}
        agent.extra_config = {"replication": replication}
    try:
        first.start(wait=False)
        second.start()
        first.wait_ready()
        second.op(
            {"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"}
        )
        second.op(
            {"operation": "insert", "database": "dev", "table": "dog", "records": [{"id": 1}]}
        )
        assert first.op({"operation": "cluster_get_routes"}) == []
        edit_config(first, lambda data: data["replication"].update(routes=[second.host]))
        text = reload(first, "settings reloaded")
        assert "applied replication.routes" in text
        assert first.op({"operation": "cluster_get_routes"}) == [second.host]
        wait_for(lambda: search_ids(first, "dev", "dog", [1]), 30, what="the record from b")
    finally:
        first.kill()
        second.kill()
