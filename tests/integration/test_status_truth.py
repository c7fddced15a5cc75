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
