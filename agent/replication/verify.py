"""cluster_verify: compare replicated tables across the nodes, list what differs, repair it.

The node asked runs the comparison (`agent.core.digests.Comparison`) and asks itself and
every peer, over replication connections (`membership.call_peer`), for range digests and
leaves; each node answers from an `Index` of one table built once per run (`Indexes`) on a
reader thread. Records are compared from the newest tombstone horizon of the nodes up: below
it, some node may have pruned a tombstone another still has.

Writes go on during a run, so a key found apart may only be in flight. Candidates are read
again on every node (up to CONFIRM_TRIES times, CONFIRM_WAIT apart) and only keys still
apart are reported. A repair puts the winning write (last write wins; the same write with
other content on some nodes: the content most nodes hold; a row older than a node's
tombstone horizon that node lacks counts as a forgotten delete) on every node that differs,
with `RepairRows`, then verifies again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agent.core import digests as dg
from agent.core import messages as m
from agent.core.errors import RemoteProtocolError
from agent.errors import ClientError, NotFound, StorageError
from agent.replication.budget import Budget
from agent.storage import verify as sv
from agent.storage.system import SYSTEM
from agent.storage.writes import tombstone_horizon

log = logging.getLogger(__name__)

BATCH = 1024  # prefixes per request
PEER_TIMEOUT = 600.0  # a peer's first answer builds its index: seconds for a large table
CONFIRM_TRIES = 4
CONFIRM_WAIT = 0.5
INDEX_TTL = 120.0
MAX_INDEXES = 4
PEER_OPERATIONS = {
    "verify_table",
    "verify_digests",
    "verify_leaves",
    "verify_rows",
    "verify_repair",
}


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
            db = _database(storage, database)
            _table(db, table)
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


def _database(storage, name: Any):
    if not isinstance(name, str) or name == SYSTEM or not storage.exists(name):
        raise NotFound(f"database '{name}' does not exist or is not verified")
    return storage.get(name)


def _table(db, name: Any):
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
    db = _database(storage, body.get("database"))
    info = _table(db, body.get("table"))
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


# --- the comparison ---------------------------------------------------------------------


@dataclass
class Node:
    name: str
    url: str | None  # None: this node
    header: str | None = None


@dataclass
class Run:
    """One cluster_verify: the nodes, what was exchanged, and the answer."""

    replicator: Any
    nodes: list[Node]
    run: str = field(default_factory=lambda: uuid.uuid4().hex)
    ceiling: int | None = None  # compare only writes older than this version
    background: bool = False  # peers may refuse when their verify budget is spent
    bytes: int = 0
    unreachable: dict[str, str] = field(default_factory=dict)

    async def ask(self, node: Node, body: dict) -> Any:
        if node.url is None:
            return await serve(self.replicator, body)
        from agent.replication.membership import call_peer

        answer = await call_peer(self.replicator, node.url, node.header, body, PEER_TIMEOUT)
        self.bytes += len(m.serialize(m.OpRequest(1, body))) + len(
            m.serialize(m.OpResult(1, 200, answer))
        )
        return answer

    async def ask_all(self, nodes: list[Node], body: dict) -> dict[str, Any]:
        answers = await asyncio.gather(*(self.ask(n, body) for n in nodes))
        return {n.name: a for n, a in zip(nodes, answers, strict=True)}

    async def ask_batched(self, nodes: list[Node], body: dict, op: str, prefixes: list) -> dict:
        """Ask every node about `prefixes`, BATCH at a time (frames stay small however far
        apart the tables are); return each node's answers in order."""
        out: dict[str, list] = {n.name: [] for n in nodes}
        for i in range(0, len(prefixes), BATCH):
            part = {**body, "operation": op, "prefixes": prefixes[i : i + BATCH]}
            for name, answer in (await self.ask_all(nodes, part)).items():
                out[name] += answer
        return out

    async def table(self, database: str, table: str) -> dict:
        """Compare one table on every reachable node; return its part of the answer."""
        base = {"operation": "verify_table", "database": database, "table": table}
        nodes, horizons, skipped = [], {}, {}
        queue = list(self.nodes)
        while queue:  # every node asked names its peers: one this node has not heard of
            node = queue.pop(0)  # yet (membership still replicating) is compared too
            try:
                answer = await self.ask(node, base)
            except (ClientError, NotFound) as exc:
                skipped[node.name] = exc.message
                continue
            horizons[node.name] = answer["horizon"]
            nodes.append(node)
            known = {n.name for n in self.nodes} | {url for n in self.nodes for url in [n.url]}
            for name, url in answer.get("peers", []):
                if name not in known and url not in known:
                    extra = Node(name, url)
                    self.nodes.append(extra)
                    queue.append(extra)
        started = time.monotonic()
        floor = max(horizons.values(), default=0)
        comp = dg.Comparison([n.name for n in nodes])
        body = {**base, "run": self.run, "floor": floor}
        if self.ceiling is not None:
            body["ceiling"] = self.ceiling
        if self.background:
            body["background"] = True
        progress = self.progress(database, table, [n.name for n in nodes], "indexing")
        while not comp.done:
            if comp.digest_request():
                answers = await self.ask_batched(
                    nodes, body, "verify_digests", comp.digest_request()
                )
                if not comp.rounds:  # the root: every node's record count
                    progress["records"] = {n: a[0][0] for n, a in answers.items()}
                comp.digests(answers)
                progress.update(phase="comparing", rounds=comp.rounds)
                progress.update(ranges=comp.ranges_compared, candidates=len(comp.divergent))
            if comp.leaf_request():
                comp.leaves(
                    await self.ask_batched(nodes, body, "verify_leaves", comp.leaf_request())
                )
                progress["candidates"] = len(comp.divergent)
        await self.release(nodes, body)
        progress["phase"] = "confirming"
        divergent = await self.confirm(nodes, base, list(comp.divergent), horizons)
        return {
            "nodes": [n.name for n in nodes],
            "skipped": skipped,
            "divergent": divergent,
            "ranges_compared": comp.ranges_compared,
            "rounds": comp.rounds,
            "seconds": round(time.monotonic() - started, 3),
        }

    def progress(self, database: str, table: str, nodes: list[str], phase: str) -> dict:
        """Start showing this table's comparison in cluster_status (`verifying`); the
        on-demand runs only: the background pass has its own counters."""
        shown = {
            "database": database,
            "table": table,
            "nodes": nodes,
            "phase": phase,
            "since": time.time(),
            "rounds": 0,
            "ranges": 0,
            "candidates": 0,
            "records": {},
        }
        if not self.background:
            self.replicator.verifying = shown
        return shown

    async def release(self, nodes: list[Node], body: dict) -> None:
        """Tell every node the run's indexes are no longer needed (best effort)."""
        done = {**body, "operation": "verify_release"}
        await asyncio.gather(*(self.ask(n, done) for n in nodes), return_exceptions=True)

    async def confirm(
        self, nodes: list[Node], base: dict, keys: list, horizons: dict
    ) -> list[dict]:
        """Read the candidate keys again until they agree, or hold still (the same views
        twice in a row: nothing in flight), or CONFIRM_TRIES have passed."""
        found: list[dict] = []
        before = None
        for attempt in range(CONFIRM_TRIES):
            if not keys:
                return []
            if attempt:
                await asyncio.sleep(CONFIRM_WAIT)
            answers: dict[str, list] = {n.name: [] for n in nodes}
            for i in range(0, len(keys), BATCH):
                part = {**base, "operation": "verify_rows", "keys": keys[i : i + BATCH]}
                for name, rows in (await self.ask_all(nodes, part)).items():
                    answers[name] += rows
            found = apart(answers, keys, horizons)
            keys = [d["key"] for d in found]
            views = [(repr(d["key"]), sorted(d["nodes"].items())) for d in found]
            if views == before:
                break
            before = views
        return found


def apart(answers: dict[str, list], keys: list, horizons: dict[str, int]) -> list[dict]:
    """Return, for each key the nodes hold differently, every node's view and the winner."""
    held: dict[Any, dict[str, list]] = {}
    for node, rows in answers.items():
        for pk, doc, version, origin in rows:
            held.setdefault(pk, {})[node] = [pk, doc, version, origin]
    out = []
    for key in keys:
        rows = {n: held.get(key, {}).get(n) for n in answers}
        views = {n: None if r is None else (r[2], r[3], dg.doc_hash(r[1])) for n, r in rows.items()}
        if len(set(views.values())) == 1:
            continue
        out.append({"key": key, "nodes": views, "rows": rows, **_winner(rows, horizons)})
    return out


def _winner(rows: dict[str, list | None], horizons: dict[str, int]) -> dict:
    """The write last-write-wins keeps; a live row older than the tombstone horizon of a
    node that lacks it lost to a delete that node forgot."""
    held = [r for r in rows.values() if r is not None]
    top = max((r[2], r[3]) for r in held)
    # the same write with other content on some node (a corrupted copy): most nodes win
    same = [r for r in held if (r[2], r[3]) == top]
    votes: dict[str, int] = {}
    for r in same:
        votes[dg.doc_hash(r[1])] = votes.get(dg.doc_hash(r[1]), 0) + 1
    best = max(same, key=lambda r: (votes[dg.doc_hash(r[1])], dg.doc_hash(r[1])))
    forgot = [
        n
        for n, r in rows.items()
        if r is None and best[1] is not None and horizons.get(n, 0) > best[2]
    ]
    if forgot:
        return {"winner": None, "forgotten_delete_on": forgot}
    return {"winner": best}


def public(divergence: dict) -> dict:
    """A divergent key as cluster_verify answers it (no documents)."""
    nodes = {
        n: None if v is None else {"version": v[0], "origin": v[1], "doc": v[2]}
        for n, v in divergence["nodes"].items()
    }
    win = divergence.get("winner")
    return {
        "key": divergence["key"],
        "nodes": nodes,
        "winner": None
        if win is None
        else {"version": win[2], "origin": win[3], "deleted": win[1] is None},
        **(
            {"forgotten_delete_on": divergence["forgotten_delete_on"]}
            if "forgotten_delete_on" in divergence
            else {}
        ),
    }


# --- the operation ----------------------------------------------------------------------


def table_targets(replicator) -> list[tuple[str, str]]:
    """Every replicated table of every replicated user database, in order."""
    return _targets(replicator, {})


def _targets(replicator, body: dict) -> list[tuple[str, str]]:
    storage = replicator.storage
    database, table = body.get("database"), body.get("table")
    if database is not None:
        _database(storage, database)
    if table is not None and database is None:
        raise ClientError("'table' needs 'database'")
    out = []
    for name in [database] if database else replicator.replicated_databases():
        if name == SYSTEM:
            continue
        db = storage.get(name)
        if table is not None:
            out.append((name, _table(db, table).name))
        else:
            out += [(name, t) for t in db.catalog.names() if db.catalog.get(t).replicate]
    return out


def nodes(replicator) -> list[Node]:
    """This node and every peer; a peer not yet heard from is named by its URL (compared
    all the same, or listed as skipped: never silently left out)."""
    nodes = [Node(replicator.node, None)]
    for peer in replicator.peers.values():
        if peer.name != replicator.node:
            nodes.append(Node(peer.name or peer.url, peer.url, peer.authorization))
    return nodes


async def cluster_verify(replicator, body: dict) -> dict:
    """Compare (and with `repair`, mend) every replicated table, or one database or table."""
    mend = body.get("repair", False)
    if not isinstance(mend, bool):
        raise ClientError("'repair' must be true or false")
    targets = _targets(replicator, body)
    try:
        return await _verify(replicator, targets, mend)
    finally:
        replicator.verifying = None


async def _verify(replicator, targets: list[tuple[str, str]], mend: bool) -> dict:
    started = time.monotonic()
    run = Run(replicator, nodes(replicator))
    tables: dict[str, dict] = {}
    repaired = 0
    for database, table in targets:
        result = await run.table(database, table)
        if mend and result["divergent"]:
            repaired += await repair(run, database, table, result["divergent"])
            run.run = uuid.uuid4().hex  # the second pass indexes the repaired tables afresh
            first = len(result["divergent"])
            result = await run.table(database, table)
            result["divergent_before_repair"] = first
        result["divergent"] = [public(d) for d in result["divergent"]]
        tables.setdefault(database, {})[table] = result
    divergent = sum(len(t["divergent"]) for d in tables.values() for t in d.values())
    skipped = sorted({n for d in tables.values() for t in d.values() for n in t["skipped"]})
    answer = {
        "agreed": divergent == 0 and not skipped,
        "divergent": divergent,
        "nodes": [n.name for n in run.nodes],
        "skipped": skipped,
        "databases": tables,
        "bytes": run.bytes,
        "seconds": round(time.monotonic() - started, 3),
    }
    if mend:
        answer["repaired"] = repaired
    replicator.verifying = None
    replicator.last_verify = {
        "at": time.time(),
        "agreed": answer["agreed"],
        "divergent": divergent,
        "skipped": skipped,
        "repaired": repaired if mend else None,
    }
    return answer


async def repair(run: Run, database: str, table: str, divergent: list[dict]) -> int:
    """Put each key's winner on the nodes that differ; return how many rows changed."""
    puts: dict[str, list] = {}
    forgets: dict[str, list] = {}
    for d in divergent:
        win = d.get("winner")
        for node, row in d["rows"].items():
            if win is None:
                if row is not None and row[1] is not None:
                    forgets.setdefault(node, []).append([row[0], row[2] + 1])
            elif row != win:
                puts.setdefault(node, []).append(win)
        where = sorted(set(puts) | set(forgets))
        what = "a forgotten delete" if win is None else f"version {win[2]} of {win[3]}"
        log.warning("verify repairs %s.%s key %r on %s: %s", database, table, d["key"], where, what)
    changed = 0
    by_name = {n.name: n for n in run.nodes}
    for name in sorted(set(puts) | set(forgets)):
        mine, gone = puts.get(name, []), forgets.get(name, [])
        for i in range(0, max(len(mine), len(gone)), BATCH):
            body = {
                "operation": "verify_repair",
                "database": database,
                "table": table,
                "keys": [],
                "puts": mine[i : i + BATCH],
                "forgets": gone[i : i + BATCH],
            }
            changed += (await run.ask(by_name[name], body))["changed"]
    return changed
