"""LogTail: entries after a position, by bisection, within a byte budget."""

from __future__ import annotations

import asyncio

from agent.replication.tail import LogTail
from agent.storage.writer import Committed


def _entry(seq: int, size: int = 10) -> Committed:
    return Committed(seq, seq << 16, "o", 1, b"x" * size)


def test_after_returns_what_follows_a_position():
    async def run():
        tail = LogTail(head=0)
        tail.extend([_entry(s) for s in range(1, 101)])
        assert [e.seq for e in tail.after(0, limit=3)] == [1, 2, 3]
        assert [e.seq for e in tail.after(97)] == [98, 99, 100]
        assert tail.after(100) == []
        assert tail.head == 100

    asyncio.run(run())


def test_trimmed_positions_say_none_so_the_caller_reads_sqlite():
    async def run():
        tail = LogTail(head=0, max_bytes=100)
        tail.extend([_entry(s, size=10) for s in range(1, 3001)])
        first = tail.first_seq()
        assert first is not None and first > 2000
        assert tail.after(first - 2) is None
        assert [e.seq for e in tail.after(first - 1, limit=2)] == [first, first + 1]
        assert tail.after(3000) == []

    asyncio.run(run())


def test_an_empty_tail_is_current_only_at_its_head():
    async def run():
        tail = LogTail(head=7)
        assert tail.after(7) == []
        assert tail.after(3) is None

    asyncio.run(run())
