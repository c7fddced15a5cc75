"""Write jobs the writer thread runs: local transactions, schema changes, replicated apply.

Each job's `run(ctx)` executes inside the writer's SQLite transaction and appends the log entry
it produced to `ctx.entries`. A job raises AgentError to refuse; the writer rolls back its
savepoint, so a refused job leaves no trace.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field, replace
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
from agent.core.messages import encode_changes
from agent.core.validate import valid_key
from agent.errors import ClientError, NotFound
from agent.storage import catalog as cat
from agent.storage import meta, rows, txlog
from agent.storage.catalog import CREATED, UPDATED, TableInfo
from agent.storage.clock import SharedClock
from agent.storage.writer import Committed, JobContext

WRITE_KINDS = ("insert", "update", "upsert", "delete")


@dataclass
class WriteOp:
    """One insert/update/upsert/delete of a transaction: `records`, or `ids` for delete."""

    kind: str
    table: str
    records: list[dict] = field(default_factory=list)
    ids: list = field(default_factory=list)
    where: Any = None  # SQL UPDATE/DELETE: a condition resolved inside the transaction
    assign: dict = field(default_factory=dict)


@dataclass
class OpResult:
    kind: str
    table: str
    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


def check_key(key: Any, pk: str) -> Any:
    """Return a primary key value if usable (string or finite number), else raise."""
    if valid_key(key):  # the rule peers are held to; the checks below say what is wrong
        return key
    if isinstance(key, bool) or not isinstance(key, (str, int, float)):
        raise ClientError(f"primary key '{pk}' must be a string or a number, got {key!r:.60}")
    if isinstance(key, float) and not math.isfinite(key):
        raise ClientError(f"primary key '{pk}' must be finite, got {key!r}")
    if isinstance(key, int) and not jsonx.INT64_MIN <= key <= jsonx.INT64_MAX:
        # SQLite stores 64-bit integers; a wider one would fail deep in the writer as a 500.
        raise ClientError(f"primary key '{pk}' must fit in 64 bits, got {key}")
    if isinstance(key, str) and (not key or len(key) > 1024):
        raise ClientError(f"primary key '{pk}' must be 1-1024 characters")
    raise ClientError(f"primary key '{pk}' is not usable: {key!r:.60}")


class _Stamp:
    """The version, origin and time one local transaction writes with."""

    def __init__(self, version: int, origin: str, now_ms: float) -> None:
        self.version, self.origin, self.now = version, origin, now_ms


class LocalTransaction:
    """Apply client writes atomically under one new version and log them as one entry."""

    def __init__(self, ops: list[WriteOp], clock: SharedClock, origin: str) -> None:
        self.ops = ops
        self.clock = clock
        self.origin = origin
        self.records = sum(len(op.records) + len(op.ids) for op in ops)

    def run(self, ctx: JobContext) -> list[OpResult]:
        stamp = _Stamp(self.clock.tick(), self.origin, self.clock.now_ms())
        writes: list[Write] = []
        results = [self._apply(ctx, op, stamp, writes) for op in self.ops]
        log_entry(ctx, stamp.version, self.origin, stamp.now, _last_per_record(writes))
        return results

    def _apply(self, ctx: JobContext, op: WriteOp, stamp: _Stamp, writes: list) -> OpResult:
        table = ctx.catalog.require(op.table)
        result = OpResult(op.kind, table.name)
        if op.where is not None:
            op = _resolve(ctx, table, op)
        if op.kind == "delete":
            _delete(ctx, table, op.ids, stamp, result, writes)
        else:
            _put(ctx, table, op, stamp, result, writes)
        return result


def _last_per_record(writes: list[Write]) -> list[Write]:
    """Keep only the final put or delete of each record, in the order they were made.

    Every write of a transaction shares its version, and an equal (version, origin) never
    supersedes, so a peer applying two writes of one record would keep the first of them.
    """
    last = {(w.table, w.key): i for i, w in enumerate(writes) if w.kind in (PUT, DELETE)}
    return [
        w
        for i, w in enumerate(writes)
        if w.kind not in (PUT, DELETE) or last[(w.table, w.key)] == i
    ]


def _resolve(ctx: JobContext, table: TableInfo, op: WriteOp) -> WriteOp:
    """Turn a conditional update/delete into explicit keys, seen inside this transaction."""
    from agent.storage.query import keys

    found = keys(ctx.conn, table.name, None if op.where is True else op.where)
    if op.kind == "delete":
        return WriteOp("delete", op.table, ids=found)
    records = [{**op.assign, table.primary_key: key} for key in found]
    return WriteOp(op.kind, op.table, records=records)


def _prepare(table: TableInfo, records: list, generate: bool) -> list[tuple[Any, dict]]:
    pk = table.primary_key
    prepared = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ClientError(f"record {index} must be an object, got {type(record).__name__}")
        key = record.get(pk)
        if key is None:
            if not generate:
                raise ClientError(f"record {index} is missing primary key '{pk}'")
            key = str(uuid.uuid4())
        prepared.append((check_key(key, pk), record))
    return prepared


def _put(ctx: JobContext, table: TableInfo, op: WriteOp, stamp: _Stamp, result, writes) -> None:
    prepared = _prepare(table, op.records, generate=op.kind != "update")
    keys = [key for key, _ in prepared]
    existing = rows.live_docs(ctx.conn, table.name, keys) if op.kind != "insert" else {}
    present = rows.live_keys(ctx.conn, table.name, keys) if op.kind == "insert" else set()
    out: dict[Any, tuple] = {}
    names: set[str] = set()
    for key, record in prepared:
        doc = _merge(op.kind, key, record, existing, present, out, stamp, table.primary_key)
        if doc is None:
            result.skipped.append(key)
            continue
        names.update(doc)
        out[key] = (key, jsonx.dumps_str(doc), stamp.version, stamp.origin)
        result.written.append(key)
    _check_batch(names, out)  # once per batch: per record, it cost ~10% of ingest
    _store(ctx, table, list(out.values()), names, writes)


def _check_batch(names: set[str], out: dict[Any, tuple]) -> None:
    """Refuse a batch whose records peers would refuse, before anything is stored.

    Attribute names must be non-empty and free of NUL (agent/core/validate.py holds peers to
    it, so such a record must not enter the log); integers must fit SQLite's signed 64 bits.
    """
    if "" in names or any("\x00" in name for name in names):
        bad = "" if "" in names else next(n for n in names if "\x00" in n)
        raise ClientError(f"attribute name {bad!r} is empty or holds a NUL: not an attribute name")
    try:
        jsonx.check_integers("\n".join(item[1] for item in out.values()))
    except ValueError:
        for key, text, _version, _origin in out.values():
            check_integers(key, json.loads(text), text)  # the stdlib keeps big ints exact


def _merge(kind, key, record, existing, present, out, stamp, pk) -> dict | None:
    """Return the document to store for one record, or None when it is skipped."""
    if kind == "insert":
        if key in present or key in out:
            return None
        return {**record, pk: key, CREATED: stamp.now, UPDATED: stamp.now}
    base = jsonx.loads(out[key][1]) if key in out else _parse(existing.get(key))
    if base is None:
        if kind == "update":
            return None
        return {**record, pk: key, CREATED: stamp.now, UPDATED: stamp.now}
    return {**base, **record, pk: key, CREATED: base.get(CREATED, stamp.now), UPDATED: stamp.now}


def check_integers(key: Any, doc: dict, text: str) -> None:
    """Refuse a record holding an integer SQLite cannot store (outside signed 64 bits).

    SQLite would keep it as a float, and a JSON client could not send it back (jsonx.loads
    refuses it), so it fails here, naming the attribute. The text check is C speed; only a
    record with a 19-digit run is looked at closely.
    """
    try:
        jsonx.check_integers(text)
        return
    except ValueError:
        pass
    for name, value in doc.items():
        wide = _wide_integer(value)
        if wide is not None:
            raise ClientError(
                f"attribute '{name}' of record {key!r:.60} holds {wide}, an integer outside "
                f"the 64-bit range ({jsonx.INT64_MIN}..{jsonx.INT64_MAX})"
            )


def _wide_integer(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if not jsonx.INT64_MIN <= value <= jsonx.INT64_MAX else None
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        wide = _wide_integer(item)
        if wide is not None:
            return wide
    return None


def _parse(doc: str | None) -> dict | None:
    return None if doc is None else jsonx.loads(doc)


def _store(ctx: JobContext, table: TableInfo, out: list[tuple], names: set, writes: list) -> None:
    if not out:
        return
    rows.put_local(ctx.conn, table.name, out)
    new_attrs = ctx.catalog.add_attributes(table, names)
    if new_attrs:
        cat.persist_attributes(ctx.conn, table.name, new_attrs)
    if table.replicate:
        writes.extend(Write(table.name, ATTRIBUTE, a.name, cat.spec_of(a)) for a in new_attrs)
        writes.extend(Write(table.name, PUT, r[0], r[1]) for r in out)


def _delete(ctx: JobContext, table: TableInfo, ids: list, stamp: _Stamp, result, writes) -> None:
    keys = [check_key(k, table.primary_key) for k in ids]
    present = rows.live_keys(ctx.conn, table.name, keys)
    done: dict[Any, tuple] = {}
    for key in keys:
        if key in present and key not in done:
            done[key] = (key, None, stamp.version, stamp.origin)
            result.written.append(key)
        elif key not in done:
            result.skipped.append(key)
    if done:
        rows.put_local(ctx.conn, table.name, list(done.values()))
        ctx.catalog.mark_stale(table.name)
        if table.replicate:
            writes.extend(Write(table.name, DELETE, k, None) for k in done)


def log_entry(ctx: JobContext, version: int, origin: str, at: float, writes: list[Write]) -> None:
    """Append a local transaction to the log under this node's next sequence, and report it.

    The sequence is the origin cursor plus one, read and moved inside this transaction, so
    local sequences have no holes whatever rolls back. A transaction that touched no
    replicated table takes no sequence; its version is still kept so that the clock never
    restarts below it.
    """
    if not writes:
        remember_version(ctx.conn, version)
        return
    body = encode_changes(writes)
    records = sum(1 for w in writes if w.kind in (PUT, DELETE))
    oseq = txlog.cursor(ctx.conn, ctx.origin_id)[0] + 1
    tables = frozenset(w.table for w in writes)
    entry = Committed(0, version, origin, records, body, tables, at, ctx.origin_id, oseq)
    entry.seq = txlog.append(ctx.conn, entry)
    txlog.set_cursor(ctx.conn, ctx.origin_id, oseq, version)
    ctx.entries.append(entry)


def remember_version(conn, version: int) -> None:
    """Keep the highest version stored outside the cursors (the clock observes it on open)."""
    meta.raise_to(conn, "hlc", version)


class CreateTable:
    """Create a table (and log it, so peers create it too, unless it stays local)."""

    records = 1

    def __init__(self, info: TableInfo, clock: SharedClock, origin: str, exists_ok=False):
        self.info, self.clock, self.origin, self.exists_ok = info, clock, origin, exists_ok

    def run(self, ctx: JobContext) -> TableInfo:
        if ctx.catalog.get(self.info.name) is not None:
            if self.exists_ok:
                return ctx.catalog.require(self.info.name)
            raise ClientError(f"Table '{self.info.database}.{self.info.name}' already exists")
        version = self.clock.tick()
        self.info.created = self.clock.now_ms()
        self.info.version, self.info.origin = version, self.origin
        # what a table is created with is declared: kept until drop_attribute
        self.info.attributes = {
            n: a if n in cat.TIME_ATTRIBUTES else replace(a, declared=True)
            for n, a in self.info.attributes.items()
        }
        cat.persist_table(ctx.conn, self.info)
        ctx.catalog.job.created[self.info.name] = self.info
        writes = [Write(self.info.name, CREATE_TABLE, None, self.info.definition())]
        log_entry(
            ctx, version, self.origin, self.info.created, writes if self.info.replicate else []
        )
        return self.info


class DropTable:
    """Drop a table; logged for peers only when the request says `replicated: true`."""

    records = 1

    def __init__(self, name: str, clock: SharedClock, origin: str, replicated: bool) -> None:
        self.name, self.clock, self.origin, self.replicated = name, clock, origin, replicated

    def run(self, ctx: JobContext) -> None:
        info = ctx.catalog.require(self.name)
        cat.drop_table_sql(ctx.conn, info.name)
        ctx.catalog.job.dropped.add(info.name)
        version = self.clock.tick()
        # remembered even when not replicated: a peer's Schema must not bring it back
        cat.record_drop(ctx.conn, info.name, version)
        writes = [Write(info.name, DROP_TABLE, None, None)]
        replicated = self.replicated and info.replicate
        log_entry(ctx, version, self.origin, self.clock.now_ms(), writes if replicated else [])


class CreateAttribute:
    """Add a declared attribute to a table."""

    records = 1

    def __init__(self, table: str, attr: cat.Attribute, clock: SharedClock, origin: str):
        self.table, self.clock, self.origin = table, clock, origin
        self.attr = replace(attr, declared=True)

    def run(self, ctx: JobContext) -> None:
        info = ctx.catalog.require(self.table)
        if self.attr.name in info.attributes:
            raise ClientError(
                f"attribute '{self.attr.name}' already exists in '{info.database}.{info.name}'"
            )
        ctx.catalog.job.add(info.name, [self.attr])
        cat.persist_attributes(ctx.conn, info.name, [self.attr])
        if info.replicate:
            write = Write(info.name, ATTRIBUTE, self.attr.name, cat.spec_of(self.attr))
            log_entry(ctx, self.clock.tick(), self.origin, self.clock.now_ms(), [write])


def check_droppable(info: TableInfo, name: str) -> None:
    """Refuse dropping the primary key, a time attribute or an attribute the table lacks."""
    if name == info.primary_key:
        raise ClientError(f"cannot drop the primary key '{name}' of '{info.database}.{info.name}'")
    if name in cat.TIME_ATTRIBUTES:
        raise ClientError(f"cannot drop '{name}': every record carries it")
    if name not in info.attributes:
        raise NotFound(f"attribute '{name}' does not exist in '{info.database}.{info.name}'")


def drop_attribute(ctx: JobContext, info: TableInfo, name: str) -> int:
    """Remove an attribute from a table and its values from every live record; count them."""
    changed = rows.strip_attribute(ctx.conn, info.name, name)
    if name in info.attributes:
        ctx.catalog.forget_attributes(info, [name])
        cat.forget_attributes_sql(ctx.conn, info.name, [name])
    return changed


class DropAttribute:
    """Drop an attribute (drop_attribute); peers drop it too, through the log.

    Records keep their versions: every node strips the same values from the same rows. A
    write older than the drop that reaches a node only after it keeps the attribute there.
    """

    records = 1

    def __init__(self, table: str, name: str, clock: SharedClock, origin: str) -> None:
        self.table, self.name, self.clock, self.origin = table, name, clock, origin

    def run(self, ctx: JobContext) -> int:
        info = ctx.catalog.require(self.table)
        check_droppable(info, self.name)
        changed = drop_attribute(ctx, info, self.name)
        write = Write(info.name, DROP_ATTRIBUTE, self.name, None)
        version = self.clock.tick()
        log_entry(ctx, version, self.origin, self.clock.now_ms(), [write] if info.replicate else [])
        return changed


class ForgetAttributes:
    """Forget a table's dynamic attributes that no live record carries any more.

    Local to this node (nothing is logged): every node recounts from its own rows after
    deletes reach it. One scan of the table's live records; `seconds` says how long it took,
    so that the caller can space recounts (agent/storage/database.py).
    """

    records = 1
    durable = False  # losing it in a crash loses nothing: the next delete recounts

    def __init__(self, table: str) -> None:
        self.table = table
        self.seconds = 0.0

    def run(self, ctx: JobContext) -> list[str]:
        started = time.monotonic()
        info = ctx.catalog.get(self.table)
        candidates = [n for n in info.attributes if info.forgettable(n)] if info else []
        gone = []
        if candidates:
            used = rows.attribute_names(ctx.conn, info.name)
            gone = [n for n in candidates if n not in used]
        if gone:
            ctx.catalog.forget_attributes(info, gone)
            cat.forget_attributes_sql(ctx.conn, info.name, gone)
        self.seconds = time.monotonic() - started
        return gone


HORIZON = "tombstone_horizon"


class Prune:
    """Drop log entries older than the log's retention, tombstones older than theirs.

    Tombstones are kept much longer than the log: a peer back from a long absence catches
    up by a snapshot merge, and only a tombstone tells the merge that a row was deleted.
    The newest version of a pruned tombstone (plus one) is kept as the tombstone horizon:
    a peer behind it may hold rows whose delete is forgotten here, and is re-seeded.
    """

    records = 1

    def __init__(self, before_ms: float, tombstones_before_ms: float | None = None) -> None:
        self.before_ms = before_ms
        tombs = before_ms if tombstones_before_ms is None else tombstones_before_ms
        self.tombstones_before_ms = min(before_ms, tombs)

    def run(self, ctx: JobContext) -> tuple[int, int]:
        from agent.core.clock import version_for_time

        entries = txlog.prune(ctx.conn, self.before_ms)
        below = version_for_time(self.tombstones_before_ms)
        pruned, top = 0, 0
        for name in ctx.catalog.live.names():
            count, newest = rows.prune_tombstones(ctx.conn, name, below)
            pruned, top = pruned + count, max(top, newest)
        if top:
            meta.raise_to(ctx.conn, HORIZON, top + 1)
        return entries, pruned


def tombstone_horizon(conn) -> int:
    """Return the version below which tombstones may have been pruned (0: none pruned)."""
    return int(meta.read(conn, HORIZON) or 0)


class ForgetRows:
    """Delete rows on this node only: no tombstone, no log entry, nothing replicates.

    For a node removed from a cluster forgetting its peers: replicated deletes of those rows
    would reach the nodes still in the cluster and remove them from each other.
    """

    records = 1

    def __init__(self, table: str, keys: list) -> None:
        self.table, self.keys = table, keys

    def run(self, ctx: JobContext) -> int:
        info = ctx.catalog.require(self.table)
        gone = 0
        for part in rows.chunks(self.keys):
            marks = ",".join("?" * len(part))
            gone += ctx.conn.execute(
                f"DELETE FROM {cat.row_table(info.name)} WHERE pk IN ({marks})", list(part)
            ).rowcount
        return gone
