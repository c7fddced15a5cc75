"""The sending side of a link: serve one subscriber from the log, after a copy if needed.

Runs the pure `Publisher` machine against storage: answers the handshake, plans each
Subscribe (copy or not, from which cursors), streams snapshot chunks and log entries inside
the flow-control window, and sends Progress so the subscriber can tell idle from stuck.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from agent.core import messages as m
from agent.core.changes import record_count
from agent.core.cursors import DUPLICATE, GAP
from agent.core.errors import RemoteProtocolError
from agent.core.messages import encode_changes, load_changes
from agent.core.subscription import Publisher, Timing
from agent.replication.connection import Connection, LinkClosed, checked, ending
from agent.replication.tail import LogTail
from agent.storage import rows, txlog
from agent.storage.database import Database
from agent.storage.writes import tombstone_horizon

log = logging.getLogger(__name__)
PROGRESS_EVERY = 1.0


def _replicated_tables(db: Database) -> list:
    return [t for t in (db.catalog.get(n) for n in db.catalog.names()) if t and t.replicate]


def _copy_counts(conn, tables: list[str], min_version: int) -> int:
    return sum(
        conn.execute(f'SELECT count(*) FROM "r_{t}" WHERE version >= ?', (min_version,)).fetchone()[
            0
        ]
        for t in tables
    )


def _snapshot_start(conn) -> tuple[dict, dict, int]:
    return txlog.cursors(conn), txlog.floors(conn), tombstone_horizon(conn)


def _frontier_versions(conn, frontier: dict) -> dict:
    """Return the version of each frontier transaction (from the cursors, else the log)."""
    current = txlog.cursor_versions(conn)
    heads = txlog.cursors(conn)
    out = {}
    for origin, seq in frontier.items():
        version = current.get(origin) if heads.get(origin) == seq else None
        version = version if version is not None else txlog.entry_version(conn, origin, seq)
        # pruned since (a resumed copy's old frontier): the current version is an upper
        # bound, which never makes the receiver look behind a horizon it is not behind
        out[origin] = version if version is not None else current.get(origin, 0)
    return out


def _welcome_state(conn) -> tuple[dict, dict]:
    return txlog.cursors(conn), txlog.cursor_versions(conn)


class PublisherSession:
    """Serve one subscriber connection for one database."""

    def __init__(
        self,
        conn: Connection,
        node: str,
        storage,
        tails: dict[str, LogTail],
        databases: list[str],
        timing: Timing,
        chunk_records: int = 1000,
        policy=None,
        reach=None,
        max_payload: int = 0,
    ) -> None:
        self.conn = conn
        self.max_payload = max_payload  # replication.maxPayload: no larger frame is sent
        # reach(database) -> origins this node receives directly: sent as Reach, so a
        # subscriber borrowing an origin asks a relay that really has it
        self.reach = reach
        self._reach_sent: list[str] | None = None
        # policy(peer, database, requested tables) -> set of tables, None for all, or raises
        # PermissionError: explicit subscriptions decide what this node publishes to a peer
        self.policy = policy
        self.tables: set[str] | None = None
        self.storage = storage
        self.tails = tails
        self.machine = Publisher(node, databases, timing)
        self.chunk_records = chunk_records
        self.db: Database | None = None
        self.position = 0
        self.streaming = False  # past the copy, streaming the log from `position`
        self.sending: int | None = None  # version of the transaction being sent
        self.acked_at: float | None = None  # local commit time (s) of the last acked entry
        self._unacked: deque = deque()
        self._window = asyncio.Event()
        self._stream: asyncio.Task | None = None
        self._closed = False
        self._ended = False  # why the session ended was logged and sent in the close

    async def send(self, msg: m.Message) -> None:
        """Send a frame, or raise FrameTooLarge when it exceeds replication.maxPayload."""
        await self.conn.send(checked(m.serialize(msg), self.max_payload, self._what(msg)))

    def _what(self, msg: m.Message) -> str:
        if isinstance(msg, m.Txn):
            return f"transaction {msg.oseq} of {msg.origin} ({msg.origin_id})"
        return type(msg).__name__

    @property
    def who(self) -> str:
        """The peer as logs name it: its node name once its Hello said it, else its address."""
        return self.machine.peer or self.conn.remote_ip

    async def flush(self) -> None:
        for msg in self.machine.take():
            await self.send(msg)

    async def run(self, first: m.Message) -> None:
        """Serve until the subscriber goes away."""
        ticker = asyncio.create_task(self._tick())
        try:
            await self._handle(first)
            while not self._closed:
                await self._handle(m.parse(await self.conn.recv()))
        except (LinkClosed, RemoteProtocolError) as exc:
            await self._end(exc)
        finally:
            ticker.cancel()
            if self._stream is not None:
                self._stream.cancel()

    async def _handle(self, msg: m.Message) -> None:
        for event in self.machine.receive(msg, time.time()):
            if event.kind == "hello":
                await self._welcome(event.message)
            elif event.kind == "subscribe":
                await self._subscribe(event.message)
            elif event.kind == "ack":
                self._acked(event.message)
            elif event.kind in ("refused", "closed"):
                self._closed = True
        await self.flush()

    async def _welcome(self, hello) -> None:
        if self.policy is not None:
            requested = hello.caps.get("tables")
            try:
                self.tables = self.policy(self.machine.peer, self.machine.database, requested)
            except PermissionError as exc:
                await self.send(m.Close(str(exc), False))
                self._closed = True
                return
        self.db = self.storage.get(self.machine.database)
        if hello.origin == self.db.origin_id:
            # Two nodes writing under one origin id would overwrite each other's sequences.
            await self.send(
                m.Close(
                    f"{hello.node} writes {self.db.name} under origin id {hello.origin}, which "
                    "is this node's own: was one root copied from the other?",
                    False,
                )
            )
            self._closed = True
            return
        names = self.machine.databases if self.db.name == "system" else []
        cursors, versions = await self.db.read(_welcome_state)
        tables = sorted(self.tables) if self.tables is not None else None
        await self.send(
            m.Welcome(
                self.machine.node, self.db.name, names, self.db.origin_id, cursors, versions, tables
            )
        )

    async def _subscribe(self, msg) -> None:
        if self._stream is not None:
            self._stream.cancel()
        cursors, floors, horizon = await self.db.read(_snapshot_start)
        resume_ok = bool(msg.copy and msg.copy.get("mode") == "resume")
        if resume_ok:
            frontier = msg.copy.get("frontier") or {}
            resume_ok = isinstance(frontier, dict) and all(
                isinstance(v, int) and v >= floors.get(o, 0) and v <= cursors.get(o, 0)
                for o, v in frontier.items()
            )
        plan = self.machine.plan_subscription(msg, floors, resume_ok, horizon)
        tables = [t for t in _replicated_tables(self.db) if self._publishes(t.name)]
        await self.send(m.Schema([t.definition() for t in tables]))
        self._reach_sent = None
        self._queue_reach()
        self.streaming = False
        self._stream = asyncio.create_task(self._serve(plan, msg, cursors, tables))

    async def _serve(self, plan, msg, cursors: dict, tables: list) -> None:
        try:
            if plan.copy:
                frontier = await self._copy(plan, msg, cursors, tables)
                for origin, version in frontier.items():
                    if version > plan.sent.get(origin, 0):
                        plan.sent[origin] = version
            self.position = await self.db.read(txlog.start_seq, plan.sent, plan.origins)
            self.streaming = True
            await self._stream_log()
        except asyncio.CancelledError:
            raise
        except LinkClosed as exc:
            await self._end(exc)
        except Exception:
            log.exception("publisher stream to %s failed", self.machine.peer)
            await self.conn.close(1011, "publisher failed")

    async def _copy(self, plan, msg, cursors: dict, tables: list) -> dict:
        resume = plan.resume or {}
        frontier = resume.get("frontier") or cursors
        names = sorted(t.name for t in tables)
        start_table, after = resume.get("table"), resume.get("after")
        min_version = msg.start_version or 0
        total = await self.db.read(_copy_counts, names, min_version)
        copied = int(resume.get("copied") or 0)
        await self.send(m.CopyStart(frontier, total, plan.copy, copied, plan.horizon))
        for name in names:
            if start_table is not None and name < start_table:
                continue
            key = after if name == start_table else None
            copied = await self._copy_table(name, key, min_version, copied)
        versions = await self.db.read(_frontier_versions, frontier)
        await self.send(m.CopyEnd(frontier, copied, versions))
        return frontier

    async def _end(self, exc: Exception) -> None:
        """End the session for `exc`: log once (WARNING for a bad or oversized frame), and
        close with its code and reason so the subscriber records why."""
        if self._ended:
            return  # the read loop meeting the close the stream made: said already
        self._ended = self._closed = True
        code, reason, level = ending(exc)
        log.log(level, "publisher link to %s ended: %s", self.who, reason)
        await self.conn.close(code, reason)

    async def _copy_table(self, name: str, after, min_version: int, copied: int) -> int:
        """Send one table in key order; the last chunk says `done`, closing its key range."""
        while True:
            batch = await self.db.read(rows.scan, name, after, self.chunk_records, min_version)
            done = len(batch) < self.chunk_records
            await self._wait_window()
            frame, batch, done = self._chunk_frame(name, batch, after, done)
            await self.conn.send(frame)
            self.machine.chunk_sent(len(batch))
            copied += len(batch)
            if done:
                return copied
            after = batch[-1][0]

    def _chunk_frame(self, name: str, batch: list, after, done: bool) -> tuple[bytes, list, bool]:
        """Serialize a chunk within replication.maxPayload: halve it (the rest follows in the
        next chunk) until it fits; a single row that does not fit raises FrameTooLarge."""
        while True:
            last = batch[-1][0] if batch else None
            frame = m.serialize(m.CopyChunk(name, [list(r) for r in batch], after, last, done))
            if len(batch) <= 1 or not self.max_payload or len(frame) <= self.max_payload:
                what = f"copy chunk of {name} ({len(batch)} rows)"
                return checked(frame, self.max_payload, what), batch, done
            batch, done = batch[: len(batch) // 2], False

    async def _stream_log(self) -> None:
        tail = self.tails[self.db.name]
        while True:
            entries = tail.after(self.position)
            if entries is None:
                entries = await self.db.read(txlog.read_after, self.position, 512, 8 << 20)
                await self._check_gap(entries, tail)
            if not entries:
                self.sending = None
                await tail.wait(PROGRESS_EVERY)
                continue
            for entry in entries:
                await self._offer(entry)

    async def _check_gap(self, entries: list, tail: LogTail) -> None:
        """Handle entries pruned while this stream was behind them.

        Pruning raised the floors of the origins it removed. If an origin this subscriber
        wants was pruned past what it was sent, the log cannot serve it any more: end the
        link so the next Subscribe is planned as a merge. Otherwise skip the gap.
        """
        first = entries[0].seq if entries else None
        if first is not None and first == self.position + 1:
            return
        if first is None and tail.head <= self.position:
            return
        floors = await self.db.read(txlog.floors)
        plan = self.machine.plan
        if any(plan.sent.get(o, 0) < floors.get(o, 0) for o in plan.origins):
            raise LinkClosed("log pruned past this subscriber's cursor; a merge is needed")
        if first is None:  # all pruned from disk: resume from what memory still holds
            first = tail.first_seq() or tail.head + 1
        self.position = max(self.position, first - 1)

    def _publishes(self, table: str) -> bool:
        return self.tables is None or table in self.tables

    def _filtered(self, entry) -> tuple[bytes, int]:
        """Return the entry's body (and record count) holding only published tables.

        An entry with nothing published still goes out, empty: the receiver applies an
        origin's sequence without holes, so every number must arrive.
        """
        if self.tables is None or entry.tables and entry.tables <= self.tables:
            return entry.body, entry.records
        writes = [w for w in load_changes(entry.body) if self._publishes(w.table)]
        return encode_changes(writes), record_count(writes)

    async def _offer(self, entry) -> None:
        self.position = entry.seq
        decision = self.machine.offer(entry.origin_id, entry.oseq)
        if decision == DUPLICATE:
            return
        if decision == GAP:
            raise LinkClosed(
                f"this log lacks {entry.origin}'s transactions before {entry.oseq} "
                "(pruned while streaming); a merge is needed"
            )
        body, records = self._filtered(entry)
        await self._wait_window()
        self.sending = entry.version
        msg = self.machine.txn(
            entry.seq,
            entry.origin,
            entry.origin_id,
            entry.oseq,
            entry.version,
            records,
            entry.at,
            body,
        )
        self._unacked.append((entry.seq, entry.at, entry.origin_id, records))
        await self.send(msg)

    async def _wait_window(self) -> None:
        while not self.machine.window_open():
            self._window.clear()
            await self._window.wait()

    def _acked(self, msg) -> None:
        while self._unacked and self._unacked[0][0] <= msg.seq:
            self.acked_at = self._unacked.popleft()[1] / 1000.0
        self._window.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            now = time.time()
            for event in self.machine.tick(now):
                if event.kind == "dead":
                    await self.conn.close(1001, event.reason)
                    return
            if self.db is not None and self.machine.plan is not None:
                self.machine.outbox.append(await self._progress(now))
                self._queue_reach()
            await self.flush()

    def _queue_reach(self) -> None:
        if self.reach is None or self.db is None:
            return
        reach = sorted(self.reach(self.db.name))
        if reach != self._reach_sent:
            self.machine.outbox.append(m.Reach(reach))
            self._reach_sent = reach

    async def _progress(self, now: float) -> m.Progress:
        """What the subscriber has not applied yet, per origin it asked for: records sent
        and not acked, plus records of the origin's log entries not sent yet. Nothing while
        a copy runs (its own progress says how far it got) or once the log cannot serve."""
        tail = self.tails[self.db.name]
        origins: dict[str, list] = {}
        if self.streaming:
            plan = self.machine.plan
            try:
                origins = await self.db.read(txlog.unsent, dict(plan.sent), sorted(plan.origins))
            except Exception as exc:  # a status figure must never end the stream
                log.debug("behind for %s: %s", self.machine.peer, exc)
            for _, at, origin, records in self._unacked:
                held = origins.setdefault(origin, [0, at])
                held[0] += records
                held[1] = at if held[1] is None else min(held[1], at)
        pending = sum(records for records, _ in origins.values())
        oldest = min((at for _, at in origins.values() if at is not None), default=None)
        return m.Progress(tail.head, pending, oldest, now * 1000.0, origins)
