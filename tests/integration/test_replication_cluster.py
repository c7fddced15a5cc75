"""Three real agents on loopback: join, gossip, every write everywhere, conflicts, deletes."""

from __future__ import annotations

import threading

import pytest
from harness import Cluster, count, search_ids, wait_for


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("trio"), 3).start()
    cluster[0].op(
        {"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"}
    )
    cluster.join(via=0)
    yield cluster
    cluster.kill_all()


def test_joining_one_node_connects_to_all(trio):
    status = trio[1].op({"operation": "cluster_status"})
    names = {c["name"] for c in status["connections"]}
    assert names == {trio[0].host, trio[2].host}
    for conn in status["connections"]:
        assert {s["database"] for s in conn["database_sockets"]} >= {"system", "dev"}
        assert all(s["connected"] for s in conn["database_sockets"])


def test_every_write_on_any_node_reaches_all(trio):
    for i, node in enumerate(trio):
        node.op(
            {
                "operation": "insert",
                "database": "dev",
                "table": "dog",
                "records": [{"id": f"w{i}-{k}", "from": i} for k in range(20)],
            }
        )
    for node in trio:
        wait_for(lambda node=node: count_prefix(node, "w") == 60, 10, what="60 records")


def count_prefix(node, prefix):
    body = node.op(
        {
            "operation": "search_by_value",
            "database": "dev",
            "table": "dog",
            "attribute": "id",
            "value": f"{prefix}*",
            "get_attributes": ["id"],
        }
    )
    return len(body)


def test_schema_replicates(trio):
    trio[2].op(
        {"operation": "create_table", "database": "zoo", "table": "cat", "primary_key": "name"}
    )
    trio[2].op(
        {"operation": "insert", "database": "zoo", "table": "cat", "records": [{"name": "tom"}]}
    )
    for node in trio:
        wait_for(
            lambda node=node: search_ids(node, "zoo", "cat", ["tom"]),
            10,
            what="zoo.cat on every node",
        )


def test_concurrent_writes_to_one_id_converge(trio):
    barrier = threading.Barrier(2)

    def write(node, value):
        barrier.wait()
        node.op(
            {
                "operation": "upsert",
                "database": "dev",
                "table": "dog",
                "records": [{"id": "contested", "v": value}],
            }
        )

    for trial in range(5):
        threads = [threading.Thread(target=write, args=(trio[i], f"n{i}-{trial}")) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        def agreed(trial=trial):
            values = [search_ids(n, "dev", "dog", ["contested"]) for n in trio]
            seen = {v[0]["v"] for v in values if v}
            return len(seen) == 1 and all(values) and seen.pop().endswith(f"-{trial}")

        wait_for(agreed, 10, what="one winner everywhere")


def test_deletes_replicate_and_beat_older_writes(trio):
    trio[0].op(
        {"operation": "insert", "database": "dev", "table": "dog", "records": [{"id": "doomed"}]}
    )
    for node in trio:
        wait_for(lambda node=node: search_ids(node, "dev", "dog", ["doomed"]), 10)
    trio[1].op({"operation": "delete", "database": "dev", "table": "dog", "ids": ["doomed"]})
    for node in trio:
        wait_for(
            lambda node=node: not search_ids(node, "dev", "dog", ["doomed"]),
            10,
            what="the delete everywhere",
        )


def test_multi_table_transaction_is_never_seen_half_applied(trio):
    trio[0].op(
        {"operation": "create_table", "database": "dev", "table": "owner", "primary_key": "id"}
    )
    wait_for(lambda: search_tables(trio[2]), 10, what="owner table on node 2")
    stop = threading.Event()
    torn: list = []

    def watch():
        while not stop.is_set():
            owners = {
                r["id"]
                for r in trio[2].op(
                    {"operation": "sql", "sql": "SELECT id FROM dev.owner WHERE id LIKE 'tx-%'"}
                )
            }
            dogs = {
                r["id"]
                for r in trio[2].op(
                    {"operation": "sql", "sql": "SELECT id FROM dev.dog WHERE id LIKE 'tx-%'"}
                )
            }
            # dogs are read after owners: an owner whose dog is missing from the later read
            # can only come from a transaction applied half on node 2
            torn.extend(owners - dogs)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(40):
            trio[0].op(
                {
                    "operation": "transaction",
                    "operations": [
                        {
                            "operation": "insert",
                            "database": "dev",
                            "table": "dog",
                            "records": [{"id": f"tx-{i}"}],
                        },
                        {
                            "operation": "insert",
                            "database": "dev",
                            "table": "owner",
                            "records": [{"id": f"tx-{i}"}],
                        },
                    ],
                }
            )
        wait_for(lambda: count_prefix_table(trio[2], "owner", "tx-") == 40, 10)
    finally:
        stop.set()
        watcher.join()
    assert not torn, f"owners seen without their dog: {sorted(set(torn))[:5]}"


def search_tables(node):
    status, body = node.request(
        {"operation": "describe_table", "database": "dev", "table": "owner"}
    )
    return status == 200


def count_prefix_table(node, table, prefix):
    body = node.op(
        {
            "operation": "search_by_value",
            "database": "dev",
            "table": table,
            "attribute": "id",
            "value": f"{prefix}*",
            "get_attributes": ["id"],
        }
    )
    return len(body)


def test_users_replicate_through_system(trio):
    trio[0].op(
        {
            "operation": "add_user",
            "username": "carol",
            "password": "s3cret!",
            "role": "super_user",
            "active": True,
        }
    )
    node = trio[2]

    def can_login():
        status, _ = node.request({"operation": "describe_all"}, auth=("carol", "s3cret!"))
        return status == 200

    wait_for(can_login, 10, what="carol able to log in on node 2")
    assert count(node, "dev", "dog") >= 0
