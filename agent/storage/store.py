"""All databases of a node: the `<rootPath>/database/<db>.sqlite` files."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from pathlib import Path

from agent.errors import ClientError, NotFound
from agent.lock import private_dirs, tighten
from agent.storage.catalog import check_name
from agent.storage.clock import SharedClock
from agent.storage.database import CommitListener, Database
from agent.storage.readers import ReaderPool
from agent.storage.system import SYSTEM, system_tables
from agent.storage.writer import Committed
from agent.storage.writes import CreateTable

log = logging.getLogger(__name__)
SUFFIX = ".sqlite"


class Storage:
    """Open, create and drop databases; fan committed log entries out to listeners."""

    def __init__(
        self,
        path: Path,
        origin: str,
        clock: SharedClock | None = None,
        synchronous: str = "FULL",
        reader_threads: int = 4,
    ) -> None:
        self.path = Path(path)
        self.origin = origin
        self.node_id = ""  # kept in the system file (agent/storage/identity.py)
        self.clock = clock or SharedClock()
        self.synchronous = synchronous
        self.readers = ReaderPool(reader_threads)
        self._databases: dict[str, Database] = {}
        self._listeners: list[CommitListener] = []
        self.on_drop: list = []  # called with a database name after its files are gone
        self._lock = threading.Lock()
        self._loop = None
        self._loop_listener: CommitListener | None = None

    def add_listener(self, listener: CommitListener) -> None:
        """Call `listener(database, entries)` on the writer thread after every commit."""
        self._listeners.append(listener)

    def attach_loop(self, loop, listener: CommitListener) -> None:
        """Call `listener(database, entries)` on `loop` after every commit (one wake-up
        shared with the writers' results); databases opened later are attached too."""
        self._loop, self._loop_listener = loop, listener
        for db in self._databases.values():
            db.attach_loop(loop, listener)

    def _committed(self, database: str, entries: list[Committed]) -> None:
        for listener in self._listeners:
            try:
                listener(database, entries)
            except Exception:
                log.exception("commit listener failed")

    def open(self) -> None:
        """Open every database file and make sure `system` and its tables exist."""
        private_dirs(self.path)
        # storage.path may lie outside the root (agent/lock.py tightens the root on start)
        tighten([self.path, *self.path.glob(f"*{SUFFIX}*")])
        system = self._open(SYSTEM)
        self.node_id = system.node_id
        try:
            for file in sorted(self.path.glob(f"*{SUFFIX}")):
                if file.name[: -len(SUFFIX)] != SYSTEM:
                    self._open(file.name[: -len(SUFFIX)])
        except Exception:
            self.close()  # a file refused: stop the writers already started
            raise
        missing = [info for info in system_tables() if system.catalog.get(info.name) is None]
        # queued together, they commit as one batch: one fsync on a first start, none later
        waiting = [system.submit(CreateTable(i, self.clock, self.origin, True)) for i in missing]
        for future in waiting:
            future.result()

    def _open(self, name: str) -> Database:
        db = Database(
            name,
            self.path / f"{name}{SUFFIX}",
            self.readers,
            self.clock,
            self._committed,
            self.synchronous,
        )
        db.open(self.node_id)
        if self._loop is not None:
            db.attach_loop(self._loop, self._loop_listener)
        self._databases[name] = db
        return db

    def names(self) -> list[str]:
        return sorted(self._databases)

    def exists(self, name: str) -> bool:
        return name in self._databases

    def get(self, name: object) -> Database:
        """Return a database or raise NotFound with HarperDB's message."""
        db = self._databases.get(name) if isinstance(name, str) else None
        if db is None:
            raise NotFound(f"database '{name}' does not exist")
        return db

    async def create(self, name: str, exists_ok: bool = False) -> Database:
        """Create a database file (off the event loop)."""
        return await asyncio.to_thread(self.create_sync, name, exists_ok)

    def create_sync(self, name: str, exists_ok: bool = False) -> Database:
        check_name("database", name)
        with self._lock:
            if name in self._databases:
                if exists_ok:
                    return self._databases[name]
                raise ClientError(f"database '{name}' already exists")
            return self._open(name)

    async def drop(self, name: str) -> None:
        await asyncio.to_thread(self.drop_sync, name)

    def drop_sync(self, name: str) -> None:
        """Close a database and delete its files."""
        if name == SYSTEM:
            raise ClientError("the system database cannot be dropped")
        with self._lock:
            db = self.get(name)
            del self._databases[name]
        db.close()
        self.readers.forget(db.path)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{db.path}{suffix}")
            except FileNotFoundError:
                pass
        for hook in self.on_drop:
            hook(name)

    async def prune(
        self, retention_seconds: float, tombstone_seconds: float | None = None
    ) -> dict[str, tuple[int, int]]:
        """Prune every database's log and tombstones past retention; return what went."""
        from agent.storage.writes import Prune

        now = self.clock.now_ms()
        before = now - retention_seconds * 1000.0
        tombs = now - max(retention_seconds, tombstone_seconds or 0.0) * 1000.0
        out = {}
        for name in self.names():
            if self.exists(name):
                out[name] = await self.get(name).write(Prune(before, tombs))
        return out

    def close(self) -> None:
        """Finish every queued write, then close readers."""
        for db in list(self._databases.values()):
            db.close()
        self.readers.close()
