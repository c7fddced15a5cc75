"""A hostile replication peer for tests: speaks the wire protocol with `websockets` and
agent.core.messages, and sends whatever a test tells it to, well-formed or not.

- `subscriber_frames(url, authorization, frames)`: dial an agent's operations port as a
  replication client, send raw frames, return how the agent closed the connection.
- `FakePublisher`: a replication server an agent dials (through replication.routes); after
  the agent's Hello it answers Welcome and, after Subscribe, Schema and the Txn bodies the test
  queued for one database; it records every close the agent sends.

Runs its own asyncio loop in a thread, so tests stay synchronous like the rest of
tests/integration.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from agent.core import messages as m
from agent.core.clock import make_version

SUBPROTOCOL = "harperctl-replication-v1"


@dataclass
class Closed:
    """How the agent ended a connection: its close code and reason (None: not closed)."""

    code: int | None
    reason: str
    database: str | None = None


def now_version() -> int:
    return make_version(int(time.time() * 1000))


def txn_frame(body: bytes, oseq: int = 1, version: int | None = None, origin: str = "fake"):
    """A Txn of `body` as the first frame of a stream, from origin `fake-id`."""
    version = now_version() if version is None else version
    at = time.time() * 1000.0
    return m.Txn(oseq, oseq - 1, origin, "fake-id", oseq, version, 1, at, body)


async def _closed_by_agent(ws, timeout: float) -> Closed:
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed:
        pass
    except TimeoutError:
        return Closed(None, "still open")
    rcvd = ws.protocol.close_rcvd
    return Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "")


def subscriber_frames(
    url: str, authorization: str, frames: list[bytes], timeout: float = 10.0
) -> Closed:
    """Dial `url` as a replication client, send `frames`, return the agent's close."""

    async def run() -> Closed:
        async with connect(
            url,
            subprotocols=[SUBPROTOCOL],
            additional_headers={"Authorization": authorization},
            max_size=None,
            ping_interval=None,
            close_timeout=2,
            compression=None,
        ) as ws:
            try:
                for frame in frames:
                    await ws.send(frame)
            except ConnectionClosed:
                pass  # closed while we were still sending (an oversized frame)
            return await _closed_by_agent(ws, timeout)

    return asyncio.run(run())


@dataclass
class FakePublisher:
    """A publisher the agent dials: Welcome, then Schema and the queued Txns for `database`."""

    host: str
    database: str
    schema: list = field(default_factory=list)
    frames: list = field(default_factory=list)  # messages sent after Schema on `database`
    closes: list[Closed] = field(default_factory=list)
    port: int = 0

    def start(self) -> FakePublisher:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def main() -> None:
            self._stop = asyncio.Event()
            async with serve(
                self._serve, self.host, 0, subprotocols=[SUBPROTOCOL], max_size=None
            ) as server:
                self.port = server.sockets[0].getsockname()[1]
                ready.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(main(),))
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def _serve(self, ws) -> None:
        hello = m.parse(await ws.recv())
        database = hello.database
        welcome = m.Welcome("fake", database, [], "fake-id", {}, {}, None)
        await ws.send(m.serialize(welcome))
        try:
            subscribe = m.parse(await ws.recv())
            assert isinstance(subscribe, m.Subscribe), subscribe
            mine = database == self.database
            await ws.send(m.serialize(m.Schema(self.schema if mine else [])))
            for msg in self.frames if mine else ():
                await ws.send(msg if isinstance(msg, bytes) else m.serialize(msg))
            while True:  # answer pings, so the link stays up until the agent ends it
                msg = m.parse(await ws.recv())
                if isinstance(msg, m.Ping):
                    await ws.send(m.serialize(m.Pong(msg.sent, time.time() * 1000.0)))
        except ConnectionClosed:
            rcvd = ws.protocol.close_rcvd
            self.closes.append(
                Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "", database)
            )

    def closes_for(self, database: str) -> list[Closed]:
        return [c for c in list(self.closes) if c.database == database]
