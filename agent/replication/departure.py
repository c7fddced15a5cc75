"""Leaving a cluster without losing writes, and without leaving anything stale behind.

remove_node of a live node first asks it how far its own writes go in every database
(`origin_heads`) and waits, bounded, until this node has applied them all: from here they
reach every other member like any origin's transactions, even once nobody links to the
removed node. What did not arrive in time is reported, never dropped silently.

The removed node forgets its peers, the cursors of every origin but its own and its synced
markers, so that when it is added again (through any member) it re-syncs in full and learns
every member, instead of resuming from cursors that skip what it forgot.
"""

from __future__ import annotations

import asyncio
import logging
import time

from agent.storage import txlog
from agent.storage.apply import ForgetCursors
from agent.storage.system import NODES, SYSTEM
from agent.storage.writes import ForgetRows

log = logging.getLogger(__name__)
DRAIN_TIMEOUT = 10.0


async def origin_heads(replicator) -> dict[str, list]:
    """Return, per replicated database, this node's origin id and its last own sequence."""
    out = {}
    for name in replicator.replicated_databases():
        db = replicator.storage.get(name)
        out[name] = [db.origin_id, (await db.read(txlog.cursor, db.origin_id))[0]]
    return out


async def behind(replicator, heads: dict) -> dict[str, int]:
    """Return, per database, how many of the heads' transactions are not applied here."""
    out = {}
    for name, head in heads.items():
        if not (isinstance(head, list) and len(head) == 2 and replicator.storage.exists(name)):
            continue
        origin, seq = head
        if not isinstance(origin, str) or not isinstance(seq, int):
            continue
        applied = (await replicator.storage.get(name).read(txlog.cursor, origin))[0]
        if seq > applied:
            out[name] = seq - applied
    return out


async def drain(replicator, heads: dict, timeout: float = DRAIN_TIMEOUT) -> dict[str, int]:
    """Wait until every transaction in `heads` is applied here; return what still is not."""
    deadline = time.monotonic() + timeout
    missing = await behind(replicator, heads)
    while missing and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        missing = await behind(replicator, heads)
    if missing:
        log.warning("removing a node before all its writes arrived here: %s missing", missing)
    return missing


async def forget_cluster(replicator) -> None:
    """On the removed node: forget peers, routes, and every other origin's cursors."""
    rows = await _node_names(replicator)
    await replicator.storage.get(SYSTEM).write(ForgetRows(NODES, rows))  # local only
    for name in replicator.replicated_databases():
        await replicator.storage.get(name).write(ForgetCursors())
    replicator.routes = []
    replicator.forget_retained(None)  # no credentials outlive the cluster they were for
    await replicator.reconcile()


async def _node_names(replicator) -> list:
    from agent.replication.membership import node_rows

    return list(await node_rows(replicator))
