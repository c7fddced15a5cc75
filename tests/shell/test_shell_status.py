"""cluster_status tells the truth, on the real shell: behind per origin in records, a copy
in progress, an origin that no link serves."""

from __future__ import annotations

import asyncio

from schedule import DATA
from shellsim import Blocker, Cluster, SimNode
from test_shellsim import _link, _slow_scans, _streaming, seed_for

from agent.core.subscription import COPYING
from agent.replication.status import cluster_status
from agent.storage.writes import WriteOp


def _socket(status: dict, peer: SimNode, database: str = DATA) -> dict:
    for conn in status["connections"]:
        if conn["name"] == peer.name:
            return next(s for s in conn["database_sockets"] if s["database"] == database)
    raise AssertionError(f"no connection to {peer.name}")


async def test_behind_counts_records_per_origin_while_the_writer_is_held(tmp_path) -> None:
    cluster = Cluster(tmp_path, seed_for(606), 2)
    try:
        await cluster.start({DATA: ["a"]})
        source, sink = cluster.nodes["n0"], cluster.nodes["n1"]
        await cluster.wait_until(lambda: _link(sink, source, DATA).streaming, 10, "streaming")
        blocker = Blocker()
        sink.storage.get(DATA).submit(blocker)
        await asyncio.to_thread(blocker.running.wait, 10)
        for t in range(5):  # 5 transactions of 10 records: 50 records, not 5 entries
            rows = [{"id": f"t{t}-{i}"} for i in range(10)]
            await cluster.transact(source.name, DATA, [WriteOp("insert", "a", rows)])

        async def behind() -> list:
            return _socket(await cluster_status(sink.replicator), source)["behind"]

        deadline = asyncio.get_running_loop().time() + 10
        got = await behind()
        while sum(b["records"] for b in got) < 50:
            assert asyncio.get_running_loop().time() < deadline, got
            await asyncio.sleep(0.1)
            got = await behind()
        assert [(b["origin"], b["records"]) for b in got] == [(source.name, 50)]
        assert got[0]["seconds"] >= 0.0
        socket = _socket(await cluster_status(sink.replicator), source)
        assert socket["recordsBehind"] == 50
        blocker.release.set()
        origin = source.storage.get(DATA).origin_id
        head = source.cursor(DATA, origin)
        await cluster.wait_until(lambda: sink.cursor(DATA, origin) == head, 10, "applied")
        await asyncio.sleep(1.5)  # the next Progress
        assert await behind() == []
    finally:
        await cluster.close()


async def test_a_copy_in_progress_shows_copying_not_the_whole_log_behind(tmp_path) -> None:
    cluster = Cluster(tmp_path, seed_for(707), 2, {"replication.copyChunkRecords": 20})
    try:
        await cluster.start({DATA: ["a"]})
        source, sink = cluster.nodes["n0"], cluster.nodes["n1"]
        await sink.crash()
        rows = [{"id": i} for i in range(400)]
        await cluster.transact(source.name, DATA, [WriteOp("insert", "a", rows)])
        await source.storage.prune(0.0, 0.0)  # the log cannot serve n1: it must copy
        _slow_scans(source, DATA, 0.1)
        await sink.start()
        link = _link(sink, source, DATA)
        await cluster.wait_until(
            lambda: link.machine is not None and link.machine.state == COPYING, 15, "copying"
        )
        await asyncio.sleep(1.2)
        socket = _socket(await cluster_status(sink.replicator), source)
        assert socket["lastReceivedStatus"] == "Copying"
        assert socket["copy"]["state"] == "copying" and 0 < socket["copy"]["total"] <= 400
        assert socket["behind"] == []  # the copy's own progress says how far it got
        await cluster.converge(30)
    finally:
        await cluster.close()


async def test_an_origin_no_link_serves_is_shown_unserved(tmp_path) -> None:
    cluster = Cluster(tmp_path, seed_for(808), 3, {"replication.failOver": False})
    try:
        await cluster.start({DATA: ["a"]})
        n0, n1, n2 = cluster.nodes.values()
        for a, b in ((n2, n0), (n2, n1), (n0, n2)):
            await cluster.wait_until(lambda a=a, b=b: _streaming(a, b, DATA), 10, "mesh")

        async def origins(node: SimNode) -> dict:
            status = await cluster_status(node.replicator)
            return {o["origin"]: o for o in status["origins"][DATA]}

        assert (await origins(n2))[n0.name]["servedBy"] == [n0.name]
        cluster.net.partition(n0.name, n2.name)
        cluster.net.drop(n0.name, n2.name)
        await cluster.transact(n0.name, DATA, [WriteOp("insert", "a", [{"id": "x"}])])
        await cluster.wait_until(lambda: not _link(n2, n0, DATA).state.connected, 10, "down")
        seen = (await origins(n2))[n0.name]
        assert seen["unserved"] is True and seen["servedBy"] == []
        assert (await origins(n0))[n2.name]["unserved"] is True
        assert (await origins(n1))[n0.name]["unserved"] is False
        cluster.net.heal()
        await cluster.converge(20)
        assert (await origins(n2))[n0.name]["unserved"] is False
    finally:
        await cluster.close()
