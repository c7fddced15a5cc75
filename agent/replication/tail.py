"""Recent log entries of each database, in memory, so caught-up links never re-read SQLite."""

from __future__ import annotations

import asyncio
from collections import deque

from agent.storage.writer import Committed

MAX_BYTES = 32 * 1024 * 1024


class LogTail:
    """The last committed entries of one database (bounded by bytes) plus a wake-up signal."""

    def __init__(self, head: int, max_bytes: int = MAX_BYTES) -> None:
        self.entries: deque[Committed] = deque()
        self.head = head  # seq of the newest committed entry
        self._bytes = 0
        self._max = max_bytes
        self._event = asyncio.Event()

    def extend(self, entries: list[Committed]) -> None:
        """Add newly committed entries (on the event loop) and wake waiting publishers."""
        for entry in entries:
            self.entries.append(entry)
            self._bytes += len(entry.body)
            self.head = max(self.head, entry.seq)
        while self._bytes > self._max and len(self.entries) > 1:
            self._bytes -= len(self.entries.popleft().body)
        self._event.set()
        self._event = asyncio.Event()

    def after(self, seq: int, limit: int = 512) -> list[Committed] | None:
        """Return entries after `seq` from memory, or None if they are older than the tail."""
        if not self.entries:
            return [] if seq >= self.head else None
        first = self.entries[0].seq
        if seq + 1 < first:
            return None
        out = []
        for entry in self.entries:
            if entry.seq > seq:
                out.append(entry)
                if len(out) >= limit:
                    break
        return out

    async def wait(self, timeout: float) -> None:
        """Wait until new entries arrive or `timeout` passes."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            pass


class Tails(dict):
    """LogTail per database, created on first use from the database's log head."""

    def __init__(self, storage) -> None:
        super().__init__()
        self._storage = storage

    def __missing__(self, database: str) -> LogTail:
        from agent.storage import txlog

        db = self._storage.get(database)
        tail = self[database] = LogTail(db.read_sync(txlog.head))
        return tail
