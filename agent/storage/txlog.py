"""The transaction log, per-origin cursors and log floors of one database file.

`_txlog` holds every committed transaction of replicated tables, local or from a peer, in
local commit order (`seq`, never reused: AUTOINCREMENT, so positions publishers hold stay
valid after pruning). Each entry also carries its origin's own gap-free sequence
(`origin_id`, `oseq`): the origin numbered it 1, 2, 3, ... and every node logs it under that
same pair, which is what lets any node that holds an origin's transactions serve them, and
any receiver see a hole. It is written in the same SQLite transaction as the data.

`_cursors` holds, per origin id, the last sequence applied (and that transaction's version):
everything the origin wrote up to there is reflected here. This node's own origin id has a
cursor too: its last local sequence. `_floors` holds, per origin, the sequence at or below
which this log no longer holds that origin's transactions (pruned, or covered by a snapshot
merge), so a peer asking to resume from further back gets a merge instead of a silent gap.
"""

from __future__ import annotations

import sqlite3
from typing import Iterator

from agent.storage.writer import Committed

FORMAT = 2  # 2: per-origin sequences; files of format 1 (version cursors) are refused
DDL = """
CREATE TABLE IF NOT EXISTS _txlog (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, origin_id TEXT NOT NULL, oseq INTEGER NOT NULL,
    version INTEGER NOT NULL, origin TEXT NOT NULL, at REAL NOT NULL,
    records INTEGER NOT NULL, body BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS _txlog_origin ON _txlog (origin_id, oseq);
CREATE TABLE IF NOT EXISTS _cursors (
    origin TEXT PRIMARY KEY, seq INTEGER NOT NULL, version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _floors (origin TEXT PRIMARY KEY, seq INTEGER NOT NULL)
    WITHOUT ROWID;
"""


def append(conn: sqlite3.Connection, entry: Committed) -> int:
    """Append one transaction (its `seq` is ignored) and return its log position."""
    cur = conn.execute(
        "INSERT INTO _txlog (origin_id, oseq, version, origin, at, records, body) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            entry.origin_id,
            entry.oseq,
            entry.version,
            entry.origin,
            entry.at,
            entry.records,
            entry.body,
        ),
    )
    return cur.lastrowid


def cursor(conn: sqlite3.Connection, origin_id: str) -> tuple[int, int]:
    """Return (last sequence applied, its version) for one origin; (0, 0) if none."""
    row = conn.execute(
        "SELECT seq, version FROM _cursors WHERE origin = ?", (origin_id,)
    ).fetchone()
    return (row[0], row[1]) if row else (0, 0)


def set_cursor(conn: sqlite3.Connection, origin_id: str, seq: int, version: int) -> None:
    """Record that `origin_id` is applied up to `seq` (never moves backwards)."""
    conn.execute(
        "INSERT INTO _cursors VALUES (?, ?, ?) ON CONFLICT(origin) DO UPDATE "
        "SET seq = excluded.seq, version = excluded.version WHERE excluded.seq > seq",
        (origin_id, seq, version),
    )


def entry_version(conn: sqlite3.Connection, origin_id: str, oseq: int) -> int | None:
    """Return the version of one origin's transaction `oseq`, None when not in the log."""
    row = conn.execute(
        "SELECT version FROM _txlog WHERE origin_id = ? AND oseq = ?", (origin_id, oseq)
    ).fetchone()
    return row[0] if row else None


def raise_floor(conn: sqlite3.Connection, origin_id: str, seq: int) -> None:
    """Record that the log no longer holds `origin_id`'s transactions up to `seq`."""
    conn.execute(
        "INSERT INTO _floors VALUES (?, ?) ON CONFLICT(origin) DO UPDATE "
        "SET seq = max(seq, excluded.seq)",
        (origin_id, seq),
    )


def cursors(conn: sqlite3.Connection, scope: str | None = None) -> dict[str, int]:
    """Return every origin's last applied sequence (of a filtered stream's `scope`)."""
    return _scoped(conn.execute("SELECT origin, seq FROM _cursors"), scope)


def cursor_versions(conn: sqlite3.Connection, scope: str | None = None) -> dict[str, int]:
    """Return the version of every origin's last applied transaction (of `scope`)."""
    return _scoped(conn.execute("SELECT origin, version FROM _cursors"), scope)


def _scoped(rows, scope: str | None) -> dict[str, int]:
    """Keep the cursors of full streams (scope None), or those of one filtered stream by
    origin id (agent.core.cursors.scoped names them `origin@tables`)."""
    if scope is None:
        return {k: v for k, v in rows if "@" not in k}
    suffix = "@" + scope
    return {k[: -len(suffix)]: v for k, v in rows if k.endswith(suffix)}


def floors(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT origin, seq FROM _floors"))


def head(conn: sqlite3.Connection) -> int:
    """Return the last log position (0 when empty)."""
    return conn.execute("SELECT coalesce(max(seq), 0) FROM _txlog").fetchone()[0]


def start_seq(conn: sqlite3.Connection, sent: dict[str, int], origins) -> int:
    """Return the log position to stream after: just before the first entry any origin needs."""
    firsts = [first_seq_after(conn, o, sent.get(o, 0)) for o in origins]
    firsts = [f for f in firsts if f is not None]
    return min(firsts) - 1 if firsts else head(conn)


def unsent(conn: sqlite3.Connection, sent: dict[str, int], origins) -> dict[str, list]:
    """Return, per origin, [records, oldest commit time (ms)] of its entries after `sent`."""
    out = {}
    for origin in origins:
        records, oldest = conn.execute(
            "SELECT sum(records), min(at) FROM _txlog WHERE origin_id = ? AND oseq > ?",
            (origin, sent.get(origin, 0)),
        ).fetchone()
        if records:
            out[origin] = [int(records), oldest]
    return out


def first_seq_after(conn: sqlite3.Connection, origin_id: str, oseq: int) -> int | None:
    """Return the log position of `origin_id`'s first transaction after sequence `oseq`."""
    row = conn.execute(
        "SELECT seq FROM _txlog WHERE origin_id = ? AND oseq > ? ORDER BY oseq LIMIT 1",
        (origin_id, oseq),
    ).fetchone()
    return row[0] if row else None


_COLUMNS = "seq, version, origin, records, body, at, origin_id, oseq"


def _entry(row) -> Committed:
    seq, version, origin, records, body, at, origin_id, oseq = row
    return Committed(seq, version, origin, records, bytes(body), frozenset(), at, origin_id, oseq)


def read_after(conn: sqlite3.Connection, seq: int, limit: int, max_bytes: int) -> list[Committed]:
    """Read up to `limit` entries (or about `max_bytes`) after log position `seq`."""
    out: list[Committed] = []
    size = 0
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM _txlog WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
    )
    for row in rows:
        out.append(_entry(row))
        size += len(out[-1].body)
        if size >= max_bytes:
            break
    return out


def records_after(conn: sqlite3.Connection, seq: int) -> tuple[int, int]:
    """Return (transactions, records) in the log after position `seq`."""
    row = conn.execute(
        "SELECT count(*), coalesce(sum(records), 0) FROM _txlog WHERE seq > ?", (seq,)
    ).fetchone()
    return row[0], row[1]


def prune(conn: sqlite3.Connection, before_at: float) -> int:
    """Delete entries committed before `before_at` (epoch ms), raising floors to match."""
    for origin_id, top in conn.execute(
        "SELECT origin_id, max(oseq) FROM _txlog WHERE at < ? GROUP BY origin_id", (before_at,)
    ).fetchall():
        raise_floor(conn, origin_id, top)
    return conn.execute("DELETE FROM _txlog WHERE at < ?", (before_at,)).rowcount


def iter_all(conn: sqlite3.Connection) -> Iterator[tuple]:
    """Yield every entry in order (for tests and diagnostics)."""
    yield from conn.execute(
        "SELECT seq, version, origin, records, body, origin_id, oseq FROM _txlog ORDER BY seq"
    )
