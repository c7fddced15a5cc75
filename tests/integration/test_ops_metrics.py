"""GET /metrics on two real joined agents, parsed with prometheus_client's parser: operations
and records counted where they happen, replication in on the receiver and out on the sender,
and a SIGKILLed peer's link shown down on the survivor."""

from __future__ import annotations

from harness import Agent, Cluster, count, wait_for
from prometheus_client.parser import text_string_to_metric_families

FAST = {"replication": {"pingInterval": "300ms", "pingTimeout": "2s", "stallTimeout": "2s"}}
DOGS = 25


def scrape(node: Agent) -> dict:
    """Fetch /metrics without credentials; return {(name, labels): value}."""
    resp = node.session.get(node.url + "/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert node.password not in resp.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float | None:
    """Return the sample with exactly these labels, None when absent."""
    return samples.get((name, tuple(sorted(labels.items()))))


def test_operations_writes_and_replication_counted_and_a_lost_peer_shown(tmp_path):
    cluster = Cluster(tmp_path, 2, config=FAST).start()
    try:
        a, b = cluster
        a.op({"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"})
        cluster.join()
        records = [{"id": i, "name": f"dog{i}"} for i in range(DOGS)]
        a.op({"operation": "insert", "database": "dev", "table": "dog", "records": records})
        found = a.op(
            {"operation": "search_by_value", "database": "dev", "table": "dog"}
            | {"attribute": "id", "value": "*"}
        )
        assert len(found) == DOGS
        assert a.request({"operation": "no_such_operation"})[0] == 400
        wait_for(lambda: count(b, "dev", "dog") == DOGS, 10, what="the dogs on b")

        s = scrape(a)
        assert value(s, "harper_up") == 1
        assert value(s, "harper_operations_total", operation="insert", status="200") == 1
        assert value(s, "harper_operations_total", operation="unknown", status="400") == 1
        assert value(s, "harper_operation_duration_seconds_count", operation="insert") == 1
        assert value(s, "harper_records_written_total", database="dev", kind="insert") == DOGS
        read = value(s, "harper_records_read_total", database="dev", operation="search_by_value")
        assert read == DOGS
        link = {"peer": b.host, "database": "dev"}
        assert value(s, "harper_replication_connected", **link) == 1
        assert value(s, "harper_replication_records_sent_total", **link) == DOGS
        assert value(s, "harper_replication_transactions_sent_total", **link) == 1

        back = {"peer": a.host, "database": "dev"}

        def b_received_all() -> dict | None:
            """Return b's samples once it counts records received from a."""
            s = scrape(b)
            return s if value(s, "harper_replication_records_received_total", **back) else None

        s = wait_for(b_received_all, 10, what="b counting the dogs it received")
        assert value(s, "harper_replication_records_received_total", **back) == DOGS
        assert value(s, "harper_replication_transactions_received_total", **back) == 1
        assert value(s, "harper_replication_connected", **back) == 1
        assert value(s, "harper_records_written_total", database="dev", kind="insert") is None

        b.kill()
        wait_for(
            lambda: value(scrape(a), "harper_replication_connected", **link) == 0,
            15,
            0.2,
            what="a showing the link to the killed b down",
        )
        s = scrape(a)
        assert value(s, "harper_replication_latency_seconds", **link) is None  # nothing stale
        assert value(s, "harper_replication_clock_offset_seconds", **link) is None
    finally:
        cluster.kill_all()
