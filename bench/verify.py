"""Anti-entropy benchmark: cluster_verify on a large table, and what the background pass costs.

Scenarios, on real agents over loopback (tests/harness.py, the replication bench's timings):

    agree       3 nodes holding the same RECORDS-record table; cluster_verify timed REPS
                times (each run builds its indexes afresh): wall time, bytes exchanged
    planted     node 2 stopped, 10 differences written into its SQLite file (4 rows
                deleted, 3 tampered with at the same version, 3 set to an older version),
                started; cluster_verify REPS times: wall time, bytes, and whether exactly
                the 10 keys are listed
    idle        the same 3 nodes restarted with the background pass at its defaults, then
                with it off: each agent's CPU share over WINDOW seconds of idling
    throughput  100k records replicated to 3 nodes, batch 1000 (the replication bench's
                scenario), REPS times each with the pass at its default, at 1 s, and off

    .venv/bin/python bench/verify.py            # writes bench/results/verify.json
    BENCH_QUICK=1 .venv/bin/python bench/verify.py   # 100k records, short windows
"""

from __future__ import annotations

import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT / "bench"), str(PROJECT / "tests")]
os.environ.setdefault("HARPER_TEST_HOST_BASE", "640")

import common  # noqa: E402
import replication as rb  # noqa: E402
from common import BenchError, stop_agents  # noqa: E402

RECORDS = 100_000 if common.QUICK else 1_000_000
REPS = 1 if common.QUICK else 3
WINDOW = 60.0 if common.QUICK else 240.0
PLANTED = 10
RESULTS = common.results_path("verify")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def verify(agent) -> tuple[float, dict]:
    client = rb.Client(agent, timeout=1200)
    try:
        started = time.perf_counter()
        answer = client.op({"operation": "cluster_verify", "database": "db", "table": "t"})
        return time.perf_counter() - started, answer
    finally:
        client.close()


def verify_runs(agent, expect: set | None) -> dict:
    runs = []
    for _ in range(REPS):
        seconds, answer = verify(agent)
        table = answer["databases"]["db"]["t"]
        keys = {d["key"] for d in table["divergent"]}
        runs.append(
            {
                "seconds": round(seconds, 3),
                "bytes": answer["bytes"],
                "ranges_compared": table["ranges_compared"],
                "rounds": table["rounds"],
                "divergent": len(keys),
                "exactly_planted": keys == expect if expect is not None else not keys,
            }
        )
    return {
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "median_bytes": statistics.median(r["bytes"] for r in runs),
        "runs": runs,
    }


def plant(path: Path) -> set:
    """Write PLANTED differences into a stopped node's file; return their keys."""
    rng = random.Random(7)
    keys = rng.sample(range(1, RECORDS + 1), PLANTED)
    conn = sqlite3.connect(path)
    with conn:
        for i, key in enumerate(keys):
            if i < 4:
                conn.execute('DELETE FROM "r_t" WHERE pk = ?', (key,))
            elif i < 7:
                conn.execute(
                    'UPDATE "r_t" SET doc = replace(doc, \'"active"\', \'"tampered"\') '
                    "WHERE pk = ?",
                    (key,),
                )
            else:
                conn.execute(
                    'UPDATE "r_t" SET doc = \'{"id":0}\', version = version - 1000 WHERE pk = ?',
                    (key,),
                )
    conn.close()
    return set(keys)


STOPS: list[dict] = []  # how long each SIGTERM stop took (a slow one keeps its log tail)


def restart_all(cluster, interval: str | None) -> None:
    for node in cluster:
        started = time.perf_counter()
        node.stop(120)
        took = time.perf_counter() - started
        stop = {"node": node.host, "seconds": round(took, 2)}
        if took > 8:
            stop["log_tail"] = (node.root / "log" / "hdb.log").read_text().splitlines()[-40:]
        STOPS.append(stop)
        settings = node.extra_config.setdefault("replication", {})
        if interval is None:
            settings.pop("verifyInterval", None)
        else:
            settings["verifyInterval"] = interval
        node.start()
    cluster.wait_connected(60)


def idle_cpu(cluster) -> dict:
    before = {n.host: cpu_seconds(n.proc.pid) for n in cluster}
    time.sleep(WINDOW)
    out = {
        n.host: round(100.0 * (cpu_seconds(n.proc.pid) - before[n.host]) / WINDOW, 2)
        for n in cluster
    }
    passes = {}
    for node in cluster:
        client = rb.Client(node)
        try:
            passes[node.host] = client.op({"operation": "cluster_status"})["antiEntropy"]
        finally:
            client.close()
    return {"cpu_percent": out, "window_s": WINDOW, "passes": passes}


def throughput(workdir: Path, env: dict, rss) -> dict:
    cells = {}
    for label, interval in (("default", None), ("1s", "1s"), ("off", "0")):
        settings = rb.TIMINGS["replication"]
        settings.pop("verifyInterval", None)
        if interval is not None:
            settings["verifyInterval"] = interval
        print(f"throughput 3n b1000, background pass {label}: {REPS} runs ...", flush=True)
        runs = [rb.throughput_run(workdir / label, env, rss, 3, 1000, rep) for rep in range(REPS)]
        cells[label] = {
            "median_records_per_s": statistics.median(r["records_per_s"] for r in runs),
            "runs": [r["records_per_s"] for r in runs],
        }
    rb.TIMINGS["replication"].pop("verifyInterval", None)
    off = cells["off"]["median_records_per_s"]
    for cell in cells.values():
        cell["ratio_to_off"] = round(cell["median_records_per_s"] / off, 3)
    return cells


def measure(workdir: Path, env: dict, rss) -> dict:
    result: dict = {"records": RECORDS}
    cluster = rb.new_cluster(workdir / "big", 3, env)
    for node in cluster:
        node.extra_config.setdefault("replication", {})["verifyInterval"] = "0"
    try:
        rb.boot_cluster(cluster)
        print(f"loading {RECORDS:,} records ...", flush=True)
        watchers = [rb.CountWatcher(n, RECORDS, timeout=1200) for n in cluster.nodes[1:]]
        for watcher in watchers:
            watcher.start()
        result["load_seconds"] = round(rb.load(cluster[0], RECORDS), 1)
        for watcher in watchers:
            watcher.join()
        print("verify, agreeing ...", flush=True)
        result["agree"] = verify_runs(cluster[0], None)
        cluster[2].stop()
        planted = plant(cluster[2].root / "database" / "db.sqlite")
        cluster[2].start()
        cluster.wait_connected(60)
        print("verify, 10 planted ...", flush=True)
        result["planted"] = verify_runs(cluster[0], planted)
        print(f"idle, background pass at its defaults, {WINDOW:.0f}s ...", flush=True)
        restart_all(cluster, None)
        result["idle_pass_default"] = idle_cpu(cluster)
        print(f"idle, background pass off, {WINDOW:.0f}s ...", flush=True)
        restart_all(cluster, "0")
        result["idle_pass_off"] = idle_cpu(cluster)
    finally:
        stop_agents(cluster.nodes)
    result["throughput_3n_b1000"] = throughput(workdir, env, rss)
    result["stops"] = STOPS
    return result


def main() -> int:
    load_at_start = common.loadavg()
    workdir = common.make_workdir("harper-verify-")
    env = common.agent_env(workdir)
    rss = rb.FleetRss()
    try:
        rss.start()
        measured = measure(workdir, env, rss)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        rss.stop()
        stop_agents(rb.SPAWNED)
        common.remove_workdir(workdir)
    result = {**common.result_head(load_at_start), **measured}
    common.write_results(result, RESULTS)
    for name in ("agree", "planted"):
        part = result[name]
        print(
            f"{name}: median {part['median_seconds']:.2f}s, {part['median_bytes']:,.0f} bytes; "
            f"runs {[(r['seconds'], r['bytes'], r['exactly_planted']) for r in part['runs']]}"
        )
    for name in ("idle_pass_default", "idle_pass_off"):
        print(f"{name}: CPU % per node over {WINDOW:.0f}s: {result[name]['cpu_percent']}")
    for label, cell in result["throughput_3n_b1000"].items():
        print(
            f"throughput pass {label}: {cell['median_records_per_s']:,.0f} rec/s "
            f"({cell['ratio_to_off']}x off) runs {cell['runs']}"
        )
    print(f"stops (SIGTERM) seconds: {[s['seconds'] for s in result['stops']]}")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
