"""An in-memory network of replication Connections, with seeded delay, drops and partitions.

`MemoryNetwork.dialler(...)` returns a function with the shape of
`agent.replication.transport.dial`, which the simulator puts on `Replicator.dial` (the seam
links and membership dial through). A dial reaches the target host's `accept`, which serves
the other end of the new `Wire` as the node's endpoint would.

    Wire            one connection: two `End`s, each the Connection one shell holds
    End             send / recv / close, remote_ip and headers, like transport.Connection
    MemoryNetwork   hosts by IP, live wires, partitions; the faults act on it

Frames keep their order per direction (as TCP does); each gets a seeded delay. A graceful
close travels behind the frames already sent, like a FIN; `abort` (a dropped connection or a
crashed node) makes both ends see LinkClosed at once and loses what was in flight. While two
nodes are partitioned, frames between them are held (not lost) until the partition heals or
a side gives up on the link, and dials between them are refused. `points` lets a test hook
every send, receive and dial of a host (crash points). Not modelled: half-open
connections, send-side back-pressure (the protocol's ack window bounds what is in flight).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from typing import Callable, Protocol
from urllib.parse import urlsplit

from agent.replication.connection import LinkClosed
from agent.replication.transport import DialError

EOF = None  # in an inbox: the peer closed after the frames before it


class Host(Protocol):
    name: str
    ip: str
    up: bool

    def accept(self, conn: End) -> None: ...


class End:
    """One side of a Wire: the Connection a shell reads, writes and closes."""

    def __init__(self, wire: Wire, node: str, remote_ip: str, headers: dict) -> None:
        self.wire = wire
        self.node = node
        self.remote_ip = remote_ip
        self.headers = headers
        self.inbox: deque[tuple[float, bytes | None]] = deque()
        self.last_at = 0.0  # delivery time of the newest frame: order is kept per direction
        self.closed: str | None = None  # why this end is closed
        self._wake = asyncio.Event()

    @property
    def peer(self) -> End:
        return self.wire.other(self)

    async def send(self, data: bytes) -> None:
        self.wire.net.point(self.node, "send")
        if self.closed:
            raise LinkClosed(self.closed)
        self.wire.carry(self.peer, data)

    async def recv(self) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            if self.closed:
                raise LinkClosed(self.closed)
            wait = None
            if self.inbox and not self.wire.held():
                at, data = self.inbox[0]
                wait = at - loop.time()
                if wait <= 0:
                    self.inbox.popleft()
                    if data is EOF:
                        self.shut("closed by the peer")
                        continue
                    self.wire.net.point(self.node, "recv")
                    if self.closed:  # the node crashed with the frame in hand: it is lost
                        raise LinkClosed(self.closed)
                    return data
            self._wake.clear()
            try:  # not wait_for: on 3.11 it can swallow a cancel that meets a wake-up
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.closed:
            self.shut(f"closed ({code} {reason})".strip())
            self.wire.carry(self.peer, EOF)

    def shut(self, reason: str) -> None:
        """Close this end now: its reader wakes up to LinkClosed."""
        if not self.closed:
            self.closed = reason
            self.inbox.clear()
            self.wake()

    def wake(self) -> None:
        self._wake.set()


class Wire:
    """One connection between a dialling node and the node it reached."""

    def __init__(self, net: MemoryNetwork, caller: Host, target: Host, headers: dict) -> None:
        self.net = net
        self.nodes = (caller.name, target.name)
        self.dialer = End(self, caller.name, target.ip, {})
        self.server = End(self, target.name, caller.ip, dict(headers))

    def other(self, end: End) -> End:
        return self.server if end is self.dialer else self.dialer

    def held(self) -> bool:
        return self.net.cut(*self.nodes)

    def carry(self, to: End, data: bytes | None) -> None:
        """Queue a frame (or EOF) for `to`, after the frames before it and a seeded delay."""
        if to.closed:
            return  # the other side is gone: what it would have read is lost
        at = max(to.last_at, asyncio.get_running_loop().time() + self.net.delay())
        to.inbox.append((at, data))
        to.last_at = at
        to.wake()

    def abort(self, reason: str) -> None:
        """Break the connection: both ends see LinkClosed, frames in flight are lost."""
        self.dialer.shut(reason)
        self.server.shut(reason)

    @property
    def alive(self) -> bool:
        return not (self.dialer.closed and self.server.closed)


class MemoryNetwork:
    """Hosts by IP, the wires between them, and the faults acting on both."""

    def __init__(self, rng: random.Random, max_delay: float = 0.004) -> None:
        self.rng = rng
        self.max_delay = max_delay
        self.hosts: dict[str, Host] = {}
        self.wires: list[Wire] = []
        self.cuts: set[frozenset[str]] = set()
        self.points: dict[str, Callable[[str], None]] = {}  # host name -> crash-point hook

    def point(self, node: str, what: str) -> None:
        """An await point of `node`'s shell on the network (see crashpoints.py)."""
        hook = self.points.get(node)
        if hook is not None:
            hook(what)

    def add(self, host: Host) -> None:
        self.hosts[host.ip] = host

    def delay(self) -> float:
        return self.rng.uniform(0.0, self.max_delay)

    def cut(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self.cuts

    def dialler(self, caller: Host, current: Callable[[], bool]) -> Callable:
        """Return a `transport.dial` for `caller`; `current()` is False for what a crashed
        node's shell left running, whose dials are refused."""

        async def dial(url: str, *, headers: dict | None = None, timeout: float = 10.0, **_):
            await asyncio.sleep(self.delay())
            self.point(caller.name, "dial")
            target = self.hosts.get(urlsplit(url).hostname or "")
            if not caller.up or not current():
                raise DialError(f"cannot reach {url}: this node is down")
            if target is None or not target.up:
                raise DialError(f"cannot reach {url}: connection refused")
            if self.cut(caller.name, target.name):
                raise DialError(f"cannot reach {url}: timed out (partitioned)")
            wire = Wire(self, caller, target, headers or {})
            self.wires = [w for w in self.wires if w.alive] + [wire]
            target.accept(wire.server)
            return wire.dialer

        return dial

    def between(self, a: str, b: str | None = None) -> list[Wire]:
        """Return the live wires of `a` (to `b` only, when given)."""
        return [
            w
            for w in self.wires
            if w.alive and a in w.nodes and (b is None or b in w.nodes and a != b)
        ]

    def drop(self, a: str, b: str | None = None) -> int:
        """Break the wires of `a` (to `b` only); return how many broke."""
        wires = self.between(a, b)
        for wire in wires:
            wire.abort("connection reset (dropped)")
        return len(wires)

    def partition(self, a: str, b: str) -> None:
        self.cuts.add(frozenset((a, b)))

    def heal(self, a: str | None = None, b: str | None = None) -> None:
        """Heal one partition (or all): held frames flow again."""
        if a is None or b is None:
            self.cuts.clear()
        else:
            self.cuts.discard(frozenset((a, b)))
        for wire in self.wires:
            wire.dialer.wake()
            wire.server.wake()
