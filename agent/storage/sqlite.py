"""Opening SQLite connections the way every part of storage needs them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.lock import create_private


def connect(path: Path, *, synchronous: str = "FULL", readonly: bool = False) -> sqlite3.Connection:
    """Open a connection in WAL mode with autocommit off (transactions are explicit)."""
    if readonly:
        uri = f"file:{path}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        # 0600 whatever the umask; SQLite gives its -wal and -shm files the same mode
        create_private(path)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
    # the writer gets 4 MB of page cache; each reader (several threads per file) 2 MB
    conn.execute(f"PRAGMA cache_size = {-2000 if readonly else -4000}")
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn
