"""Pieces shared by bench/ingest.py and bench/replication.py.

The scripts put bench/ (and tests/, for the harness) on sys.path and import from here. This
module does not import the harness at run time, so replication.py can still pick its loopback
address base (HARPER_TEST_HOST_BASE) before the harness is first imported.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from harness import Agent

PROJECT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK") == "1"
RSS_INTERVAL = 0.2
MB = 1024 * 1024
CITIES = ("Denver", "Portland", "Austin", "Boston", "Chicago", "Seattle", "Atlanta", "Phoenix")
BIO = "x" * 69


class BenchError(RuntimeError):
    """The agents answered something a benchmark step cannot go on with."""


# -- records and request bodies ----------------------------------------------------------------


def make_record(i: int) -> dict:
    """Return one ~200 B record of the shape HarperDB was measured with."""
    return {
        "id": i,
        "name": f"name-{i}",
        "email": f"user{i}@example.com",
        "city": CITIES[i % len(CITIES)],
        "score": i % 1000,
        "active": i % 2 == 0,
        "bio": BIO,
    }


def encode(op: dict) -> bytes:
    """Encode one operation compactly."""
    return json.dumps(op, separators=(",", ":")).encode()


def insert_bodies(
    database: str, table: str, records: int, batch: int, first_id: int = 1
) -> list[bytes]:
    """Encode insert bodies of `batch` records each (the last may be short), `records` in all."""
    bodies = []
    for start in range(first_id, first_id + records, batch):
        stop = min(start + batch, first_id + records)
        rows = [make_record(i) for i in range(start, stop)]
        bodies.append(
            encode({"operation": "insert", "database": database, "table": table, "records": rows})
        )
    return bodies


# -- HTTP client -------------------------------------------------------------------------------


class _CountingConnection(http.client.HTTPConnection):
    """An HTTPConnection that counts how often it had to (re)connect."""

    connects = 0

    def connect(self) -> None:
        self.connects += 1
        super().connect()


class Client:
    """One keep-alive connection to an agent's operations API, Basic auth precomputed."""

    def __init__(self, agent: Agent, timeout: float = 120.0) -> None:
        self.conn = _CountingConnection(agent.host, agent.port, timeout=timeout)
        token = base64.b64encode(f"admin:{agent.password}".encode()).decode("ascii")
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    @property
    def connects(self) -> int:
        """How many times the connection was opened so far."""
        return self.conn.connects

    def post(self, body: bytes) -> tuple[int, bytes]:
        """POST one encoded operation; return (status, raw body)."""
        self.conn.request("POST", "/", body, self.headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def op(self, body: dict) -> Any:
        """POST an operation that must succeed; return its decoded answer."""
        status, raw = self.post(json.dumps(body).encode())
        if status != 200:
            raise BenchError(f"{body.get('operation')} -> {status}: {raw[:300]!r}")
        return json.loads(raw)

    def close(self) -> None:
        self.conn.close()


def timed_requests(client: Client, bodies: list[bytes]) -> tuple[float, list[float]]:
    """Send insert bodies one after another; return (wall seconds, per-request seconds)."""
    post, clock = client.post, time.perf_counter
    latencies = []
    start = clock()
    for body in bodies:
        sent = clock()
        status, raw = post(body)
        latencies.append(clock() - sent)
        if status != 200:
            raise BenchError(f"insert -> {status}: {raw[:300]!r}")
    return clock() - start, latencies


def health_ok(agent: Agent) -> bool:
    """Tell whether GET /health answers 200 right now (fresh connection, short timeout)."""
    conn = http.client.HTTPConnection(agent.host, agent.port, timeout=1)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def poll_until(
    check: Callable[[], bool], timeout: float, interval: float, what: str, agent: Agent
) -> float:
    """Call `check` every `interval` s until true; return perf_counter() at that moment.

    Raises BenchError if `agent` exits meanwhile or `timeout` seconds pass.
    """
    deadline = time.perf_counter() + timeout
    while True:
        if check():
            return time.perf_counter()
        if agent.proc is None or agent.proc.poll() is not None:
            raise BenchError(f"{agent.url} exited while waiting for {what}: {agent.output()}")
        if time.perf_counter() > deadline:
            raise BenchError(f"timed out after {timeout}s waiting for {what} on {agent.url}")
        time.sleep(interval)


# -- statistics --------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(runs: list[dict], keys: tuple[str, ...], ndigits: int | None = None) -> dict:
    """Median of each key over the runs (each key on its own, as the HarperDB doc reports).

    With `ndigits`, every median is rounded to that many decimals.
    """
    out = {}
    for key in keys:
        median = statistics.median(run[key] for run in runs)
        out[key] = median if ndigits is None else round(median, ndigits)
    return out


# -- RSS sampling ------------------------------------------------------------------------------


def read_rss(pid: int) -> int | None:
    """Return VmRSS of a process in bytes, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class PeriodicSampler:
    """Call `sample()` every `interval` seconds on a daemon thread; subclasses define it."""

    def __init__(self, interval: float = RSS_INTERVAL) -> None:
        self.interval = interval
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Halt the thread and wait for it (a no-op if it never started)."""
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join()

    def sample(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()


# -- agents ------------------------------------------------------------------------------------


def agent_env(workdir: Path) -> dict:
    """Environment for the agents: importable whatever the cwd, bytecode cached in `workdir`.

    An installed agent runs from .pyc files; a sandbox with PYTHONDONTWRITEBYTECODE=1 and no
    __pycache__ would compile every module at every start (about 0.1 s), which would show in
    the start-up and catch-up figures. A private PYTHONPYCACHEPREFIX keeps the source tree
    clean and lets `warm_bytecode` fill the cache once.
    """
    paths = [str(PROJECT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(workdir / "pycache"),
    }


def stop_agents(agents: list[Agent]) -> None:
    """SIGTERM every agent (SIGKILL if that fails); never raises."""
    for agent in agents:
        try:
            agent.stop()
        except Exception:
            agent.kill()


def warm_bytecode(scratch: Agent) -> None:
    """Start and stop a throwaway agent (untimed) so every module it imports is compiled."""
    try:
        scratch.start(wait=True, timeout=60)
    finally:
        stop_agents([scratch])


def make_workdir(prefix: str) -> Path:
    """A fresh temporary folder for agent roots, under BENCH_DIR if that is set."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("BENCH_DIR")))


def remove_workdir(workdir: Path) -> None:
    """Delete the temporary folder unless BENCH_KEEP=1."""
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(workdir, ignore_errors=True)


# -- targets and output ------------------------------------------------------------------------


def evaluate_targets(
    targets: dict[str, tuple[str, str, float, str]], values: dict[str, float], spec: str = ""
) -> dict:
    """PASS/MISS per target; never raises.

    `targets` maps name -> (description, comparison, limit, unit); `spec` is the format spec
    the limit is written with in the "target" text ("," for thousands separators).
    """
    compare: dict[str, Callable[[float, float], bool]] = {
        ">=": lambda v, limit: v >= limit,
        "<": lambda v, limit: v < limit,
    }
    out = {}
    for name, (what, op, limit, unit) in targets.items():
        value = values[name]
        out[name] = {
            "what": what,
            "value": value,
            "target": f"{op} {limit:{spec}} {unit}",
            "pass": compare[op](value, limit),
        }
    return out


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 2 decimals."""
    return [round(x, 2) for x in os.getloadavg()]


def result_head(load_at_start: list[float], versions: dict | None = None) -> dict:
    """The first keys of every result file: machine (with `versions` after python), when, quick."""
    machine = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        **(versions or {}),
        "platform": platform.platform(),
        "loadavg_at_end": loadavg(),
        "loadavg_at_start": load_at_start,
    }
    return {
        "machine": machine,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": QUICK,
    }


def fmt_rate(value: float) -> str:
    """A rate without decimals, with thousands separators."""
    return f"{value:,.0f}"


def fmt_value(value: float) -> str:
    """Rates without decimals, small figures (ms, s) with three."""
    return fmt_rate(value) if value >= 100 else f"{value:.3f}"


def print_targets(targets: dict, what_width: int, target_width: int) -> None:
    """One PASS/MISS line per evaluated target."""
    for t in targets.values():
        mark = "PASS" if t["pass"] else "MISS"
        print(
            f"  {mark}  {t['what']:<{what_width}} {t['target']:<{target_width}} "
            f"measured {fmt_value(t['value'])}"
        )


def results_path(name: str) -> Path:
    """bench/results/<name>.json, or <name>.quick.json under BENCH_QUICK=1."""
    return PROJECT / "bench" / "results" / (f"{name}.quick.json" if QUICK else f"{name}.json")


def write_results(result: dict, path: Path) -> None:
    """Write the result as indented JSON and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(PROJECT)}")


def finish(
    result: dict,
    targets: dict[str, tuple[str, str, float, str]],
    values: dict[str, float],
    spec: str,
    reference: dict,
    summary: Callable[[dict], None],
    path: Path,
) -> int:
    """Append "targets" (see `evaluate_targets`) and "harperdb_4_7" (`reference`) to `result`,
    print it with `summary`, write it to `path`; return 0, the exit status."""
    result["targets"] = evaluate_targets(targets, values, spec)
    result["harperdb_4_7"] = reference
    summary(result)
    write_results(result, path)
    return 0
