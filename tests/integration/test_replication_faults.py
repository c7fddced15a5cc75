"""Crashes, partitions, relay, selection and admission, on real agents."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest
from harness import Agent, Cluster, count, search_ids, socket_of, wait_for


def _insert(node, table, ids, database="dev"):
    node.op(
        {
            "operation": "insert",
            "database": database,
            "table": table,
            "records": [{"id": i, "pad": "x" * 150} for i in ids],
        }
    )


def _make_table(node, table="dog", database="dev", **extra):
    node.op(
        {
            "operation": "create_table",
            "database": database,
            "table": table,
            "primary_key": "id",
            **extra,
        }
    )


def test_killed_node_catches_up_without_losing_acknowledged_writes(tmp_path):
    cluster = Cluster(tmp_path, 2).start()
    try:
        a, b = cluster
        _make_table(a)
        cluster.join()
        acked: list[int] = []
        stop = threading.Event()

        def writer():
            n = 0
            while not stop.is_set():
                batch = list(range(n, n + 50))
                _insert(a, "dog", batch)
                acked.extend(batch)
                n += 50

        thread = threading.Thread(target=writer)
        thread.start()
        wait_for(lambda: count(b, "dev", "dog") > 500, 20, what="replication under way")
        b.kill()
        wait_for(lambda: len(acked) > 2000, 20)
        stop.set()
        thread.join()
        b.start()
        wait_for(lambda: count(b, "dev", "dog") == len(acked), 30, what="catch-up")
        present = {r["id"] for r in b.op({"operation": "sql", "sql": "SELECT id FROM dev.dog"})}
        assert set(acked) <= present
    finally:
        cluster.kill_all()


def test_resumed_copy_finishes_without_starting_over(tmp_path):
    # small chunks: many commits, so the copy lasts long enough to be killed half-way
    a = Agent(tmp_path / "a", config={"replication": {"copyChunkRecords": 50}}).start()
    b = Agent(
        tmp_path / "b", config={"replication": {"copyChunkRecords": 50, "retryInterval": "100ms"}}
    ).start()
    try:
        _make_table(a)
        total = 60000
        for start in range(0, total, 2000):
            _insert(a, "dog", list(range(start, start + 2000)))
        b.op(
            {
                "operation": "add_node",
                "url": a.ws_url,
                "authorization": {"username": "admin", "password": a.password},
            }
        )

        def copied():
            status = b.op({"operation": "cluster_status"})
            for conn in status["connections"]:
                for sock in conn["database_sockets"]:
                    if sock["database"] == "dev" and sock["copy"]:
                        return sock["copy"]["copied"]
            return 0

        wait_for(lambda: 1000 < copied() < total // 2, 30, 0.005, what="the copy under way")
        b.kill()
        on_disk = count_rows_offline(b)
        assert 0 < on_disk < total, "kill the copy mid-way"
        b.start()
        wait_for(lambda: count(b, "dev", "dog") == total, 60, what="the whole table")
        status = b.op({"operation": "cluster_status"})
        dev = [
            s
            for c in status["connections"]
            for s in c["database_sockets"]
            if s["database"] == "dev"
        ][0]
        assert dev["copy"]["reason"] == "resume"
        # a resumed copy continues from its checkpoint: the first post-restart CopyStart
        # reports what was already copied, so the copy never re-sends the whole table
        assert dev["copy"]["total"] == total
    finally:
        a.kill()
        b.kill()


def _dev_socket(node) -> dict:
    status = node.op({"operation": "cluster_status"})
    return [
        s for c in status["connections"] for s in c["database_sockets"] if s["database"] == "dev"
    ][0]


def count_rows_offline(agent):
    import sqlite3

    conn = sqlite3.connect(agent.root / "database" / "dev.sqlite")
    try:
        return conn.execute('SELECT count(*) FROM "r_dog" WHERE doc IS NOT NULL').fetchone()[0]
    finally:
        conn.close()


def test_unlisted_databases_and_local_tables_stay_home(tmp_path):
    only = {"replication": {"databases": ["system", "dev"]}}
    cluster = Cluster(tmp_path, 2, config=only).start()
    try:
        a, b = cluster
        _make_table(a)
        cluster.join()
        _make_table(a, "secret", replicate=False)
        _insert(a, "secret", [1, 2])
        _make_table(a, "t", database="private")
        _insert(a, "t", [1], database="private")
        _insert(a, "dog", ["marker"])
        wait_for(lambda: search_ids(b, "dev", "dog", ["marker"]), 10)
        status, body = b.request(
            {"operation": "describe_table", "database": "dev", "table": "secret"}
        )
        assert status == 404, body
        status, body = b.request({"operation": "describe_database", "database": "private"})
        assert status == 404, body
    finally:
        cluster.kill_all()


def test_peer_from_unknown_address_is_refused(tmp_path):
    a = Agent(tmp_path / "a").start()
    stranger = Agent(
        tmp_path / "x",
        config={"replication": {"routes": [a.ws_url], "retryInterval": "100ms"}},
    ).start()
    try:

        def refused():
            status = stranger.op({"operation": "cluster_status"})
            errors = [
                s.get("lastConnectionError")
                for c in status["connections"]
                for s in c["database_sockets"]
            ]
            return any(e and "run add_node" in e["reason"] for e in errors)

        wait_for(refused, 10, what="the refusal")
        rows = a.node_rows()
        assert rows == []
    finally:
        a.kill()
        stranger.kill()


def test_add_node_to_unreachable_peer_changes_nothing(tmp_path):
    a = Agent(tmp_path / "a").start()
    try:
        status, body = a.request({"operation": "add_node", "url": "ws://127.0.0.254:9"})
        assert status == 400 and "could not reach" in body["error"]
        status, body = a.request({"operation": "add_node"})
        assert status == 400 and "hostname" in body["error"]
        rows = a.node_rows()
        assert rows == []
    finally:
        a.kill()


def test_add_node_with_refused_credentials_changes_nothing(tmp_path):
    a, b = Agent(tmp_path / "a").start(), Agent(tmp_path / "b").start()
    try:
        status, body = b.request(
            {
                "operation": "add_node",
                "url": a.ws_url,
                "authorization": {"username": "admin", "password": "wrong"},
            }
        )
        assert status == 400 and "refused the credentials" in body["error"], body
        for node in (a, b):
            rows = node.node_rows()
            assert rows == []
    finally:
        a.kill()
        b.kill()


def test_remove_node_removes_the_row_everywhere_and_stops_replication(tmp_path):
    cluster = Cluster(tmp_path, 3).start()
    try:
        a, b, c = cluster
        _make_table(a)
        cluster.join()
        a.op({"operation": "remove_node", "hostname": c.host})

        def gone():
            for node in (a, b):
                rows = node.node_rows()
                if c.host in {r["name"] for r in rows}:
                    return False
            return True

        wait_for(gone, 10, what="node c's row gone from a and b")
        _insert(a, "dog", ["after-removal"])
        wait_for(lambda: search_ids(b, "dev", "dog", ["after-removal"]), 10)
        assert not search_ids(c, "dev", "dog", ["after-removal"])
        status, body = a.request({"operation": "remove_node", "hostname": "127.0.0.254"})
        assert status == 404 and "does not exist" in body["error"]
    finally:
        cluster.kill_all()


def test_five_nodes_converge(tmp_path):
    cluster = Cluster(tmp_path, 5).start()
    try:
        _make_table(cluster[0])
        cluster.join()
        for i, node in enumerate(cluster):
            _insert(node, "dog", [f"n{i}-{k}" for k in range(30)])
        for node in cluster:
            wait_for(lambda node=node: count(node, "dev", "dog") == 150, 20)
    finally:
        cluster.kill_all()


def _iptables_usable() -> bool:
    if shutil.which("iptables") is None:
        return False
    return subprocess.run(["iptables", "-L", "-n"], capture_output=True).returncode == 0


needs_iptables = pytest.mark.skipif(
    not _iptables_usable(), reason="iptables (apt package, root) is needed to cut links"
)


class Partition:
    """Drop packets between two loopback addresses with iptables; undone on exit."""

    def __init__(self, a: str, b: str) -> None:
        self.rules = [["-s", a, "-d", b, "-j", "DROP"], ["-s", b, "-d", a, "-j", "DROP"]]

    def __enter__(self):
        for rule in self.rules:
            subprocess.run(["iptables", "-I", "INPUT", *rule], check=True)
        return self

    def __exit__(self, *exc):
        for rule in self.rules:
            subprocess.run(["iptables", "-D", "INPUT", *rule], check=False)


@needs_iptables
def test_cut_link_forces_relay_and_the_data_still_arrives(tmp_path):
    cluster = Cluster(tmp_path, 3).start()
    try:
        a, b, c = cluster
        _make_table(a)
        cluster.join()
        with Partition(a.host, c.host):

            def relayed():
                status = c.op({"operation": "cluster_status"})
                via_b = [
                    s
                    for conn in status["connections"]
                    if conn["name"] == b.host
                    for s in conn["database_sockets"]
                    if s["database"] == "dev"
                ]
                return via_b and a.host in via_b[0]["nodes"]

            wait_for(relayed, 15, what="c borrowing a's transactions from b")
            _insert(a, "dog", ["relayed"])
            wait_for(
                lambda: search_ids(c, "dev", "dog", ["relayed"]),
                10,
                what="a's write reaching c through b",
            )
        _insert(a, "dog", ["direct-again"])
        wait_for(lambda: search_ids(c, "dev", "dog", ["direct-again"]), 15)

        def direct():
            status = c.op({"operation": "cluster_status"})
            via_b = [
                s
                for conn in status["connections"]
                if conn["name"] == b.host
                for s in conn["database_sockets"]
                if s["database"] == "dev"
            ]
            return via_b and a.host not in via_b[0]["nodes"]

        wait_for(direct, 20, what="the borrowed subscription dropped")
        assert count(c, "dev", "dog") == count(a, "dev", "dog")
    finally:
        cluster.kill_all()


@needs_iptables
def test_beyond_retention_merge_keeps_rows_only_the_receiver_has(tmp_path):
    short = {"logging": {"auditRetention": "2s"}}
    cluster = Cluster(tmp_path, 2, config=short).start()
    try:
        a, b = cluster
        _make_table(a)
        cluster.join()
        _insert(a, "dog", ["before"])
        wait_for(lambda: search_ids(b, "dev", "dog", ["before"]), 10)
        with Partition(a.host, b.host):
            _insert(a, "dog", [f"during-{i}" for i in range(50)])
            _insert(b, "dog", ["only-on-b"])
            wait_for(lambda: pruned_past(a), 15, 0.2, what="a's log pruned")
            # a delete younger than retention: its tombstone must win in the merge
            a.op({"operation": "delete", "database": "dev", "table": "dog", "ids": ["before"]})
            # until b gives the link up, TCP could still deliver what a had already sent
            wait_for(lambda: not _dev_socket(b)["connected"], 15, 0.1, what="b's link down")
        for node in (a, b):
            wait_for(
                lambda node=node: count(node, "dev", "dog") == 51, 30, what="both nodes merged"
            )
            assert search_ids(node, "dev", "dog", ["only-on-b"])
            assert not search_ids(node, "dev", "dog", ["before"])
        dev = _dev_socket(b)
        assert dev["copy"] and dev["copy"]["reason"] == "merge"
    finally:
        cluster.kill_all()


def pruned_past(agent):
    import sqlite3

    conn = sqlite3.connect(agent.root / "database" / "dev.sqlite")
    try:
        return conn.execute("SELECT count(*) FROM _floors").fetchone()[0] > 0
    finally:
        conn.close()


@needs_iptables
def test_a_black_holed_link_is_reported_down_not_healthy(tmp_path):
    cluster = Cluster(tmp_path, 2).start()
    try:
        a, b = cluster
        _make_table(a)
        cluster.join()

        with Partition(a.host, b.host):  # packets vanish; no FIN, no RST: a wedged socket
            _insert(a, "dog", ["while-cut"])
            down = wait_for(
                lambda: (lambda s: s if not s["connected"] else None)(socket_of(b, a)),
                10,
                0.1,
                what="b to report its link to a as down",
            )
            assert down["lastConnectionError"]["reason"]
            # nothing stale that would make a dead link look healthy
            assert down["lastReceivedStatus"] == "Disconnected" and down["downSince"]
            assert down["latency"] is None and down["recordsBehind"] is None
            assert down["lagSeconds"] is None
        wait_for(lambda: search_ids(b, "dev", "dog", ["while-cut"]), 20, what="delivery after")
        healed = wait_for(
            lambda: (lambda s: s if s["connected"] else None)(socket_of(b, a)), 10, 0.1
        )
        assert healed["recordsBehind"] == 0 and healed["lagSeconds"] == 0.0
    finally:
        cluster.kill_all()


@needs_iptables
def test_an_origin_reachable_through_one_node_only_is_relayed_by_that_node(tmp_path):
    cluster = Cluster(tmp_path, 4).start()
    try:
        a, b, c, d = cluster
        _make_table(a)
        cluster.join()
        with Partition(a.host, b.host), Partition(a.host, c.host):
            # b and c must borrow a's transactions from d, the one node still reaching a
            _insert(a, "dog", ["two-hop"])
            for node in (b, c):
                wait_for(
                    lambda node=node: search_ids(node, "dev", "dog", ["two-hop"]),
                    20,
                    what=f"a's write reaching {node.host} through d",
                )
    finally:
        cluster.kill_all()
