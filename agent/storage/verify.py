"""What cluster_verify reads from and writes to one database file.

Reads: a table's records for the range digests (every live row, and the tombstones at or
above a floor: below the newest tombstone horizon of the compared nodes some of them may
have pruned theirs, so none is compared), and the current rows of some keys.

Writes: `RepairRows` puts the winning version of each divergent key on a node that lacks it
and removes rows whose delete was forgotten (older than a peer's tombstone horizon). It
writes no log entry: every node that differs is repaired directly, so nothing needs to
replicate, and a repair never passes for a write of this node.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterator, Sequence

from agent.errors import ClientError
from agent.storage.catalog import row_table
from agent.storage.rows import chunks
from agent.storage.writer import JobContext
from agent.storage.writes import remember_version


def records(
    conn: sqlite3.Connection, table: str, floor: int, ceiling: int | None = None
) -> Iterator[tuple]:
    """Yield (pk, doc, version, origin) of every live row and of tombstones >= `floor`;
    with a `ceiling`, only writes older than it (newer ones may still be in flight). The
    cursor streams: consume it in the same read."""
    name = row_table(table)
    sql = f"SELECT pk, doc, version, origin FROM {name} WHERE (doc IS NOT NULL OR version >= ?)"
    if ceiling is None:
        return conn.execute(sql, (floor,))
    return conn.execute(sql + " AND version < ?", (floor, ceiling))


def rows_for(conn: sqlite3.Connection, table: str, keys: Sequence[Any]) -> list[tuple]:
    """Return (pk, doc, version, origin) of those of `keys` this table holds."""
    out: list[tuple] = []
    for part in chunks(list(keys)):
        marks = ",".join("?" * len(part))
        sql = f"SELECT pk, doc, version, origin FROM {row_table(table)} WHERE pk IN ({marks})"
        out += conn.execute(sql, list(part)).fetchall()
    return out


class RepairRows:
    """Put winning rows where they do not lose, and forget rows whose delete was forgotten.

    `puts`: (pk, doc, version, origin), written unless the row here is a newer write; an
    equal (version, origin) is overwritten (the same write with other content: a corrupted
    copy). `forgets`: (pk, below) removes a live row older than `below`, with no tombstone.
    Returns how many rows changed.
    """

    durable = True

    def __init__(self, table: str, puts: list[tuple], forgets: list[tuple]) -> None:
        self.table, self.puts, self.forgets = table, puts, forgets
        self.records = max(len(puts) + len(forgets), 1)

    def run(self, ctx: JobContext) -> int:
        info = ctx.catalog.get(self.table)
        if info is None:
            raise ClientError(f"table '{self.table}' does not exist here")
        name = row_table(info.name)
        before = ctx.conn.total_changes
        ctx.conn.executemany(
            f"INSERT INTO {name} (pk, doc, version, origin) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(pk) DO UPDATE SET doc = excluded.doc, version = excluded.version, "
            "origin = excluded.origin "
            f"WHERE excluded.version > {name}.version OR "
            f"(excluded.version = {name}.version AND excluded.origin >= {name}.origin)",
            self.puts,
        )
        ctx.conn.executemany(
            f"DELETE FROM {name} WHERE pk = ? AND doc IS NOT NULL AND version < ?", self.forgets
        )
        changed = ctx.conn.total_changes - before
        top = max((row[2] for row in self.puts), default=0)
        if top:
            remember_version(ctx.conn, top)  # the clock never restarts below a repaired write
        return changed
