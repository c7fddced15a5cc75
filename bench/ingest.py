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

import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT / "bench"), str(PROJECT / "tests")]

import common  # noqa: E402
from common import MB, BenchError, Client, fmt_rate, percentile  # noqa: E402
from harness import PASSWORD, Agent  # noqa: E402

SCALE = 10 if common.QUICK else 1
REPS = 3
RESTARTS = 3
# batch size -> (timed requests, warm-up requests), before the BENCH_QUICK scale
CELLS = {1: (2000, 200), 100: (200, 0), 1000: (50, 0)}
BASELINE_BATCH = 1000
BASELINE_TXS = 50
DATABASE = "data"
ORIGIN = "bench-baseline"
RESULTS = common.results_path("ingest")

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


# -- agent ingest cells ------------------------------------------------------------------------


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
    warm = common.insert_bodies(DATABASE, table, warmup * batch, batch, first_id=1)
    bodies = common.insert_bodies(
        DATABASE, table, requests * batch, batch, first_id=1 + warmup * batch
    )
    common.timed_requests(client, warm)
    connects = client.connects
    elapsed, latencies = common.timed_requests(client, bodies)
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
    median = common.summarize(runs, ("records_per_s", "p50_ms", "p99_ms"))
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
    records = [common.make_record(i) for i in range(1, per_tx * txs + 1)]
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


def start_to_serving(agent: Agent, timeout: float = 30.0) -> float:
    """Spawn the agent and return seconds until GET /health first answers 200."""
    start = time.perf_counter()
    agent.start(wait=False)
    return (
        common.poll_until(lambda: common.health_ok(agent), timeout, 0.002, "/health", agent) - start
    )


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


class RssSampler(common.PeriodicSampler):
    """Sample the agent's VmRSS every `interval` seconds on a daemon thread, by phase."""

    def __init__(self, agent: Agent) -> None:
        super().__init__()
        self.agent = agent
        self.phase = "start"
        self.samples: list[tuple[str, int]] = []

    def sample(self) -> None:
        """Take one sample now (if the agent is running)."""
        proc = self.agent.proc
        rss = common.read_rss(proc.pid) if proc is not None and proc.poll() is None else None
        if rss:
            self.samples.append((self.phase, rss))

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
    common.print_targets(result["targets"], 32, 14)


# -- the run -----------------------------------------------------------------------------------


def run_agent_phases(agent: Agent, sampler: RssSampler, baseline: dict) -> dict:
    """First start, ingest cells, then restarts; return the measurements."""
    sampler.start()
    first = start_to_serving(agent)
    print(f"agent {agent.url} serving after {first:.3f} s (empty root)", flush=True)
    client = Client(agent)
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
    load_at_start = common.loadavg()
    workdir = common.make_workdir("harper-bench-")
    env = common.agent_env(workdir)
    agent = Agent(workdir / "agent", env=env, password=PASSWORD)
    sampler = RssSampler(agent)
    try:
        print(f"workdir {workdir}; baseline ...", flush=True)
        baseline = run_baseline(workdir)
        common.warm_bytecode(Agent(workdir / "warmup", env=env, password=PASSWORD))
        measured = run_agent_phases(agent, sampler, baseline)
    finally:
        sampler.stop()
        common.stop_agents([agent])
        common.remove_workdir(workdir)
    rss = sampler.report()
    result = {
        **common.result_head(load_at_start, {"sqlite": sqlite3.sqlite_version}),
        "baseline": baseline,
        **measured,
        "rss": rss,
    }
    values = target_values(measured["cells"], measured["startup"], rss)
    return common.finish(result, TARGETS, values, "", HARPERDB_47, print_summary, RESULTS)


if __name__ == "__main__":
    sys.exit(main())
