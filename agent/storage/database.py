"""One database: a SQLite file with its catalog, writer thread and read access."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable

from agent.errors import StorageError
from agent.storage import catalog as cat
from agent.storage import identity, txlog
from agent.storage.catalog import Catalog
from agent.storage.clock import SharedClock
from agent.storage.readers import ReaderPool
from agent.storage.sqlite import connect
from agent.storage.system import SYSTEM
from agent.storage.writer import Committed, Job, Writer
from agent.storage.writes import ForgetAttributes

log = logging.getLogger(__name__)
CommitListener = Callable[[str, list[Committed]], None]


def check_format(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file written with version cursors (format 1): its log cannot be streamed."""
    has_log = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_txlog'"
    ).fetchone()
    if not has_log:
        return
    columns = {row[1] for row in conn.execute("PRAGMA table_info(_txlog)")}
    if "oseq" not in columns:
        conn.close()
        raise StorageError(
            f"{path} was written by an older harper-agent (log format 1, without per-origin "
            f"sequences; this one needs format {txlog.FORMAT}): export its data with the older "
            "version, or start from an empty root and let replication copy it back"
        )


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
        # The id this node writes this file's transactions under (agent/storage/identity.py):
        # the node id for a new file, a fresh one after this file went back in time.
        self.origin_id = ""
        self.node_id = ""
        self.recounts = Recounts(self._submit)
        self.catalog.on_stale = self.recounts.stale

    def open(self, node_id: str = "") -> None:
        """Create or open the file, load the catalog and start the writer thread."""
        conn = connect(self.path, synchronous=self._synchronous)
        check_format(conn, self.path)
        conn.executescript(
            "BEGIN;" + cat.DDL + txlog.DDL + "COMMIT;"
        )  # one fsync, not one per table
        cat.migrate(conn)
        if self.name == SYSTEM:  # the node id lives in the system file
            node_id = identity.node_id(conn)
        self.node_id = node_id
        self.origin_id = identity.file_origin(conn, node_id)
        self.catalog.load(conn)
        top = conn.execute(
            "SELECT max(v) FROM (SELECT max(version) AS v FROM _cursors "
            "UNION ALL SELECT value FROM _meta WHERE key = 'hlc')"
        ).fetchone()[0]
        if top:
            self._clock.observe(int(top))
        self._writer = Writer(
            conn, self.catalog, self._committed, self.name, lambda: self.origin_id
        )

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

    def submit_async(self, job: Job) -> Any:
        """Queue a write job from the event loop now; return the asyncio future for it.

        Unlike `write`, nothing wraps the future: cancelling whoever awaits it (through
        `asyncio.shield`) never keeps the writer from running the job.
        """
        writer = self._writer
        if writer is None:
            raise StorageError(f"database '{self.name}' is closed; write refused")
        return writer.submit_async(job, asyncio.get_running_loop())

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


class Recounts:
    """Run `ForgetAttributes` for tables that lost records, spaced by what a recount costs.

    A recount scans a table's live records on the writer, so after one that took t seconds
    the next for that table waits `SPACING` * t: recounts take at most a tenth of the
    writer's time, and a small table is recounted right after each delete.
    """

    SPACING = 9.0

    def __init__(self, submit: Callable[[Job], Any]) -> None:
        self._submit = submit
        self._lock = threading.Lock()
        self._pending: set[str] = set()  # queued or waiting for their turn
        self._again: set[str] = set()  # lost records while pending: recount once more
        self._next: dict[str, float] = {}  # monotonic time of each table's next recount

    def stale(self, tables: set[str]) -> None:
        """Recount these tables soon (called on the writer thread after a commit)."""
        now = time.monotonic()
        for table in tables:
            with self._lock:
                if table in self._pending:
                    self._again.add(table)
                    continue
                self._pending.add(table)
                delay = self._next.get(table, 0.0) - now
            if delay > 0:
                timer = threading.Timer(delay, self._run, (table,))
                timer.daemon = True
                timer.start()
            else:
                self._run(table)

    def _run(self, table: str) -> None:
        job = ForgetAttributes(table)
        try:
            future = self._submit(job)
        except StorageError:  # closed meanwhile
            with self._lock:
                self._pending.discard(table)
            return
        future.add_done_callback(lambda _f: self._done(table, job))

    def _done(self, table: str, job: ForgetAttributes) -> None:
        with self._lock:
            self._pending.discard(table)
            self._next[table] = time.monotonic() + self.SPACING * job.seconds
            again = table in self._again
            self._again.discard(table)
        if again:
            self.stale({table})
