"""GET /metrics: this node's numbers for Prometheus, through prometheus_client.

The only importer of prometheus_client. Every Services gets its own CollectorRegistry (`of`),
never the library's global one: tests run several agents in one process and a global registry
would mix their figures. Two kinds of figures:

- recorded as they happen, by the operations server: operations by name and HTTP status,
  their latency, records written and records read (`Metrics.operation_done`, `answered`);
- read at scrape time by `LiveState`, a Collector: link state, replication traffic, copy
  progress, gaps, clock offset, unserved origins and verify counters, from cluster_status's
  answer and the links' counters (`traffic`), plus up and uptime.

Numbers only (no rows, no credentials), so it answers without credentials like /health.
Label values are bounded: operation names come from the registry (anything else is "unknown")
and databases are named only for operations that succeeded on them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.ops.registry import OPERATIONS

# Latency buckets, seconds: 1 ms .. 10 s (slower ones land in +Inf).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
READS = frozenset({"search_by_id", "search_by_hash", "search_by_value", "search_by_conditions"})
WRITTEN = {  # key of a write's answer listing what it wrote -> the kind of write
    "inserted_hashes": "insert",
    "update_hashes": "update",
    "upserted_hashes": "upsert",
    "deleted_hashes": "delete",
}
UNKNOWN = "unknown"
OPERATION_KEY = "harper.operation"  # where the server notes, on the request, which operation ran

LINK = ("peer", "database")
ORIGIN = ("peer", "database", "origin")
# The live families: (key, name, type, help, labels). DESIGN.md lists the same.
LIVE = (
    ("connected", "harper_replication_connected", "gauge", "1 while the link streams.", LINK),
    ("gaps", "harper_replication_gaps_total", "counter", "Gaps refused on the link.", LINK),
    (
        "refusals",
        "harper_replication_clock_refusals_total",
        "counter",
        "Transactions refused by the clock guard.",
        LINK,
    ),
    ("latency", "harper_replication_latency_seconds", "gauge", "Ping round trip.", LINK),
    (
        "offset",
        "harper_replication_clock_offset_seconds",
        "gauge",
        "The peer's clock minus this node's.",
        LINK,
    ),
    ("behind", "harper_replication_records_behind", "gauge", "Records not applied yet.", ORIGIN),
    (
        "behind_s",
        "harper_replication_behind_seconds",
        "gauge",
        "Age of the oldest record not applied yet.",
        ORIGIN,
    ),
    ("copying", "harper_replication_copying", "gauge", "1 while a copy runs.", LINK),
    (
        "copied",
        "harper_replication_copy_copied_records",
        "gauge",
        "Records of the last copy received.",
        LINK,
    ),
    (
        "copy_total",
        "harper_replication_copy_total_records",
        "gauge",
        "Records the last copy holds in all.",
        LINK,
    ),
    (
        "unserved",
        "harper_replication_origin_unserved",
        "gauge",
        "1 when no link brings this origin's writes.",
        ("database", "origin"),
    ),
)
# Per link and direction (in: applied from the peer; out: sent to it), counted in the link's
# current session: a reconnect starts them again at 0, a counter reset.
TRAFFIC = (  # (direction, traffic key, metric, help)
    (
        "in",
        "records",
        "harper_replication_records_received_total",
        "Records applied from the peer.",
    ),
    (
        "in",
        "transactions",
        "harper_replication_transactions_received_total",
        "Txns applied from it.",
    ),
    ("out", "records", "harper_replication_records_sent_total", "Records sent to the peer."),
    ("out", "transactions", "harper_replication_transactions_sent_total", "Txns sent to it."),
)
VERIFY = (  # (metric, antiEntropy key, help)
    ("harper_verify_checks_total", "checks", "Background verify checks completed."),
    ("harper_verify_divergent_keys_total", "divergentKeys", "Keys found apart."),
    ("harper_verify_repaired_rows_total", "repairedRows", "Rows repaired."),
    ("harper_verify_errors_total", "errors", "Checks that failed (peer away)."),
    ("harper_verify_deferred_total", "deferred", "Turns skipped: budget spent."),
    ("harper_verify_cpu_seconds_total", "cpuSeconds", "CPU spent on verify work."),
    ("harper_verify_bytes_total", "bytes", "Bytes exchanged by checks."),
)
LAST_VERIFY = (  # (metric, last_verify key, help): the last cluster_verify run on this node
    ("harper_verify_last_agreed", "agreed", "1 if every node agreed."),
    ("harper_verify_last_timestamp_seconds", "at", "When it finished."),
    ("harper_verify_last_divergent_keys", "divergent", "Keys found apart."),
    ("harper_verify_last_repaired_rows", "repaired", "Rows it repaired (repair runs only)."),
)


def of(services: Any) -> Metrics:
    """Return the Metrics of this Services (one per node), made on first use."""
    found = services.extra.get("metrics")
    if found is None:
        found = services.extra["metrics"] = Metrics(services.started)
    return found


class Metrics:
    """One node's registry: operation instruments, and the live state collected at scrape."""

    def __init__(self, started: float) -> None:
        # _created series would double every counter in the text format for little use
        prometheus_client.disable_created_metrics()
        self.registry = CollectorRegistry()
        reg = self.registry
        self.operations = Counter(
            "harper_operations_total",
            "Operations answered, by operation and HTTP status.",
            ("operation", "status"),
            registry=reg,
        )
        self.duration = Histogram(
            "harper_operation_duration_seconds",
            "Time from the request's arrival to its answer, by operation.",
            ("operation",),
            buckets=BUCKETS,
            registry=reg,
        )
        self.written = Counter(
            "harper_records_written_total",
            "Records written by operations here (not replication), by database and kind.",
            ("database", "kind"),
            registry=reg,
        )
        self.read = Counter(
            "harper_records_read_total",
            "Records returned by reads, by database (empty for sql) and operation.",
            ("database", "operation"),
            registry=reg,
        )
        self.live = LiveState(started)
        reg.register(self.live)

    def operation_done(self, operation: str | None, status: int | None, seconds: float) -> None:
        """Count one answered operation (`status` None: it ended without an answer)."""
        name = operation if operation in OPERATIONS else UNKNOWN
        self.operations.labels(name, str(status) if status else "aborted").inc()
        self.duration.labels(name).observe(seconds)

    def answered(self, operation: str, body: Any, result: Any) -> None:
        """Count the records a successful operation wrote or returned (from its answer)."""
        if operation in READS or operation == "sql":
            if isinstance(result, list):
                self.read.labels(_database(body, operation), operation).inc(len(result))
                return
        if not isinstance(result, dict):
            return
        if operation == "transaction":
            parts = body.get("operations") or [{}]
            database = _database(parts[0] if isinstance(parts[0], dict) else {}, operation)
            for part in result.get("results") or ():
                self._wrote(database, part)
        elif operation in ("insert", "update", "upsert", "delete", "sql"):
            self._wrote(_database(body, operation), result)

    def _wrote(self, database: str, answer: Any) -> None:
        """Count one write's records from the list of keys its answer names."""
        if not isinstance(answer, dict):
            return
        for key, kind in WRITTEN.items():
            done = answer.get(key)
            if isinstance(done, list) and done:
                self.written.labels(database, kind).inc(len(done))

    def render(self, status: dict | None, moved: list[dict], accept: str | None) -> tuple:
        """Return (body, content type) for a scrape that sent `accept` as its Accept header.

        `status` is cluster_status's answer (None without replication) and `moved` is
        `traffic()`; both are handed to the live collector for this one synchronous pass, so
        no other scrape can interleave.
        """
        encode, content_type = choose_encoder(accept or "")
        self.live.snapshot = (status, moved)
        try:
            return encode(self.registry), content_type
        finally:
            self.live.snapshot = None


def _database(body: Any, operation: str) -> str:
    """The database a successful operation ran on: its body's, HarperDB's default "data"
    (sql names it inside the statement, which is not parsed a second time: empty)."""
    if operation == "sql" or not isinstance(body, dict):
        return ""
    name = body.get("database", body.get("schema"))
    return name if isinstance(name, str) and name else "data"


class LiveState:
    """A Collector answering from the state handed over for one scrape (see Metrics.render)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.snapshot: tuple[dict | None, list[dict]] | None = None

    def collect(self) -> Iterator[Metric]:
        """Yield up, uptime, and (with replication) the link and verify families."""
        yield GaugeMetricFamily("harper_up", "The agent answers.", value=1)
        uptime = max(0.0, time.time() - self.started)
        yield GaugeMetricFamily("harper_uptime_seconds", "Seconds since start.", value=uptime)
        status, moved = self.snapshot or (None, [])
        if status is not None:
            yield from families(status, moved)


def families(status: dict, moved: list[dict]) -> Iterator[Metric]:
    """Build the replication and verify families from cluster_status's answer and traffic."""
    found = {key: _family(kind, name, help_, labels) for key, name, kind, help_, labels in LIVE}
    for conn in status.get("connections") or ():
        for socket in conn.get("database_sockets") or ():
            _socket(found, [str(conn.get("name")), str(socket.get("database"))], socket)
    for database, origins in (status.get("origins") or {}).items():
        for origin in origins:
            found["unserved"].add_metric(
                [database, str(origin["origin"])], 1 if origin.get("unserved") else 0
            )
    yield from found.values()
    yield from _traffic(moved)
    yield from _verify(status)


def _family(kind: str, name: str, help_: str, labels: Iterable[str] | None = None) -> Metric:
    """Return an empty gauge or counter family to add samples to."""
    maker = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
    return maker(name, help_, labels=labels)


def _socket(found: dict[str, Metric], key: list[str], socket: dict) -> None:
    """Add one (peer, database) link's samples; a down link has no latency, offset or lag."""
    found["connected"].add_metric(key, 1 if socket.get("connected") else 0)
    found["gaps"].add_metric(key, socket.get("gaps") or 0)
    found["refusals"].add_metric(key, socket.get("clockRefusals") or 0)
    if socket.get("latency") is not None:
        found["latency"].add_metric(key, socket["latency"] / 1000.0)
    if socket.get("clockOffsetMs") is not None:
        found["offset"].add_metric(key, socket["clockOffsetMs"] / 1000.0)
    for behind in socket.get("behind") or ():
        labels = [*key, str(behind["origin"])]
        found["behind"].add_metric(labels, behind["records"])
        found["behind_s"].add_metric(labels, behind["seconds"])
    copy = socket.get("copy")
    if copy:
        found["copying"].add_metric(key, 1 if copy.get("state") == "copying" else 0)
        found["copied"].add_metric(key, copy.get("copied") or 0)
        found["copy_total"].add_metric(key, copy.get("total") or 0)


def _traffic(moved: list[dict]) -> Iterator[Metric]:
    """Replicated records and transactions in and out, per peer and database."""
    for direction, field, name, help_ in TRAFFIC:
        family = CounterMetricFamily(name, help_, labels=LINK)
        for row in moved:
            if row["direction"] == direction:
                family.add_metric([row["peer"], row["database"]], row[field])
        yield family


def _verify(status: dict) -> Iterator[Metric]:
    """The background pass's counters and the last cluster_verify run here."""
    passes = status.get("antiEntropy") or {}
    for name, key, help_ in VERIFY:
        yield CounterMetricFamily(name, help_, value=passes.get(key) or 0)
    last = status.get("verify")
    if not last:
        return
    for name, key, help_ in LAST_VERIFY:
        value = last.get(key)
        if value is not None:
            yield GaugeMetricFamily(name, f"Last cluster_verify here: {help_}", value=float(value))


def traffic(replicator: Any) -> list[dict]:
    """Records and transactions each link moved in its current session, both directions.

    cluster_status shows only recordsReceived; these come from the same counters of the
    links' protocol machines (LinkStats). A machine lives for one session, so a reconnect
    starts them again at 0 (a counter reset, which Prometheus' rate() allows for).
    """
    sums: dict[tuple[str, str, str], list[int]] = {}

    def add(direction: str, peer: str | None, database: str | None, stats: Any) -> None:
        """Add one machine's counts (none before its Hello named the peer)."""
        if peer and database:
            row = sums.setdefault((direction, peer, database), [0, 0])
            row[0] += stats.records
            row[1] += stats.transactions

    for peer in list(replicator.peers.values()):
        for database, link in list(peer.links.items()):
            if link.machine is not None:
                add("in", peer.key, database, link.machine.stats)
    for session in list(replicator.publishers):  # two while a reconnect overlaps: summed
        machine = session.machine
        add("out", machine.peer, machine.database, machine.stats)
    return [
        {"direction": d, "peer": p, "database": db, "records": r, "transactions": t}
        for (d, p, db), (r, t) in sorted(sums.items())
    ]
