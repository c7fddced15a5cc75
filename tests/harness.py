"""Real agent processes on loopback addresses, for integration tests and benchmarks.

Each `Agent` gets its own root folder, its own 127.0.0.x address and a free port, is started
as `python -m agent run`, and is driven over HTTP. Nothing is mocked: tests kill agents with
SIGKILL when they need a crash. Waits poll a condition against a deadline; no bare sleeps.
"""

from __future__ import annotations

import copy
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import requests
import yaml

PASSWORD = "test-password"
_hosts = itertools.count(int(os.environ.get("HARPER_TEST_HOST_BASE", "20")))


def next_host() -> str:
    """Return a loopback address no other agent of this test run uses."""
    n = next(_hosts)
    return f"127.0.{n // 250}.{n % 250 + 2}"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # conditions may fail while a node starts
            last_error = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error})"
    )


def _merge(base: dict, extra: dict) -> dict:
    """Merge `extra` into `base` (nested dicts key by key); `extra` is copied, never shared.

    Sharing it let one test's config leak into every later cluster of the run: a nested
    dict of FAST_REPLICATION, once shared, was mutated by the next merge into it.
    """
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


class Agent:
    """One harper-agent process on its own loopback address."""

    def __init__(
        self,
        root: Path,
        host: str | None = None,
        config: dict | None = None,
        env: dict | None = None,
        password: str = PASSWORD,
    ) -> None:
        self.root = Path(root)
        self.host = host or next_host()
        self.port = free_port(self.host)
        self.password = password
        self.extra_config = config or {}
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = {
            "operationsApi": {"network": {"host": self.host, "port": self.port}},
            "logging": {"level": "info", "stdStreams": False},
        }
        _merge(config, self.extra_config)
        (self.root / "harperdb-config.yaml").write_text(yaml.safe_dump(config))

    def start(self, wait: bool = True, timeout: float = 15.0) -> Agent:
        self.write_config()
        env = {
            **os.environ,
            "HDB_ADMIN_USERNAME": "admin",
            "HDB_ADMIN_PASSWORD": self.password,
            **self.extra_env,
        }
        out = open(self.root / "agent.out", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--root", str(self.root)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        out.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}: {self.output()}")
            return self.session.get(f"{self.url}/health", timeout=1).status_code == 200

        wait_for(ready, timeout, 0.02, f"agent on {self.url}")

    def output(self) -> str:
        path = self.root / "agent.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def request(
        self,
        body: Any,
        auth: tuple[str, str] | None | str = "default",
        timeout: float = 30.0,
        headers: dict | None = None,
    ) -> tuple[int, Any]:
        """POST an operation; return (status, decoded JSON body)."""
        if auth == "default":
            auth = ("admin", self.password)
        data = body if isinstance(body, (bytes, str)) else None
        resp = self.session.post(
            self.url + "/",
            json=None if data is not None else body,
            data=data,
            auth=auth,
            timeout=timeout,
            headers=headers or ({"Content-Type": "application/json"} if data is not None else None),
        )
        return resp.status_code, resp.json()

    def op(self, body: dict, **kwargs: Any) -> Any:
        """POST an operation that must succeed; return its JSON answer."""
        status, answer = self.request(body, **kwargs)
        assert status == 200, f"{body.get('operation')} -> {status}: {answer}"
        return answer

    @property
    def ws_url(self) -> str:
        """How a peer dials this agent for replication (the operations API port)."""
        return f"ws://{self.host}:{self.port}"

    def node_rows(self) -> list[dict]:
        """Return this agent's system.hdb_nodes rows."""
        return self.op(
            {
                "operation": "search_by_value",
                "database": "system",
                "table": "hdb_nodes",
                "attribute": "name",
                "value": "*",
            }
        )

    def join(self, peer: Agent, **extra: Any) -> Any:
        """Run add_node on this agent for `peer`, with `peer`'s admin credentials."""
        return self.op(
            {
                "operation": "add_node",
                "url": peer.ws_url,
                "authorization": {"username": "admin", "password": peer.password},
                **extra,
            }
        )

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP the agent's process group: a hung node whose sockets stay open."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT what `pause` stopped."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


FAST_REPLICATION = {
    "replication": {
        "pingInterval": "300ms",
        "pingTimeout": "2s",
        "stallTimeout": "2s",
        "retryInterval": "100ms",
    }
}


class Cluster:
    """Several agents on their own loopback addresses, joined with add_node."""

    def __init__(self, tmp_path: Path, size: int, config: dict | None = None) -> None:
        self.tmp_path = tmp_path
        base = _merge(_merge({}, FAST_REPLICATION), config or {})
        self.nodes = [Agent(tmp_path / f"n{i}", config=_merge({}, base)) for i in range(size)]

    def __getitem__(self, index: int) -> Agent:
        return self.nodes[index]

    def __iter__(self):
        return iter(self.nodes)

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_ready()
        return self

    def join(self, via: int = 0) -> Cluster:
        """Join every other node to node `via` with add_node (gossip does the rest)."""
        hub = self.nodes[via]
        for node in self.nodes:
            if node is not hub:
                node.join(hub)
        self.wait_connected()
        return self

    def wait_connected(self, timeout: float = 20.0) -> None:
        """Wait until every node streams every database from every other node."""
        wait_for(lambda: meshed(self.nodes), timeout, 0.1, "a full mesh")

    def kill_all(self) -> None:
        for node in self.nodes:
            node.kill()


def meshed(agents: list[Agent], timeout: float = 30.0) -> bool:
    """True when every agent streams every database from every other one."""
    for agent in agents:
        status = agent.op({"operation": "cluster_status"}, timeout=timeout)
        live = [
            c
            for c in status["connections"]
            if c["database_sockets"] and all(s["connected"] for s in c["database_sockets"])
        ]
        if len(live) < len(agents) - 1:
            return False
    return True


def socket_of(node: Agent, peer: Agent, database: str = "dev") -> dict:
    """Return `node`'s cluster_status socket for `peer` on `database`."""
    status = node.op({"operation": "cluster_status"})
    return next(
        s
        for c in status["connections"]
        if c["name"] == peer.host
        for s in c["database_sockets"]
        if s["database"] == database
    )


def search_ids(node: Agent, database: str, table: str, ids: list) -> list:
    status, body = node.request(
        {
            "operation": "search_by_id",
            "database": database,
            "table": table,
            "ids": ids,
            "get_attributes": ["*"],
        }
    )
    return body if status == 200 else []


def count(node: Agent, database: str, table: str) -> int:
    status, body = node.request(
        {"operation": "sql", "sql": f"SELECT COUNT(*) AS n FROM {database}.{table}"}
    )
    return body[0]["n"] if status == 200 else -1
