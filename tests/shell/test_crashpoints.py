"""Crash every node at every await point of its restart while all nodes write.

A restart is where the shell does the most that a crash can tear: it reads its cursors,
dials, says Hello, checks its own origin against the peer's Welcome, subscribes, applies a
backlog of transactions or a copy, confirms, acks, and serves its peers' sessions at the
same time. For n = 1, 2, ... POINTS each node in turn is restarted and killed at the n-th
await point of its shell after the start (crashpoints.py), then restarted plainly, and the
next node takes its turn (which begins by killing it wherever it is).

Every third turn the node stays down past what its peers keep of the log (they prune), so
its restart must copy, in chunks of 50 rows; those turns crash at point POINTS + n, past
the handshake, where the copy runs. So points 1..POINTS of every restart are each hit once
per node, and the copy's points are sampled every third.

Writes go on all the while on every node that is up: upserts over a bounded key space (so
copies stay short enough to crash in), hot-key upserts, deletes of acknowledged keys, a few
inserts, and now and then a burst of 30 at once, so that subscribers have applies queued in
their writers when a session ends. A write that committed on a node killed before it could
answer counts as acknowledged: a crash keeps it all the same. At the end every acknowledged
write must be on every node and the nodes must agree (converge.py).

SHELLSIM_POINTS sets how far n goes (the default keeps `make test` short; 200 covers every
point of a copy); SHELLSIM_SEED replays the schedule of writes and pauses.
"""

from __future__ import annotations

import asyncio
import os

from crashpoints import CrashPoints
from schedule import DATA
from shellsim import Cluster, SimNode
from test_shellsim import seed_for

from agent.errors import AgentError
from agent.storage.writes import WriteOp

POINTS = int(os.environ.get("SHELLSIM_POINTS", 60))
KEYS = 150  # per table
BURST = 30  # concurrent writes
SETTINGS = {
    "logging.auditRetention": "1s",
    "replication.tombstoneRetention": "2s",
    "replication.copyChunkRecords": 50,  # copies of several chunks, each a point of its own
}


def _op(cluster: Cluster, node: SimNode, count: int) -> WriteOp:
    rng, roll = cluster.rng, cluster.rng.random()
    acked = [a for a in cluster.acked[-200:] if not a.deleted]
    if roll < 0.2 and acked:
        ack = rng.choice(acked)
        return WriteOp("delete", ack.table, ids=[ack.key])
    if roll < 0.4:
        return WriteOp("upsert", "a", [{"id": f"hot-{rng.randrange(3)}", "n": count}])
    if roll < 0.95:  # a bounded key space keeps copies short enough to crash in
        key = f"k-{rng.randrange(KEYS)}"
        return WriteOp("upsert", rng.choice("ab"), [{"id": key, "by": node.name, "n": count}])
    return WriteOp("insert", rng.choice("ab"), [{"id": f"{node.name}-{count}"}])


async def _writes(cluster: Cluster, stop: asyncio.Event) -> int:
    """Write on the live nodes until `stop`, now and then a burst of concurrent writes that
    backs up the subscribers' writers; prune one node now and then."""
    rng, count = cluster.rng, 0
    while not stop.is_set():
        live = [n for n in cluster.nodes.values() if n.up]
        if not live:
            await asyncio.sleep(0.01)
            continue
        node = rng.choice(live)
        burst = BURST if rng.random() < 0.1 else 1
        ops = [_op(cluster, node, count + i) for i in range(1, burst + 1)]
        count += burst
        await asyncio.gather(*(cluster.transact(node.name, DATA, [op]) for op in ops))
        if count % 50 < burst and node.up:
            try:
                await node.storage.prune(1.0, 2.0)
            except AgentError:
                pass  # the node crashed under the prune
        await asyncio.sleep(rng.uniform(0.0, 0.01))
    return count


async def _crash_at(cluster: Cluster, node: SimNode, at: int) -> str:
    """Restart `node` and kill it at its `at`-th await point; say where it died."""
    if node.up:
        node.kill()  # the turn begins with a crash at whatever the node was doing
        await node.reap()
    if at % 3 == 0:  # down past what its peers keep of the log: the restart must copy
        await asyncio.sleep(0.4)
        for other in cluster.nodes.values():
            if other.up:
                await other.storage.prune(0.3, 2.0)
        at += POINTS  # past the handshake, where the copy runs
    points = CrashPoints(node, at)
    try:
        await node.start(points)
    except AgentError:
        pass  # killed during start: what start still did was refused
    try:
        await cluster.wait_until(lambda: points.fired is not None, 5, f"point {at} of {node.name}")
    except AssertionError:
        pass  # the shell went quiet before its n-th point: crash it anyway
    node.kill()  # again: tasks the interrupted start created after the kill die too
    await node.reap()
    await node.start()
    return points.fired or f"none of {points.count} points (killed after 5 s)"


async def test_crash_at_every_await_point_of_a_restart(tmp_path) -> None:
    cluster = Cluster(tmp_path, seed_for(404), 3, SETTINGS)
    stop = asyncio.Event()
    try:
        await cluster.start({DATA: ["a", "b"]})
        writer = asyncio.create_task(_writes(cluster, stop))
        kinds: set[str] = set()
        for at in range(1, POINTS + 1):
            for node in cluster.nodes.values():
                where = await _crash_at(cluster, node, at)
                cluster.note(f"{node.name} crashed at {where}")
                kinds.add(where.split(" ")[1])
                await asyncio.sleep(cluster.rng.uniform(0.0, 0.15))
        stop.set()
        writes = await writer
        took = await cluster.converge()
        cluster.note(f"{writes} writes; converged in {took:.1f}s; crash points: {sorted(kinds)}")
    finally:
        stop.set()
        await cluster.close()
    print("\n".join(cluster.log))
    assert len(cluster.acked) > 100
    assert {"send", "recv", "read", "queue", "applied", "committed"} <= kinds
