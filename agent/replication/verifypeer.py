"""What a node answers when a peer (or itself) runs cluster_verify: its side of the comparison.

Peer operations `verify_table` (tombstone horizon, and the peers this node knows),
`verify_digests` and `verify_leaves` (from an `Index` of one table, built once per run on a
reader thread and kept in `Indexes`), `verify_rows` (current rows of some keys),
`verify_repair` (`RepairRows`) and `verify_release` (a run is done with its indexes). Every
request is validated here: a malformed one is a ClientError, never a 500. The coordinator's
side is verify.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any

from agent.core import digests as dg
from agent.core import messages as m
from agent.core.errors import RemoteProtocolError
from agent.errors import ClientError, NotFound, StorageError
from agent.replication.budget import Budget
from agent.storage import verify as sv
from agent.storage.system import SYSTEM
from agent.storage.writes import tombstone_horizon

INDEX_TTL = 120.0
MAX_INDEXES = 4
PEER_OPERATIONS = {
    "verify_table",
    "verify_digests",
    "verify_leaves",
    "verify_rows",
    "verify_repair",
}


@dataclass
class Node:
    name: str
    url: str | None  # None: this node
    header: str | None = None


def nodes(replicator) -> list[Node]:
    """This node and every peer; a peer not yet heard from is named by its URL (compared
    all the same, or listed as skipped: never silently left out)."""
    nodes = [Node(replicator.node, None)]
    for peer in replicator.peers.values():
        if peer.name != replicator.node:
            nodes.append(Node(peer.name or peer.url, peer.url, peer.authorization))
    return nodes


class Indexes:
    """One node's indexes for the runs in progress.

    An on-demand run has indexes of its own (key: its run id). Background checks share
    theirs (key: "background" with the table, floor and ceiling; coordinators round the
    ceiling to the minute), so peers checking the same table at about the same time cost
    one build. Every build is charged to `budget`: its expected cost (the last build of the
    table) when it starts, corrected to the thread's CPU time when it ends. A background
    request that needs a new build is refused while the budget is spent; one served from a
    built index never is (a check is not abandoned halfway). `stop` ends builds in progress
    when the node stops.
    """

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.stop = threading.Event()
        self._items: dict[tuple, tuple[float, asyncio.Future]] = {}
        self._costs: dict[tuple, float] = {}  # (database, table) -> CPU of its last build

    async def get(
        self,
        storage,
        run: str,
        database: str,
        table: str,
        floor: int,
        ceiling: int | None,
        background: bool = False,
    ) -> dg.Index:
        now = time.monotonic()
        for key, (at, _) in list(self._items.items()):
            if now - at > INDEX_TTL:
                del self._items[key]
        key = ("background" if background else run, database, table, floor, ceiling)
        if key not in self._items:
            if background and not self.budget.available():
                raise ClientError("this node's verify budget is spent; try again later")
            while len(self._items) >= MAX_INDEXES:
                del self._items[min(self._items, key=lambda k: self._items[k][0])]
            db = database_of(storage, database)
            replicated_table(db, table)
            future = asyncio.ensure_future(self._build(db, table, floor, ceiling))
            self._items[key] = (now, future)
        return await asyncio.shield(self._items[key][1])

    def release(self, run: str) -> None:
        """Forget a finished run's indexes now (a large one holds ~110 MB per million)."""
        for key in [k for k in self._items if k[0] == run]:
            del self._items[key]

    async def _build(self, db, table: str, floor: int, ceiling: int | None) -> dg.Index:
        expected = self._costs.get((db.name, table), 0.0)
        self.budget.spend(expected)
        try:
            index, cpu = await db.read(_build, table, floor, ceiling, self.stop)
        except BaseException:
            self.budget.spend(-expected)
            raise
        self.budget.spend(cpu - expected)
        self._costs[(db.name, table)] = cpu
        return index


def _build(conn, table: str, floor: int, ceiling: int | None, stop) -> tuple[dg.Index, float]:
    started = time.thread_time()
    index = dg.Index(_until(stop, sv.records(conn, table, floor, ceiling)))
    return index, time.thread_time() - started


def _until(stop, rows):
    """Pass rows through, ending with StorageError once the node is stopping."""
    for i, row in enumerate(rows):
        if not i % 4096 and stop.is_set():
            raise StorageError("the node is stopping; verify index abandoned")
        yield row


def database_of(storage, name: Any):
    if not isinstance(name, str) or name == SYSTEM or not storage.exists(name):
        raise NotFound(f"database '{name}' does not exist or is not verified")
    return storage.get(name)


def replicated_table(db, name: Any):
    info = db.catalog.get(name) if isinstance(name, str) else None
    if info is None or not info.replicate:
        raise NotFound(f"table '{db.name}.{name}' does not exist or does not replicate")
    return info


def _prefixes(body: dict) -> list[str]:
    prefixes = body.get("prefixes")
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise ClientError("'prefixes' must be a list of hex strings")
    for prefix in prefixes:
        try:
            dg.bounds(prefix)
        except ValueError as exc:
            raise ClientError(str(exc)) from None
    return prefixes


def _is_key(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _version_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 63


def _version(body: dict, name: str, default: int | None) -> int | None:
    value = body.get(name, default)
    if value is None and default is None:
        return None
    if not _version_ok(value):
        raise ClientError(f"'{name}' must be a version (a non-negative integer)")
    return value


async def serve(replicator, body: dict) -> Any:
    """Answer one verify request (from a peer, or from this node's own comparison)."""
    op, storage = body.get("operation"), replicator.storage
    db = database_of(storage, body.get("database"))
    info = replicated_table(db, body.get("table"))
    if op == "verify_table":
        return {
            "horizon": await db.read(tombstone_horizon),
            "node": replicator.node,
            "peers": [[n.name, n.url] for n in nodes(replicator)[1:]],
        }
    if op == "verify_release":
        replicator.verify_indexes.release(str(body.get("run")))
        return {}
    if op in ("verify_digests", "verify_leaves"):
        run = body.get("run")
        if not isinstance(run, str) or not run:
            raise ClientError("'run' must name the verify run")
        floor, ceiling = _version(body, "floor", 0), _version(body, "ceiling", None)
        prefixes = _prefixes(body)
        index = await replicator.verify_indexes.get(
            storage, run, db.name, info.name, floor, ceiling, bool(body.get("background"))
        )
        if op == "verify_digests":
            return [list(index.digest(p)) for p in prefixes]
        return [[list(r) for r in index.leaf(p)] for p in prefixes]
    keys = body.get("keys")
    if not isinstance(keys, list) or not all(_is_key(k) for k in keys):
        raise ClientError("'keys' must be a list of primary keys")
    if op == "verify_rows":
        return [list(r) for r in await db.read(sv.rows_for, info.name, keys)]
    if op == "verify_repair":
        puts, forgets = body.get("puts"), body.get("forgets")
        try:
            m.check_rows(puts if isinstance(puts, list) else [None])
        except RemoteProtocolError as exc:
            raise ClientError(f"'puts': {exc}") from None
        if not isinstance(forgets, list) or not all(
            isinstance(f, list) and len(f) == 2 and _is_key(f[0]) and _version_ok(f[1])
            for f in forgets
        ):
            raise ClientError("'forgets' must be a list of [key, below version] pairs")
        changed = await db.write(sv.RepairRows(info.name, puts, [tuple(f) for f in forgets]))
        return {"changed": changed}
    raise ClientError(f"unknown verify operation {op!r}")
