"""replication.maxPayload on the sending side: no frame above it is sent, copy chunks are cut
to fit, and a session ends with the close code and log level its cause calls for."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.core import messages as m
from agent.core.errors import INVALID_PAYLOAD, PROTOCOL_ERROR, RemoteProtocolError
from agent.core.subscription import Timing
from agent.replication.connection import FrameTooLarge, LinkClosed, checked, ending
from agent.replication.publisher import PublisherSession

LIMIT = 64 * 1024


class Wire:
    """A Connection that keeps what is sent and how it was closed."""

    remote_ip = "127.0.0.9"
    headers: dict = {}

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def recv(self) -> bytes:
        raise LinkClosed("gone")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = self.closed or (code, reason)


def session(wire: Wire) -> PublisherSession:
    return PublisherSession(wire, "a", None, {}, ["data"], Timing(), 1000, max_payload=LIMIT)


def rows(n: int, size: int) -> list[tuple]:
    return [(i, '{"v":"' + "x" * size + '"}', 5, "a") for i in range(n)]


def test_checked_passes_a_frame_at_the_limit_and_refuses_one_above():
    assert checked(b"x" * LIMIT, LIMIT, "Ping") == b"x" * LIMIT
    assert checked(b"x" * (LIMIT * 4), 0, "Ping")  # 0: no limit
    with pytest.raises(FrameTooLarge, match="Ping of 65537 bytes exceeds replication.maxPayload"):
        checked(b"x" * (LIMIT + 1), LIMIT, "Ping")


def test_a_copy_chunk_is_halved_until_it_fits():
    pub = session(Wire())
    batch = rows(100, 2000)  # about 200 KB: three halvings
    frame, kept, done = pub._chunk_frame("t", batch, None, True)
    assert len(frame) <= LIMIT and not done and 0 < len(kept) < 100
    assert kept == batch[: len(kept)]
    chunk = m.parse(frame)
    assert (chunk.last, chunk.done, len(chunk.rows)) == (kept[-1][0], False, len(kept))


def test_a_chunk_that_fits_is_sent_whole():
    frame, kept, done = session(Wire())._chunk_frame("t", rows(10, 100), 3, True)
    assert (len(kept), done, m.parse(frame).after) == (10, True, 3)


def test_a_single_row_above_the_limit_fails_clearly():
    with pytest.raises(FrameTooLarge, match=r"copy chunk of t \(1 rows\) of \d+ bytes exceeds"):
        session(Wire())._chunk_frame("t", rows(1, LIMIT), None, True)


def test_a_transaction_above_the_limit_is_not_sent_and_ends_the_link_with_1009(caplog):
    wire = Wire()
    pub = session(wire)
    big = m.Txn(1, 0, "b", "b-id", 4, 5, 1, 1.0, b"x" * LIMIT)

    async def run() -> None:
        try:
            await pub.send(big)
        except LinkClosed as exc:
            await pub._end(exc)

    with caplog.at_level(logging.INFO):
        asyncio.run(run())
    assert wire.sent == []
    code, reason = wire.closed
    assert code == 1009 and "transaction 4 of b (b-id)" in reason
    (record,) = [r for r in caplog.records if "exceeds replication.maxPayload" in r.message]
    assert record.levelno == logging.WARNING and "127.0.0.9" in record.message


@pytest.mark.parametrize(
    ("exc", "code", "level"),
    [
        (RemoteProtocolError("bad frame"), PROTOCOL_ERROR, logging.WARNING),
        (RemoteProtocolError("bad record", INVALID_PAYLOAD), INVALID_PAYLOAD, logging.WARNING),
        (FrameTooLarge("too big"), 1009, logging.WARNING),
        (LinkClosed("peer went away"), 1000, logging.INFO),
    ],
)
def test_ending_maps_causes_to_close_codes_and_levels(exc, code, level):
    assert ending(exc) == (code, str(exc), level)
