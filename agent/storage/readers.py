"""Read connections: each reader thread keeps its own connection per database file.

SQLite in WAL mode lets readers run beside the one writer, each seeing the last committed
state. Reads run in a small thread pool so a long scan never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from agent.storage.sqlite import connect


class ReaderPool:
    """Run read functions on pooled threads with thread-local connections."""

    def __init__(self, threads: int = 4) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="reader")
        self._local = threading.local()
        self._generation: dict[Path, int] = {}
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    async def run(self, path: Path, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(conn, *args)` on a reader thread and return its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, path, fn, args)

    def run_sync(self, path: Path, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(conn, *args)` on the calling thread (for start-up and tests)."""
        return self._call(path, fn, args)

    def _call(self, path: Path, fn: Callable[..., Any], args: tuple) -> Any:
        conn = self._connection(path)
        conn.execute("BEGIN")
        try:
            return fn(conn, *args)
        finally:
            conn.execute("COMMIT")

    def _connection(self, path: Path) -> sqlite3.Connection:
        cache = getattr(self._local, "conns", None)
        if cache is None:
            cache = self._local.conns = {}
        generation = self._generation.get(path, 0)
        held = cache.get(path)
        if held is not None and held[0] == generation:
            return held[1]
        if held is not None:
            held[1].close()
        conn = connect(path, readonly=True)
        cache[path] = (generation, conn)
        with self._lock:
            self._all.append(conn)
        return conn

    def forget(self, path: Path) -> None:
        """Make every thread reopen `path` (after the file was dropped or replaced)."""
        self._generation[path] = self._generation.get(path, 0) + 1

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
