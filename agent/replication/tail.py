"""Recent log entries of each database, in memory, so caught-up links never re-read SQLite."""

from __future__ import annotations

import asyncio
from bisect import bisect_right

from agent.storage.writer import Committed

MAX_BYTES = 2 * 1024 * 1024  # caught-up links read from memory; lagging ones from SQLite


class LogTail:
    """The last committed entries of one database (bounded by bytes) plus a wake-up signal.

    Entries sit in seq order in a list whose live part starts at `_start`, so `after` finds
    its place by bisection however long the tail is (a deque scan cost milliseconds at
    100k entries and dominated the publishers' CPU).
    """

    def __init__(self, head: int, max_bytes: int = MAX_BYTES) -> None:
        self._items: list[Committed] = []
        self._seqs: list[int] = []
        self._start = 0
        self.head = head  # seq of the newest committed entry
        self._bytes = 0
        self._max = max_bytes
        self._event = asyncio.Event()
        self._waiting = 0

    @property
    def entries(self) -> list[Committed]:
        return self._items[self._start :]

    def first_seq(self) -> int | None:
        return self._seqs[self._start] if self._start < len(self._seqs) else None

    def extend(self, entries: list[Committed]) -> None:
        """Add newly committed entries (on the event loop) and wake waiting publishers."""
        for entry in entries:
            if self._seqs and entry.seq <= self._seqs[-1]:
                continue  # never out of order: the log hands out increasing seqs
            self._items.append(entry)
            self._seqs.append(entry.seq)
            self._bytes += len(entry.body)
            self.head = max(self.head, entry.seq)
        self._trim()
        if self._waiting:  # a fresh Event only when someone waits on the old one
            self._event.set()
            self._event = asyncio.Event()
            self._waiting = 0

    def _trim(self) -> None:
        while self._bytes > self._max and len(self._items) - self._start > 1:
            self._bytes -= len(self._items[self._start].body)
            self._items[self._start] = None  # let the body go now
            self._start += 1
        if self._start > 1024 and self._start * 2 > len(self._items):
            del self._items[: self._start]
            del self._seqs[: self._start]
            self._start = 0

    def after(self, seq: int, limit: int = 512) -> list[Committed] | None:
        """Return entries after `seq` from memory, or None if they are older than the tail."""
        first = self.first_seq()
        if first is None:
            return [] if seq >= self.head else None
        if seq + 1 < first:
            return None
        index = bisect_right(self._seqs, seq, self._start)
        return self._items[index : index + limit]

    async def wait(self, timeout: float) -> None:
        """Wait until new entries arrive or `timeout` passes."""
        self._waiting += 1
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
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
