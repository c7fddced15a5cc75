"""cluster_verify on real agents: divergence planted in a node's SQLite file is found exactly,
and repaired."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from harness import Cluster, count, wait_for


def _harperctl(node, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "harperctl", "--url", node.url, "-u", "admin"]
    command += ["-p", node.password, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _plant(path, ids: list[int]) -> set:
    """Change a stopped node's file the way a bug would; return the keys made different."""
    conn = sqlite3.connect(path)
    with conn:
        rows = {pk: (doc, v, o) for pk, doc, v, o in conn.execute('SELECT * FROM "r_dog"')}
        gone, tampered, older, extra = ids[0:3], ids[3:6], ids[6:8], [10_001, 10_002]
        conn.executemany('DELETE FROM "r_dog" WHERE pk = ?', [(i,) for i in gone])
        conn.executemany(
            'UPDATE "r_dog" SET doc = ? WHERE pk = ?',
            [(rows[i][0].replace("}", ',"tampered":true}'), i) for i in tampered],
        )
        conn.executemany(
            'UPDATE "r_dog" SET doc = ?, version = version - 1000 WHERE pk = ?',
            [(f'{{"id":{i},"old":true}}', i) for i in older],
        )
        conn.executemany(
            'INSERT INTO "r_dog" (pk, doc, version, origin) VALUES (?, ?, ?, ?)',
            [(i, f'{{"id":{i}}}', rows[ids[0]][1], rows[ids[0]][2]) for i in extra],
        )
    conn.close()
    return {*gone, *tampered, *older, *extra}


def test_verify_lists_exactly_the_planted_keys_and_repair_makes_every_node_agree(tmp_path):
    cluster = Cluster(tmp_path, 3).start()
    try:
        a, b, c = cluster
        a.op({"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"})
        cluster.join()
        records = [{"id": i, "name": f"dog {i}"} for i in range(500)]
        a.op({"operation": "insert", "database": "dev", "table": "dog", "records": records})
        wait_for(lambda: all(count(n, "dev", "dog") == 500 for n in cluster), 30)

        agreed = a.op({"operation": "cluster_verify"})
        assert agreed["agreed"] is True and agreed["divergent"] == 0, agreed
        assert sorted(agreed["nodes"]) == sorted([a.host, b.host, c.host])
        table = agreed["databases"]["dev"]["dog"]
        assert table["ranges_compared"] == 1  # equal tables: one digest per node

        c.stop()
        planted = _plant(c.root / "database" / "dev.sqlite", list(range(100, 108)))
        c.start()
        cluster.wait_connected()

        found = a.op({"operation": "cluster_verify", "database": "dev", "table": "dog"})
        assert found["agreed"] is False
        keys = {d["key"] for d in found["databases"]["dev"]["dog"]["divergent"]}
        assert keys == planted, (keys, planted)
        one = next(d for d in found["databases"]["dev"]["dog"]["divergent"] if d["key"] == 100)
        assert one["nodes"][c.host] is None and one["nodes"][a.host]["version"] > 0

        shown = _harperctl(a, "verify")
        assert shown.returncode == 1, shown.stdout + shown.stderr
        assert f"{len(planted)} keys differ" in shown.stdout and "absent" in shown.stdout

        repaired = _harperctl(b, "--json", "verify", "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        mended = json.loads(repaired.stdout)
        assert mended["agreed"] is True, mended
        assert mended["repaired"] >= len(planted)
        dog = mended["databases"]["dev"]["dog"]
        assert dog["divergent_before_repair"] == len(planted)
        again = c.op({"operation": "cluster_verify"})
        assert again["agreed"] is True
        for node in cluster:
            assert count(node, "dev", "dog") == 502  # the two extra rows won everywhere
            doc = node.op(
                {"operation": "search_by_id", "database": "dev", "table": "dog", "ids": [103]}
            )
            assert "tampered" not in doc[0]  # most nodes held the untampered content
    finally:
        cluster.kill_all()


def test_the_background_pass_repairs_without_being_asked(tmp_path):
    often = {"replication": {"verifyInterval": "300ms", "verifyCpuPercent": 50}}
    cluster = Cluster(tmp_path, 3, config=often).start()
    try:
        a, b, c = cluster
        a.op({"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"})
        cluster.join()
        records = [{"id": i, "name": f"dog {i}"} for i in range(300)]
        a.op({"operation": "insert", "database": "dev", "table": "dog", "records": records})
        wait_for(lambda: all(count(n, "dev", "dog") == 300 for n in cluster), 30)
        c.stop()
        planted = _plant(c.root / "database" / "dev.sqlite", list(range(100, 108)))
        c.start()

        def repaired() -> bool:
            passes = [n.op({"operation": "cluster_status"})["antiEntropy"] for n in cluster]
            return sum(p["repairedRows"] for p in passes) >= len(planted)

        # the pass compares writes older than 10 s rounded down to the minute: the planted
        # rows qualify up to 70 s after they were written
        wait_for(repaired, 120, 0.5, what="the background pass repairing the planted keys")
        wait_for(lambda: a.op({"operation": "cluster_verify"})["agreed"], 20, 1.0)
        status = c.op({"operation": "cluster_status"})["antiEntropy"]
        assert status["enabled"] and status["checks"] > 0 and status["cpuSeconds"] > 0
        logs = "".join((n.root / "log" / "hdb.log").read_text() for n in cluster)
        for key in planted:  # each repaired key is logged, with the table and the nodes
            assert f"verify repairs dev.dog key {key!r} on [" in logs, key
    finally:
        cluster.kill_all()


def test_verify_refuses_bad_input(tmp_path):
    cluster = Cluster(tmp_path, 1).start()
    try:
        (a,) = cluster
        for body, status in [
            ({"database": "nope"}, 404),
            ({"table": "dog"}, 400),
            ({"repair": "yes"}, 400),
        ]:
            got, answer = a.request({"operation": "cluster_verify", **body})
            assert got == status, (body, answer)
            assert "error" in answer
    finally:
        cluster.kill_all()
