"""GET /metrics (agent/ops/metrics.py): the exposition parsed back with prometheus_client."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families

from agent.core import messages as m
from agent.core.subscription import Publisher, Subscriber
from agent.ops import metrics
from agent.ops.registry import load_handlers
from agent.replication.link import SubscriberLink
from agent.replication.peers import Peer

load_handlers()  # operation names are labels only once registered

STATUS = {  # the parts of a cluster_status answer /metrics reads
    "connections": [
        {
            "name": 'odd"peer\\\n',
            "database_sockets": [
                {
                    "database": "dev",
                    "connected": True,
                    "gaps": 2,
                    "clockRefusals": 1,
                    "latency": 1.5,
                    "clockOffsetMs": -250.0,
                    "behind": [{"origin": "n3", "records": 7, "seconds": 1.25}],
                    "copy": {"state": "copying", "copied": 40, "total": 100},
                },
                {
                    "database": "ops",
                    "connected": False,
                    "gaps": 0,
                    "latency": None,
                    "clockOffsetMs": None,
                    "behind": None,
                    "copy": None,
                },
            ],
        }
    ],
    "origins": {"dev": [{"origin": "n3", "unserved": True}, {"origin": "n4", "unserved": False}]},
    "antiEntropy": {"checks": 4, "repairedRows": 1, "cpuSeconds": 0.25},
    "verify": {"at": 1700000000.0, "agreed": False, "divergent": 3, "repaired": None},
}
MOVED = [
    {"direction": "in", "peer": "n2", "database": "dev", "records": 10, "transactions": 4},
    {"direction": "out", "peer": "n2", "database": "dev", "records": 6, "transactions": 2},
]


def scrape(m: metrics.Metrics, status=STATUS, moved=MOVED, accept=None) -> dict:
    """Render, parse back with prometheus_client's parser, and index the samples."""
    body, content_type = m.render(status, moved, accept)
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = (family.type, s.value)
    return samples


def value(samples: dict, name: str, **labels) -> float:
    """Return the sample with exactly these labels."""
    return samples[(name, tuple(sorted(labels.items())))][1]


def kind(samples: dict, name: str) -> str:
    """Return the type of the family a sample belongs to."""
    return next(t for (n, _), (t, _v) in samples.items() if n == name)


def test_link_state_behind_copy_and_clock_per_peer_and_database() -> None:
    s = scrape(metrics.Metrics(started=0.0))
    peer = 'odd"peer\\\n'  # escaped in the text, unescaped by the parser
    assert value(s, "harper_up") == 1 and value(s, "harper_uptime_seconds") > 0
    assert value(s, "harper_replication_connected", peer=peer, database="dev") == 1
    assert value(s, "harper_replication_connected", peer=peer, database="ops") == 0
    assert value(s, "harper_replication_gaps_total", peer=peer, database="dev") == 2
    assert kind(s, "harper_replication_gaps_total") == "counter"
    assert value(s, "harper_replication_clock_refusals_total", peer=peer, database="dev") == 1
    assert value(s, "harper_replication_clock_refusals_total", peer=peer, database="ops") == 0
    assert value(s, "harper_replication_latency_seconds", peer=peer, database="dev") == 0.0015
    assert value(s, "harper_replication_clock_offset_seconds", peer=peer, database="dev") == -0.25
    behind = {"peer": peer, "database": "dev", "origin": "n3"}
    assert value(s, "harper_replication_records_behind", **behind) == 7
    assert value(s, "harper_replication_behind_seconds", **behind) == 1.25
    assert value(s, "harper_replication_copying", peer=peer, database="dev") == 1
    assert value(s, "harper_replication_copy_copied_records", peer=peer, database="dev") == 40
    assert value(s, "harper_replication_copy_total_records", peer=peer, database="dev") == 100
    # a down link shows no latency, offset, backlog or copy (nothing stale)
    names = {n for (n, labels) in s if ("database", "ops") in labels}
    assert names == {
        "harper_replication_connected",
        "harper_replication_gaps_total",
        "harper_replication_clock_refusals_total",
    }
    assert value(s, "harper_replication_origin_unserved", database="dev", origin="n3") == 1
    assert value(s, "harper_replication_origin_unserved", database="dev", origin="n4") == 0


def test_replicated_traffic_in_and_out_as_counters() -> None:
    s = scrape(metrics.Metrics(started=0.0))
    link = {"peer": "n2", "database": "dev"}
    assert value(s, "harper_replication_records_received_total", **link) == 10
    assert value(s, "harper_replication_transactions_received_total", **link) == 4
    assert value(s, "harper_replication_records_sent_total", **link) == 6
    assert value(s, "harper_replication_transactions_sent_total", **link) == 2
    assert kind(s, "harper_replication_records_sent_total") == "counter"


def test_verify_counters_and_the_last_run() -> None:
    s = scrape(metrics.Metrics(started=0.0))
    assert value(s, "harper_verify_checks_total") == 4
    assert value(s, "harper_verify_repaired_rows_total") == 1
    assert value(s, "harper_verify_cpu_seconds_total") == 0.25
    assert value(s, "harper_verify_bytes_total") == 0  # absent from the answer: 0
    assert kind(s, "harper_verify_checks_total") == "counter"
    assert value(s, "harper_verify_last_agreed") == 0
    assert value(s, "harper_verify_last_timestamp_seconds") == 1700000000.0
    assert value(s, "harper_verify_last_divergent_keys") == 3
    assert ("harper_verify_last_repaired_rows", ()) not in s  # not a repair run
    s = scrape(metrics.Metrics(started=0.0), {**STATUS, "verify": None})
    assert not any(n.startswith("harper_verify_last") for n, _ in s)


def test_without_replication_only_the_process() -> None:
    m = metrics.Metrics(started=0.0)
    names = {name for name, _ in scrape(m, None, [])}
    assert {"harper_up", "harper_uptime_seconds"} <= names
    assert not any(n.startswith(("harper_replication", "harper_verify")) for n in names)


def test_operations_counted_by_name_and_status_and_timed() -> None:
    m = metrics.Metrics(started=0.0)
    m.operation_done("insert", 200, 0.003)
    m.operation_done("insert", 200, 0.2)
    m.operation_done("insert", 400, 0.001)
    m.operation_done("drop_everything_now", 400, 0.001)  # a client's string: never a label
    m.operation_done(None, 401, 0.001)  # refused before the body was read
    m.operation_done("search_by_value", None, 0.5)  # ended without an answer
    s = scrape(m, None, [])
    assert value(s, "harper_operations_total", operation="insert", status="200") == 2
    assert value(s, "harper_operations_total", operation="insert", status="400") == 1
    assert value(s, "harper_operations_total", operation="unknown", status="400") == 1
    assert value(s, "harper_operations_total", operation="unknown", status="401") == 1
    assert value(s, "harper_operations_total", operation="search_by_value", status="aborted") == 1
    assert not any("drop_everything_now" in str(labels) for _, labels in s)
    assert kind(s, "harper_operation_duration_seconds_bucket") == "histogram"
    bucket = "harper_operation_duration_seconds_bucket"
    assert value(s, bucket, operation="insert", le="0.001") == 1
    assert value(s, bucket, operation="insert", le="0.005") == 2
    assert value(s, bucket, operation="insert", le="10.0") == 3
    assert value(s, "harper_operation_duration_seconds_count", operation="insert") == 3
    assert value(s, "harper_operation_duration_seconds_sum", operation="insert") == pytest.approx(
        0.204
    )
    assert not any(n.endswith("_created") for n, _ in s)


def test_records_written_and_read_from_the_answers() -> None:
    m = metrics.Metrics(started=0.0)
    m.answered("insert", {"database": "dev"}, {"inserted_hashes": [1, 2, 3], "skipped_hashes": [4]})
    m.answered("upsert", {"schema": "dev"}, {"upserted_hashes": [1]})
    m.answered("delete", {}, {"deleted_hashes": [9], "skipped_hashes": []})
    part = {"operation": "update", "database": "dev"}
    result = {"results": [{"update_hashes": [1, 2]}, {"deleted_hashes": [5]}]}
    m.answered("transaction", {"operations": [part, part]}, result)
    m.answered("sql", {"sql": "UPDATE dev.dog SET a = 1"}, {"update_hashes": [7]})
    m.answered("search_by_value", {"database": "dev"}, [{"id": 1}, {"id": 2}])
    m.answered("sql", {"sql": "SELECT * FROM dev.dog"}, [{"id": 1}])
    m.answered("describe_all", {}, {"dev": {}})  # neither a read nor a write of records
    s = scrape(m, None, [])
    written = "harper_records_written_total"
    assert value(s, written, database="dev", kind="insert") == 3  # skipped ones not counted
    assert value(s, written, database="dev", kind="upsert") == 1
    assert value(s, written, database="data", kind="delete") == 1  # HarperDB's default database
    assert value(s, written, database="dev", kind="update") == 2
    assert value(s, written, database="dev", kind="delete") == 1
    assert value(s, written, database="", kind="update") == 1  # sql: database not parsed again
    read = "harper_records_read_total"
    assert value(s, read, database="dev", operation="search_by_value") == 2
    assert value(s, read, database="", operation="sql") == 1
    assert sum(v for (n, _), (_t, v) in s.items() if n == read) == 3


def test_each_services_has_its_own_registry() -> None:
    one = SimpleNamespace(started=0.0, extra={})
    two = SimpleNamespace(started=0.0, extra={})
    assert metrics.of(one) is metrics.of(one)
    metrics.of(one).operation_done("insert", 200, 0.01)
    s = scrape(metrics.of(two), None, [])
    assert not any(n == "harper_operations_total" for n, _ in s)


def test_openmetrics_for_a_scraper_that_asks_for_it() -> None:
    m = metrics.Metrics(started=0.0)
    m.operation_done("insert", 200, 0.01)
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    body, content_type = m.render(STATUS, MOVED, accept)
    assert content_type.startswith("application/openmetrics-text")
    parsed = {f.name: f for f in om_families(body.decode())}
    assert parsed["harper_operations"].type == "counter"
    assert parsed["harper_replication_connected"].samples[0].value == 1


def publisher(peer: str | None, chunks: list[int], txns: list[int]) -> Publisher:
    """A publishing machine that served `peer` copy chunks and transactions of these sizes."""
    pub = Publisher("me", ["dev"])
    if peer is not None:  # else: no Hello yet, so no peer to name
        pub.receive(m.Hello(peer, "dev", {}, f"{peer}-id"), 0.0)
        pub.plan_subscription(m.Subscribe({}, ["me-id"], None, 0, {}), {}, False)
    for records in chunks:
        pub.chunk_sent(records)
    for seq, records in enumerate(txns, 1):
        pub.txn(seq, "me", "me-id", seq, seq, records, 0.0, b"")
    return pub


def test_traffic_sums_each_direction_per_peer_and_database() -> None:
    sub = Subscriber("me", "dev", "n2")
    sub.applied(0, 40, 0.0)  # a copy chunk
    sub.applied(1, 3, 0.0)
    sub.applied(2, 0, 0.0)  # a schema-only transaction
    peer = Peer("ws://n2:9925", "n2")
    peer.links["dev"] = SubscriberLink(None, peer, "dev")
    peer.links["dev"].machine = sub
    peer.links["ops"] = SubscriberLink(None, peer, "ops")  # never dialled: no machine
    sessions = [  # two while a reconnect overlaps, one before its Hello
        publisher("n2", [100], [2, 0]),
        publisher("n2", [], [5]),
        publisher(None, [9], []),
    ]
    replicator = SimpleNamespace(
        peers={"n2": peer}, publishers=[SimpleNamespace(machine=p) for p in sessions]
    )
    assert metrics.traffic(replicator) == [
        {"direction": "in", "peer": "n2", "database": "dev", "records": 43, "transactions": 2},
        {"direction": "out", "peer": "n2", "database": "dev", "records": 107, "transactions": 3},
    ]
