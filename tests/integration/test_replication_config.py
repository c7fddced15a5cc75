"""Routes from the config file (the seed's loopback example), start_time, subscriptions."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timezone

from harness import FAST_REPLICATION, Agent, count, next_host, search_ids, wait_for


def common_free_port(hosts: list[str]) -> int:
    """Return a port free on every one of `hosts`."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        try:
            for host in hosts[1:]:
                with socket.socket() as other:
                    other.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no common free port")


def _table(node, table="dog"):
    node.op({"operation": "create_table", "database": "dev", "table": table, "primary_key": "id"})


def test_seed_example_routes_with_a_replication_port(tmp_path):
    hosts = [next_host() for _ in range(3)]
    port = common_free_port(hosts)
    nodes = []
    for i, host in enumerate(hosts):
        others = [h for h in hosts if h != host]  # bare hosts: dialled on our own port
        config = {
            "replication": {**FAST_REPLICATION["replication"], "port": port, "routes": others}
        }
        nodes.append(Agent(tmp_path / f"r{i}", host=host, config=config))
    try:
        for node in nodes:
            node.start(wait=False)
        for node in nodes:
            node.wait_ready()
        _table(nodes[0])
        nodes[0].op(
            {"operation": "insert", "database": "dev", "table": "dog", "records": [{"id": "seed"}]}
        )
        for node in nodes:
            wait_for(
                lambda node=node: search_ids(node, "dev", "dog", ["seed"]),
                20,
                what="the record on every routed node",
            )
        status = nodes[1].op({"operation": "cluster_status"})
        assert {c["name"] for c in status["connections"]} == {hosts[0], hosts[2]}
        assert all(c["url"] == f"ws://{c['name']}:{port}" for c in status["connections"])
    finally:
        for node in nodes:
            node.kill()


def test_start_time_limits_the_initial_copy(tmp_path):
    a = Agent(tmp_path / "a", config=FAST_REPLICATION).start()
    b = Agent(tmp_path / "b", config=FAST_REPLICATION).start()
    try:
        _table(a)
        a.op(
            {
                "operation": "insert",
                "database": "dev",
                "table": "dog",
                "records": [{"id": f"old-{i}"} for i in range(10)],
            }
        )
        time.sleep(0.05)  # the boundary must fall strictly between the two batches
        boundary = datetime.now(timezone.utc).isoformat()
        time.sleep(0.05)
        a.op(
            {
                "operation": "insert",
                "database": "dev",
                "table": "dog",
                "records": [{"id": f"new-{i}"} for i in range(5)],
            }
        )
        b.join(a, start_time=boundary)
        wait_for(lambda: count(b, "dev", "dog") == 5, 15, what="only the new records")
        assert not search_ids(b, "dev", "dog", ["old-0"])
        assert search_ids(b, "dev", "dog", ["new-4"])
        status, body = b.request(
            {"operation": "add_node", "url": a.ws_url, "start_time": "yesterday"}
        )
        assert status == 400 and "start_time" in body["error"]
    finally:
        a.kill()
        b.kill()


def test_explicit_subscriptions_are_enforced(tmp_path):
    a = Agent(tmp_path / "a", config=FAST_REPLICATION).start()
    b = Agent(tmp_path / "b", config=FAST_REPLICATION).start()
    try:
        _table(a)
        _table(a, "cat")
        _table(b)
        b.join(
            a,
            subscriptions=[
                {"database": "dev", "table": "dog", "subscribe": True, "publish": False}
            ],
        )
        a.op(
            {"operation": "insert", "database": "dev", "table": "dog", "records": [{"id": "a-dog"}]}
        )
        a.op(
            {"operation": "insert", "database": "dev", "table": "cat", "records": [{"id": "a-cat"}]}
        )
        b.op(
            {"operation": "insert", "database": "dev", "table": "dog", "records": [{"id": "b-dog"}]}
        )
        wait_for(lambda: search_ids(b, "dev", "dog", ["a-dog"]), 15, what="a's dog on b")
        a.op(
            {
                "operation": "insert",
                "database": "dev",
                "table": "dog",
                "records": [{"id": "a-dog-2"}],
            }
        )
        wait_for(lambda: search_ids(b, "dev", "dog", ["a-dog-2"]), 15)
        assert not search_ids(a, "dev", "dog", ["b-dog"]), "b does not publish to a"
        status, _ = b.request({"operation": "describe_table", "database": "dev", "table": "cat"})
        assert status == 404 or not search_ids(b, "dev", "cat", ["a-cat"])
    finally:
        a.kill()
        b.kill()


def test_schema_graphql_replicate_false_table_stays_local(tmp_path):
    a = Agent(tmp_path / "a", config=FAST_REPLICATION)
    a.root.mkdir(parents=True)
    (a.root / "schema.graphql").write_text(
        "type LocalTableForNode @table(replicate: false) { id: ID! @primaryKey name: String! }\n"
        'type Shared @table(database: "dev", table: "shared") { id: ID! @primaryKey }\n'
    )
    a.start()
    b = Agent(tmp_path / "b", config=FAST_REPLICATION).start()
    try:
        described = a.op({"operation": "describe_table", "table": "LocalTableForNode"})
        assert described["replicate"] is False
        a.op(
            {
                "operation": "insert",
                "table": "LocalTableForNode",
                "records": [{"id": 1, "name": "mine"}],
            }
        )
        a.op(
            {"operation": "insert", "database": "dev", "table": "shared", "records": [{"id": "s"}]}
        )
        b.join(a)
        wait_for(lambda: search_ids(b, "dev", "shared", ["s"]), 15)
        status, _ = b.request({"operation": "describe_table", "table": "LocalTableForNode"})
        assert status == 404
    finally:
        a.kill()
        b.kill()


def test_credentials_never_reach_rows_responses_or_logs(tmp_path):
    secret = "pw-Zq81-unique"
    a = Agent(tmp_path / "a", config=FAST_REPLICATION, password=secret).start()
    b = Agent(tmp_path / "b", config=FAST_REPLICATION, password=secret).start()
    try:
        answer = b.op(
            {
                "operation": "add_node",
                "url": a.ws_url,
                "authorization": {"username": "admin", "password": secret},
                "retain_authorization": True,
            }
        )
        assert secret not in str(answer)
        kept = b.root / "keys" / "retained-authorization.json"
        assert kept.stat().st_mode & 0o077 == 0, "the retained credentials file is private"
        for node in (a, b):
            wait_for(
                lambda node=node: len(node.node_rows()) == 2,
                10,
            )
            rows = node.node_rows()
            status = node.op({"operation": "cluster_status"})
            for text in (str(rows), str(status)):
                assert secret not in text and "authorization" not in text.lower()
        for node in (a, b):
            node.stop()
            logs = "".join(p.read_text(errors="replace") for p in (node.root / "log").glob("*.log"))
            assert secret not in logs and secret not in node.output()
    finally:
        a.kill()
        b.kill()


def test_a_filtered_stream_never_moves_the_cursor_a_full_one_resumes_from(tmp_path):
    a = Agent(tmp_path / "a", config=FAST_REPLICATION).start()
    b = Agent(tmp_path / "b", config=FAST_REPLICATION).start()
    try:
        _table(a)
        _table(a, "cat")
        _table(b)
        only_dogs = [{"database": "dev", "table": "dog", "subscribe": True, "publish": False}]
        b.join(a, subscriptions=only_dogs)
        for i in range(5):  # each transaction writes both tables; b hears only of dogs
            a.op(
                {
                    "operation": "transaction",
                    "database": "dev",
                    "operations": [
                        {
                            "operation": "insert",
                            "database": "dev",
                            "table": "dog",
                            "records": [{"id": f"d{i}"}],
                        },
                        {
                            "operation": "insert",
                            "database": "dev",
                            "table": "cat",
                            "records": [{"id": f"c{i}"}],
                        },
                    ],
                }
            )
        wait_for(lambda: len(search_ids(b, "dev", "dog", ["d4"])) == 1, 15, what="dogs on b")
        everything = [{"database": "dev", "subscribe": True, "publish": True}]
        b.op(
            {
                "operation": "update_node",
                "url": a.ws_url,
                "authorization": {"username": "admin", "password": a.password},
                "subscriptions": everything,
            }
        )
        cats = [f"c{i}" for i in range(5)]
        wait_for(
            lambda: len(search_ids(b, "dev", "cat", cats)) == 5,
            20,
            what="the cats a filtered stream skipped, once b takes the whole database",
        )
    finally:
        a.kill()
        b.kill()
