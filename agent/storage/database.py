"""One database: a SQLite file with its catalog, writer thread and read access."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, Callable

from agent.errors import StorageError
from agent.storage import catalog as cat
from agent.storage import txlog
from agent.storage.catalog import Catalog
from agent.storage.clock import SharedClock
from agent.storage.readers import ReaderPool
from agent.storage.sqlite import connect
from agent.storage.writer import Committed, Job, Writer

CommitListener = Callable[[str, list[Committed]], None]


class Database:
    """Own one database file: writes go through its Writer, reads through the pool."""

    def __init__(
        self,
        name: str,
        path: Path,
        readers: ReaderPool,
        clock: SharedClock,
        on_commit: CommitListener,
        synchronous: str = "FULL",
    ) -> None:
        self.name = name
        self.path = path
        self.catalog = Catalog(name)
        self._readers = readers
        self._clock = clock
        self._on_commit = on_commit
        self._synchronous = synchronous
        self._writer: Writer | None = None

    def open(self) -> None:
        """Create or open the file, load the catalog and start the writer thread."""
        conn = connect(self.path, synchronous=self._synchronous)
        conn.executescript(
            "BEGIN;" + cat.DDL + txlog.DDL + "COMMIT;"
        )  # one fsync, not one per table
        self.catalog.load(conn)
        top = conn.execute(
            "SELECT max(v) FROM (SELECT max(version) AS v FROM _cursors "
            "UNION ALL SELECT value FROM _meta WHERE key = 'hlc')"
        ).fetchone()[0]
        if top:
            self._clock.observe(int(top))
        self._writer = Writer(conn, self.catalog, self._committed, self.name)

    def _committed(self, entries: list[Committed]) -> None:
        self._on_commit(self.name, entries)

    def _submit(self, job: Job):
        writer = self._writer
        if writer is None:
            raise StorageError(f"database '{self.name}' is closed; write refused")
        return writer.submit(job)

    async def write(self, job: Job) -> Any:
        """Run a write job and return its result once it has committed."""
        writer = self._writer
        if writer is None:
            raise StorageError(f"database '{self.name}' is closed; write refused")
        return await writer.submit_async(job, asyncio.get_running_loop())

    def attach_loop(self, loop, listener) -> None:
        """Run `listener(database, entries)` on `loop` after each commit."""
        if self._writer is not None:
            self._writer.loop = loop
            self._writer.loop_commit = lambda entries: listener(self.name, entries)

    def submit(self, job: Job):
        """Queue a write job from any thread; return a concurrent future for its result."""
        return self._submit(job)

    def write_sync(self, job: Job) -> Any:
        """Run a write job from a thread that is not the event loop (start-up, tests)."""
        return self._submit(job).result()

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(conn, *args)` in a read transaction on a reader thread."""
        return await self._readers.run(self.path, fn, *args)

    def read_sync(self, fn: Callable[[sqlite3.Connection], Any], *args: Any) -> Any:
        return self._readers.run_sync(self.path, fn, *args)

    def close(self) -> None:
        """Finish queued writes and stop the writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
