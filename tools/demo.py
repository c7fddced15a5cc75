"""`make demo`: three agents join, data flows, one is killed under writes and catches up.

The story, each step a heading followed by the real output of the commands it runs:
three agents start on 127.0.0.1-3 (one root each under ./demo/, the same free port on each
address, as three machines would have) and join with `harperctl add-node`; records written
on node 1 appear on all; a background writer keeps inserting into node 1 while node 3 is
SIGKILLed; `harperctl status` shows node 3 down; node 3 restarts and catches up; `harperctl
wait --synced` returns, status is green and every node holds the same number of records.

It stops only the processes it started (their Popen objects; never a search by name), unless
DEMO_KEEP=1, which leaves them running and prints the `kill` line for exactly those pids.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "demo"
BIN = Path(sys.executable).parent
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
PASSWORD = os.environ.get("DEMO_PASSWORD", "demo-password")
PIDS_FILE = ROOT / "pids"
DOGS = [
    {"id": 1, "name": "Penny", "breed": "Whippet", "age": 5},
    {"id": 2, "name": "Harper", "breed": "Mutt", "age": 3},
    {"id": 3, "name": "Kato", "breed": "Akita", "age": 9},
]
BOLD, PLAIN = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
STYLE = re.compile("\033\\[[0-9;]*m")  # colours and bold, dropped when the output is a log


def say(text: str) -> None:
    """Print a step's heading."""
    print(f"\n{BOLD}== {text}{PLAIN}", flush=True)


def free_port(preferred: int | None) -> int:
    """Return a port free on all three addresses: `preferred` if it is, else one the OS picks."""
    candidates = [preferred] if preferred else []
    for _ in range(20):
        port = candidates.pop() if candidates else _any_port()
        if all(_bindable(host, port) for host in HOSTS):
            return port
    raise SystemExit("no port is free on all of 127.0.0.1-3")


def _any_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOSTS[0], 0))
        return sock.getsockname()[1]


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the agent binds
        try:
            sock.bind((host, port))
            return True
        except OSError:
            return False


class Node:
    """One agent this demo started: its address, root and process."""

    def __init__(self, index: int, port: int) -> None:
        self.name = f"node {index + 1}"
        self.host = HOSTS[index]
        self.port = port
        self.root = ROOT / f"node{index + 1}"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The operations API URL."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start `harper-agent run` on this node's root and address; output to agent.out."""
        self.root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HDB_ADMIN_USERNAME": "admin", "HDB_ADMIN_PASSWORD": PASSWORD}
        with open(self.root / "agent.out", "ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "harper-agent"), "run", "--root", str(self.root)]
                + ["--OPERATIONSAPI_NETWORK_HOST", self.host]
                + ["--OPERATIONSAPI_NETWORK_PORT", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal reaches the demo, not the nodes
            )

    def healthy(self) -> bool:
        """Return whether GET /health answers 200; exit if the process died."""
        if self.proc is None or self.proc.poll() is not None:
            raise SystemExit(f"the agent of {self.name} exited; see {self.root}/agent.out")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM the process this demo started and wait for it (SIGKILL after 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_until(what: str, check, timeout: float = 30.0) -> None:
    """Poll `check()` -> (done, progress) until done, printing what it waits for and changes."""
    print(f"waiting for {what} ...", flush=True)
    started = time.monotonic()
    shown = None
    while True:
        done, progress = check()
        if progress != shown:
            print(f"  {time.monotonic() - started:4.1f}s  {progress}", flush=True)
            shown = progress
        if done:
            return
        if time.monotonic() - started > timeout:
            raise SystemExit(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def ctl(node: Node, *args: str, check: bool = True) -> int:
    """Run harperctl against `node`, showing the command line, then its output as it comes."""
    # -o table: what the printed command shows on a terminal (harperctl's stdout is a pipe
    # here, where it would print TSV); it is left out of the printed line for that reason
    cmd = [str(BIN / "harperctl"), "-o", "table", "--url", node.url, "--user", "admin", *args]
    print(f"$ harperctl --url {node.url} --user admin {' '.join(_quoted(args))}", flush=True)
    width = min(shutil.get_terminal_size((120, 24)).columns, 140)
    # tables as on a terminal, but nothing redrawn in place, so a log of the demo reads well
    env = {**os.environ, "HARPERCTL_PASSWORD": PASSWORD, "COLUMNS": str(width)}
    env.update({"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "0"})
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = 0
    for line in proc.stdout:
        sys.stdout.write(line if sys.stdout.isatty() else STYLE.sub("", line))
        sys.stdout.flush()
        lines += 1
    code = proc.wait()
    if not lines:
        print(f"(no output; exit code {code})")
    elif code:
        print(f"(exit code {code})")
    if check and code:
        raise SystemExit(f"harperctl exited with {code}")
    return code


def _quoted(args: tuple[str, ...]) -> list[str]:
    return [f"'{a}'" if any(c in a for c in " *>'\"") else a for a in args]


def count(node: Node) -> int | None:
    """Return the number of records in dev.dog on `node`, or None when it does not answer."""
    body = {"operation": "sql", "sql": "SELECT COUNT(*) AS n FROM dev.dog"}
    try:
        return int(call(node, body)[0]["n"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def call(node: Node, body: dict, timeout: float = 5.0):
    """POST one operation to `node` as admin and return the parsed answer."""
    auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        node.url + "/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


class Writer(threading.Thread):
    """Insert a batch of records into one node every `pause` seconds until stopped."""

    def __init__(self, node: Node, first_id: int, batch: int = 5, pause: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.node, self.next_id, self.batch, self.pause = node, first_id, batch, pause
        self.acknowledged = 0
        self.failures = 0
        self.halt = threading.Event()

    def run(self) -> None:
        """Write until `halt` is set; count what the node acknowledged."""
        while not self.halt.is_set():
            ids = range(self.next_id, self.next_id + self.batch)
            records = [{"id": i, "name": f"pup-{i}", "breed": "Beagle", "age": i % 15} for i in ids]
            body = {"operation": "insert", "database": "dev", "table": "dog", "records": records}
            try:
                call(self.node, body)
                self.acknowledged += self.batch
                self.next_id += self.batch
            except (OSError, ValueError):
                self.failures += 1
            self.halt.wait(self.pause)

    def stop(self) -> None:
        """Stop writing and wait for the last batch to be answered."""
        self.halt.set()
        self.join()


def start_cluster(nodes: list[Node]) -> None:
    """Start the three agents and join nodes 2 and 3 to node 1."""
    say(f"Three agents on {', '.join(HOSTS)}, port {nodes[0].port}, roots in ./demo/")
    for node in nodes:
        node.start()
        print(f"started {node.name}: harper-agent run --root {node.root} (pid {node.proc.pid})")
    wait_until("GET /health to answer on all three", lambda: _answering(nodes))
    say("Join: nodes 2 and 3 each add node 1 (node 1 then tells each about the other)")
    print(f"(harperctl finds the password in HARPERCTL_PASSWORD={PASSWORD})")
    for node in nodes[1:]:
        ctl(node, "add-node", nodes[0].host)
    ctl(nodes[0], "wait", "--synced", "--timeout", "60")
    ctl(nodes[0], "status")


def _answering(nodes: list[Node]) -> tuple[bool, str]:
    up = [node.healthy() for node in nodes]
    text = ", ".join(
        f"{n.name} {'up' if ok else 'starting'}" for n, ok in zip(nodes, up, strict=True)
    )
    return all(up), text


def _counts(nodes: list[Node], expected: int) -> tuple[bool, str]:
    found = [count(node) for node in nodes]
    text = ", ".join(
        f"{n.name}: {'down' if c is None else c}" for n, c in zip(nodes, found, strict=True)
    )
    return all(c == expected for c in found), f"records {text}"


def write_and_read(nodes: list[Node]) -> None:
    """Create dev.dog on node 1, insert three dogs, read them on nodes 2 and 3."""
    say("Data written on node 1 ...")
    ctl(nodes[0], "table", "create", "dev.dog", "--primary-key", "id")
    records = ROOT / "dogs.json"
    records.write_text(json.dumps(DOGS))
    ctl(nodes[0], "insert", "dev.dog", str(records))
    say("... appears on every node")
    wait_until(f"{len(DOGS)} records on every node", lambda: _counts(nodes, len(DOGS)))
    for node in nodes[1:]:
        ctl(node, "sql", "SELECT id, name, breed, age FROM dev.dog ORDER BY id")


def kill_under_writes(nodes: list[Node], writer: Writer) -> None:
    """Start the writer, SIGKILL node 3 while it writes, and show the status."""
    say("Writes continue: a background thread inserts 5 records into node 1 every 0.1 s")
    writer.start()
    start = writer.acknowledged
    wait_until("the writer to get 50 records acknowledged", lambda: _written(writer, start, 50))
    victim = nodes[2]
    say(f"SIGKILL {victim.name} (pid {victim.proc.pid}) while the writes go on")
    victim.proc.kill()
    print(f"{victim.name} exited with {victim.proc.wait()}")
    start = writer.acknowledged
    wait_until(
        "100 more records written while node 3 is down", lambda: _written(writer, start, 100)
    )
    say("Cluster-wide status: node 3 does not answer, its links are down")
    ctl(nodes[0], "status", check=False)


def _written(writer: Writer, start: int, more: int) -> tuple[bool, str]:
    done = writer.acknowledged - start
    return done >= more, f"{done}/{more} records acknowledged by node 1"


def recover(nodes: list[Node], writer: Writer) -> None:
    """Restart node 3, show it catching up, stop the writer and wait until all are in sync."""
    victim = nodes[2]
    say(f"{victim.name} comes back on the same root and catches up")
    victim.start()
    print(f"restarted {victim.name} (pid {victim.proc.pid})")
    wait_until(f"{victim.name} to answer GET /health", lambda: _answering([victim]))
    ctl(nodes[0], "status", check=False)
    say("Stop the writer; wait until every link is connected and caught up")
    writer.stop()
    print(
        f"the writer stopped: {writer.acknowledged} records acknowledged, "
        f"{writer.failures} failed requests"
    )
    ctl(nodes[0], "wait", "--synced", "--timeout", "60")
    say("Status: every node up, every link connected, nothing behind")
    ctl(nodes[0], "status")


def compare_counts(nodes: list[Node], writer: Writer) -> bool:
    """Show dev.dog's record count on every node; return whether they all hold every write."""
    expected = len(DOGS) + writer.acknowledged
    say(f"Record counts: {len(DOGS)} dogs + {writer.acknowledged} written = {expected} on each")
    for node in nodes:
        ctl(node, "sql", "SELECT COUNT(*) AS records FROM dev.dog")
    same, text = _counts(nodes, expected)
    print(f"{'all equal' if same else 'NOT EQUAL'}: {text}")
    return same


def earlier_demo_running() -> list[int]:
    """Return the pids of agents an earlier DEMO_KEEP=1 run left running on ./demo."""
    try:
        pids = [int(p) for p in PIDS_FILE.read_text().split()]
    except (OSError, ValueError):
        return []
    alive = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"harper-agent" in cmdline and str(ROOT).encode() in cmdline:
            alive.append(pid)
    return alive


def finish(nodes: list[Node]) -> None:
    """Stop the nodes this demo started, or with DEMO_KEEP=1 say how to stop exactly them."""
    running = [n for n in nodes if n.proc is not None and n.proc.poll() is None]
    if os.environ.get("DEMO_KEEP") == "1" and running:
        pids = " ".join(str(n.proc.pid) for n in running)
        PIDS_FILE.write_text(pids + "\n")
        say("DEMO_KEEP=1: the nodes keep running")
        for node in running:
            print(f"  {node.name}: {node.url} (pid {node.proc.pid}), root {node.root}")
        print(f"  user admin, password {PASSWORD}; stop them with: kill {pids}")
        return
    for node in running:
        node.stop()
    if running:
        pids = ", ".join(str(n.proc.pid) for n in running)
        say(f"Stopped the nodes this demo started (pids {pids}); DEMO_KEEP=1 keeps them")


def main() -> int:
    """Run the story; return 0 when every node ends with every record."""
    kept = earlier_demo_running()
    if kept:
        pids = " ".join(map(str, kept))
        print(f"an earlier demo still runs on ./demo (DEMO_KEEP=1); stop it first: kill {pids}")
        return 1
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    port = free_port(int(os.environ.get("DEMO_PORT", "9925")))
    nodes = [Node(i, port) for i in range(len(HOSTS))]
    writer = Writer(nodes[0], first_id=1000)
    started = time.monotonic()
    try:
        start_cluster(nodes)
        write_and_read(nodes)
        kill_under_writes(nodes, writer)
        recover(nodes, writer)
        same = compare_counts(nodes, writer)
    finally:
        if writer.is_alive():
            writer.stop()
        finish(nodes)
    print(f"\nthe demo took {time.monotonic() - started:.0f}s")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
