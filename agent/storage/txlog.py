"""The transaction log, per-origin cursors and log floors of one database file.

`_txlog` holds every committed transaction of replicated tables, local or from a peer, in
commit order (`seq`), with its version, origin and change-set body. It is written in the same
SQLite transaction as the data, so a crash can never separate them. Sequence numbers are
never reused (AUTOINCREMENT), so positions publishers hold stay valid after pruning.

`_cursors` holds, per origin node, the highest version applied from it: everything that origin
wrote up to that version is reflected here. `_floors` holds, per origin, the version at or
below which this log is no longer complete (raised by pruning and by snapshot merges), so a
peer asking to resume from an older cursor gets a snapshot merge instead of a silent gap.
"""

from __future__ import annotations

import sqlite3
from typing import Iterator

from agent.storage.writer import Committed

DDL = """
CREATE TABLE IF NOT EXISTS _txlog (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL, origin TEXT NOT NULL,
    at REAL NOT NULL, records INTEGER NOT NULL, body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS _txlog_origin ON _txlog (origin, version);
CREATE TABLE IF NOT EXISTS _cursors (origin TEXT PRIMARY KEY, version INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _floors (origin TEXT PRIMARY KEY, version INTEGER NOT NULL)
    WITHOUT ROWID;
"""


def append(
    conn: sqlite3.Connection, version: int, origin: str, at: float, records: int, body: bytes
) -> int:
    """Append one transaction and return its sequence number."""
    cur = conn.execute(
        "INSERT INTO _txlog (version, origin, at, records, body) VALUES (?, ?, ?, ?, ?)",
        (version, origin, at, records, body),
    )
    return cur.lastrowid


def advance_cursor(conn: sqlite3.Connection, origin: str, version: int) -> None:
    """Record that `origin` is applied up to `version` (never moves backwards)."""
    conn.execute(
        "INSERT INTO _cursors VALUES (?, ?) ON CONFLICT(origin) DO UPDATE "
        "SET version = max(version, excluded.version)",
        (origin, version),
    )


def raise_floor(conn: sqlite3.Connection, origin: str, version: int) -> None:
    """Record that the log no longer holds `origin`'s transactions up to `version`."""
    conn.execute(
        "INSERT INTO _floors VALUES (?, ?) ON CONFLICT(origin) DO UPDATE "
        "SET version = max(version, excluded.version)",
        (origin, version),
    )


def cursors(conn: sqlite3.Connection) -> dict[str, int]:
    """Return every origin's applied version."""
    return dict(conn.execute("SELECT origin, version FROM _cursors"))


def floors(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT origin, version FROM _floors"))


def head(conn: sqlite3.Connection) -> int:
    """Return the last sequence number in the log (0 when empty)."""
    return conn.execute("SELECT coalesce(max(seq), 0) FROM _txlog").fetchone()[0]


def start_seq(conn: sqlite3.Connection, sent: dict[str, int], origins) -> int:
    """Return the seq to stream after: just before the first entry any origin still needs."""
    firsts = [first_seq_after(conn, o, sent.get(o, 0)) for o in origins]
    firsts = [f for f in firsts if f is not None]
    return min(firsts) - 1 if firsts else head(conn)


def first_seq_after(conn: sqlite3.Connection, origin: str, version: int) -> int | None:
    """Return the sequence of `origin`'s first transaction newer than `version`."""
    row = conn.execute(
        "SELECT min(seq) FROM _txlog WHERE origin = ? AND version > ?", (origin, version)
    ).fetchone()
    return row[0]


def read_after(conn: sqlite3.Connection, seq: int, limit: int, max_bytes: int) -> list[Committed]:
    """Read up to `limit` entries (or about `max_bytes`) after sequence `seq`."""
    out: list[Committed] = []
    size = 0
    rows = conn.execute(
        "SELECT seq, version, origin, records, body, at FROM _txlog WHERE seq > ? "
        "ORDER BY seq LIMIT ?",
        (seq, limit),
    )
    for s, version, origin, records, body, at in rows:
        out.append(Committed(s, version, origin, records, bytes(body), frozenset(), at))
        size += len(body)
        if size >= max_bytes:
            break
    return out


def records_after(conn: sqlite3.Connection, seq: int) -> tuple[int, int]:
    """Return (transactions, records) in the log after sequence `seq`."""
    row = conn.execute(
        "SELECT count(*), coalesce(sum(records), 0) FROM _txlog WHERE seq > ?", (seq,)
    ).fetchone()
    return row[0], row[1]


def prune(conn: sqlite3.Connection, before_at: float) -> int:
    """Delete entries committed before `before_at` (epoch ms), raising floors to match."""
    for origin, top in conn.execute(
        "SELECT origin, max(version) FROM _txlog WHERE at < ? GROUP BY origin", (before_at,)
    ).fetchall():
        raise_floor(conn, origin, top)
    return conn.execute("DELETE FROM _txlog WHERE at < ?", (before_at,)).rowcount


def iter_all(conn: sqlite3.Connection) -> Iterator[tuple]:
    """Yield every entry in order (for tests and diagnostics)."""
    yield from conn.execute("SELECT seq, version, origin, records, body FROM _txlog ORDER BY seq")
