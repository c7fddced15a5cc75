"""cluster_status on real agents: a killed or paused peer shows down, since when and why,
with no stale latency, lag or backlog; the last verify is part of the answer."""

from __future__ import annotations

import pytest
from harness import Cluster, wait_for

FAST = {"replication": {"pingInterval": "300ms", "pingTimeout": "2s", "stallTimeout": "2s"}}


def _socket(node, peer) -> dict:
    status = node.op({"operation": "cluster_status"})
    return next(
        s
        for c in status["connections"]
        if c["name"] == peer.host
        for s in c["database_sockets"]
        if s["database"] == "dev"
    )


def _down(node, peer) -> dict | None:
    socket = _socket(node, peer)
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
            lambda: (lambda s: s if s["latency"] is not None else None)(_socket(a, b)), 10
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
        assert f'harper_replication_connected{{peer="{b.host}",database="dev"}} 1' in text
        assert "# TYPE harper_verify_checks_total counter" in text
        assert "harper_verify_last_agreed 1" in text
        assert a.password not in text
        assert a.session.post(a.url + "/metrics", timeout=10).status_code == 405
    finally:
        cluster.kill_all()
