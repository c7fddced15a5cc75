"""cluster_verify: compare replicated tables across the nodes, list what differs, repair it.

The node asked runs the comparison (`agent.core.digests.Comparison`) and asks itself and
every peer, over replication connections (`membership.call_peer`), for range digests and
leaves; each node answers from an `Index` of one table built once per run (verifypeer.py) on
a reader thread. Records are compared from the newest tombstone horizon of the nodes up: below
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
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agent.core import digests as dg
from agent.core import messages as m
from agent.errors import ClientError, NotFound
from agent.replication.verifypeer import Node, database_of, nodes, replicated_table, serve
from agent.storage.system import SYSTEM

log = logging.getLogger(__name__)

BATCH = 1024  # prefixes per request
PEER_TIMEOUT = 600.0  # a peer's first answer builds its index: seconds for a large table
CONFIRM_TRIES = 4
CONFIRM_WAIT = 0.5


# --- the comparison ---------------------------------------------------------------------


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

        named = node.name if node.name != node.url else None  # a peer not heard from yet
        answer = await call_peer(
            self.replicator, node.url, node.header, body, PEER_TIMEOUT, peer_name=named
        )
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
        database_of(storage, database)
    if table is not None and database is None:
        raise ClientError("'table' needs 'database'")
    out = []
    for name in [database] if database else replicator.replicated_databases():
        if name == SYSTEM:
            continue
        db = storage.get(name)
        if table is not None:
            out.append((name, replicated_table(db, table).name))
        else:
            out += [(name, t) for t in db.catalog.names() if db.catalog.get(t).replicate]
    return out


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
