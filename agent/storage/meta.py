"""Small facts about a database file, in its `_meta` table (see storage/DESIGN.md)."""

from __future__ import annotations

import sqlite3


def read(conn: sqlite3.Connection, key: str):
    """Return the value stored under `key`, None when there is none."""
    row = conn.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def write(conn: sqlite3.Connection, key: str, value) -> None:
    conn.execute("INSERT OR REPLACE INTO _meta VALUES (?, ?)", (key, value))


def raise_to(conn: sqlite3.Connection, key: str, value: int) -> None:
    """Store `value` under `key` unless a larger one is there (a value that only grows)."""
    conn.execute(
        "INSERT INTO _meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
        "SET value = max(value, excluded.value)",
        (key, value),
    )
