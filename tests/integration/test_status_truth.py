"""cluster_status on real agents: a killed or paused peer shows down, since when and why,
with no stale latency, lag or backlog; a copy shows its own progress, not the log as
backlog; an origin no link brings is shown unserved; the last verify is part of the
answer; /metrics has the same figures."""

from __future__ import annotations

import pytest
from harness import Cluster, socket_of, wait_for
from test_replication_faults import Partition, needs_iptables

FAST = {"replication": {"pingInterval": "300ms", "pingTimeout": "2s", "stallTimeout": "2s"}}


def _down(node, peer) -> dict | None:
    socket = socket_of(node, peer)
    return None if socket["connected"] else socket


@pytest.mark.parametrize("fault", ["kill", "pause"])
def test_a_lost_peer_shows_down_with_nothing_stale(tmp_path, fault):
    cluster = Cluster(tmp_path, 2, config=FAST).start()
    try:
        a, b = cluster
        a.op({"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"})
        cluster.join()
        cluster.wait_connected()
        up = wait_for(
            lambda: (lambda s: s if s["latency"] is not None else None)(socket_of(a, b)), 10
        )
        assert up["behind"] == [] and up["recordsBehind"] == 0
        b.kill() if fault == "kill" else b.pause()
        try:
            down = wait_for(lambda: _down(a, b), 15, 0.2, what=f"a seeing {fault}ed b down")
            assert down["lastReceivedStatus"] == "Disconnected" and down["downSince"]
            assert down["lastConnectionError"]["reason"]
            for stale in ("latency", "lagSeconds", "recordsBehind", "clockOffsetMs", "behind"):
                assert down[stale] is None, (stale, down)
            status = a.op({"operation": "cluster_status"})
            assert status["verify"] is None  # no verify has run on this node
            a.op({"operation": "cluster_verify"})
            status = a.op({"operation": "cluster_status"})
            assert status["verify"]["agreed"] is False  # b could not be compared
            assert status["verify"]["skipped"] == [b.host]
        finally:
            if fault == "pause":
                b.resume()
    finally:
        cluster.kill_all()


def test_metrics_in_prometheus_text_without_credentials(tmp_path):
    cluster = Cluster(tmp_path, 2, config=FAST).start()
    try:
        a, b = cluster
        a.op({"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"})
        cluster.join()
        cluster.wait_connected()
        a.op({"operation": "cluster_verify"})
        resp = a.session.get(a.url + "/metrics", timeout=10)
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.text
        assert f'harper_replication_connected{{database="dev",peer="{b.host}"}} 1.0' in text
        assert "# TYPE harper_verify_checks_total counter" in text
        assert "harper_verify_last_agreed 1" in text
        assert a.password not in text
        assert a.session.post(a.url + "/metrics", timeout=10).status_code == 405
    finally:
        cluster.kill_all()


def test_a_copy_in_progress_shows_copying_and_no_log_backlog(tmp_path):
    slow_copy = {**FAST, "replication": {**FAST["replication"], "copyChunkRecords": 200}}
    cluster = Cluster(tmp_path, 2, config=slow_copy)
    a, b = cluster
    a.start()
    try:
        a.op({"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"})
        for start in range(0, 60_000, 5_000):
            records = [{"id": i, "pad": "x" * 300} for i in range(start, start + 5_000)]
            a.op({"operation": "insert", "database": "dev", "table": "dog", "records": records})
        b.start()
        b.join(a)
        seen = wait_for(
            lambda: (lambda s: s if s["lastReceivedStatus"] == "Copying" else None)(
                socket_of(b, a)
            ),
            30,
            0.05,
            what="b copying from a",
        )
        assert seen["copy"]["state"] == "copying" and seen["copy"]["total"] == 60_000
        assert seen["behind"] == []  # the copy's own progress says how far; not the log
        wait_for(lambda: socket_of(b, a)["copy"]["state"] == "done", 60, 0.2)
    finally:
        cluster.kill_all()


@needs_iptables
def test_an_origin_no_link_serves_is_shown_unserved(tmp_path):
    no_relay = {**FAST, "replication": {**FAST["replication"], "failOver": False}}
    cluster = Cluster(tmp_path, 3, config=no_relay).start()
    try:
        a, b, c = cluster
        a.op({"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"})
        cluster.join()
        cluster.wait_connected()

        def unserved(node, origin) -> bool:
            rows = node.op({"operation": "cluster_status"})["origins"]["dev"]
            return next(r for r in rows if r["origin"] == origin.host)["unserved"]

        assert not unserved(c, a)
        with Partition(a.host, c.host):
            wait_for(lambda: unserved(c, a), 15, 0.2, what="c showing a unserved")
            wait_for(lambda: unserved(a, c), 15, 0.2, what="a showing c unserved")
            assert not unserved(b, a) and not unserved(b, c)
        wait_for(lambda: not unserved(c, a), 30, 0.2, what="a served again on c")
    finally:
        cluster.kill_all()
