"""The receiving side of a link: dial a peer for one database, subscribe, apply, re-dial.

Runs the pure `Subscriber` machine against the network and storage. Applies are pipelined
into the database writer (which group-commits them, in queue order) and acknowledged in
order once durable; a bounded queue of pending applies stops reading the socket, which is
the back-pressure. A queued apply is never cancelled, whatever ends the session: the writer
runs it, and each job checks that it continues what was applied (agent/storage/apply.py),
so a cursor can never pass something that was not applied. A job refused as a gap ends the
session; the next one subscribes again from the cursors.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

from agent.core import messages as m
from agent.core.clock import ahead_ms, too_far_ahead
from agent.core.cursors import rolled_back, scope_of
from agent.core.errors import INTERNAL_ERROR, NORMAL, POLICY, RemoteProtocolError
from agent.core.subscription import COPYING, STREAMING, Subscriber
from agent.errors import StreamGap
from agent.replication.connection import LinkClosed, checked, ending
from agent.replication.transport import DialError
from agent.storage import identity, txlog
from agent.storage.apply import (
    ConfirmOwn,
    CopyBegin,
    CopyComplete,
    EnsureSchema,
    Reidentify,
    RemoteTransaction,
    SnapshotChunk,
    sync_state,
)

log = logging.getLogger(__name__)
MAX_PENDING = 256
# A re-dial costs one refused or timed-out connect; waiting longer than this after a peer
# comes back (a healed partition, a restart) only keeps the cluster apart for longer.
MAX_BACKOFF = 5.0


@dataclass
class LinkState:
    """What the replicator and cluster_status know about a link between sessions."""

    connected: bool = False
    last_error: str | None = None
    last_error_at: float | None = None
    attempts: int = 0
    sessions: int = 0
    gaps: int = 0  # applies refused because they did not continue what was applied
    last_gap: str | None = None
    clock_refusals: int = 0  # transactions refused by the clock guard
    down_since: float | None = field(default_factory=time.time)  # None while connected
    extra: dict = field(default_factory=dict)
    security: dict | None = None  # how the last dial proved both sides (mtls, signed, ...)


def _seen(future) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: asyncio will not report it as never retrieved


def _own_state(conn, origin_id: str, seq: int) -> tuple[int, int | None]:
    return txlog.cursor(conn, origin_id)[0], txlog.entry_version(conn, origin_id, seq)


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
        self.peer_origin: str | None = None  # the peer's origin id here, kept across sessions
        self.peer_cursors: dict[str, int] = {}  # what the peer held at the last Welcome
        self._welcome_versions: dict[str, int] = {}
        self.scope: str | None = None  # the tables this link carries, when filtered
        self._after_copy = False  # a relay change arrived during the copy: ask again after

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
            sessions, refusals = self.state.sessions, self.state.clock_refusals
            bad_frame = False
            close = (NORMAL, "")
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except StreamGap as exc:
                self.state.gaps += 1
                self.state.last_gap = exc.message
                self._failed(f"gap: {exc.message}; subscribing again from the cursors")
            except (LinkClosed, RemoteProtocolError) as exc:
                code, reason, level = ending(exc)
                bad_frame = level == logging.WARNING  # the peer sent what we refuse
                close = (code, reason)
                self._failed(reason, level)
            except (DialError, OSError) as exc:
                self._failed(str(exc))
            except Exception as exc:
                log.exception("link %s/%s failed", self.peer.key, self.database)
                self._failed(f"{type(exc).__name__}: {exc}")
                close = (INTERNAL_ERROR, f"{type(exc).__name__}")
            finally:
                self._disconnected(*close)
            # Back off only while the peer cannot be reached or refuses: a session that got
            # as far as subscribing ended for a reason of its own (a gap, a restart, a stall),
            # and waiting long then only keeps data from flowing. A refused frame or clock
            # will most likely come again: retrying soon changes nothing.
            refused = bad_frame or self.state.clock_refusals > refusals
            if (self.state.sessions > sessions and not refused) or time.monotonic() - started > 10:
                delay = self.replicator.retry_interval
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(MAX_BACKOFF, delay * 2)

    def _failed(self, reason: str, level: int = logging.INFO) -> None:
        self.state.last_error, self.state.last_error_at = reason, time.time()
        self.state.attempts += 1
        log.log(level, "link to %s for %s: %s", self._who(), self.database, reason)

    def _who(self) -> str:
        name = self.peer.name or (self.machine.peer if self.machine else None)
        return f"{name} ({self.peer.key})" if name and name != self.peer.key else self.peer.key

    def _disconnected(self, code: int = NORMAL, reason: str = "") -> None:
        """Close the connection, telling the peer why (a refused frame: 1002/1007/1009)."""
        was = self.state.connected
        self.state.connected = False
        if was:
            self.state.down_since = time.time()
        if self._conn is not None:
            asyncio.ensure_future(self._conn.close(code, reason))
            self._conn = None
        if was:
            self.replicator.link_changed(self)

    async def _session(self) -> None:
        rep = self.replicator
        conn = await rep.connect(
            self.peer.url,
            peer_name=self.peer.name,
            authorization=self.peer.authorization,
            # a black-holed peer must not hold a dial longer than a silent link is tolerated
            timeout=min(10.0, rep.timing.ping_timeout),
        )
        self.state.security = getattr(conn, "security", None) or None
        self._conn = conn
        machine = Subscriber(rep.node, self.database, self.peer.name, rep.timing)
        self.machine = machine
        db = rep.storage.get(self.database)
        caps = {"tables": self.peer.subscribed_tables(self.database)}
        machine.start(time.time(), caps, db.origin_id)
        await self._flush()
        welcome = await self._expect_welcome()
        self.peer_origin, self.peer_cursors = welcome.origin, dict(welcome.cursors)
        self.scope = scope_of(welcome.tables)
        self._welcome_versions = dict(welcome.versions)
        await self._check_rolled_back(db, welcome)
        await rep.welcomed(self, welcome)
        self.state.connected = True
        self.state.down_since = None
        self.state.sessions += 1
        await self._subscribe()
        rep.link_changed(self)
        await self._pump()

    async def _flush(self) -> None:
        limit = self.replicator.max_payload
        for msg in self.machine.take():
            await self._conn.send(checked(m.serialize(msg), limit, type(msg).__name__))

    async def _expect_welcome(self):
        async with asyncio.timeout(self.replicator.timing.ping_timeout):
            raw = await self._conn.recv()
        events = self.machine.receive(m.parse(raw), time.time())
        for event in events:
            if event.kind == "welcome":
                return event.message
            if event.kind == "closed":
                raise LinkClosed(f"peer refused: {event.reason}")
        raise RemoteProtocolError("expected Welcome")

    async def _check_rolled_back(self, db, welcome) -> None:
        """Take a new origin id when the peer holds writes of our origin that we do not."""
        theirs = welcome.cursors.get(db.origin_id, 0)
        if not theirs:
            return
        mine, version = await db.read(_own_state, db.origin_id, theirs)
        if not rolled_back(mine, version, theirs, welcome.versions.get(db.origin_id, 0)):
            await db.write(ConfirmOwn(theirs))
            return
        fresh = identity.new_id()
        log.warning(
            "%s: %s holds our transactions up to %d, which this file does not have as we "
            "wrote them (restored from a backup?): writing as origin %s from now on and "
            "fetching the peer's copies back",
            self.database,
            welcome.node,
            theirs,
            fresh,
        )
        old, moved = await db.write(Reidentify(db, fresh))
        self.replicator.reidentified(self.database, old, moved)
        raise LinkClosed("this database went back in time; new origin id taken")

    async def _subscribe(self) -> None:
        rep = self.replicator
        db = rep.storage.get(self.database)
        while True:
            synced, copy_state, cursors, versions = await db.read(
                sync_state, self.machine.peer, self.scope
            )
            if self.scope is not None:  # a filtered link never makes the initial copy
                copy = None
                break
            copy = await rep.copy_plan(self, synced, copy_state, cursors)
            if copy != "wait":
                break
            await rep.wait_synced(self.database, 1.0)  # another link is copying this database
        origins = rep.origins_for(self, cursors)
        self.subscribed_origins = set(origins)
        start_version = self.peer.start_version if copy and self.database != "system" else 0
        self.machine.subscribe(cursors, sorted(origins), copy, start_version, versions)
        self._resubscribe.clear()
        await self._flush()

    async def _pump(self) -> None:
        self._after_copy = False
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
                    if self.machine.state == COPYING:
                        # Never abandon a copy for a relay change: ask again once it is done
                        # (without waiting here: the session may end before the copy does).
                        self._resubscribe.clear()
                        self._after_copy = True
                    else:
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

    def _submit(self, job):
        """Queue a job in the writer now, in order; the future is never cancelled.

        A session that ends leaves its queued jobs running; the refusals among them (gaps
        behind the first one) are expected and nobody awaits them, so they are marked seen.
        """
        db = self.replicator.storage.get(self.database)
        future = db.submit_async(job)
        future.add_done_callback(_seen)
        return future

    async def _event(self, event, pending: asyncio.Queue) -> None:
        rep = self.replicator
        kind, msg = event.kind, event.message
        if kind == "txn":
            self._guard_clock(msg.version)
            job = RemoteTransaction(self.database, msg, rep.storage.clock, self.scope, event.writes)
            await pending.put((self._submit(job), msg.seq, msg.records))
        elif kind == "chunk":
            await pending.put((self._submit(self._chunk_job(msg)), 0, len(msg.rows)))
        elif kind == "copy_start":
            state = {"mode": "resume", "frontier": msg.frontier, "copied": msg.resumed}
            self.state.extra["copy"] = state
            self.state.extra["horizon"] = msg.horizon
            job = CopyBegin(self.machine.peer, state, msg.resumed)
            await pending.put((self._submit(job), 0, 0))
        elif kind == "copy_end":
            job = CopyComplete(self.machine.peer, msg, self.scope)
            await pending.put((self._submit(job), 0, 0))
            await pending.join()
            rep.copy_finished(self)
            if self._after_copy:
                self._after_copy = False
                self._resubscribe.set()
        elif kind == "schema":
            db = rep.storage.get(self.database)
            await db.write(EnsureSchema(self.database, msg.tables))
        elif kind == "reach":
            rep.link_changed(self)  # the peer reaches other origins now: re-plan relays
        elif kind == "closed":
            raise LinkClosed(f"peer closed the link: {event.reason}")

    def _chunk_job(self, msg) -> SnapshotChunk:
        for row in msg.rows:
            self._guard_clock(row[2])
        copied = self.machine.stats.copy_done + len(msg.rows)
        state = {**self.state.extra.get("copy", {}), "table": msg.table, "copied": copied}
        # where a resumed copy continues: after this chunk's last key (an empty closing
        # chunk leaves it where the chunk before left it)
        state["after"] = msg.last if msg.last is not None else msg.after
        self.state.extra["copy"] = state
        self.machine.stats.copy_done = copied
        rep = self.replicator
        job = SnapshotChunk(self.database, msg, self.machine.peer, state, rep.storage.clock)
        job.peer_versions = self._welcome_versions
        horizon = self.state.extra.get("horizon") or 0
        if horizon:
            db = rep.storage.get(self.database)
            job.horizon = horizon
            job.keep_mine = (rep.node, self._welcome_versions.get(db.origin_id, 0))
        return job

    def _guard_clock(self, version: int) -> None:
        """Refuse a version too far ahead of our wall clock: adopting it would be for good."""
        limit = self.replicator.max_clock_ahead_ms
        now_ms = time.time() * 1000.0
        if too_far_ahead(version, now_ms, limit):
            self.state.clock_refusals += 1
            raise LinkClosed(
                f"clock guard: {self.machine.peer} sent a version "
                f"{ahead_ms(version, now_ms) / 1000.0:.1f}s ahead of this node's clock "
                f"(replication.maxClockSkew is {limit / 1000.0:g}s); refused",
                POLICY,
            )

    async def _ack(self, pending: asyncio.Queue) -> None:
        while True:
            future, seq, records = await pending.get()
            try:
                # shield: ending the session cancels this task, never the job in the writer
                await asyncio.shield(future)
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
