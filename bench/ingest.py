"""Ingest benchmark: one agent on loopback, measured the way HarperDB 4.7 was.

Records are ~200 B of JSON `{id, name, email, city, score, active, bio}` inserted into tables
made by `create_table {primary_key: "id"}`, over one keep-alive HTTP connection (http.client,
so the client spends little of the shared CPU). Every cell runs REPS times on a fresh table;
the median is reported beside the individual runs. A raw SQLite baseline measured in the same
run turns every figure into a ratio, which is what we quote on noisy machines.

Also measured: spawn to first 200 from GET /health (first start on an empty root, then
restarts on the filled root) and the agent's VmRSS, sampled every 0.2 s throughout.

    make bench                      # full run, writes bench/results/ingest.json
    BENCH_QUICK=1 make bench        # 10x fewer requests, writes ingest.quick.json
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "tests"))

from harness import PASSWORD, Agent  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
SCALE = 10 if QUICK else 1
REPS = 3
RESTARTS = 3
# batch size -> (timed requests, warm-up requests), before the BENCH_QUICK scale
CELLS = {1: (2000, 200), 100: (200, 0), 1000: (50, 0)}
BASELINE_BATCH = 1000
BASELINE_TXS = 50
RSS_INTERVAL = 0.2
DATABASE = "data"
ORIGIN = "bench-baseline"
CITIES = ("Denver", "Portland", "Austin", "Boston", "Chicago", "Seattle", "Atlanta", "Phoenix")
BIO = "x" * 69
MB = 1024 * 1024
RESULTS = PROJECT / "bench" / "results" / ("ingest.quick.json" if QUICK else "ingest.json")

# name -> (description, comparison, limit, unit)
TARGETS = {
    "batch_1000_rec_s": ("batch 1000 insert rate", ">=", 30_000, "rec/s"),
    "batch_1_rec_s": ("sequential single inserts", ">=", 1_500, "rec/s"),
    "batch_1_p50_ms": ("single insert latency p50", "<", 1.0, "ms"),
    "restart_to_serving_s": ("restart to serving (median)", "<", 0.5, "s"),
    "first_start_to_serving_s": ("first start to serving", "<", 0.5, "s"),
    "rss_max_mb": ("agent RSS while running (max)", "<", 100, "MB"),
}
HARPERDB_47 = {
    "source": "shared/reference/harperdb-live.md section 3 (1 node, dynamic schema)",
    "batch_1": {"records_per_s": 725, "p50_ms": 1.26, "p99_ms": 4.0},
    "batch_100": {"records_per_s": 6600, "p50_ms": 14.0},
    "batch_1000": {"records_per_s": 6730, "p50_ms": 136.0, "p99_ms": 244.0},
    "idle_rss_mb": "225-235",
}


class BenchError(RuntimeError):
    """The agent answered something a benchmark step cannot go on with."""


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


def insert_bodies(table: str, batch: int, requests: int, first_id: int) -> list[bytes]:
    """Encode `requests` insert bodies of `batch` records each, ids from `first_id` on."""
    bodies = []
    for n in range(requests):
        start = first_id + n * batch
        records = [make_record(i) for i in range(start, start + batch)]
        op = {"operation": "insert", "database": DATABASE, "table": table, "records": records}
        bodies.append(json.dumps(op, separators=(",", ":")).encode())
    return bodies


# -- HTTP client -------------------------------------------------------------------------------


class _CountingConnection(http.client.HTTPConnection):
    """An HTTPConnection that counts how often it had to (re)connect."""

    connects = 0

    def connect(self) -> None:
        self.connects += 1
        super().connect()


class Client:
    """One keep-alive connection to the operations API with a precomputed Basic auth header."""

    def __init__(self, host: str, port: int, password: str) -> None:
        self.conn = _CountingConnection(host, port, timeout=120)
        token = base64.b64encode(f"admin:{password}".encode()).decode("ascii")
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    @property
    def connects(self) -> int:
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


# -- statistics --------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(runs: list[dict], keys: tuple[str, ...]) -> dict:
    """Median of each key over the runs (each key on its own, as the HarperDB doc reports)."""
    return {key: statistics.median(run[key] for run in runs) for key in keys}


# -- agent ingest cells ------------------------------------------------------------------------


def timed_requests(client: Client, bodies: list[bytes]) -> tuple[float, list[float]]:
    """Send bodies one after another; return (wall seconds, per-request seconds)."""
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


def check_count(client: Client, table: str, expected: int) -> None:
    """Fail if the table does not hold exactly `expected` records."""
    answer = client.op({"operation": "describe_table", "database": DATABASE, "table": table})
    if answer.get("record_count") != expected:
        raise BenchError(f"{table}: record_count {answer.get('record_count')} != {expected}")


def run_rep(client: Client, batch: int, requests: int, warmup: int, rep: int) -> dict:
    """Insert into a fresh table: `warmup` untimed requests, then `requests` timed ones."""
    table = f"ingest_b{batch}_r{rep}"
    create = {"operation": "create_table", "database": DATABASE, "table": table}
    client.op({**create, "primary_key": "id"})
    warm = insert_bodies(table, batch, warmup, first_id=1)
    bodies = insert_bodies(table, batch, requests, first_id=1 + warmup * batch)
    timed_requests(client, warm)
    connects = client.connects
    elapsed, latencies = timed_requests(client, bodies)
    reconnects = client.connects - connects
    check_count(client, table, (warmup + requests) * batch)
    latencies.sort()
    return {
        "records_per_s": round(requests * batch / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "seconds": round(elapsed, 3),
        "requests": requests,
        "records": requests * batch,
        "reconnects": reconnects,
    }


def run_cell(client: Client, batch: int, baseline: dict) -> dict:
    """Run one batch size REPS times; return the median, the runs and the baseline ratio."""
    requests, warmup = (n // SCALE for n in CELLS[batch])
    runs = [run_rep(client, batch, requests, warmup, rep) for rep in range(REPS)]
    median = summarize(runs, ("records_per_s", "p50_ms", "p99_ms"))
    out = {
        "batch": batch,
        "requests": requests,
        "warmup_requests": warmup,
        "median": median,
        "runs": runs,
        "ratio_to_baseline": round(median["records_per_s"] / baseline["records_per_s"], 4),
    }
    if batch == 1:
        single = baseline["single_tx"]["records_per_s"]
        out["ratio_to_single_tx_baseline"] = round(median["records_per_s"] / single, 4)
    return out


# -- SQLite baseline ---------------------------------------------------------------------------

BASELINE_DDL = """
CREATE TABLE rows (pk INTEGER PRIMARY KEY, doc TEXT, version INTEGER, origin TEXT) WITHOUT ROWID;
CREATE TABLE log (seq INTEGER PRIMARY KEY, version INTEGER NOT NULL, origin TEXT NOT NULL,
                  at REAL NOT NULL, records INTEGER NOT NULL, body BLOB NOT NULL);
"""


def open_baseline(path: Path) -> sqlite3.Connection:
    """Open a fresh baseline file: WAL, synchronous=FULL, explicit transactions."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.executescript(BASELINE_DDL)
    return conn


def baseline_rep(path: Path, per_tx: int, txs: int) -> dict:
    """Insert `txs` transactions of `per_tx` JSON records plus one log row each."""
    conn = open_baseline(path)
    records = [make_record(i) for i in range(1, per_tx * txs + 1)]
    start = time.perf_counter()
    for version in range(txs):
        chunk = records[version * per_tx : (version + 1) * per_tx]
        docs = [json.dumps(r, separators=(",", ":")) for r in chunk]
        rows = [(r["id"], doc, version, ORIGIN) for r, doc in zip(chunk, docs, strict=True)]
        body = ("[" + ",".join(docs) + "]").encode()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", rows)
        conn.execute(
            "INSERT INTO log (version, origin, at, records, body) VALUES (?, ?, ?, ?, ?)",
            (version, ORIGIN, time.time(), len(rows), body),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return {"records_per_s": round(per_tx * txs / elapsed, 1), "seconds": round(elapsed, 3)}


def run_baseline(workdir: Path) -> dict:
    """Raw SQLite on this machine: 1000 records per transaction, and 1 per transaction."""
    path = workdir / "baseline.sqlite"
    txs = BASELINE_TXS // SCALE
    runs = [baseline_rep(path, BASELINE_BATCH, txs) for _ in range(REPS)]
    single_txs = CELLS[1][0] // SCALE
    singles = [baseline_rep(path, 1, single_txs) for _ in range(REPS)]
    return {
        "method": "sqlite3 stdlib, WAL, synchronous=FULL, WITHOUT ROWID (pk, doc, version, "
        "origin) + one log row per transaction, json.dumps inside the timed loop",
        "records_per_tx": BASELINE_BATCH,
        "transactions": txs,
        "records_per_s": statistics.median(r["records_per_s"] for r in runs),
        "runs": runs,
        "single_tx": {
            "note": "context only: 1 record per transaction, the fsync-bound floor of batch 1",
            "transactions": single_txs,
            "records_per_s": statistics.median(r["records_per_s"] for r in singles),
            "runs": singles,
        },
    }


# -- start-up and RSS --------------------------------------------------------------------------


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


def start_to_serving(agent: Agent, timeout: float = 30.0) -> float:
    """Spawn the agent and return seconds until GET /health first answers 200."""
    start = time.perf_counter()
    agent.start(wait=False)
    while not health_ok(agent):
        if agent.proc.poll() is not None:
            raise BenchError(f"agent exited with {agent.proc.returncode}: {agent.output()}")
        if time.perf_counter() - start > timeout:
            raise BenchError(f"agent not serving after {timeout}s: {agent.output()}")
        time.sleep(0.002)
    return time.perf_counter() - start


def measure_restarts(agent: Agent) -> dict:
    """Stop and start the agent RESTARTS times on its existing root."""
    runs = []
    for _ in range(RESTARTS):
        stopped = time.perf_counter()
        agent.stop()
        stop_s = time.perf_counter() - stopped
        runs.append({"stop_s": round(stop_s, 3), "to_serving_s": round(start_to_serving(agent), 3)})
    return {
        "median_s": statistics.median(r["to_serving_s"] for r in runs),
        "runs": runs,
    }


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


class RssSampler:
    """Sample the agent's VmRSS every `interval` seconds on a daemon thread, by phase."""

    def __init__(self, agent: Agent, interval: float = RSS_INTERVAL) -> None:
        self.agent = agent
        self.interval = interval
        self.phase = "start"
        self.samples: list[tuple[str, int]] = []
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        self._thread.join()

    def sample(self) -> None:
        """Take one sample now (if the agent is running)."""
        proc = self.agent.proc
        rss = read_rss(proc.pid) if proc is not None and proc.poll() is None else None
        if rss:
            self.samples.append((self.phase, rss))

    def _loop(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def report(self) -> dict:
        """Max and last overall and per phase, in MB."""
        phases: dict[str, list[int]] = {}
        for phase, rss in self.samples:
            phases.setdefault(phase, []).append(rss)
        values = [rss for _, rss in self.samples] or [0]
        return {
            "interval_s": self.interval,
            "samples": len(self.samples),
            "max_mb": round(max(values) / MB, 1),
            "last_mb": round(values[-1] / MB, 1),
            "by_phase": {
                name: {"max_mb": round(max(v) / MB, 1), "last_mb": round(v[-1] / MB, 1)}
                for name, v in phases.items()
            },
        }


# -- targets and output ------------------------------------------------------------------------


def target_values(cells: dict, startup: dict, rss: dict) -> dict[str, float]:
    """Pick the measured value each target is judged on."""
    return {
        "batch_1000_rec_s": cells["batch_1000"]["median"]["records_per_s"],
        "batch_1_rec_s": cells["batch_1"]["median"]["records_per_s"],
        "batch_1_p50_ms": cells["batch_1"]["median"]["p50_ms"],
        "restart_to_serving_s": startup["restart"]["median_s"],
        "first_start_to_serving_s": startup["first_start_s"],
        "rss_max_mb": rss["max_mb"],
    }


def evaluate_targets(values: dict[str, float]) -> dict:
    """PASS/MISS per target; never raises."""
    compare: dict[str, Callable[[float, float], bool]] = {
        ">=": lambda v, limit: v >= limit,
        "<": lambda v, limit: v < limit,
    }
    out = {}
    for name, (what, op, limit, unit) in TARGETS.items():
        value = values[name]
        out[name] = {
            "what": what,
            "value": value,
            "target": f"{op} {limit} {unit}",
            "pass": compare[op](value, limit),
        }
    return out


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_value(value: float) -> str:
    """Rates without decimals, small figures (ms, s) with three."""
    return fmt_rate(value) if value >= 100 else f"{value:.3f}"


def print_summary(result: dict) -> None:
    """Print the results as a plain-text table."""
    m, base = result["machine"], result["baseline"]
    mode = "QUICK (counts / 10)" if result["quick"] else "full"
    print(f"\nharperctl ingest benchmark, {mode}, REPS={REPS}, {result['when']}")
    print(
        f"machine: {m['cpu_count']} CPUs, Python {m['python']}, SQLite {m['sqlite']}, "
        f"load average {m['loadavg_at_start'][0]} at start, {m['loadavg_at_end'][0]} at end"
    )
    runs = " ".join(fmt_rate(r["records_per_s"]) for r in base["runs"])
    single = base["single_tx"]
    print(
        f"baseline raw SQLite, {base['records_per_tx']} rec/tx: "
        f"{fmt_rate(base['records_per_s'])} rec/s [{runs}]; "
        f"1 rec/tx: {fmt_rate(single['records_per_s'])} rec/s "
        f"(batch 1 = {result['cells']['batch_1']['ratio_to_single_tx_baseline']:.2f}x of it)"
    )
    print()
    header = (
        f"{'cell':<11}{'rec/s':>9}  {'runs':<26}{'x base':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"   HarperDB 4.7"
    )
    print(header)
    print("-" * len(header))
    for name, cell in result["cells"].items():
        med, ref = cell["median"], HARPERDB_47[name]
        runs = " ".join(fmt_rate(r["records_per_s"]) for r in cell["runs"])
        print(
            f"{'batch ' + str(cell['batch']):<11}{fmt_rate(med['records_per_s']):>9}  "
            f"[{runs}]".ljust(48)
            + f"{cell['ratio_to_baseline']:>8.3f}{med['p50_ms']:>9.2f}"
            f"{med['p99_ms']:>9.2f}   {fmt_rate(ref['records_per_s'])} rec/s, "
            f"p50 {ref['p50_ms']} ms"
        )
    start = result["startup"]
    restarts = " ".join(f"{r['to_serving_s']:.3f}" for r in start["restart"]["runs"])
    print(
        f"\nstart to serving: first start (empty root) {start['first_start_s']:.3f} s; "
        f"restart median {start['restart']['median_s']:.3f} s [{restarts}]"
    )
    rss = result["rss"]
    print(
        f"agent RSS: max {rss['max_mb']} MB, last {rss['last_mb']} MB "
        f"({rss['samples']} samples every {rss['interval_s']} s; HarperDB idle 225-235 MB)"
    )
    print("\ntargets:")
    for t in result["targets"].values():
        mark = "PASS" if t["pass"] else "MISS"
        print(f"  {mark}  {t['what']:<32} {t['target']:<14} measured {fmt_value(t['value'])}")


def write_results(result: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS.relative_to(PROJECT)}")


# -- the run -----------------------------------------------------------------------------------


def agent_env(workdir: Path) -> dict:
    """Environment for the agent: importable whatever the cwd, bytecode cached in `workdir`.

    An installed agent runs from .pyc files; a sandbox with PYTHONDONTWRITEBYTECODE=1 and no
    __pycache__ would compile every module at every start. A private PYTHONPYCACHEPREFIX keeps
    the source tree clean and lets `warm_bytecode` fill the cache once.
    """
    paths = [str(PROJECT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONDONTWRITEBYTECODE": "",
        "PYTHONPYCACHEPREFIX": str(workdir / "pycache"),
    }


def warm_bytecode(workdir: Path, env: dict) -> None:
    """Start and stop a throwaway agent (untimed) so every module it imports is compiled."""
    scratch = Agent(workdir / "warmup", env=env, password=PASSWORD)
    try:
        scratch.start(wait=True, timeout=60)
    finally:
        try:
            scratch.stop()
        except Exception:
            scratch.kill()


def run_agent_phases(agent: Agent, sampler: RssSampler, baseline: dict) -> dict:
    """First start, ingest cells, then restarts; return the measurements."""
    sampler.start()
    first = start_to_serving(agent)
    print(f"agent {agent.url} serving after {first:.3f} s (empty root)", flush=True)
    client = Client(agent.host, agent.port, agent.password)
    cells = {}
    try:
        for batch in CELLS:
            sampler.phase = f"batch_{batch}"
            print(f"batch {batch}: {REPS} reps ...", flush=True)
            cells[f"batch_{batch}"] = run_cell(client, batch, baseline)
    finally:
        client.close()
    sampler.phase = "restarts"
    restart = measure_restarts(agent)
    sampler.sample()
    startup = {
        "method": "spawn to first 200 from GET /health, polled every 2 ms; bytecode cached "
        "by an untimed warm-up start",
        "first_start_s": round(first, 3),
        "restart": restart,
    }
    return {"cells": cells, "startup": startup}


def main() -> int:
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    workdir = Path(tempfile.mkdtemp(prefix="harper-bench-", dir=os.environ.get("BENCH_DIR")))
    env = agent_env(workdir)
    agent = Agent(workdir / "agent", env=env, password=PASSWORD)
    sampler = RssSampler(agent)
    try:
        print(f"workdir {workdir}; baseline ...", flush=True)
        baseline = run_baseline(workdir)
        warm_bytecode(workdir, env)
        measured = run_agent_phases(agent, sampler, baseline)
    finally:
        sampler.stop()
        try:
            agent.stop()
        except Exception:
            agent.kill()
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
    rss = sampler.report()
    result = {
        "machine": {**machine(), "loadavg_at_start": load_at_start},
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": QUICK,
        "baseline": baseline,
        **measured,
        "rss": rss,
        "targets": evaluate_targets(target_values(measured["cells"], measured["startup"], rss)),
        "harperdb_4_7": HARPERDB_47,
    }
    print_summary(result)
    write_results(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
