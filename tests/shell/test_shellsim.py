"""The real replication shell under seeded faults, over an in-memory network (shellsim.py).

Property: after healing, every node holds identical rows, versions and cursors, every
acknowledged write is present or superseded by a later version, and no log has a hole below
its cursor. Set SHELLSIM_SEED to replay a schedule (approximately: see shellsim.py).
"""

from __future__ import annotations

import asyncio
import os

from schedule import DATA, Plan, Schedule
from shellsim import Blocker, Cluster, SimNode

from agent.core.subscription import COPYING
from agent.storage.writes import WriteOp

PRUNING = {"logging.auditRetention": "1s", "replication.tombstoneRetention": "2s"}


def seed_for(default: int) -> int:
    seed = int(os.environ.get("SHELLSIM_SEED", default))
    print(f"shellsim seed {seed}")
    return seed


async def run(tmp_path, seed: int, plan: Plan, settings: dict | None = None) -> Cluster:
    """Start three nodes, run the schedule, heal, and wait until they converge."""
    cluster = Cluster(tmp_path, seed, 3, settings)
    try:
        await cluster.start({DATA: ["a", "b"]})
        await Schedule(cluster, plan).run()
        took = await cluster.converge()
        cluster.note(f"converged in {took:.1f}s")
    finally:
        await cluster.close()
    print("\n".join(cluster.log))
    return cluster


async def test_drops_and_crashes_lose_no_acknowledged_write(tmp_path) -> None:
    cluster = await run(tmp_path, seed_for(101), Plan(drops=True, crashes=True))
    assert len(cluster.acked) > 40
    assert any("crash" in line for line in cluster.log)


async def test_partitions_and_pruning_past_retention_converge(tmp_path) -> None:
    plan = Plan(partitions=True, prune=True, crashes=False, steps=110)
    cluster = await run(tmp_path, seed_for(202), plan, PRUNING)
    assert any(" prune " in line for line in cluster.log)
    assert any("partition" in line for line in cluster.log)


# --- a session ending while applies wait in the writer ---------------------------------------


async def _two_nodes(tmp_path) -> tuple[Cluster, SimNode, SimNode]:
    cluster = Cluster(tmp_path, seed_for(303), 2)
    await cluster.start({DATA: ["a"]})
    source, sink = cluster.nodes["n0"], cluster.nodes["n1"]
    sink.faults.install(sink.storage)  # counts the applies queued in the sink's writer
    await cluster.wait_until(lambda: _streaming(sink, source, DATA), 10, "n1 streams from n0")
    return cluster, source, sink


def _streaming(node: SimNode, peer: SimNode, database: str) -> bool:
    links = [p.links.get(database) for p in node.replicator.peers.values() if p.name == peer.name]
    return bool(links and links[0] and links[0].streaming)


async def _queue_applies(cluster: Cluster, source: SimNode, sink: SimNode, count: int) -> Blocker:
    """Hold the sink's writer and write `count` transactions on the source; return the
    blocker once all of them wait in the sink's writer queue."""
    blocker = Blocker()
    sink.storage.get(DATA).submit(blocker)
    await asyncio.to_thread(blocker.running.wait, 10)
    before = sink.faults.seen
    for i in range(count):
        op = WriteOp("insert", "a", [{"id": f"q{i}"}])
        assert await cluster.transact(source.name, DATA, [op])
    await cluster.wait_until(
        lambda: sink.faults.seen - before >= count, 30, "the applies are queued in the writer"
    )
    return blocker


async def test_session_end_keeps_queued_applies(tmp_path) -> None:
    """Applies queued when the session ends still commit, without a new session.

    Fails on a shell that cancels queued applies when its session ends (the old one did):
    with the peer partitioned away, nothing else could bring them.
    """
    cluster, source, sink = await _two_nodes(tmp_path)
    try:
        blocker = await _queue_applies(cluster, source, sink, 8)
        cluster.net.partition(source.name, sink.name)
        cluster.note(f"dropped {cluster.net.drop(source.name, sink.name)} connections")
        await asyncio.sleep(0.2)  # the session is over while the applies still wait
        blocker.release.set()
        origin = source.storage.get(DATA).origin_id
        head = source.cursor(DATA, origin)
        await cluster.wait_until(
            lambda: sink.cursor(DATA, origin) == head, 10, "the queued applies committed"
        )
        cluster.net.heal()
        await cluster.converge(20)
    finally:
        await cluster.close()


async def test_lost_apply_is_refused_as_a_gap_never_skipped(tmp_path) -> None:
    """A queued apply that never runs must stop its origin's cursor, not be passed over.

    The third of eight queued applies vanishes (as when a shell lost queued applies) and the
    session ends; the later ones must be refused as gaps and sent again by the next session.
    Fails if storage applied a transaction past a hole in its origin's sequence.
    """
    cluster, source, sink = await _two_nodes(tmp_path)
    try:
        sink.faults.arm(lose=1, skip=2)
        blocker = await _queue_applies(cluster, source, sink, 8)
        cluster.note(f"dropped {cluster.net.drop(source.name, sink.name)} connections")
        blocker.release.set()
        await cluster.converge(20)
        assert sink.faults.lost, "the fault did not fire"
    finally:
        await cluster.close()


# --- a relay change while a link copies ---------------------------------------------------


def _link(node: SimNode, peer: SimNode, database: str):
    for p in node.replicator.peers.values():
        if p.name == peer.name:
            return p.links.get(database)
    return None


def _slow_scans(node: SimNode, database: str, seconds: float) -> None:
    """Make `node` read each copy chunk slowly (a slow disk), so a copy lasts a while."""
    db = node.storage.get(database)
    read = db.read

    async def slow_read(fn, *args):
        if getattr(fn, "__name__", "") == "scan":
            await asyncio.sleep(seconds)
        return await read(fn, *args)

    db.read = slow_read


def _asked_at_copy_end(node: SimNode, link, origin: str) -> list[bool]:
    """Record, as each copy of `link` ends, whether it is about to ask again for `origin`.

    Checked right after the link's own step at copy end (call_soon), before anything else
    runs: a later, unrelated re-plan must not pass for the one the copy owed.
    """
    asked: list[bool] = []
    finished = node.replicator.copy_finished

    def copy_finished(which) -> None:
        finished(which)
        if which is link:

            def check() -> None:  # private fields: what the link will do next
                asked.append(link._resubscribe.is_set() or origin in link.subscribed_origins)

            asyncio.get_running_loop().call_soon(check)

    node.replicator.copy_finished = copy_finished
    return asked


async def test_relay_change_during_a_copy_is_asked_for_when_the_copy_ends(tmp_path) -> None:
    """Defect 8: re-planning relays skipped a link that was copying, so an origin whose
    direct link fell while another link copied was never asked of that link.

    n2 streams from n0 and copies from n1 (n1 wrote while cut off from both and pruned its
    log past those writes); while the copy runs, n0 becomes unreachable from n2. Once the copy ends,
    n2's link to n1 must ask for n0's transactions too, and a write on n0 must reach n2
    through n1. n2's periodic reconcile is stopped, so only the re-planning on the link
    event can bring it. Fails if `_replan` skips copying links or the link forgets the
    change by the end of its copy.
    """
    settings = {"replication.copyChunkRecords": 20, "logging.auditRetention": "1s"}
    cluster = Cluster(tmp_path, seed_for(505), 3, settings)
    try:
        await cluster.start({DATA: ["a"]})
        n0, n1, n2 = cluster.nodes.values()
        for peer in (n0, n1):
            await cluster.wait_until(lambda p=peer: _streaming(n2, p, DATA), 10, "n2 streams")
        n2.replicator._reconcile_task.cancel()  # private: leave only the event-driven re-plan
        # n1 writes while cut off from both, then prunes its log past them: n2 must copy
        for other in (n0, n2):
            cluster.net.partition(n1.name, other.name)
            cluster.net.drop(n1.name, other.name)
        rows = [{"id": f"n1-{i}"} for i in range(600)]
        assert await cluster.transact(n1.name, DATA, [WriteOp("insert", "a", rows)])
        await asyncio.sleep(1.2)
        await n1.storage.prune(0.5, 0.5)
        _slow_scans(n1, DATA, 0.1)  # 30 chunks: about three seconds of copy
        cluster.net.heal(n1.name, n2.name)
        copying = _link(n2, n1, DATA)
        await cluster.wait_until(
            lambda: copying.machine is not None and copying.machine.state == COPYING,
            15,
            "n2 copying from n1",
        )
        assert n0.storage.get(DATA).origin_id not in copying.subscribed_origins
        cluster.net.heal(n0.name, n1.name)  # n1 can relay n0's transactions again
        await cluster.wait_until(lambda: _streaming(n1, n0, DATA), 10, "n1 streams from n0")
        origin = n0.storage.get(DATA).origin_id
        asked = _asked_at_copy_end(n2, copying, origin)
        cluster.net.partition(n0.name, n2.name)
        cluster.note(f"partition n0|n2 during the copy: {cluster.net.drop(n0.name, n2.name)}")
        assert copying.machine.state == COPYING, "the copy ended too soon for this test"
        await cluster.transact(n0.name, DATA, [WriteOp("insert", "a", [{"id": "from-n0"}])])
        head = n0.cursor(DATA, origin)
        await cluster.wait_until(
            lambda: n2.cursor(DATA, origin) == head, 20, "n0's write reaching n2 through n1"
        )
        assert origin in copying.subscribed_origins
        assert asked == [True], "the link did not ask for n0's origin as its copy ended"
        cluster.net.heal()
        await cluster.converge(20)
    finally:
        await cluster.close()
