"""The receiving side of a link: dial a peer for one database, subscribe, apply, re-dial.

Runs the pure `Subscriber` machine against the network and storage. Applies are pipelined
into the database writer (which group-commits them) and acknowledged in order once durable;
a bounded queue of pending applies stops reading the socket, which is the back-pressure.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

from agent.core import messages as m
from agent.core.errors import RemoteProtocolError
from agent.core.subscription import STREAMING, Subscriber
from agent.replication.connection import LinkClosed
from agent.replication.transport import DialError, dial
from agent.storage.apply import (
    CopyComplete,
    EnsureSchema,
    RemoteTransaction,
    SnapshotChunk,
    sync_state,
)

log = logging.getLogger(__name__)
MAX_PENDING = 256
MAX_BACKOFF = 30.0


@dataclass
class LinkState:
    """What the replicator and cluster_status know about a link between sessions."""

    connected: bool = False
    last_error: str | None = None
    last_error_at: float | None = None
    attempts: int = 0
    sessions: int = 0
    extra: dict = field(default_factory=dict)


class SubscriberLink:
    """Keep one (peer, database) subscription alive."""

    def __init__(self, replicator, peer, database: str) -> None:
        self.replicator = replicator
        self.peer = peer
        self.database = database
        self.state = LinkState()
        self.machine: Subscriber | None = None
        self._task: asyncio.Task | None = None
        self._conn = None
        self._resubscribe = asyncio.Event()
        self.subscribed_origins: set[str] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"link-{self.peer.key}-{self.database}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    @property
    def streaming(self) -> bool:
        return bool(self.state.connected and self.machine and self.machine.state == STREAMING)

    def resubscribe(self) -> None:
        """Ask again with the current origin assignment (relay changes)."""
        self._resubscribe.set()

    async def _run(self) -> None:
        delay = self.replicator.retry_interval
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (DialError, LinkClosed, RemoteProtocolError, OSError) as exc:
                self._failed(str(exc))
            except Exception as exc:
                log.exception("link %s/%s failed", self.peer.key, self.database)
                self._failed(f"{type(exc).__name__}: {exc}")
            finally:
                self._disconnected()
            if time.monotonic() - started > 10:
                delay = self.replicator.retry_interval
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(MAX_BACKOFF, delay * 2)

    def _failed(self, reason: str) -> None:
        self.state.last_error, self.state.last_error_at = reason, time.time()
        self.state.attempts += 1
        log.info("link to %s for %s: %s", self.peer.key, self.database, reason)

    def _disconnected(self) -> None:
        was = self.state.connected
        self.state.connected = False
        if self._conn is not None:
            asyncio.ensure_future(self._conn.close())
            self._conn = None
        if was:
            self.replicator.link_changed(self)

    async def _session(self) -> None:
        rep = self.replicator
        conn = await dial(
            self.peer.url,
            headers=self.peer.headers(),
            local_host=rep.local_host,
            compression=rep.compression,
            # a black-holed peer must not hold a dial longer than a silent link is tolerated
            timeout=min(10.0, rep.timing.ping_timeout),
        )
        self._conn = conn
        machine = Subscriber(rep.node, self.database, self.peer.name, rep.timing)
        self.machine = machine
        machine.start(time.time(), {"tables": self.peer.subscribed_tables(self.database)})
        await self._flush()
        welcome = await self._expect_welcome()
        await rep.welcomed(self, welcome)
        self.state.connected = True
        self.state.sessions += 1
        await self._subscribe()
        rep.link_changed(self)
        await self._pump()

    async def _flush(self) -> None:
        for msg in self.machine.take():
            await self._conn.send(m.serialize(msg))

    async def _expect_welcome(self):
        raw = await asyncio.wait_for(self._conn.recv(), self.replicator.timing.ping_timeout)
        events = self.machine.receive(m.parse(raw), time.time())
        for event in events:
            if event.kind == "welcome":
                return event.message
            if event.kind == "closed":
                raise LinkClosed(f"peer refused: {event.reason}")
        raise RemoteProtocolError("expected Welcome")

    async def _subscribe(self) -> None:
        rep = self.replicator
        db = rep.storage.get(self.database)
        while True:
            synced, copy_state, cursors = await db.read(sync_state, self.machine.peer)
            copy = await rep.copy_plan(self, synced, copy_state, cursors)
            if copy != "wait":
                break
            await rep.wait_synced(self.database, 1.0)  # another link is copying this database
        origins = rep.origins_for(self.machine.peer, self.database)
        self.subscribed_origins = set(origins)
        start_version = self.peer.start_version if copy and self.database != "system" else 0
        self.machine.subscribe(cursors, sorted(origins), copy, start_version)
        self._resubscribe.clear()
        await self._flush()

    async def _pump(self) -> None:
        pending: asyncio.Queue = asyncio.Queue(MAX_PENDING)
        acker = asyncio.create_task(self._ack(pending))
        ticker = asyncio.create_task(self._tick())
        reader = asyncio.create_task(self._read(pending))
        watcher = asyncio.create_task(self._resubscribe.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {acker, ticker, reader, watcher}, return_when=asyncio.FIRST_COMPLETED
                )
                if watcher in done:
                    await self._subscribe()
                    watcher = asyncio.create_task(self._resubscribe.wait())
                    continue
                for task in done:
                    task.result()  # raise what ended the session
                return
        finally:
            for task in (acker, ticker, reader, watcher):
                task.cancel()

    async def _read(self, pending: asyncio.Queue) -> None:
        while True:
            msg = m.parse(await self._conn.recv())
            for event in self.machine.receive(msg, time.time()):
                await self._event(event, pending)
            await self._flush()

    async def _event(self, event, pending: asyncio.Queue) -> None:
        rep, db = self.replicator, self.replicator.storage.get(self.database)
        kind, msg = event.kind, event.message
        if kind == "txn":
            job = RemoteTransaction(
                self.database,
                msg.origin,
                msg.version,
                msg.at,
                msg.records,
                msg.body,
                rep.storage.clock,
            )
            await pending.put((asyncio.ensure_future(db.write(job)), msg.seq, msg.records))
        elif kind == "chunk":
            state = {
                **self.state.extra.get("copy", {}),
                "table": msg.table,
                "after": msg.last,
                "copied": self.machine.stats.copy_done + len(msg.rows),
            }
            self.state.extra["copy"] = state
            self.machine.stats.copy_done += len(msg.rows)
            job = SnapshotChunk(
                self.database, msg.table, msg.rows, self.machine.peer, state, rep.storage.clock
            )
            await pending.put((asyncio.ensure_future(db.write(job)), 0, len(msg.rows)))
        elif kind == "copy_start":
            self.state.extra["copy"] = {"mode": "resume", "frontier": msg.frontier}
        elif kind == "copy_end":
            job = CopyComplete(self.machine.peer, msg.frontier, rep.node)
            await pending.put((asyncio.ensure_future(db.write(job)), 0, 0))
            await pending.join()
            rep.copy_finished(self)
        elif kind == "schema":
            await db.write(EnsureSchema(self.database, msg.tables))
        elif kind == "reach":
            rep.link_changed(self)  # the peer reaches other origins now: re-plan relays
        elif kind == "closed":
            raise LinkClosed(f"peer closed the link: {event.reason}")

    async def _ack(self, pending: asyncio.Queue) -> None:
        while True:
            future, seq, records = await pending.get()
            try:
                await future
            finally:
                pending.task_done()
            self.machine.applied(seq, records, time.time())
            if pending.empty():
                await self._flush()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for event in self.machine.tick(time.time()):
                if event.kind == "dead":
                    raise LinkClosed(event.reason)
            await self._flush()
