"""cluster_verify through the real shell (peer operations over the in-memory network), on
tables far apart: requests are batched, every divergent key is found, repair mends them."""

from __future__ import annotations

from schedule import DATA
from shellsim import Cluster
from test_shellsim import _streaming, seed_for

from agent.replication import verify, verifypeer
from agent.storage.verify import RepairRows, rows_for
from agent.storage.writes import ForgetRows, WriteOp


async def test_tables_far_apart_are_compared_in_batches_and_repaired(tmp_path, monkeypatch):
    monkeypatch.setattr(verify, "BATCH", 64)  # 256 differing prefixes: four requests a round
    cluster = Cluster(tmp_path, seed_for(909), 3)
    try:
        await cluster.start({DATA: ["a"]})
        n0, n1, n2 = cluster.nodes.values()
        rows = [{"id": i, "n": i} for i in range(3000)]
        await cluster.transact(n0.name, DATA, [WriteOp("insert", "a", rows)])
        origin = n0.storage.get(DATA).origin_id
        head = n0.cursor(DATA, origin)
        for node in (n1, n2):
            await cluster.wait_until(lambda n=node: n.cursor(DATA, origin) == head, 20, "sync")
            await cluster.wait_until(lambda n=node: _streaming(n, n0, DATA), 10, "streaming")
        # a bug's doing, on n2 only: 2,000 rows gone, 500 with other content, no log entry
        db = n2.storage.get(DATA)
        await db.write(ForgetRows("a", list(range(2000))))
        tampered = [
            (i, f'{{"id":{i},"n":-1}}', v, o)
            for i, _, v, o in await db.read(rows_for, "a", list(range(2000, 2500)))
        ]
        await db.write(RepairRows("a", tampered, []))

        seen: list = []
        show = verify.Run.progress

        def progress(self, *args):
            shown = show(self, *args)
            seen.append(shown)  # the dict cluster_status shows while the table is compared
            return shown

        monkeypatch.setattr(verify.Run, "progress", progress)
        found = await verify.cluster_verify(n0.replicator, {"database": DATA})
        assert n0.replicator.verifying is None  # cleared once the run ends
        assert seen[0]["phase"] == "confirming" and seen[0]["records"][n2.name] == 1000
        assert seen[0]["records"][n0.name] == 3000 and seen[0]["rounds"] >= 2
        table = found["databases"][DATA]["a"]
        keys = {d["key"] for d in table["divergent"]}
        assert keys == set(range(2500)) and found["agreed"] is False
        gone = next(d for d in table["divergent"] if d["key"] == 7)
        assert gone["nodes"][n2.name] is None and gone["winner"]["origin"] == n0.name

        mended = await verify.cluster_verify(n1.replicator, {"repair": True})
        assert mended["agreed"] is True, mended["databases"]
        assert mended["repaired"] == 2500, mended
        await cluster.converge(20)
    finally:
        await cluster.close()


async def test_bad_verify_requests_get_clear_refusals(tmp_path) -> None:
    from agent.errors import ClientError, NotFound

    cluster = Cluster(tmp_path, seed_for(910), 1)
    try:
        await cluster.start({DATA: ["a"]})
        rep = cluster.nodes["n0"].replicator
        base = {"database": DATA, "table": "a", "run": "r1"}
        bad = [
            ({**base, "database": "nope", "operation": "verify_table"}, NotFound),
            ({**base, "database": "system", "operation": "verify_table"}, NotFound),
            ({**base, "table": "zz", "operation": "verify_table"}, NotFound),
            ({**base, "operation": "verify_digests", "prefixes": ["xyz"]}, ClientError),
            ({**base, "operation": "verify_digests", "prefixes": "0"}, ClientError),
            ({**base, "operation": "verify_digests", "prefixes": ["0"], "floor": -1}, ClientError),
            ({**base, "operation": "verify_leaves", "run": 5, "prefixes": []}, ClientError),
            ({**base, "operation": "verify_rows", "keys": [{"x": 1}]}, ClientError),
            ({**base, "operation": "verify_repair", "keys": [], "puts": [[1]]}, ClientError),
            (
                {**base, "operation": "verify_repair", "keys": [], "puts": [], "forgets": [[1]]},
                ClientError,
            ),
            ({**base, "operation": "verify_everything", "keys": []}, ClientError),
        ]
        for body, error in bad:
            try:
                await verifypeer.serve(rep, body)
            except error as exc:
                assert exc.message, body
            else:
                raise AssertionError(f"accepted {body}")
        ok = await verifypeer.serve(
            rep, {**base, "operation": "verify_digests", "prefixes": ["", "f"]}
        )
        assert ok == [[0, 0], [0, 0]]
    finally:
        await cluster.close()
