"""Write jobs for what arrives from peers: transactions, snapshot chunks, copy completion.

Every job here checks, inside the writer's transaction, that it continues what was applied
before it, and refuses (StreamGap, nothing applied) when it does not: a replicated
transaction applies only as the next sequence of its origin (an older one is a harmless
duplicate), a copy chunk only right after the chunk before it, a copy completes only when
every chunk arrived. So whatever ends a link, drops a frame or skips a queued job, no cursor
ever passes a transaction or chunk that was not applied.

Records merge by last-write-wins; a transaction is logged again under its origin's id and
sequence, so this node can relay it. Snapshot rows merge by the same rule, so a merge never
deletes a row this node has unless a newer tombstone says so, or the publisher's tombstone
horizon says a delete older than it was forgotten (see `SnapshotChunk`).
"""

from __future__ import annotations

import logging
from typing import Any

from agent import jsonx
from agent.core.changes import (
    ATTRIBUTE,
    CREATE_TABLE,
    DELETE,
    DROP_ATTRIBUTE,
    DROP_TABLE,
    PUT,
    Write,
)
from agent.core.cursors import DUPLICATE, GAP, classify, lacks_before, scoped
from agent.core.errors import RemoteProtocolError
from agent.core.messages import decode_changes
from agent.errors import StreamGap
from agent.storage import catalog as cat
from agent.storage import meta, rows, schema, txlog
from agent.storage.clock import SharedClock
from agent.storage.writer import Committed, JobContext
from agent.storage.writes import drop_attribute, remember_version, tombstone_horizon

log = logging.getLogger(__name__)
COPY_STATE = "copy:"
SYNCED = "synced"


def apply_writes(ctx: JobContext, database: str, version: int, origin: str, writes) -> int:
    """Apply decoded writes by last-write-wins; return how many records won."""
    won = 0
    batch: dict[str, list[tuple]] = {}
    names = getattr(writes, "names", None)  # checked change sets say which names they carry
    for w in writes:
        if w.kind in (PUT, DELETE):
            batch.setdefault(w.table, []).append((w.key, w.value, version, origin))
            continue
        won += _flush(ctx, database, batch, version, names)
        _schema_write(ctx, database, w, version, origin)
    return won + _flush(ctx, database, batch, version, names)


def _flush(
    ctx: JobContext,
    database: str,
    batch: dict[str, list[tuple]],
    version: int,
    names: dict[str, set[str]] | None,
) -> int:
    won = 0
    for table, items in batch.items():
        info = schema.table_for_write(ctx, database, table, version)
        if info is not None:
            won += rows.apply_lww(ctx.conn, info.name, items)
            _note_attributes(ctx, info, items, names.get(table) if names is not None else None)
    batch.clear()
    return won


def _note_attributes(
    ctx: JobContext, info: cat.TableInfo, items: list[tuple], known: set[str] | None
) -> None:
    """Keep the catalog in step with the records: deletes recount, new names are added.

    New attributes mostly arrive as ATTRIBUTE writes before the records, but the origin does
    not send one for a name its catalog still holds while this node forgot it (no live
    record here had it), so the records' names count too: `known` when the change set was
    checked (agent/core/validate.py read them), else read here (~0.5 us a record).
    """
    names: set[str] = set() if known is None else known
    for item in items:
        if item[1] is None:
            ctx.catalog.mark_stale(info.name)
        elif known is None:
            names.update(jsonx.loads(item[1]))
    new = ctx.catalog.add_attributes(info, names)
    if new:
        cat.persist_attributes(ctx.conn, info.name, new)


def _schema_write(ctx: JobContext, database: str, w: Write, version: int, origin: str) -> None:
    if w.kind == CREATE_TABLE:
        if not isinstance(w.value, dict) or not isinstance(w.value.get("name"), str):
            raise StreamGap(f"malformed table definition for {database}.{w.table}")
        schema.create(ctx, database, w.value, version, origin)
    elif w.kind == DROP_TABLE:
        schema.drop(ctx, w.table, version)
    elif w.kind == ATTRIBUTE:
        info = schema.table_for_write(ctx, database, w.table, version)
        if info is not None and w.key not in info.attributes:
            attr = cat.attribute_from_spec(w.key, w.value)
            ctx.catalog.job.add(info.name, [attr])
            cat.persist_attributes(ctx.conn, info.name, [attr])
    elif w.kind == DROP_ATTRIBUTE:
        info = schema.table_for_write(ctx, database, w.table, version)
        if info is not None and w.key != info.primary_key and w.key not in cat.TIME_ATTRIBUTES:
            drop_attribute(ctx, info, w.key)


class RemoteTransaction:
    """Apply one transaction from a peer, atomically, if it is its origin's next one."""

    durable = False  # see Writer._sync_for: the peer holds it durably

    def __init__(
        self,
        database: str,
        msg,
        clock: SharedClock,
        scope: str | None = None,
        writes: list[Write] | None = None,
    ) -> None:
        self.database, self.msg, self.clock = database, msg, clock
        self.scope = scope  # the tables of a filtered stream (its own cursor; not relayed)
        self.records = max(msg.records, 1)
        # the change set the Subscriber already decoded and checked (else decoded here)
        self.writes = writes

    def run(self, ctx: JobContext) -> bool:
        """Apply and return True; False for a duplicate; raise StreamGap for a gap."""
        msg = self.msg
        if msg.origin_id == ctx.origin_id:
            return False  # our own transactions coming back through a relay
        key = scoped(msg.origin_id, self.scope)
        cursor = txlog.cursor(ctx.conn, key)[0]
        decision = classify(cursor, msg.oseq)
        if decision == DUPLICATE:
            return False
        if decision == GAP:
            raise StreamGap(
                f"transaction {msg.oseq} of origin {msg.origin} ({msg.origin_id}) arrived, "
                f"but {cursor} is the last applied"
            )
        writes = self.writes if self.writes is not None else self._decode()
        self.clock.observe(msg.version)
        apply_writes(ctx, self.database, msg.version, msg.origin, writes)
        txlog.set_cursor(ctx.conn, key, msg.oseq, msg.version)
        if self.scope is not None:
            return True  # part of a transaction: never logged as the origin's, never relayed
        tables = frozenset(w.table for w in writes)
        entry = Committed(
            0, msg.version, msg.origin, msg.records, msg.body, tables, msg.at,
            msg.origin_id, msg.oseq,
        )  # fmt: skip
        entry.seq = txlog.append(ctx.conn, entry)
        ctx.entries.append(entry)
        return True

    def _decode(self) -> list[Write]:
        try:
            return decode_changes(self.msg.body)
        except RemoteProtocolError as exc:  # refused like a gap: nothing of it is applied
            raise StreamGap(f"malformed change set from {self.msg.origin}: {exc}") from None


class EnsureSchema:
    """Create the tables (and attributes) a peer's Schema lists that this node lacks."""

    durable = False  # see Writer._sync_for: the peer holds it durably

    records = 1

    def __init__(self, database: str, tables: list[dict]) -> None:
        self.database, self.tables = database, tables

    def run(self, ctx: JobContext) -> list[str]:
        created = []
        for spec in self.tables:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                continue
            if spec.get("replicate", True) and schema.ensure(ctx, self.database, spec):
                created.append(spec["name"])
        return created


def _copied(ctx: JobContext, peer: str) -> int | None:
    state = load_meta(ctx.conn, COPY_STATE + peer)
    return int(state.get("copied") or 0) if isinstance(state, dict) else None


class CopyBegin:
    """Start (or continue) receiving a copy: the stored progress must match what is resumed."""

    durable = False
    records = 1

    def __init__(self, peer: str, state: dict, resumed: int) -> None:
        self.peer, self.state, self.resumed = peer, state, resumed

    def run(self, ctx: JobContext) -> None:
        if self.resumed:
            if _copied(ctx, self.peer) != self.resumed:
                raise StreamGap(f"resumed copy from {self.peer} does not match stored progress")
            return
        save_meta(ctx.conn, COPY_STATE + self.peer, self.state)


class SnapshotChunk:
    """Merge a chunk of a peer's rows and remember how far the copy got (for resume).

    With a tombstone `horizon` (the peer's), rows of this node in the chunk's key range that
    the peer does not have and that are older than the horizon are deleted: the peer forgot
    their delete's tombstone. This node's own writes the peer has not received are kept.
    The other way round, from a peer that lacks writes older than this node's own horizon,
    a row older than that horizon which this node does not have is not taken: this node may
    have deleted it and forgotten the tombstone, while the peer never heard of the delete.
    """

    durable = False  # see Writer._sync_for: the peer holds it durably

    def __init__(self, database: str, msg, peer: str, state: dict, clock: SharedClock) -> None:
        self.database, self.msg, self.peer, self.state, self.clock = (
            database,
            msg,
            peer,
            state,
            clock,
        )
        self.records = max(len(msg.rows), 1)
        self.horizon = 0
        self.keep_mine: tuple[str, int] = ("", 0)  # (my name, newest version the peer has)
        # the peer's cursor versions (Welcome): a peer that lacks writes older than our
        # tombstone horizon must not give back rows we may have deleted (lacks_before)
        self.peer_versions: dict[str, int] | None = None

    def run(self, ctx: JobContext) -> int:
        msg = self.msg
        before = _copied(ctx, self.peer) or 0
        if before + len(msg.rows) != self.state["copied"]:
            raise StreamGap(f"copy chunk from {self.peer} does not follow the one applied")
        info = schema.table_for_copy(ctx, self.database, msg.table)
        if info is None:  # dropped here: nothing of it is kept
            save_meta(ctx.conn, COPY_STATE + self.peer, self.state)
            return 0
        prepared = [(r[0], r[1], r[2], r[3]) for r in msg.rows]
        top = max((r[2] for r in prepared), default=0)
        if top:
            self.clock.observe(top)
            # rows merged before the copy completes are covered by no cursor yet: remember
            # the highest version so the clock never restarts below it
            remember_version(ctx.conn, top)
        if self.horizon:
            rows.forget_absent(ctx.conn, info.name, msg, self.horizon, self.keep_mine)
        if self.peer_versions is not None:
            own_horizon = tombstone_horizon(ctx.conn)
            mine = txlog.cursor_versions(ctx.conn)
            if lacks_before(own_horizon, mine, self.peer_versions):
                prepared = rows.without_forgotten(ctx.conn, info.name, prepared, own_horizon)
        won = rows.apply_lww(ctx.conn, info.name, prepared)
        save_meta(ctx.conn, COPY_STATE + self.peer, self.state)
        return won


class CopyComplete:
    """Finish a copy: cursors and floors move to the snapshot's frontier, atomically.

    Only when every chunk arrived: the stored progress must count what the peer sent.
    """

    durable = False  # see Writer._sync_for: the peer holds it durably

    records = 1

    def __init__(self, peer: str, msg, scope: str | None = None) -> None:
        self.peer, self.frontier, self.copied = peer, msg.frontier, msg.copied
        self.versions = msg.versions  # the version of each frontier transaction
        self.scope = scope  # a filtered link's copy: its own cursors, not a full sync

    def run(self, ctx: JobContext) -> None:
        if (_copied(ctx, self.peer) or 0) != self.copied:
            raise StreamGap(f"copy from {self.peer} ended before every chunk was applied")
        for origin_id, seq in self.frontier.items():
            if origin_id == ctx.origin_id:
                continue  # our own log stays complete for our own writes
            key = scoped(origin_id, self.scope)
            current = txlog.cursor(ctx.conn, key)[0]
            if seq > current:
                # The log has a hole only where the snapshot went past what we had applied.
                if self.scope is None:
                    txlog.raise_floor(ctx.conn, origin_id, seq)
                txlog.set_cursor(ctx.conn, key, seq, self.versions.get(origin_id, 0))
        ctx.conn.execute("DELETE FROM _meta WHERE key = ?", (COPY_STATE + self.peer,))
        if self.scope is None:
            save_meta(ctx.conn, SYNCED, self.peer)


def save_meta(conn, key: str, value: Any) -> None:
    conn.execute("INSERT OR REPLACE INTO _meta VALUES (?, ?)", (key, jsonx.dumps_str(value)))


def load_meta(conn, key: str) -> Any:
    row = conn.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
    return jsonx.loads(row[0]) if row else None


def sync_state(
    conn, peer: str, scope: str | None = None
) -> tuple[Any, Any, dict[str, int], dict[str, int]]:
    """Return (synced marker, copy state for `peer`, cursors, their versions) for a Subscribe.

    `scope`: the tables of a filtered link, whose cursors are its own.
    """
    return (
        load_meta(conn, SYNCED),
        load_meta(conn, COPY_STATE + peer),
        txlog.cursors(conn, scope),
        txlog.cursor_versions(conn, scope),
    )


CONFIRMED = "confirmed"  # the last own sequence a peer was seen to hold exactly as we do


class ConfirmOwn:
    """Remember that a peer holds our own transactions up to `seq`, as we wrote them."""

    records = 1
    durable = False

    def __init__(self, seq: int) -> None:
        self.seq = seq

    def run(self, ctx: JobContext) -> None:
        meta.raise_to(ctx.conn, CONFIRMED, self.seq)


class Reidentify:
    """Write this database under a fresh origin id from now on (it went back in time).

    Our own transactions that no peer was seen to hold (after the confirmed sequence) move
    to the new id, renumbered 1, 2, ...: under the old id their numbers may be taken by the
    writes the peers hold, which they would have dropped as duplicates. The old id's cursor
    goes back to the confirmed sequence, so those writes of the peers come back to us.
    """

    records = 1

    def __init__(self, database, new_origin: str) -> None:
        self.database, self.new_origin = database, new_origin

    def run(self, ctx: JobContext) -> tuple[str, int]:
        from agent.storage import identity

        old, new = ctx.origin_id, self.new_origin
        confirmed = int(meta.read(ctx.conn, CONFIRMED) or 0)
        moved = ctx.conn.execute(
            "SELECT seq, version FROM _txlog WHERE origin_id = ? AND oseq > ? ORDER BY oseq",
            (old, confirmed),
        ).fetchall()
        for number, (seq, _version) in enumerate(moved, 1):
            ctx.conn.execute(
                "UPDATE _txlog SET origin_id = ?, oseq = ? WHERE seq = ?", (new, number, seq)
            )
        if moved:
            txlog.set_cursor(ctx.conn, new, len(moved), moved[-1][1])
        back = txlog.entry_version(ctx.conn, old, confirmed) or 0
        ctx.conn.execute(
            "UPDATE _cursors SET seq = ?, version = ? WHERE origin = ?", (confirmed, back, old)
        )
        ctx.conn.execute("DELETE FROM _meta WHERE key = ?", (CONFIRMED,))
        meta.write(ctx.conn, identity.ORIGIN_ID, new)
        # At once, so that later jobs of this batch already write under the new id: a
        # sequence of the old one would collide with a write the peers hold.
        self.database.origin_id = new
        return old, len(moved)


class ForgetCursors:
    """Forget what was applied from other origins (a node removed from its cluster).

    Rows stay; the next link copies in full and merges by last-write-wins, setting the
    cursors again from the copy. This file's own origin keeps its cursor: its sequence
    must continue without reuse.
    """

    records = 1

    def run(self, ctx: JobContext) -> None:
        ctx.conn.execute("DELETE FROM _cursors WHERE origin != ?", (ctx.origin_id,))
        ctx.conn.execute(
            "DELETE FROM _meta WHERE key = ? OR key LIKE ?", (SYNCED, COPY_STATE + "%")
        )
