"""Schema that converges like data: replicated create_table and drop_table carry versions.

Every table records the version and origin of the create_table that defined it, and every
file remembers the newest drop of each table name (`_drops`). From those, each node decides
the same way whatever order the changes arrive in:

- a create older than the table's newest drop is ignored (a late create never resurrects);
- a create of an existing table wins over its current definition by last-write-wins on
  (version, origin); a different primary key then re-keys the rows by the new one;
- a drop newer than the table's create drops it, and is remembered either way;
- a record write at or below the newest drop is discarded (the drop discards older writes),
  and so is any write for a table that is gone after a drop; a write for a table never seen
  here is refused as a gap, so the next Subscribe's Schema brings its real definition:
  a write never invents a table with a guessed primary key.
"""

from __future__ import annotations

import logging

from agent import jsonx
from agent.core.conflict import supersedes
from agent.errors import StreamGap
from agent.storage import catalog as cat
from agent.storage import rows
from agent.storage.catalog import TableInfo
from agent.storage.writer import JobContext

log = logging.getLogger(__name__)


def create(ctx: JobContext, database: str, spec: dict, version: int, origin: str) -> None:
    """Apply a replicated create_table of `spec` made at (version, origin)."""
    info = cat.table_from_definition(database, spec, 0.0)
    info.version, info.origin = version, origin
    if version <= cat.dropped_at(ctx.conn, info.name):
        return
    current = ctx.catalog.get(info.name)
    if current is None:
        _persist(ctx, info)
    elif supersedes(version, origin, current.version, current.origin):
        if current.primary_key != info.primary_key:
            _rekey(ctx, current, info)
        else:
            info.attributes = {**info.attributes, **current.attributes}
            _persist(ctx, info)


def ensure(ctx: JobContext, database: str, spec: dict) -> bool:
    """Create a table a peer's Schema lists, unless this node has it or dropped it later."""
    info = cat.table_from_definition(database, spec, 0.0)
    if ctx.catalog.get(info.name) is not None:
        return False
    if info.version <= cat.dropped_at(ctx.conn, info.name):
        return False
    _persist(ctx, info)
    return True


def drop(ctx: JobContext, name: str, version: int) -> None:
    """Apply a replicated drop_table made at `version`."""
    cat.record_drop(ctx.conn, name, version)
    current = ctx.catalog.get(name)
    if current is not None and version > current.version:
        cat.drop_table_sql(ctx.conn, name)
        ctx.catalog.job.dropped.add(name)


def table_for_write(ctx: JobContext, database: str, name: str, version: int) -> TableInfo | None:
    """Return the table a replicated write at `version` goes to, None to discard it."""
    dropped = cat.dropped_at(ctx.conn, name)
    if dropped and version <= dropped:
        return None
    info = ctx.catalog.get(name)
    if info is not None:
        return info
    if dropped:
        return None  # written to a table that a drop removed: it is gone everywhere
    raise StreamGap(f"a replicated write for table {database}.{name}, which is not here yet")


def table_for_copy(ctx: JobContext, database: str, name: str) -> TableInfo | None:
    """Return the table a snapshot chunk merges into, None when a drop removed it here."""
    info = ctx.catalog.get(name)
    if info is not None or cat.dropped_at(ctx.conn, name):
        return info
    raise StreamGap(f"a copy of table {database}.{name}, which is not here yet")


def _persist(ctx: JobContext, info: TableInfo) -> None:
    cat.persist_table(ctx.conn, info)
    ctx.catalog.job.created[info.name] = info


def _rekey(ctx: JobContext, current: TableInfo, info: TableInfo) -> None:
    """Replace a table's definition by one with another primary key, re-keying its rows.

    Rows are re-keyed by the new primary key's value in their document; rows without one
    (and tombstones, whose key meant the old primary key) cannot be placed and are dropped.
    """
    stored = rows.scan(ctx.conn, current.name, None, -1)
    cat.drop_table_sql(ctx.conn, current.name)
    info.attributes = {**current.attributes, **info.attributes}
    _persist(ctx, info)
    placed = []
    for _pk, doc, version, origin in stored:
        key = jsonx.loads(doc).get(info.primary_key) if doc is not None else None
        if isinstance(key, (str, int, float)) and not isinstance(key, bool):
            placed.append((key, doc, version, origin))
    rows.apply_lww(ctx.conn, info.name, placed)
    log.warning(
        "%s.%s: primary key changed from %s to %s by a newer create_table from %s; "
        "%d of %d rows re-keyed",
        info.database,
        info.name,
        current.primary_key,
        info.primary_key,
        info.origin,
        len(placed),
        len(stored),
    )
