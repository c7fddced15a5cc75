"""Write jobs for what arrives from peers: transactions, snapshot chunks, copy completion.

A replicated transaction applies only if it is newer than its origin's cursor (duplicates are
harmless), each record by the last-write-wins rule, and is logged again under its original
origin and version so this node can relay it. Snapshot rows merge by the same rule, so a
merge never deletes a row this node has unless a newer tombstone says so.
"""

from __future__ import annotations

import logging
from typing import Any

from agent import jsonx
from agent.core.changes import ATTRIBUTE, CREATE_TABLE, DELETE, DROP_TABLE, PUT, Write
from agent.core.cursors import should_apply
from agent.core.messages import decode_changes
from agent.storage import catalog as cat
from agent.storage import rows, txlog
from agent.storage.catalog import TableInfo
from agent.storage.clock import SharedClock
from agent.storage.writer import Committed, JobContext

log = logging.getLogger(__name__)
COPY_STATE = "copy:"
SYNCED = "synced"


def _cursor(ctx: JobContext, origin: str) -> int:
    row = ctx.conn.execute("SELECT version FROM _cursors WHERE origin = ?", (origin,)).fetchone()
    return row[0] if row else 0


def _ensure_table(ctx: JobContext, database: str, spec: dict) -> TableInfo:
    info = ctx.catalog.get(spec["name"])
    if info is not None:
        return info
    info = cat.table_from_definition(database, spec, 0.0)
    cat.persist_table(ctx.conn, info)
    ctx.catalog.job.created[info.name] = info
    return info


def _table_for(ctx: JobContext, database: str, name: str) -> TableInfo:
    info = ctx.catalog.get(name)
    if info is None:  # a write for a table we never heard of: create it rather than lose it
        log.warning("creating table %s.%s for replicated writes", database, name)
        info = _ensure_table(ctx, database, {"name": name, "primary_key": "id"})
    return info


def apply_writes(ctx: JobContext, database: str, version: int, origin: str, writes) -> int:
    """Apply decoded writes by last-write-wins; return how many records won."""
    won = 0
    batch: dict[str, list[tuple]] = {}
    for w in writes:
        if w.kind in (PUT, DELETE):
            batch.setdefault(w.table, []).append((w.key, w.value, version, origin))
            continue
        won += _flush(ctx, database, batch)
        _schema_write(ctx, database, w)
    return won + _flush(ctx, database, batch)


def _flush(ctx: JobContext, database: str, batch: dict[str, list[tuple]]) -> int:
    won = 0
    for table, items in batch.items():
        # Attributes arrive as ATTRIBUTE writes in the same transaction (and in Schema for
        # copies), so documents are stored as received, never parsed here.
        info = _table_for(ctx, database, table)
        won += rows.apply_lww(ctx.conn, info.name, items)
    batch.clear()
    return won


def _schema_write(ctx: JobContext, database: str, w: Write) -> None:
    if w.kind == CREATE_TABLE:
        _ensure_table(ctx, database, w.value)
    elif w.kind == DROP_TABLE:
        if ctx.catalog.get(w.table) is not None:
            cat.drop_table_sql(ctx.conn, w.table)
            ctx.catalog.job.dropped.add(w.table)
    elif w.kind == ATTRIBUTE:
        info = _table_for(ctx, database, w.table)
        if w.key not in info.attributes:
            value = w.value or {}
            attr = cat.Attribute(w.key, value.get("type"), bool(value.get("indexed")))
            ctx.catalog.job.attributes.setdefault(info.name, []).append(attr)
            cat.persist_attributes(ctx.conn, info.name, [attr])


class RemoteTransaction:
    """Apply one transaction from a peer, atomically, unless it was applied before."""

    durable = False  # see Writer._sync_for: the peer holds it durably

    def __init__(
        self,
        database: str,
        origin: str,
        version: int,
        at: float,
        records: int,
        body: bytes,
        clock: SharedClock,
    ) -> None:
        self.database, self.origin, self.version = database, origin, version
        self.at, self.body, self.clock = at, body, clock
        self.records = max(records, 1)
        self.record_count = records

    def run(self, ctx: JobContext) -> bool:
        if not should_apply({self.origin: _cursor(ctx, self.origin)}, self.origin, self.version):
            return False
        writes = decode_changes(self.body)
        self.clock.observe(self.version)
        apply_writes(ctx, self.database, self.version, self.origin, writes)
        txlog.advance_cursor(ctx.conn, self.origin, self.version)
        seq = txlog.append(
            ctx.conn, self.version, self.origin, self.at, self.record_count, self.body
        )
        tables = frozenset(w.table for w in writes)
        ctx.entries.append(
            Committed(seq, self.version, self.origin, self.record_count, self.body, tables, self.at)
        )
        return True


class EnsureSchema:
    """Create the tables (and attributes) a peer's Schema lists that this node lacks."""

    durable = False  # see Writer._sync_for: the peer holds it durably

    records = 1

    def __init__(self, database: str, tables: list[dict]) -> None:
        self.database, self.tables = database, tables

    def run(self, ctx: JobContext) -> list[str]:
        created = []
        for spec in self.tables:
            if not isinstance(spec, dict) or not spec.get("name"):
                continue
            if not spec.get("replicate", True):
                continue
            if ctx.catalog.get(spec["name"]) is None:
                _ensure_table(ctx, self.database, spec)
                created.append(spec["name"])
        return created


class SnapshotChunk:
    """Merge a chunk of a peer's rows and remember how far the copy got (for resume)."""

    durable = False  # see Writer._sync_for: the peer holds it durably

    def __init__(
        self, database: str, table: str, items: list, peer: str, state: dict, clock: SharedClock
    ) -> None:
        self.database, self.table, self.items = database, table, items
        self.peer, self.state, self.clock = peer, state, clock
        self.records = max(len(items), 1)

    def run(self, ctx: JobContext) -> int:
        info = _table_for(ctx, self.database, self.table)
        prepared = [(r[0], r[1], r[2], r[3]) for r in self.items]
        top = max((r[2] for r in prepared), default=0)
        if top:
            self.clock.observe(top)
            # rows merged before the copy completes are covered by no cursor yet: remember
            # the highest version so the clock never restarts below it
            ctx.conn.execute(
                "INSERT INTO _meta VALUES ('hlc', ?) ON CONFLICT(key) DO UPDATE "
                "SET value = max(value, excluded.value)",
                (top,),
            )
        won = rows.apply_lww(ctx.conn, info.name, prepared)
        save_meta(ctx.conn, COPY_STATE + self.peer, self.state)
        return won


class CopyComplete:
    """Finish a copy: cursors and floors move to the snapshot's frontier, atomically."""

    durable = False  # see Writer._sync_for: the peer holds it durably

    records = 1

    def __init__(self, peer: str, frontier: dict[str, int], me: str) -> None:
        self.peer, self.frontier, self.me = peer, frontier, me

    def run(self, ctx: JobContext) -> None:
        for origin, version in self.frontier.items():
            # The log has a hole only where the snapshot went past what we had applied; our
            # own log stays complete for our own writes.
            if origin != self.me and version > _cursor(ctx, origin):
                txlog.raise_floor(ctx.conn, origin, version)
            txlog.advance_cursor(ctx.conn, origin, version)
        ctx.conn.execute("DELETE FROM _meta WHERE key = ?", (COPY_STATE + self.peer,))
        save_meta(ctx.conn, SYNCED, self.peer)


def save_meta(conn, key: str, value: Any) -> None:
    conn.execute("INSERT OR REPLACE INTO _meta VALUES (?, ?)", (key, jsonx.dumps_str(value)))


def load_meta(conn, key: str) -> Any:
    row = conn.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
    return jsonx.loads(row[0]) if row else None


def sync_state(conn, peer: str) -> tuple[Any, Any, dict[str, int]]:
    """Return (synced marker, copy state for `peer`, cursors) for planning a subscription."""
    return load_meta(conn, SYNCED), load_meta(conn, COPY_STATE + peer), txlog.cursors(conn)
