"""Replication benchmark: 2- and 3-node loopback clusters, measured the way HarperDB 4.7 was.

Every agent is a real `python -m agent run` process started through tests/harness.py on its
own 127.0.x.y address; clusters are joined with add_node (url + admin credentials). The client
uses http.client over one keep-alive connection per node, so it spends little of the shared
CPU. Records are the ~200 B `{id, name, email, city, score, active, bio}` of the HarperDB doc
(shared/reference/harperdb-live.md section 3), in `db.t` made by `create_table {primary_key}`.

Scenarios (each REPS times on fresh agents; medians beside the individual runs):

    throughput   100k records inserted on node 0 in batches of 100 and of 1000, 2 and 3
                 nodes; timed from the first insert until every other node's
                 `SELECT COUNT(*)` (polled every 50 ms) shows them all
    lag          single inserts on node 0 at 200 writes/s; node 1 polled with search_by_id
                 in a tight loop from the insert's 200 until the record is visible
    sync         node 0 holds 100k; a fresh node runs add_node; time until it holds them
    catch-up     node 1 stopped (SIGTERM), 50k inserted on node 0, node 1 started again;
                 time from the spawn until it holds them (and until /health answered)
    baseline     one agent alone, batch 1000, same client: replicated rates are quoted as
                 a ratio to it

Links use plain ws on the operations API port; new_cluster/throughput_run/lag_run take
transport="wss" for mutual TLS on replication.securePort (bench/secure.py compares the two).
VmRSS of every agent is sampled every 0.2 s throughout. Timings are the agent defaults
except replication.retryInterval = 100ms (so a restarted peer is re-dialled promptly).

    make bench                      # full run, writes bench/results/replication.json
    BENCH_QUICK=1 make bench        # 1 rep, 10x smaller, writes replication.quick.json
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT / "bench"), str(PROJECT / "tests")]
# keep the bench's loopback addresses apart from a test run's (harness default base 20)
os.environ.setdefault("HARPER_TEST_HOST_BASE", "600")

import common  # noqa: E402
from common import MB, BenchError, fmt_rate, percentile, poll_until, stop_agents  # noqa: E402
from harness import PASSWORD, Agent, Cluster, free_port, meshed  # noqa: E402

REPS = 1 if common.QUICK else 3
SIZES = (2, 3)
BATCHES = (100, 1000)
THROUGHPUT_RECORDS = 10_000 if common.QUICK else 100_000
BASELINE_BATCH = 1000
LAG_SAMPLES = 60 if common.QUICK else 300
LAG_WARMUP = 20
LAG_RATE = 200  # writes per second
LAG_TIMEOUT = 10.0
SYNC_RECORDS = 10_000 if common.QUICK else 100_000
CATCHUP_RECORDS = 5_000 if common.QUICK else 50_000
LOAD_BATCH = 1000  # untimed loading (sync) and the catch-up inserts
COUNT_INTERVAL = 0.05
LINK_INTERVAL = 0.005  # cluster_status polls while a joined link comes up
HEALTH_INTERVAL = 0.005
REPLICATE_TIMEOUT = 300.0
DATABASE = "db"
TABLE = "t"
RESULTS = common.results_path("replication")
# agent defaults (30 s pings, 10 s stall) except a prompt re-dial of a restarted peer;
# the harness's FAST_REPLICATION pings would add traffic to the throughput runs
TIMINGS = {
    "replication": {
        "pingInterval": "30s",
        "pingTimeout": "60s",
        "stallTimeout": "10s",
        "retryInterval": "100ms",
    }
}

# name -> (description, comparison, limit, unit)
TARGETS = {
    "replicated_2n_b1000_rec_s": ("replicated rec/s, 2 nodes, batch 1000", ">=", 20_000, "rec/s"),
    "replicated_3n_b1000_rec_s": ("replicated rec/s, 3 nodes, batch 1000", ">=", 20_000, "rec/s"),
    "lag_p50_ms": ("replication lag p50 (200 writes/s)", "<", 2.0, "ms"),
    "lag_p99_ms": ("replication lag p99 (200 writes/s)", "<", 10.0, "ms"),
    "sync_s": (f"initial sync of {SYNC_RECORDS:,} records", "<", 5.0, "s"),
    "catchup_s": (f"catch-up of {CATCHUP_RECORDS:,} from spawn", "<", 3.0, "s"),
    "rss_max_mb": ("every node's RSS, whole run (max)", "<", 150, "MB"),
}
HARPERDB_47 = {
    "source": "shared/reference/harperdb-live.md section 3 (b-f), 2-core machine",
    "replicated_rec_s": "4,280 (2 nodes, batch 1000; node1 accepts 4,470-4,520)",
    "lag": "p50 1.6 ms, p90 2.8 ms, p99 6.3 ms; 44 % visible on the first poll (0.57 ms)",
    "initial_sync_100k_s": "17.2 s (5,800 rec/s), new node RSS 735-860 MB",
    "catchup_50k_s": "12.8 s from spawn; ops API answered after 12.0 s",
    "rss_mb": "idle 225-235, sender 330-450, receiver 340-540 (c), 735-860 (sync)",
}
# ws: replication upgrades on the operations API port (the default); wss: a dedicated
# replication.securePort with mutual TLS, joined with verify_tls false and credentials
TRANSPORTS = ("ws", "wss")
SPAWNED: list[Agent] = []  # every agent this run started, stopped in main's finally


# -- requests ----------------------------------------------------------------------------------


def insert_bodies(records: int, batch: int, first_id: int = 1) -> list[bytes]:
    """Encode insert bodies of `batch` records each into db.t, `records` in all."""
    return common.insert_bodies(DATABASE, TABLE, records, batch, first_id)


COUNT_BODY = common.encode(
    {"operation": "sql", "sql": f"SELECT COUNT(*) AS n FROM {DATABASE}.{TABLE}"}
)


class Client(common.Client):
    """The shared keep-alive client, plus COUNT(*) of db.t."""

    def count(self) -> int:
        """SELECT COUNT(*) of db.t, or -1 while the table does not exist here."""
        status, raw = self.post(COUNT_BODY)
        return json.loads(raw)[0]["n"] if status == 200 else -1


def summarize(runs: list[dict], keys: tuple[str, ...]) -> dict:
    """Median of each key over the runs, rounded to 3 decimals."""
    return common.summarize(runs, keys, ndigits=3)


# -- RSS of every agent ------------------------------------------------------------------------


class FleetRss(common.PeriodicSampler):
    """Sample VmRSS of every spawned agent every `interval` s on a daemon thread."""

    def __init__(self) -> None:
        super().__init__()
        self.samples: dict[int, list[tuple[float, int]]] = {}  # id(agent) -> (time, bytes)

    def sample(self) -> None:
        """Take one sample of every agent that is running now."""
        now = time.perf_counter()
        for agent in list(SPAWNED):
            proc = agent.proc
            if proc is None or proc.poll() is not None:
                continue
            rss = common.read_rss(proc.pid)
            if rss:
                self.samples.setdefault(id(agent), []).append((now, rss))

    def peak_mb(self, agent: Agent, since: float = 0.0, until: float = math.inf) -> float:
        """Largest sample of `agent` taken in [since, until], in MB (0 if none)."""
        values = [rss for t, rss in self.samples.get(id(agent), []) if since <= t <= until]
        return round(max(values, default=0) / MB, 1)

    def peaks(self, agents: list[Agent]) -> dict[str, float]:
        """Whole-life peak per node of a run, keyed n0, n1, ..."""
        return {f"n{i}": self.peak_mb(agent) for i, agent in enumerate(agents)}

    def count(self) -> int:
        return sum(len(v) for v in self.samples.values())


# -- agents and clusters -----------------------------------------------------------------------


def new_agent(root: Path, env: dict) -> Agent:
    """An agent with the bench timings, registered for RSS sampling and the final stop."""
    agent = Agent(root, config=json.loads(json.dumps(TIMINGS)), env=env, password=PASSWORD)
    SPAWNED.append(agent)
    return agent


def secure_settings(host: str) -> dict:
    """replication.* for wss: a mutual-TLS listener on a free port, the node named `host`."""
    port = free_port(host)
    return {"securePort": port, "hostname": host, "url": f"wss://{host}:{port}"}


def new_cluster(root: Path, size: int, env: dict, transport: str = "ws") -> Cluster:
    """A harness Cluster with the bench timings and environment (not started).

    With transport "wss" every node also listens on its own replication.securePort and
    advertises that as its url, so links between members use mutual TLS.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"transport {transport!r} is not one of {TRANSPORTS}")
    cluster = Cluster(root, size, config=TIMINGS)
    for node in cluster:
        node.extra_env = env
        if transport == "wss":
            node.extra_config["replication"].update(secure_settings(node.host))
        SPAWNED.append(node)
    return cluster


def join_body(peer: Agent) -> dict:
    """add_node for `peer` with its admin credentials: to its wss url (verify_tls false, as a
    first secure join is) when it has one, else to its operations API port."""
    url = peer.extra_config.get("replication", {}).get("url", "")
    body = {
        "operation": "add_node",
        "url": url or peer.ws_url,
        "authorization": {"username": "admin", "password": peer.password},
    }
    if url.startswith("wss://"):
        body["verify_tls"] = False
    return body


def create_table(agent: Agent) -> None:
    """Create db.t with primary key id (dynamic schema, as HarperDB was measured)."""
    client = Client(agent)
    try:
        client.op(
            {"operation": "create_table", "database": DATABASE, "table": TABLE, "primary_key": "id"}
        )
    finally:
        client.close()


def wait_table(agent: Agent, timeout: float = 20.0) -> None:
    """Wait until db.t exists on `agent` (the schema replicated)."""
    client = Client(agent)
    try:
        poll_until(lambda: client.count() >= 0, timeout, COUNT_INTERVAL, "db.t", agent)
    finally:
        client.close()


def boot_cluster(cluster: Cluster) -> dict:
    """Start, create db.t on node 0, join everyone via node 0, wait for db.t everywhere.

    Returns the joins' timings: `add_node_ms`, the longest add_node request, and
    `connected_ms`, from the last add_node's answer until cluster_status (polled every
    LINK_INTERVAL s) shows every node streaming every database from every other one.
    """
    cluster.start()
    hub = cluster[0]
    create_table(hub)
    add_node_s = []
    for node in cluster.nodes[1:]:
        client = Client(node)
        try:
            start = time.perf_counter()
            client.op(join_body(hub))
            answered = time.perf_counter()
            add_node_s.append(answered - start)
        finally:
            client.close()
    connected = poll_until(lambda: meshed(cluster.nodes), 20.0, LINK_INTERVAL, "a full mesh", hub)
    for node in cluster:
        wait_table(node)
    return {
        "add_node_ms": round(max(add_node_s) * 1000, 1),
        "connected_ms": round((connected - answered) * 1000, 1),
    }


def load(agent: Agent, records: int, first_id: int = 1) -> float:
    """Insert `records` into db.t in batches of LOAD_BATCH; return the seconds it took."""
    bodies = insert_bodies(records, LOAD_BATCH, first_id)
    client = Client(agent)
    try:
        return common.timed_requests(client, bodies)[0]
    finally:
        client.close()


class CountWatcher:
    """Poll one node's COUNT(*) every COUNT_INTERVAL s on a thread until it reaches `target`."""

    def __init__(self, agent: Agent, target: int, timeout: float = REPLICATE_TIMEOUT) -> None:
        self.agent = agent
        self.target = target
        self.timeout = timeout
        self.done_at: float | None = None
        self.last = -1
        self.error: Exception | None = None
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="count-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        client = Client(self.agent)
        deadline = time.perf_counter() + self.timeout
        try:
            while not self._halt.is_set() and time.perf_counter() < deadline:
                self.last = client.count()
                if self.last >= self.target:
                    self.done_at = time.perf_counter()
                    return
                self._halt.wait(COUNT_INTERVAL)
        except Exception as exc:  # reported by join()
            self.error = exc
        finally:
            client.close()

    def join(self) -> float:
        """Wait for the thread; return the time the target was seen, or raise."""
        self._thread.join()
        if self.done_at is None:
            raise BenchError(
                f"{self.agent.url} holds {self.last} of {self.target} records"
                f" after {self.timeout}s (error: {self.error})"
            )
        return self.done_at

    def cancel(self) -> None:
        self._halt.set()
        self._thread.join()


# -- scenario: single-node baseline ------------------------------------------------------------


def baseline_run(workdir: Path, env: dict, rss: FleetRss, rep: int) -> dict:
    """One fresh agent alone: THROUGHPUT_RECORDS inserted at batch 1000, same client code."""
    agent = new_agent(workdir / f"baseline-r{rep}", env)
    try:
        agent.start()
        create_table(agent)
        bodies = insert_bodies(THROUGHPUT_RECORDS, BASELINE_BATCH)
        client = Client(agent)
        try:
            elapsed, latencies = common.timed_requests(client, bodies)
            if client.count() != THROUGHPUT_RECORDS:
                raise BenchError("baseline: count mismatch")
        finally:
            client.close()
    finally:
        stop_agents([agent])
    latencies.sort()
    return {
        "records_per_s": round(THROUGHPUT_RECORDS / elapsed, 1),
        "seconds": round(elapsed, 3),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "rss_max_mb": rss.peak_mb(agent),
    }


def run_baseline(workdir: Path, env: dict, rss: FleetRss) -> dict:
    """REPS baseline runs; median and runs."""
    runs = [baseline_run(workdir, env, rss, rep) for rep in range(REPS)]
    return {
        "method": f"1 agent, {THROUGHPUT_RECORDS:,} records at batch {BASELINE_BATCH}, one "
        "keep-alive http.client connection, bodies encoded before the clock",
        "median": summarize(runs, ("records_per_s", "p50_ms")),
        "runs": runs,
    }


# -- scenario 1: replicated throughput ---------------------------------------------------------


def throughput_run(
    workdir: Path, env: dict, rss: FleetRss, size: int, batch: int, rep: int, transport: str = "ws"
) -> dict:
    """Insert THROUGHPUT_RECORDS on node 0; time until every other node holds them all."""
    suffix = "" if transport == "ws" else f"-{transport}"
    cluster = new_cluster(workdir / f"tp-{size}n-b{batch}-r{rep}{suffix}", size, env, transport)
    try:
        join = boot_cluster(cluster)
        bodies = insert_bodies(THROUGHPUT_RECORDS, batch)
        watchers = [CountWatcher(node, THROUGHPUT_RECORDS) for node in cluster.nodes[1:]]
        client = Client(cluster[0])
        try:
            start = time.perf_counter()
            for watcher in watchers:
                watcher.start()
            _, latencies = common.timed_requests(client, bodies)
            acked = time.perf_counter()
            done = {f"n{i + 1}": w.join() - start for i, w in enumerate(watchers)}
        finally:
            client.close()
            for watcher in watchers:
                watcher.cancel()
    finally:
        stop_agents(cluster.nodes)
    replicated_s = max(done.values())
    latencies.sort()
    return {
        "records_per_s": round(THROUGHPUT_RECORDS / replicated_s, 1),
        "insert_records_per_s": round(THROUGHPUT_RECORDS / (acked - start), 1),
        "seconds": round(replicated_s, 3),
        "insert_seconds": round(acked - start, 3),
        "behind_last_ack_s": round(replicated_s - (acked - start), 3),
        "per_node_s": {k: round(v, 3) for k, v in done.items()},
        "insert_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "insert_p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "rss_max_mb": rss.peaks(cluster.nodes),
        "join": join,
    }


def run_throughput(workdir: Path, env: dict, rss: FleetRss, baseline: dict) -> dict:
    """Every (cluster size, batch) cell REPS times."""
    cells = {}
    base = baseline["median"]["records_per_s"]
    for size in SIZES:
        for batch in BATCHES:
            name = f"{size}n_b{batch}"
            print(f"throughput {name}: {REPS} x {THROUGHPUT_RECORDS:,} records ...", flush=True)
            runs = [throughput_run(workdir, env, rss, size, batch, rep) for rep in range(REPS)]
            median = summarize(
                runs, ("records_per_s", "insert_records_per_s", "seconds", "behind_last_ack_s")
            )
            cells[name] = {
                "nodes": size,
                "batch": batch,
                "records": THROUGHPUT_RECORDS,
                "median": median,
                "ratio_to_baseline": round(median["records_per_s"] / base, 3),
                "runs": runs,
            }
    return cells


# -- scenario 2: replication lag ---------------------------------------------------------------


def lag_sample(writer: Client, reader: Client, record_id: int) -> tuple[float, float, list]:
    """Insert one record, then poll search_by_id until visible; return (ack s, lag s, polls)."""
    insert = common.encode(
        {
            "operation": "insert",
            "database": DATABASE,
            "table": TABLE,
            "records": [common.make_record(record_id)],
        }
    )
    search = common.encode(
        {
            "operation": "search_by_id",
            "database": DATABASE,
            "table": TABLE,
            "ids": [record_id],
            "get_attributes": ["id"],
        }
    )
    clock = time.perf_counter
    sent = clock()
    status, raw = writer.post(insert)
    acked = clock()
    if status != 200:
        raise BenchError(f"insert -> {status}: {raw[:300]!r}")
    polls: list[float] = []
    while True:
        asked = clock()
        status, raw = reader.post(search)
        seen = clock()
        polls.append(seen - asked)
        if status == 200 and raw != b"[]":
            return acked - sent, seen - acked, polls
        if seen - acked > LAG_TIMEOUT:
            raise BenchError(f"record {record_id} not visible after {LAG_TIMEOUT}s ({raw[:200]!r})")


def lag_run(workdir: Path, env: dict, rss: FleetRss, rep: int, transport: str = "ws") -> dict:
    """LAG_SAMPLES single inserts spaced to hold LAG_RATE writes/s on a 2-node cluster."""
    suffix = "" if transport == "ws" else f"-{transport}"
    cluster = new_cluster(workdir / f"lag-r{rep}{suffix}", 2, env, transport)
    try:
        join = boot_cluster(cluster)
        writer, reader = Client(cluster[0]), Client(cluster[1])
        try:
            for i in range(LAG_WARMUP):
                lag_sample(writer, reader, 1_000_000 + i)
            acks, lags, polls, first = [], [], [], 0
            spacing = 1.0 / LAG_RATE
            start = time.perf_counter()
            for i in range(LAG_SAMPLES):
                delay = start + i * spacing - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                ack, lag, costs = lag_sample(writer, reader, i + 1)
                acks.append(ack)
                lags.append(lag)
                polls.extend(costs)
                first += len(costs) == 1
            elapsed = time.perf_counter() - start
        finally:
            writer.close()
            reader.close()
    finally:
        stop_agents(cluster.nodes)
    return lag_stats(lags, acks, polls, first, elapsed) | {
        "rss_max_mb": rss.peaks(cluster.nodes),
        "join": join,
    }


def lag_stats(lags: list, acks: list, polls: list, first: int, elapsed: float) -> dict:
    """Percentiles of one lag run, in ms."""
    lags, acks = sorted(lags), sorted(acks)
    ms = 1000
    return {
        "p50_ms": round(percentile(lags, 50) * ms, 3),
        "p90_ms": round(percentile(lags, 90) * ms, 3),
        "p99_ms": round(percentile(lags, 99) * ms, 3),
        "max_ms": round(lags[-1] * ms, 3),
        "first_poll_share": round(first / len(lags), 3),
        "poll_ms": round(statistics.median(polls) * ms, 3),
        "polls_per_sample": round(len(polls) / len(lags), 2),
        "ack_p50_ms": round(percentile(acks, 50) * ms, 3),
        "ack_p99_ms": round(percentile(acks, 99) * ms, 3),
        "writes_per_s": round(len(lags) / elapsed, 1),
    }


def run_lag(workdir: Path, env: dict, rss: FleetRss) -> dict:
    """REPS lag runs; median of each statistic."""
    print(f"lag: {REPS} x {LAG_SAMPLES} samples at {LAG_RATE} writes/s ...", flush=True)
    runs = [lag_run(workdir, env, rss, rep) for rep in range(REPS)]
    keys = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "first_poll_share", "poll_ms")
    return {
        "method": f"{LAG_SAMPLES} single inserts on node 0 (after {LAG_WARMUP} warm-up) "
        f"started every {1000 / LAG_RATE:.0f} ms; lag = insert's 200 to the answer of the "
        "first search_by_id on node 1 that holds the record",
        "median": summarize(runs, (*keys, "ack_p50_ms", "writes_per_s")),
        "runs": runs,
    }


# -- scenario 3: initial sync of a new node ----------------------------------------------------


def sync_run(workdir: Path, env: dict, rss: FleetRss, rep: int) -> dict:
    """Node 0 holds SYNC_RECORDS; a fresh node runs add_node; time until it holds them all."""
    sender = new_agent(workdir / f"sync-r{rep}" / "n0", env)
    fresh = new_agent(workdir / f"sync-r{rep}" / "n1", env)
    try:
        sender.start()
        fresh.start(wait=False)
        create_table(sender)
        load(sender, SYNC_RECORDS)
        fresh.wait_ready()
        client = Client(fresh)
        try:
            start = time.perf_counter()
            client.op(
                {
                    "operation": "add_node",
                    "url": f"ws://{sender.host}:{sender.port}",
                    "authorization": {"username": "admin", "password": sender.password},
                }
            )
            added = time.perf_counter()
            visible: list[float] = []

            def synced() -> bool:
                n = client.count()
                if n >= 0 and not visible:
                    visible.append(time.perf_counter())
                return n >= SYNC_RECORDS

            done = poll_until(synced, REPLICATE_TIMEOUT, COUNT_INTERVAL, "the copy", fresh)
        finally:
            client.close()
        rss.sample()
    finally:
        stop_agents([fresh, sender])
    return {
        "seconds": round(done - start, 3),
        "records_per_s": round(SYNC_RECORDS / (done - start), 1),
        "add_node_ms": round((added - start) * 1000, 1),
        "table_visible_s": round(visible[0] - start, 3),
        "new_node_rss_peak_mb": rss.peak_mb(fresh, start, done + 0.01),
        "sender_rss_peak_mb": rss.peak_mb(sender, start, done + 0.01),
        "sender_rss_before_mb": rss.peak_mb(sender, start - 1.0, start),
        "rss_max_mb": {"n0": rss.peak_mb(sender), "n1": rss.peak_mb(fresh)},
    }


def run_sync(workdir: Path, env: dict, rss: FleetRss) -> dict:
    """REPS initial syncs."""
    print(f"initial sync: {REPS} x {SYNC_RECORDS:,} records ...", flush=True)
    runs = [sync_run(workdir, env, rss, rep) for rep in range(REPS)]
    keys = ("seconds", "records_per_s", "add_node_ms", "table_visible_s")
    return {
        "method": f"node 0 loaded with {SYNC_RECORDS:,} records (batches of {LOAD_BATCH}); a "
        "fresh, running node sends add_node to it; time from the add_node request until "
        f"the new node's COUNT(*) (every {COUNT_INTERVAL * 1000:.0f} ms) shows them all",
        "median": summarize(runs, (*keys, "new_node_rss_peak_mb", "sender_rss_peak_mb")),
        "runs": runs,
    }


# -- scenario 4: catch-up after a restart ------------------------------------------------------


def catchup_run(workdir: Path, env: dict, rss: FleetRss, rep: int) -> dict:
    """Stop node 1, insert CATCHUP_RECORDS on node 0, start node 1; time until it has them."""
    cluster = new_cluster(workdir / f"catchup-r{rep}", 2, env)
    try:
        boot_cluster(cluster)
        node = cluster[1]
        stopped = time.perf_counter()
        node.stop()
        stop_s = time.perf_counter() - stopped
        insert_s = load(cluster[0], CATCHUP_RECORDS)
        start = time.perf_counter()
        node.start(wait=False)
        healthy = poll_until(lambda: common.health_ok(node), 60, HEALTH_INTERVAL, "/health", node)
        client = Client(node)
        try:
            first_count = client.count()
            done = poll_until(
                lambda: client.count() >= CATCHUP_RECORDS,
                REPLICATE_TIMEOUT,
                COUNT_INTERVAL,
                "the catch-up",
                node,
            )
        finally:
            client.close()
    finally:
        stop_agents(cluster.nodes)
    return {
        "seconds": round(done - start, 3),
        "records_per_s": round(CATCHUP_RECORDS / (done - start), 1),
        "health_s": round(healthy - start, 3),
        "count_at_health": first_count,
        "stop_s": round(stop_s, 3),
        "insert_s": round(insert_s, 3),
        "restarted_rss_peak_mb": rss.peak_mb(node, start, done + 0.01),
        "rss_max_mb": rss.peaks(cluster.nodes),
    }


def run_catchup(workdir: Path, env: dict, rss: FleetRss) -> dict:
    """REPS catch-ups."""
    print(f"catch-up: {REPS} x {CATCHUP_RECORDS:,} records ...", flush=True)
    runs = [catchup_run(workdir, env, rss, rep) for rep in range(REPS)]
    return {
        "method": f"2 nodes joined; SIGTERM node 1; {CATCHUP_RECORDS:,} records inserted on node "
        f"0 in batches of {LOAD_BATCH}; node 1 spawned again; time from the spawn until its "
        "COUNT(*) shows them all (/health polled every 5 ms first)",
        "median": summarize(
            runs, ("seconds", "records_per_s", "health_s", "restarted_rss_peak_mb")
        ),
        "runs": runs,
    }


# -- targets and output ------------------------------------------------------------------------


def rss_overview(measured: dict, rss: FleetRss) -> dict:
    """Max RSS per scenario and node over its runs, and over the whole bench."""
    scenarios: dict[str, dict[str, float]] = {}

    def fold(name: str, runs: list[dict]) -> None:
        out = scenarios.setdefault(name, {})
        for run in runs:
            for node, mb in run["rss_max_mb"].items():
                out[node] = max(out.get(node, 0.0), mb)

    fold(
        "baseline", [{"rss_max_mb": {"n0": r["rss_max_mb"]}} for r in measured["baseline"]["runs"]]
    )
    for name, cell in measured["throughput"].items():
        fold(f"throughput_{name}", cell["runs"])
    for name in ("lag", "sync", "catchup"):
        fold(name, measured[name]["runs"])
    overall = max((mb for nodes in scenarios.values() for mb in nodes.values()), default=0.0)
    return {
        "interval_s": rss.interval,
        "samples": rss.count(),
        "max_mb": overall,
        "by_scenario": scenarios,
    }


def target_values(measured: dict, rss: dict) -> dict[str, float]:
    """Pick the measured value each target is judged on."""
    tp = measured["throughput"]
    return {
        "replicated_2n_b1000_rec_s": tp["2n_b1000"]["median"]["records_per_s"],
        "replicated_3n_b1000_rec_s": tp["3n_b1000"]["median"]["records_per_s"],
        "lag_p50_ms": measured["lag"]["median"]["p50_ms"],
        "lag_p99_ms": measured["lag"]["median"]["p99_ms"],
        "sync_s": measured["sync"]["median"]["seconds"],
        "catchup_s": measured["catchup"]["median"]["seconds"],
        "rss_max_mb": rss["max_mb"],
    }


def runs_of(runs: list[dict], key: str, fmt: Callable[[float], str] = fmt_rate) -> str:
    return "[" + " ".join(fmt(r[key]) for r in runs) + "]"


def seconds(value: float) -> str:
    return f"{value:.2f}"


def print_throughput(result: dict) -> None:
    """The throughput table, with the baseline line above it."""
    base = result["baseline"]
    print(
        f"baseline, 1 agent alone, batch {BASELINE_BATCH}: "
        f"{fmt_rate(base['median']['records_per_s'])} rec/s "
        f"{runs_of(base['runs'], 'records_per_s')}"
    )
    header = (
        f"{'cell':<11}{'replicated':>11}  {'runs':<24}{'x base':>7}{'insert':>9}"
        f"{'behind ack':>12}{'ins p50':>9}"
    )
    print(f"\nreplicated throughput ({THROUGHPUT_RECORDS:,} records, rec/s; behind ack in s)")
    print(header)
    print("-" * len(header))
    for name, cell in result["throughput"].items():
        med = cell["median"]
        p50 = statistics.median(r["insert_p50_ms"] for r in cell["runs"])
        print(
            f"{name:<11}{fmt_rate(med['records_per_s']):>11}  "
            f"{runs_of(cell['runs'], 'records_per_s'):<24}{cell['ratio_to_baseline']:>7.3f}"
            f"{fmt_rate(med['insert_records_per_s']):>9}{med['behind_last_ack_s']:>12.2f}"
            f"{p50:>7.1f}ms"
        )
    print(f"  HarperDB 4.7: {HARPERDB_47['replicated_rec_s']}")


def print_scenarios(result: dict) -> None:
    """Lag, sync and catch-up lines."""
    lag = result["lag"]
    med = lag["median"]
    print(
        f"\nlag at {LAG_RATE} writes/s ({LAG_SAMPLES} samples/run): p50 {med['p50_ms']:.2f} ms "
        f"{runs_of(lag['runs'], 'p50_ms', lambda v: f'{v:.2f}')}, p90 {med['p90_ms']:.2f}, "
        f"p99 {med['p99_ms']:.2f} {runs_of(lag['runs'], 'p99_ms', lambda v: f'{v:.2f}')}, "
        f"max {med['max_ms']:.1f} ms; first poll {med['first_poll_share']:.0%}; "
        f"poll {med['poll_ms']:.2f} ms; insert ack p50 {med['ack_p50_ms']:.2f} ms; "
        f"{med['writes_per_s']:.0f} writes/s held"
    )
    print(f"  HarperDB 4.7: {HARPERDB_47['lag']}")
    sync = result["sync"]
    med = sync["median"]
    print(
        f"\ninitial sync of {SYNC_RECORDS:,}: {med['seconds']:.2f} s "
        f"{runs_of(sync['runs'], 'seconds', seconds)} = {fmt_rate(med['records_per_s'])} rec/s; "
        f"add_node {med['add_node_ms']:.0f} ms, table visible {med['table_visible_s']:.2f} s; "
        f"peak RSS new node {med['new_node_rss_peak_mb']} MB, sender {med['sender_rss_peak_mb']} MB"
    )
    print(f"  HarperDB 4.7: {HARPERDB_47['initial_sync_100k_s']}")
    cu = result["catchup"]
    med = cu["median"]
    print(
        f"\ncatch-up of {CATCHUP_RECORDS:,} from spawn: {med['seconds']:.2f} s "
        f"{runs_of(cu['runs'], 'seconds', seconds)}; /health first answered after "
        f"{med['health_s']:.2f} s {runs_of(cu['runs'], 'health_s', seconds)} holding "
        f"{runs_of(cu['runs'], 'count_at_health')} records; peak RSS "
        f"{med['restarted_rss_peak_mb']} MB"
    )
    print(f"  HarperDB 4.7: {HARPERDB_47['catchup_50k_s']}")


def print_rss(rss: dict) -> None:
    """Max RSS per scenario and node."""
    print(
        f"\nRSS max per scenario and node, MB "
        f"({rss['samples']} samples every {rss['interval_s']} s)"
    )
    for name, nodes in rss["by_scenario"].items():
        cells = "  ".join(f"{node} {mb:>6.1f}" for node, mb in nodes.items())
        print(f"  {name:<22}{cells}")
    print(f"  HarperDB 4.7: {HARPERDB_47['rss_mb']}")


def print_summary(result: dict) -> None:
    """Print the results as plain text."""
    m = result["machine"]
    mode = "QUICK (1 rep, 10x smaller)" if result["quick"] else "full"
    print(f"\nharperctl replication benchmark, {mode}, REPS={REPS}, {result['when']}")
    print(
        f"machine: {m['cpu_count']} CPUs, Python {m['python']}, load average "
        f"{m['loadavg_at_start'][0]} at start, {m['loadavg_at_end'][0]} at end\n"
    )
    print_throughput(result)
    print_scenarios(result)
    print_rss(result["rss"])
    print("\ntargets:" + (" (QUICK sizes: not comparable)" if result["quick"] else ""))
    common.print_targets(result["targets"], 40, 15)


# -- the run -----------------------------------------------------------------------------------


def measure(workdir: Path, env: dict, rss: FleetRss) -> dict:
    """Every scenario in turn."""
    print(f"baseline: {REPS} x {THROUGHPUT_RECORDS:,} records on one agent ...", flush=True)
    baseline = run_baseline(workdir, env, rss)
    return {
        "baseline": baseline,
        "throughput": run_throughput(workdir, env, rss, baseline),
        "lag": run_lag(workdir, env, rss),
        "sync": run_sync(workdir, env, rss),
        "catchup": run_catchup(workdir, env, rss),
    }


def main() -> int:
    load_at_start = common.loadavg()
    workdir = common.make_workdir("harper-repl-")
    env = common.agent_env(workdir)
    rss = FleetRss()
    print(f"workdir {workdir}", flush=True)
    try:
        common.warm_bytecode(new_agent(workdir / "warmup", env))
        rss.start()
        measured = measure(workdir, env, rss)
    finally:
        rss.stop()
        stop_agents(SPAWNED)
        common.remove_workdir(workdir)
    rss_report = rss_overview(measured, rss)
    result = {
        **common.result_head(load_at_start),
        "timings": TIMINGS,
        **measured,
        "rss": rss_report,
    }
    values = target_values(measured, rss_report)
    return common.finish(result, TARGETS, values, ",", HARPERDB_47, print_summary, RESULTS)


if __name__ == "__main__":
    sys.exit(main())
