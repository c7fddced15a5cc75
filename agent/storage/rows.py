"""SQL for a table's rows: live lookups, local writes and last-write-wins apply.

A row is `(pk, doc, version, origin)`; `doc` is the record's JSON text, NULL for a tombstone.
The LWW statements mirror `agent.core.conflict.supersedes` (greater version, then greater
origin name); tests/unit/storage hold the two to the same answers.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Sequence

from agent import jsonx
from agent.storage.catalog import row_table

CHUNK = 500  # keys per IN (...) lookup, well under SQLite's variable limit


def chunks(items: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def live_keys(conn: sqlite3.Connection, table: str, keys: Sequence) -> set:
    """Return which of `keys` hold a live (non-deleted) record."""
    found: set = set()
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        found.update(
            row[0]
            for row in conn.execute(
                f"SELECT pk FROM {row_table(table)} WHERE pk IN ({marks}) AND doc IS NOT NULL",
                part,
            )
        )
    return found


def live_docs(conn: sqlite3.Connection, table: str, keys: Sequence) -> dict[Any, str]:
    """Return {pk: doc JSON} for the live records among `keys`."""
    found: dict[Any, str] = {}
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        found.update(
            conn.execute(
                f"SELECT pk, doc FROM {row_table(table)} WHERE pk IN ({marks}) AND doc IS NOT NULL",
                part,
            )
        )
    return found


def put_local(conn: sqlite3.Connection, table: str, rows: list[tuple]) -> None:
    """Write (pk, doc, version, origin) rows stamped by this node: newest, so they win."""
    conn.executemany(
        f"INSERT INTO {row_table(table)} (pk, doc, version, origin) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(pk) DO UPDATE SET doc = excluded.doc, version = excluded.version, "
        "origin = excluded.origin",
        rows,
    )


def apply_lww(conn: sqlite3.Connection, table: str, rows: list[tuple]) -> int:
    """Apply (pk, doc|None, version, origin) rows from elsewhere where they win; count wins."""
    name = row_table(table)
    before = conn.total_changes
    conn.executemany(
        f"INSERT INTO {name} (pk, doc, version, origin) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(pk) DO UPDATE SET doc = excluded.doc, version = excluded.version, "
        "origin = excluded.origin "
        f"WHERE excluded.version > {name}.version OR "
        f"(excluded.version = {name}.version AND excluded.origin > {name}.origin)",
        rows,
    )
    return conn.total_changes - before


def get_row(conn: sqlite3.Connection, table: str, key: Any) -> tuple | None:
    """Return (doc, version, origin) of one key, tombstones included."""
    return conn.execute(
        f"SELECT doc, version, origin FROM {row_table(table)} WHERE pk = ?", (key,)
    ).fetchone()


def count_live(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(
        f"SELECT count(*) FROM {row_table(table)} WHERE doc IS NOT NULL"
    ).fetchone()[0]


def attribute_names(conn: sqlite3.Connection, table: str) -> set[str]:
    """Return the attribute names the live records of a table carry (one scan)."""
    return {
        row[0]
        for row in conn.execute(
            f"SELECT DISTINCT j.key FROM {row_table(table)} AS r, json_each(r.doc) AS j "
            "WHERE r.doc IS NOT NULL"
        )
    }


def strip_attribute(conn: sqlite3.Connection, table: str, name: str) -> int:
    """Remove attribute `name` from every live record of a table; return how many had it.

    json_each names any key (a JSON path cannot name one holding '"'), and the records are
    rewritten from Python for the same reason. Versions stay: see writes.DropAttribute.
    """
    found = conn.execute(
        f"SELECT pk, doc FROM {row_table(table)} WHERE doc IS NOT NULL AND "
        "EXISTS (SELECT 1 FROM json_each(doc) WHERE key = ?)",
        (name,),
    ).fetchall()
    updates = []
    for pk, doc in found:
        record = jsonx.loads(doc)
        record.pop(name, None)
        updates.append((jsonx.dumps_str(record), pk))
    conn.executemany(f"UPDATE {row_table(table)} SET doc = ? WHERE pk = ?", updates)
    return len(updates)


def last_updated(conn: sqlite3.Connection, table: str) -> int | None:
    """Return the highest version in a table (HarperDB's last_updated_record)."""
    return conn.execute(f"SELECT max(version) FROM {row_table(table)}").fetchone()[0]


def prune_tombstones(conn: sqlite3.Connection, table: str, below_version: int) -> tuple[int, int]:
    """Delete tombstones older than `below_version`; return (how many, newest version)."""
    name = row_table(table)
    top = conn.execute(
        f"SELECT max(version) FROM {name} WHERE doc IS NULL AND version < ?", (below_version,)
    ).fetchone()[0]
    if top is None:
        return 0, 0
    gone = conn.execute(
        f"DELETE FROM {name} WHERE doc IS NULL AND version < ?", (below_version,)
    ).rowcount
    return gone, top


def scan(
    conn: sqlite3.Connection, table: str, after: Any, limit: int, min_version: int = 0
) -> list[tuple]:
    """Return up to `limit` rows (pk, doc, version, origin) after key `after`, in key order."""
    name = row_table(table)
    if after is None:
        sql = f"SELECT pk, doc, version, origin FROM {name} WHERE version >= ? ORDER BY pk LIMIT ?"
        return conn.execute(sql, (min_version, limit)).fetchall()
    sql = (
        f"SELECT pk, doc, version, origin FROM {name} WHERE pk > ? AND version >= ? "
        "ORDER BY pk LIMIT ?"
    )
    return conn.execute(sql, (after, min_version, limit)).fetchall()


def forget_absent(
    conn: sqlite3.Connection, table: str, chunk, horizon: int, keep_mine: tuple[str, int]
) -> int:
    """Delete live rows of a copy chunk's key range that the chunk lacks, older than `horizon`.

    The publisher keeps tombstones only back to its horizon, so a row this node has, the
    publisher lacks and that is older than the horizon was deleted and the delete forgotten.
    Rows this node wrote after the newest of its writes the publisher has (`keep_mine`:
    name, version) are kept: the publisher simply has not received them yet.
    """
    name = row_table(table)
    me, mine_seen = keep_mine
    where = ["doc IS NOT NULL", "version < ?", "NOT (origin = ? AND version > ?)"]
    args: list = [horizon, me, mine_seen]
    if chunk.after is not None:
        where.append("pk > ?")
        args.append(chunk.after)
    if not chunk.done:
        where.append("pk <= ?")
        args.append(chunk.last)
    found = conn.execute(f"SELECT pk FROM {name} WHERE {' AND '.join(where)}", args)
    present = {row[0] for row in chunk.rows}
    gone = [row[0] for row in found if row[0] not in present]
    for part in chunks(gone):
        marks = ",".join("?" * len(part))
        conn.execute(f"DELETE FROM {name} WHERE pk IN ({marks})", list(part))
    return len(gone)


def without_forgotten(
    conn: sqlite3.Connection, table: str, items: list[tuple], horizon: int
) -> list[tuple]:
    """Drop incoming rows older than this node's tombstone horizon that it does not have.

    Every node received every write older than the horizon long ago, so such a row missing
    here was deleted here, and its tombstone since pruned: taking it would undo the delete.
    """
    old = [item[0] for item in items if item[2] < horizon]
    if not old:
        return items
    present: set = set()
    name = row_table(table)
    for part in chunks(old):
        marks = ",".join("?" * len(part))
        present.update(
            row[0] for row in conn.execute(f"SELECT pk FROM {name} WHERE pk IN ({marks})", part)
        )
    return [item for item in items if item[2] >= horizon or item[0] in present]
