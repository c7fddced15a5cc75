"""The protocol of one (peer, database) link, sans I/O: one machine for each end.

The subscriber (the node that wants data) dials and drives:

    Hello ->            <- Welcome
    Subscribe ->        <- Schema
                        <- [CopyStart, CopyChunk..., CopyEnd]   (initial sync or merge)
                        <- Txn, Txn, ... Progress, ...           (streaming)
    Ack ->  (after each durable apply; opens the publisher's window)
    Ping <-> Pong       (either side; latency and clock offset)

Feed each machine parsed messages with `receive(msg, now)`; it returns events for the shell
(which persists, then calls back) and queues outgoing messages in `outbox`. `tick(now)` drives
pings and judges liveness by data progress, not only by pings: a link whose peer says records
are pending but sends none for `stall_timeout` is declared stalled; while a copy runs, so is
one that makes no copy progress for `copy_timeout` (the shell resumes the copy on a new link).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.core import messages as m
from agent.core.cursors import APPLY, GAP, offer
from agent.core.errors import LocalProtocolError, RemoteProtocolError
from agent.core.validate import check_table_definition

HANDSHAKE, SUBSCRIBED, COPYING, STREAMING, CLOSED = (
    "handshake",
    "subscribed",
    "copying",
    "streaming",
    "closed",
)


COPY_MODES = (None, "full", "merge", "resume")


@dataclass
class Timing:
    ping_interval: float = 30.0
    ping_timeout: float = 60.0
    stall_timeout: float = 10.0
    copy_timeout: float = 300.0  # replication.copyTimeout: judges a link while it copies


@dataclass
class Event:
    kind: str
    message: Any = None
    reason: str = ""
    writes: list | None = None  # a "txn" event's change set, decoded and checked


@dataclass
class LinkStats:
    """What cluster_status shows for a link (times in epoch seconds as passed in)."""

    connected_at: float | None = None
    last_message_at: float | None = None
    last_data_at: float | None = None
    last_version: int | None = None
    last_origin_at: float | None = None  # origin commit time of the last transaction
    records: int = 0  # applied (a Subscriber's) or sent (a Publisher's), copies included
    transactions: int = 0
    pending: int = 0
    oldest_pending_at: float | None = None
    peer_head: int = 0
    latency_ms: float | None = None
    clock_offset_ms: float | None = None
    copy_total: int = 0
    copy_done: int = 0
    copy_started_at: float | None = None
    copy_reason: str | None = None
    copy_finished_at: float | None = None
    reach: frozenset = frozenset()  # origins the peer says it receives directly (Reach)
    # origin id -> (records the peer has and we have not applied, oldest commit time in s)
    behind: dict = field(default_factory=dict)


def _window_units(records: int) -> int:
    """Window units of one Txn: its records, and at least one so schema-only ones count."""
    return max(records, 1)


class _Pinger:
    """Pings on an interval and turns Pongs into latency and clock offset."""

    def __init__(self, timing: Timing, stats: LinkStats) -> None:
        self.timing = timing
        self.stats = stats
        self.next_ping = 0.0

    def tick(self, now: float, outbox: list) -> None:
        if now >= self.next_ping:
            outbox.append(m.Ping(now * 1000.0))
            self.next_ping = now + self.timing.ping_interval

    def handle(self, msg, now: float, outbox: list) -> bool:
        """Note that something arrived; answer a Ping, read a Pong. True if it was either."""
        self.stats.last_message_at = now
        if isinstance(msg, m.Ping):
            outbox.append(m.Pong(msg.sent, now * 1000.0))
            return True
        if isinstance(msg, m.Pong):
            self.pong(msg, now)
            return True
        return False

    def pong(self, msg, now: float) -> None:
        sent, peer = msg.sent / 1000.0, msg.peer_time / 1000.0
        self.stats.latency_ms = max(0.0, (now - sent) * 1000.0)
        self.stats.clock_offset_ms = (peer - (sent + now) / 2.0) * 1000.0


class _Outbox:
    """Messages a machine queued for its shell to send."""

    outbox: list

    def take(self) -> list[m.Message]:
        """Hand over (and forget) what is queued, in order."""
        out, self.outbox = self.outbox, []
        return out


class Subscriber(_Outbox):
    """The receiving end of a link."""

    def __init__(
        self, node: str, database: str, expected_peer: str | None, timing: Timing | None = None
    ) -> None:
        self.node = node
        self.database = database
        self.expected_peer = expected_peer
        self.peer: str | None = None
        self.state = HANDSHAKE
        self.outbox: list[m.Message] = []
        self.stats = LinkStats()
        self.timing = timing or Timing()
        self._pinger = _Pinger(self.timing, self.stats)
        self._last_seq = 0
        self._acked_records = 0
        self._awaiting_schema = False
        self._copy_seen_at = 0.0  # last copy progress: CopyStart, a chunk, or one applied
        self.peer_origin: str | None = None  # the origin id the peer writes this database as
        self.peer_cursors: dict[str, int] = {}  # what the peer holds of every origin (Welcome)

    def start(self, now: float, caps: dict | None = None, origin: str = "") -> None:
        """Begin the handshake, saying which origin id this node writes the database under."""
        self.stats.connected_at = now
        self.stats.last_message_at = now
        self.outbox.append(m.Hello(self.node, self.database, caps or {}, origin))

    def subscribe(
        self,
        cursors: dict,
        origins: list[str],
        copy: dict | None,
        start_version: int = 0,
        versions: dict | None = None,
    ) -> None:
        """Ask for `origins` after `cursors` (a new Subscribe replaces the previous one).

        `cursors` are the last sequence applied per origin id; `versions` the version of
        each, which lets the publisher tell whether this node is behind its tombstone horizon.
        """
        if self.state == CLOSED or self.peer is None:
            raise LocalProtocolError("subscribe before the peer said who it is")
        self.outbox.append(
            m.Subscribe(cursors, sorted(origins), copy, start_version, versions or {})
        )
        self._awaiting_schema = True
        self.state = SUBSCRIBED

    def receive(self, msg: m.Message, now: float) -> list[Event]:
        """Handle one message from the publisher; return events for the shell."""
        if self._pinger.handle(msg, now, self.outbox):
            return []
        if isinstance(msg, m.Close):
            self.state = CLOSED
            return [Event("closed", msg, msg.reason)]
        handler = getattr(self, f"_on_{type(msg).__name__.lower()}", None)
        if handler is None:
            raise RemoteProtocolError(f"unexpected {type(msg).__name__} from the publisher")
        return handler(msg, now)

    def _on_welcome(self, msg, now: float) -> list[Event]:
        if self.peer is not None:
            raise RemoteProtocolError("second Welcome")
        if msg.database != self.database:
            raise RemoteProtocolError(f"peer answered for database {msg.database!r}")
        if msg.node == self.node:
            raise RemoteProtocolError("connected to itself")
        if self.expected_peer and msg.node != self.expected_peer:
            raise RemoteProtocolError(
                f"node name mismatch: expected {self.expected_peer!r}, peer is {msg.node!r}"
            )
        self.peer = msg.node
        self.peer_origin = msg.origin
        self.peer_cursors = dict(msg.cursors)
        return [Event("welcome", msg)]

    def _require_subscribed(self, what: str) -> None:
        if self.state not in (SUBSCRIBED, COPYING, STREAMING):
            raise RemoteProtocolError(f"{what} before Subscribe")

    def _on_schema(self, msg, now: float) -> list[Event]:
        self._require_subscribed("Schema")
        for spec in msg.tables:
            check_table_definition(spec)
        self._awaiting_schema = False
        self._last_seq = 0  # each (re)subscription starts a new stream
        self.state = STREAMING
        return [Event("schema", msg)]

    def _on_copystart(self, msg, now: float) -> list[Event]:
        if self._awaiting_schema:
            return []
        self.state = COPYING
        stats = self.stats
        stats.copy_total, stats.copy_done = msg.total, msg.resumed
        stats.copy_started_at, stats.copy_reason, stats.copy_finished_at = now, msg.reason, None
        self._copy_seen_at = now
        return [Event("copy_start", msg)]

    def _on_copychunk(self, msg, now: float) -> list[Event]:
        if self._awaiting_schema:
            self._release(len(msg.rows))
            return []
        if self.state != COPYING:
            raise RemoteProtocolError("CopyChunk outside a copy")
        m.check_rows(msg.rows)
        self.stats.last_data_at = self._copy_seen_at = now
        return [Event("chunk", msg)]

    def _on_copyend(self, msg, now: float) -> list[Event]:
        if self._awaiting_schema:
            return []
        if self.state != COPYING:
            raise RemoteProtocolError("CopyEnd outside a copy")
        self.state = STREAMING
        self.stats.copy_finished_at = now
        return [Event("copy_end", msg)]

    def _on_txn(self, msg, now: float) -> list[Event]:
        if self._awaiting_schema:
            # The tail of a stream we replaced with a new Subscribe: not applied, but the
            # publisher counted it against the window, so give that room back.
            self._release(_window_units(msg.records))
            return []
        if self.state != STREAMING:
            raise RemoteProtocolError("Txn before the stream started")
        if msg.seq <= self._last_seq:
            return []  # a duplicate: already seen on this stream
        if msg.prev != self._last_seq:
            raise RemoteProtocolError(
                f"gap in the stream: expected after {self._last_seq}, got after {msg.prev}"
            )
        writes = m.decode_changes(msg.body)  # checked before the shell may queue it
        self._last_seq = msg.seq
        stats = self.stats
        stats.last_data_at = now
        stats.last_version = msg.version
        stats.last_origin_at = msg.at / 1000.0
        return [Event("txn", msg, writes=writes)]

    def _on_reach(self, msg, now: float) -> list[Event]:
        reach = frozenset(msg.origins)
        if reach == self.stats.reach:
            return []
        self.stats.reach = reach
        return [Event("reach", msg)]

    def _on_progress(self, msg, now: float) -> list[Event]:
        stats = self.stats
        was_pending = stats.pending
        stats.pending, stats.peer_head = msg.pending, msg.head
        stats.oldest_pending_at = msg.oldest_at / 1000.0 if msg.oldest_at else None
        stats.behind = {
            origin: (records, at / 1000.0 if at else None)
            for origin, (records, at) in msg.origins.items()
        }
        # The stall clock runs from the last data, or from when the peer caught up or first
        # reported work pending: a peer that just got new writes has stall_timeout to send.
        if msg.pending == 0 or was_pending == 0 or stats.last_data_at is None:
            stats.last_data_at = max(stats.last_data_at or 0.0, now)
        return []

    def applied(self, seq: int, records: int, now: float) -> None:
        """Report a durable apply: queue the Ack that opens the publisher's window.

        `seq` is the Txn's (0 for a copy chunk) and `records` its record count; a transaction
        takes at least one unit of the window, as the publisher counts it.
        """
        self._acked_records += _window_units(records) if seq else records
        if self.state == COPYING:
            self._copy_seen_at = now  # our own apply was slow, not the peer: the clock restarts
        stats = self.stats
        stats.records += records
        if seq:
            stats.transactions += 1
        self.outbox.append(m.Ack(seq, self._acked_records))

    def _release(self, units: int) -> None:
        self._acked_records += units
        self.outbox.append(m.Ack(0, self._acked_records))

    def tick(self, now: float) -> list[Event]:
        """Send pings; return a 'dead' event when the link stopped making progress."""
        if self.state == CLOSED:
            return []
        self._pinger.tick(now, self.outbox)
        stats, timing = self.stats, self.timing
        silent = now - (stats.last_message_at or now)
        if silent > timing.ping_timeout:
            return [Event("dead", reason=f"nothing received for {silent:.1f}s")]
        if self.state == COPYING:
            return self._copy_silence(now)
        idle = now - (stats.last_data_at or stats.connected_at or now)
        if stats.pending > 0 and idle > timing.stall_timeout:
            return [
                Event(
                    "dead",
                    reason=(
                        f"stalled: peer reports {stats.pending} records pending but sent none "
                        f"for {idle:.1f}s"
                    ),
                )
            ]
        return []

    def _copy_silence(self, now: float) -> list[Event]:
        """Judge a running copy by its progress, with copy_timeout instead of stall_timeout.

        The publisher sends no Progress (so nothing pending) while it copies, and pings keep
        flowing when it is stuck: only chunks arriving or being applied show the copy moves.
        """
        idle = now - self._copy_seen_at
        if idle <= self.timing.copy_timeout:
            return []
        reason = f"copy stalled: no copy progress for {idle:.1f}s (replication.copyTimeout)"
        return [Event("dead", reason=reason)]

    def lag_seconds(self, now: float) -> float:
        """Age of the oldest transaction the peer has and we have not applied."""
        if self.stats.pending <= 0 or self.stats.oldest_pending_at is None:
            return 0.0
        offset = (self.stats.clock_offset_ms or 0.0) / 1000.0
        return max(0.0, now + offset - self.stats.oldest_pending_at)


def behind_horizon(behind: list[str], versions: dict[str, int], horizon: int) -> bool:
    """Return True when a subscriber missing `behind`'s log entries may miss forgotten deletes.

    Tombstones older than the horizon are gone from this node; a subscriber whose last
    applied version of such an origin is older than the horizon may have missed a delete
    that no longer exists anywhere as a tombstone.
    """
    return bool(horizon) and any(versions.get(o, 0) < horizon for o in behind)


@dataclass
class Plan:
    """What a publisher does for one Subscribe: copy first or not, then stream from `sent`."""

    copy: str | None  # None, "full", "merge" or "resume"
    sent: dict[str, int] = field(default_factory=dict)  # per origin id: last sequence sent
    origins: frozenset[str] = frozenset()
    resume: dict | None = None
    horizon: int = 0  # tombstone horizon the copy enforces (0: none), see behind_horizon


class Publisher(_Outbox):
    """The sending end of a link: handshake, subscription plans, flow control."""

    def __init__(
        self,
        node: str,
        databases: list[str],
        timing: Timing | None = None,
        window_records: int = 20000,
    ) -> None:
        self.node = node
        self.databases = databases
        self.peer: str | None = None
        self.peer_origin: str | None = None
        self.database: str | None = None
        self.outbox: list[m.Message] = []
        self.stats = LinkStats()
        self.timing = timing or Timing()
        self._pinger = _Pinger(self.timing, self.stats)
        self.window_records = window_records
        self.plan: Plan | None = None
        self.sent_records = 0
        self.acked_records = 0
        self.acked_seq = 0
        self._last_seq = 0
        self._first_tick: float | None = None

    def receive(self, msg: m.Message, now: float) -> list[Event]:
        if self._pinger.handle(msg, now, self.outbox):
            return []
        if isinstance(msg, m.Close):
            return [Event("closed", msg, msg.reason)]
        if isinstance(msg, m.Hello):
            return self._on_hello(msg, now)
        if self.peer is None:
            raise RemoteProtocolError(f"{type(msg).__name__} before Hello")
        if isinstance(msg, m.Subscribe):
            return [Event("subscribe", msg)]
        if isinstance(msg, m.Ack):
            self.acked_records = max(self.acked_records, msg.records)
            self.acked_seq = max(self.acked_seq, msg.seq)
            self.stats.last_data_at = now
            return [Event("ack", msg)]
        raise RemoteProtocolError(f"unexpected {type(msg).__name__} from a subscriber")

    def _on_hello(self, msg, now: float) -> list[Event]:
        if self.peer is not None:
            raise RemoteProtocolError("second Hello")
        if msg.node == self.node:
            raise RemoteProtocolError("a node cannot subscribe to itself")
        if msg.database not in self.databases:
            self.outbox.append(m.Close(f"database {msg.database!r} is not replicated here", False))
            return [Event("refused", msg, f"database {msg.database!r} not replicated")]
        self.peer, self.database = msg.node, msg.database
        self.peer_origin = msg.origin
        self.stats.connected_at = now
        return [Event("hello", msg)]

    def plan_subscription(
        self, msg, floors: dict[str, int], resume_ok: bool, horizon: int = 0
    ) -> Plan:
        """Decide how to serve a Subscribe given this node's log floors.

        An origin whose cursor is below this log's floor cannot be streamed (the entries
        are gone), so the subscriber gets a merge of the snapshot instead. When it is also
        behind `horizon` (this node's tombstone horizon: deletes older than it left no
        tombstone here), the merge carries the horizon so the subscriber drops what those
        forgotten deletes removed.
        """
        origins = frozenset(msg.origins)
        sent = dict(msg.cursors)
        copy = (msg.copy or {}).get("mode")
        if copy not in COPY_MODES:
            raise RemoteProtocolError(f"unknown copy mode {copy!r:.40}")
        if copy == "resume" and not resume_ok:
            copy = "full"
        behind = [o for o in origins if sent.get(o, 0) < floors.get(o, 0)]
        if copy is None and behind:
            copy = "merge"
        plan = Plan(copy, sent, origins, msg.copy if copy == "resume" else None)
        if copy == "merge" and behind_horizon(behind, msg.versions or {}, horizon):
            plan.horizon = horizon
        self.plan = plan
        self._last_seq = 0
        return plan

    def offer(self, origin_id: str, oseq: int) -> str:
        """Return APPLY to send a log entry, GAP when this log cannot continue the origin."""
        plan = self.plan
        if plan is None:
            return GAP
        return offer(plan.origins, plan.sent, origin_id, oseq)

    def wants(self, origin_id: str, oseq: int) -> bool:
        return self.offer(origin_id, oseq) == APPLY

    def window_open(self) -> bool:
        return self.sent_records - self.acked_records < self.window_records

    def txn(
        self,
        seq: int,
        origin: str,
        origin_id: str,
        oseq: int,
        version: int,
        records: int,
        at: float,
        body: bytes,
    ) -> m.Txn:
        """Build the frame for one log entry and account for it."""
        msg = m.Txn(seq, self._last_seq, origin, origin_id, oseq, version, records, at, body)
        self._last_seq = seq
        self.plan.sent[origin_id] = oseq
        self.sent_records += _window_units(records)
        self.stats.records += records  # stats count what was sent; sent_records is the window
        self.stats.transactions += 1
        return msg

    def chunk_sent(self, records: int) -> None:
        self.sent_records += records
        self.stats.records += records

    def backpressure(self) -> float:
        """Return how full the flow-control window is, in percent."""
        inflight = self.sent_records - self.acked_records
        return round(100.0 * min(1.0, inflight / self.window_records), 1)

    def tick(self, now: float) -> list[Event]:
        self._pinger.tick(now, self.outbox)
        if self._first_tick is None:
            self._first_tick = now
        # Before any message arrives, silence counts from the first tick: a connection that
        # never says Hello is reaped like any other silent one.
        silent = now - (self.stats.last_message_at or self._first_tick)
        if silent > self.timing.ping_timeout:
            return [Event("dead", reason=f"nothing received for {silent:.1f}s")]
        return []
