"""`make demo`: three agents on 127.0.0.1-3 joined with harperctl, data flowing between them.

Each node gets a root under ./demo/, listens on its own loopback address with the same port
numbers (as three machines would), and replicates over its operations API port. The script
drives everything through the real `harperctl` command, printing each command before it runs,
and stops the nodes at the end unless DEMO_KEEP=1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "demo"
BIN = Path(sys.executable).parent
HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
PORT = int(os.environ.get("DEMO_PORT", "9925"))
PASSWORD = os.environ.get("DEMO_PASSWORD", "demo-password")
DOGS = [
    {"id": 1, "name": "Penny", "breed": "Whippet", "age": 5},
    {"id": 2, "name": "Harper", "breed": "Mutt", "age": 3},
    {"id": 3, "name": "Kato", "breed": "Akita", "age": 9},
]


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def port_free(host: str) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the agent binds
        try:
            sock.bind((host, PORT))
            return True
        except OSError:
            return False


def start_node(index: int, host: str) -> subprocess.Popen:
    root = ROOT / f"node{index + 1}"
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HDB_ADMIN_USERNAME": "admin", "HDB_ADMIN_PASSWORD": PASSWORD}
    log = open(root / "agent.out", "ab")
    return subprocess.Popen(
        [
            str(BIN / "harper-agent"),
            "run",
            "--root",
            str(root),
            "--OPERATIONSAPI_NETWORK_HOST",
            host,
            "--OPERATIONSAPI_NETWORK_PORT",
            str(PORT),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def wait_healthy(host: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the agent on {host} exited; see demo/*/agent.out")
        try:
            with urllib.request.urlopen(f"http://{host}:{PORT}/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the agent on {host} did not answer /health within {timeout:.0f}s")


def ctl(host: str, *args: str, check: bool = True, quiet: bool = False) -> str:
    """Run harperctl against one node, echoing the command like a terminal session."""
    cmd = [str(BIN / "harperctl"), "--url", f"http://{host}:{PORT}", "--user", "admin", *args]
    shown = " ".join(a if " " not in a else repr(a) for a in cmd[1:])
    print(f"$ harperctl {shown}", flush=True)
    env = {**os.environ, "HARPERCTL_PASSWORD": PASSWORD, "COLUMNS": "110"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if not quiet:
        sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    if check and out.returncode != 0:
        raise SystemExit(f"harperctl exited with {out.returncode}")
    return out.stdout


def wait_replicated(host: str, expected: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = ctl(
            host, "--json", "sql", "SELECT COUNT(*) AS n FROM dev.dog", check=False, quiet=True
        )
        try:
            if json.loads(out)[0]["n"] >= expected:
                return
        except (ValueError, KeyError, IndexError, TypeError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{host} did not receive the records within {timeout:.0f}s")


def main() -> int:
    busy = [h for h in HOSTS if not port_free(h)]
    if busy:
        print(
            f"port {PORT} is in use on {', '.join(busy)}: stop what runs there "
            "(an earlier demo kept with DEMO_KEEP=1?) or set DEMO_PORT",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(ROOT, ignore_errors=True)
    procs: list[subprocess.Popen] = []
    try:
        say(f"starting three agents on {', '.join(HOSTS)} (port {PORT}), roots in ./demo/")
        procs = [start_node(i, host) for i, host in enumerate(HOSTS)]
        for host, proc in zip(HOSTS, procs, strict=True):
            wait_healthy(host, proc)
        print("all three answer GET /health")
        say("joining: node 2 and node 3 each add node 1 (gossip connects 2 and 3 too)")
        for host in HOSTS[1:]:
            ctl(host, "add-node", HOSTS[0])
        say("creating a table and writing three records on node 1")
        ctl(HOSTS[0], "table", "create", "dev.dog", "--primary-key", "id")
        records = ROOT / "dogs.json"
        records.write_text(json.dumps(DOGS))
        ctl(HOSTS[0], "insert", "dev.dog", str(records))
        for host in HOSTS[1:]:
            say(f"reading them on {host}")
            wait_replicated(host, len(DOGS))
            ctl(host, "sql", "SELECT id, name, breed, age FROM dev.dog ORDER BY id")
        say("a write on node 3 reaches node 2 directly")
        extra = ROOT / "more.json"
        extra.write_text(json.dumps([{"id": 4, "name": "Biscuit", "breed": "Corgi", "age": 2}]))
        ctl(HOSTS[2], "insert", "dev.dog", str(extra))
        wait_replicated(HOSTS[1], len(DOGS) + 1)
        ctl(HOSTS[1], "get", "dev.dog", "4")
        say("cluster status as node 1 sees it")
        ctl(HOSTS[0], "status")
        if os.environ.get("DEMO_KEEP") == "1":
            say(
                "DEMO_KEEP=1: the nodes keep running; stop them with: "
                "pkill -f 'harper-agent run --root'"
            )
            procs = []
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if procs:
            say("stopped the three nodes (DEMO_KEEP=1 keeps them running)")


if __name__ == "__main__":
    sys.exit(main())
