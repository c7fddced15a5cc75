"""set_node, update_node, routes operations, configure_cluster, compression: on real agents."""

from __future__ import annotations

import yaml
from harness import FAST_REPLICATION, Agent, search_ids, wait_for


def _auth(agent: Agent) -> dict:
    return {"username": "admin", "password": agent.password}


def _rows(node: Agent) -> dict:
    rows = node.node_rows()
    return {r["name"]: r for r in rows}


def test_set_node_joins_and_update_node_changes_the_row(tmp_path):
    a = Agent(tmp_path / "a", config=FAST_REPLICATION).start()
    b = Agent(tmp_path / "b", config=FAST_REPLICATION).start()
    try:
        status, body = b.request(
            {"operation": "update_node", "url": a.ws_url, "authorization": _auth(a)}
        )
        assert status == 404 and "does not exist" in body["error"]
        answer = b.op({"operation": "set_node", "url": a.ws_url, "authorization": _auth(a)})
        assert answer["message"] == f"Successfully added '{a.ws_url}' to cluster"
        subs = [{"database": "dev", "table": None, "subscribe": True, "publish": True}]
        answer = b.op(
            {
                "operation": "update_node",
                "url": a.ws_url,
                "authorization": _auth(a),
                "subscriptions": subs,
            }
        )
        assert answer["message"] == f"Successfully updated '{a.ws_url}'"
        assert _rows(b)[a.host]["subscriptions"] == subs
        # the peer's row for us mirrors them (what we subscribe to, it publishes)
        wait_for(lambda: (_rows(a).get(b.host) or {}).get("subscriptions"), 10)
    finally:
        a.kill()
        b.kill()


def test_routes_can_be_set_listed_and_deleted_and_are_saved(tmp_path):
    a = Agent(tmp_path / "a", config=FAST_REPLICATION).start()
    b = Agent(tmp_path / "b", config=FAST_REPLICATION).start()
    try:
        answer = b.op(
            {
                "operation": "cluster_set_routes",
                "routes": [a.ws_url, {"hostname": "127.0.0.254", "port": 9}],
            }
        )
        assert answer["message"] == "cluster routes successfully set"
        assert len(answer["set"]) == 2 and answer["skipped"] == []
        again = b.op({"operation": "cluster_set_routes", "routes": [a.ws_url]})
        assert again["set"] == [] and again["skipped"] == [a.ws_url]
        assert b.op({"operation": "cluster_get_routes"}) == answer["set"]
        saved = yaml.safe_load((b.root / "harperdb-config.yaml").read_text())
        assert saved["replication"]["routes"] == answer["set"]
        status, body = b.request({"operation": "cluster_set_routes", "routes": [{"port": 1}]})
        assert status == 400 and "hostname" in body["error"]
        gone = b.op(
            {
                "operation": "cluster_delete_routes",
                "routes": [{"hostname": "127.0.0.254", "port": 9}, "ws://nowhere:1"],
            }
        )
        assert gone["deleted"] == [{"hostname": "127.0.0.254", "port": 9}]
        assert gone["skipped"] == ["ws://nowhere:1"]
        assert b.op({"operation": "cluster_get_routes"}) == [a.ws_url]
    finally:
        a.kill()
        b.kill()


def test_configure_cluster_replaces_the_setup(tmp_path):
    a = Agent(tmp_path / "a", config=FAST_REPLICATION).start()
    b = Agent(tmp_path / "b", config=FAST_REPLICATION).start()
    c = Agent(tmp_path / "c", config=FAST_REPLICATION).start()
    try:
        b.join(a)
        answer = b.op(
            {
                "operation": "configure_cluster",
                "connections": [{"url": c.ws_url, "authorization": _auth(c)}],
            }
        )
        assert answer["message"] == "Cluster successfully configured."
        wait_for(lambda: set(_rows(b)) == {b.host, c.host}, 10, what="only c left on b")
    finally:
        for node in (a, b, c):
            node.kill()


def test_compressed_links_replicate_too(tmp_path):
    config = {"replication": {**FAST_REPLICATION["replication"], "compression": True}}
    a = Agent(tmp_path / "a", config=config).start()
    b = Agent(tmp_path / "b", config=config).start()
    try:
        a.op({"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"})
        b.join(a)
        a.op(
            {
                "operation": "insert",
                "database": "dev",
                "table": "dog",
                "records": [{"id": i, "pad": "x" * 500} for i in range(200)],
            }
        )
        wait_for(lambda: len(search_ids(b, "dev", "dog", list(range(200)))) == 200, 15)
    finally:
        a.kill()
        b.kill()
