"""A deterministic simulated cluster that drives the real replication core through faults.

Everything runs on one thread in virtual time (integer milliseconds) from one seeded
`random.Random`, so a seed replays exactly. The parts:

    Sim          the scheduler (a heap of timed events), the cluster and the test API:
                 writes, partitions, crashes, pruning, `run_for`, `run_until_quiet`
    SimNetwork   per-connection FIFO queues of serialized frames (the codec runs on every
                 frame) with seeded delay, loss, duplication and reordering
    SimNode      one node's shell around the real `Subscriber` / `Publisher` machines: relay
                 assignment, the initial copy, streaming the log inside the window, Progress
    SimStore     one node's database file with the real storage semantics: rows with
                 last-write-wins, the log with each origin's gap-free sequence, cursors and
                 floors over those sequences, copy progress; it applies a transaction only
                 as its origin's next one, a copy chunk only after the one before, and
                 survives a crash the way SQLite does
    Link         one connection: a subscriber node dialled a publisher node

What is modelled: every frame goes through `messages.serialize` / `parse`; a lost frame
breaks its connection (TCP does not lose one frame silently) and the subscriber re-dials
after a backoff; a partition holds frames (as TCP would) until the pair heals or a side's
`tick()` declares the link dead; a crash loses in-flight frames and every machine, keeps the
store, and restarts with a clock that observes the highest stored cursor version. A
"vanished" Txn is one the subscriber's machine accepts (the frame chain is intact) but whose
apply never happens, as when a shell loses a queued apply: only the origin's own sequence
reveals that hole, so the store refuses that origin's next transaction as a gap and the link
subscribes again from its cursors, as the real shell does.

Origin ids are the node names here (the real ones are random ids per database file).

What is not: teardown is symmetric (both ends learn of it at once, no half-open sockets);
only Txn frames are duplicated, reordered or vanish, because only they carry sequence numbers
(every other frame relies on the transport's ordering); applies are instantaneous, so the
publisher's window only closes on frames in flight; schema writes, `start_time`, tombstone
pruning, roll-back detection and more than one database are left out.
"""

from __future__ import annotations

import heapq
import json
import random
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from agent.core import messages as m
from agent.core.changes import DATA_KINDS, DELETE, PUT, Write, record_count
from agent.core.clock import HybridClock
from agent.core.conflict import supersedes
from agent.core.cursors import APPLY, DUPLICATE, GAP, after_snapshot, classify, served_from_log
from agent.core.errors import RemoteProtocolError
from agent.core.relay import assign_origins
from agent.core.subscription import STREAMING, Publisher, Subscriber, Timing

DATABASE = "data"
EPOCH_MS = 1_700_000_000_000
UP, DOWN = "up", "down"  # subscriber -> publisher, publisher -> subscriber
SIM_TIMING = Timing(ping_interval=1.0, ping_timeout=3.0, stall_timeout=2.0)

Row = tuple  # (doc | None, version, origin)


class SimStuck(AssertionError):
    """The cluster did not become quiet within the step bound."""


def key_order(key: Any) -> tuple:
    """Order primary keys as the copy streams them: numbers before strings."""
    return (isinstance(key, str), key)


def put(table: str, key: Any, doc: dict) -> Write:
    return Write(table, PUT, key, json.dumps(doc, sort_keys=True))


def delete(table: str, key: Any) -> Write:
    return Write(table, DELETE, key, None)


# --- Storage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    seq: int  # position in this node's log
    version: int
    origin: str  # the origin's name (the conflict rule's tie-break)
    origin_id: str  # the origin's id and its gap-free sequence, as every node logs it
    oseq: int
    at: float
    records: int
    body: bytes


@dataclass
class CopyProgress:
    """A copy being received from one peer, stored with the rows so it can resume."""

    frontier: dict[str, int]  # per origin id: the sequence the snapshot reflects
    table: str | None = None
    after: Any = None
    copied: int = 0  # rows applied so far: every chunk must continue from here

    def request(self) -> dict:
        return {
            "mode": "resume",
            "frontier": dict(self.frontier),
            "table": self.table,
            "after": self.after,
            "copied": self.copied,
        }


class SimStore:
    """One node's database file; everything here survives a crash."""

    # Sim-only switch for checking the tests themselves: apply a transaction past a hole as
    # the version cursors of protocol 1 did, so a test can show it catches the lost write.
    accept_gaps = False

    def __init__(self, name: str) -> None:
        self.name = name  # also this file's origin id
        self.rows: dict[str, dict[Any, Row]] = {}
        self.log: list[Entry] = []
        self.cursors: dict[str, int] = {}  # per origin id: the last sequence applied
        self.versions: dict[str, int] = {}  # per origin id: that transaction's version
        self.floors: dict[str, int] = {}  # per origin id: the log lacks sequences up to here
        self.synced = False
        self.copies: dict[str, CopyProgress] = {}  # by peer, as the real _meta "copy:<peer>"
        # Rows merged from an unfinished or resumed copy pass may be newer than the cursors
        # say; until the cursors reach this, a transaction can show half-applied.
        self.settle: dict[str, int] = {}
        # the highest version merged from a copy (the real _meta "hlc"), which the clock
        # observes on open like the cursors
        self.hlc = 0
        self.applies: Counter = Counter()  # (origin, version) -> times applied (observation)
        self.sources: dict[tuple[str, int], str] = {}  # (origin, version) -> peer it came from
        self._seq = 0

    def get(self, table: str, key: Any) -> Row | None:
        return self.rows.get(table, {}).get(key)

    def live(self, table: str) -> dict[Any, str]:
        return {k: r[0] for k, r in self.rows.get(table, {}).items() if r[0] is not None}

    def never_synced(self) -> bool:
        """True until a copy completes or anything arrives from another origin."""
        return not self.synced and all(o == self.name for o in self.cursors)

    def settling(self) -> bool:
        """True while the rows may mix snapshots (a copy is unfinished or catching up)."""
        return bool(self.copies) or any(self.cursors.get(o, 0) < v for o, v in self.settle.items())

    def commit_local(self, version: int, at: float, writes: list[Write]) -> Entry:
        """Commit a local transaction under this file's next sequence (writes.log_entry);
        newest by construction, so it overwrites (put_local)."""
        for w in writes:
            self.rows.setdefault(w.table, {})[w.key] = (w.value, version, self.name)
        oseq = self.cursors.get(self.name, 0) + 1
        self._set_cursor(self.name, oseq, version)
        body = m.encode_changes(writes)
        return self._append(version, self.name, self.name, oseq, at, record_count(writes), body)

    def apply_txn(self, msg: m.Txn, source: str) -> str:
        """Apply a peer's transaction only as its origin's next one (apply.RemoteTransaction).

        Return APPLY, DUPLICATE (applied before, or our own coming back) or GAP (refused:
        something before it never arrived; nothing is applied). It is logged again under
        its origin's id and sequence so this node can relay it.
        """
        if msg.origin_id == self.name:
            return DUPLICATE
        decision = classify(self.cursors.get(msg.origin_id, 0), msg.oseq)
        if decision == GAP and self.accept_gaps:
            decision = APPLY
        if decision != APPLY:
            return decision
        for w in m.decode_changes(msg.body):
            if w.kind in DATA_KINDS:
                self._lww(w.table, w.key, w.value, msg.version, msg.origin)
        self._set_cursor(msg.origin_id, msg.oseq, msg.version)
        self._append(
            msg.version, msg.origin, msg.origin_id, msg.oseq, msg.at, msg.records, msg.body
        )
        self.applies[(msg.origin, msg.version)] += 1
        self.sources[(msg.origin, msg.version)] = source
        return APPLY

    def start_copy(self, peer: str, msg: m.CopyStart) -> bool:
        """Begin (or continue) a copy; False when a resume does not match stored progress."""
        if msg.resumed:
            progress = self.copies.get(peer)
            # continuing: keep the frontier stored when the copy began
            return progress is not None and progress.copied == msg.resumed
        self.copies[peer] = CopyProgress(dict(msg.frontier))
        return True

    def copy_chunk(self, peer: str, msg: m.CopyChunk, copied: int, snapshot: dict) -> int | None:
        """Merge a chunk by last-write-wins and record how far the copy got.

        Return the highest version merged, or None (nothing applied) when the chunk does not
        continue the stored progress: `copied` counts the rows up to and including it.
        """
        progress = self.copies.get(peer)
        if progress is None or progress.copied + len(msg.rows) != copied:
            return None
        top = 0
        for pk, doc, version, origin in msg.rows:
            self._lww(msg.table, pk, doc, version, origin)
            top = max(top, version)
        self.hlc = max(self.hlc, top)
        progress.table = msg.table
        progress.after = msg.last if msg.last is not None else msg.after
        progress.copied = copied
        self.settle = after_snapshot(self.settle, snapshot)
        return top

    def finish_copy(self, peer: str, msg: m.CopyEnd) -> dict[str, int] | None:
        """Move cursors to the STORED frontier and raise floors where the log has a hole.

        None (nothing changes) unless every chunk the publisher sent was applied.
        """
        progress = self.copies.get(peer)
        if progress is None or progress.copied != msg.copied:
            return None
        frontier = self.copies.pop(peer).frontier
        for origin, seq in frontier.items():
            if origin == self.name:
                continue  # our own log stays complete for our own writes
            if seq > self.cursors.get(origin, 0):
                self.floors[origin] = max(self.floors.get(origin, 0), seq)
                self._set_cursor(origin, seq, msg.versions.get(origin, 0))
        self.synced = True
        return frontier

    def frontier_versions(self, frontier: dict[str, int]) -> dict[str, int]:
        """The version of each frontier transaction: the cursor's, else the log's, else 0."""
        out = {}
        for origin, seq in frontier.items():
            if self.cursors.get(origin) == seq:
                out[origin] = self.versions.get(origin, 0)
                continue
            found = [e.version for e in self.log if (e.origin_id, e.oseq) == (origin, seq)]
            out[origin] = found[0] if found else 0
        return out

    def prune(self, before_at: float) -> int:
        """Drop log entries committed before `before_at`, raising floors (txlog.prune)."""
        gone = [e for e in self.log if e.at < before_at]
        for e in gone:
            self.floors[e.origin_id] = max(self.floors.get(e.origin_id, 0), e.oseq)
        self.log = [e for e in self.log if e.at >= before_at]
        return len(gone)

    def entries_after(self, seq: int) -> list[Entry]:
        return self.log[bisect_right(self.log, seq, key=lambda e: e.seq) :]

    def snapshot(self) -> list[tuple]:
        """Every row, tombstones included, in (table, pk) order."""
        return [
            (table, pk, *self.rows[table][pk])
            for table in sorted(self.rows)
            for pk in sorted(self.rows[table], key=key_order)
        ]

    def state(self) -> tuple[dict, dict]:
        """What must be identical on every node once the cluster is quiet."""
        rows = {t: dict(r) for t, r in self.rows.items() if r}
        return rows, dict(self.cursors)

    def _set_cursor(self, origin: str, seq: int, version: int) -> None:
        if seq > self.cursors.get(origin, 0):  # never back (txlog.set_cursor)
            self.cursors[origin], self.versions[origin] = seq, version

    def _lww(self, table: str, key: Any, doc: Any, version: int, origin: str) -> None:
        rows = self.rows.setdefault(table, {})
        current = rows.get(key)
        if current is None or supersedes(version, origin, current[1], current[2]):
            rows[key] = (doc, version, origin)

    def _append(
        self,
        version: int,
        origin: str,
        origin_id: str,
        oseq: int,
        at: float,
        records: int,
        body: bytes,
    ) -> Entry:
        self._seq += 1
        entry = Entry(self._seq, version, origin, origin_id, oseq, at, records, body)
        self.log.append(entry)
        return entry


# --- Connections -----------------------------------------------------------------------------


@dataclass
class Frame:
    at: int
    data: bytes
    txn: bool
    lost: bool = False  # breaks the connection when it is due
    vanish: bool = False  # a Txn the machine accepts but whose apply never happens


class CopyRun:
    """One pass of a snapshot copy on the publisher side, over rows frozen when it began."""

    def __init__(self, store: SimStore, plan: Any, chunk_rows: int) -> None:
        resume = plan.resume or {}
        # Where the subscriber's cursors go: for a resume, the frontier it stored when the
        # copy began (the rows it already has are that old), as the real publisher does.
        self.frontier = dict(resume.get("frontier") or store.cursors)
        # Sim-only: how new these rows may be. That is this node's cursors, or more if it
        # is itself still settling a copy (rows ahead of cursors travel with the snapshot).
        self.snapshot = after_snapshot(store.cursors, store.settle)
        rows = store.snapshot()
        if resume:
            start = (resume["table"], key_order(resume["after"]))
            rows = [r for r in rows if (r[0], key_order(r[1])) > start]
        self.rows = rows
        self.reason = plan.copy
        self.resumed = int(resume.get("copied") or 0)
        self.total = self.resumed + len(rows)
        self.chunk_rows = chunk_rows
        self.started = False
        self._i = 0
        # where each table's next chunk starts (its key range is (after, last])
        self._after = {resume["table"]: resume["after"]} if resume else {}

    @property
    def finished(self) -> bool:
        return self._i >= len(self.rows)

    def next_chunk(self) -> m.CopyChunk | None:
        """Return the next chunk: up to chunk_rows rows, all of one table; the table's last
        chunk says `done`, closing its key range."""
        if self.finished:
            return None
        table = self.rows[self._i][0]
        chunk = []
        while self._i < len(self.rows) and len(chunk) < self.chunk_rows:
            row = self.rows[self._i]
            if row[0] != table:
                break
            chunk.append(list(row[1:]))
            self._i += 1
        done = self.finished or self.rows[self._i][0] != table
        after, last = self._after.get(table), chunk[-1][0]
        self._after[table] = last
        return m.CopyChunk(table, chunk, after, last, done)


class Link:
    """One connection for DATABASE: node `sub` dialled node `pub`; both ends' state."""

    def __init__(self, ident: int, sub: str, pub: str, timing: Timing, window: int) -> None:
        self.id = ident
        self.sub, self.pub = sub, pub
        self.subscriber = Subscriber(sub, DATABASE, pub, timing)
        self.publisher = Publisher(pub, [DATABASE], timing, window)
        self.queues: dict[str, list[Frame]] = {UP: [], DOWN: []}
        self.open = True
        self.duplicated = False  # a Txn was duplicated on the wire (acks may then overcount)
        self.reordered = False  # two Txns were swapped on the wire
        # Subscriber shell: what the last Subscribe asked for and whether it is answered.
        self.origins: frozenset[str] | None = None
        self.awaiting = False  # a Subscribe is not yet answered by Schema
        self.dirty = False  # the assignment changed while awaiting
        self.copying = False
        # Publisher shell: the copy pass, the last log seq examined, the last Progress.
        self.run: CopyRun | None = None
        self.pass_snapshot: dict[str, int] = {}
        self.pos = 0
        self.reported: int | None = None
        self.reported_at = 0.0
        self.reach_sent: list[str] | None = None  # the last Reach this publisher sent

    def __repr__(self) -> str:
        return f"Link#{self.id}({self.sub}->{self.pub})"


@dataclass
class Faults:
    """Seeded network faults, each a probability per frame sent."""

    delay_ms: tuple[int, int] = (1, 30)
    drop: float = 0.0
    duplicate: float = 0.0  # Txn frames only
    reorder: float = 0.0  # Txn frames only: swap with the previous queued Txn
    vanish: float = 0.0  # Txn frames only: accepted by the machine, never applied
    active: bool = True


CHAOS = Faults(drop=0.01, duplicate=0.03, reorder=0.03)


class SimNetwork:
    """Frames in flight, partitions and the fault dice."""

    def __init__(self, sim: Sim, rng: random.Random, faults: Faults) -> None:
        self.sim, self.rng, self.faults = sim, rng, faults
        self.cut: set[frozenset[str]] = set()
        self.inflight = 0
        self.injected: Counter = Counter()
        # a test's own choice of Txn frames to vanish, whatever the dice say (even with
        # faults inactive): called with the link and the message as it is sent
        self.vanishing: Callable[[Link, m.Txn], bool] | None = None

    def reachable(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.cut

    def send(self, link: Link, direction: str, msg: m.Message) -> None:
        data = m.serialize(msg)
        queue = link.queues[direction]
        at = max(self.sim.time + self.rng.randint(*self.faults.delay_ms), self._tail(queue))
        frame = Frame(at, data, isinstance(msg, m.Txn))
        if frame.txn and self.vanishing is not None and self.vanishing(link, msg):
            self.injected["vanish"] += 1
            frame.vanish = True
        copies = [frame]
        if self.faults.active:
            copies = self._faults(link, queue, frame)
        for f in copies:
            queue.append(f)
            self.inflight += 1
            self.sim.schedule_at(f.at, self.sim.deliver, link, direction)

    def _faults(self, link: Link, queue: list[Frame], frame: Frame) -> list[Frame]:
        rng, faults = self.rng, self.faults
        if rng.random() < faults.drop:
            self.injected["drop"] += 1
            frame.lost = True
            return [frame]
        if frame.txn and not frame.vanish and rng.random() < faults.vanish:
            self.injected["vanish"] += 1
            frame.vanish = True
        if frame.txn and queue and queue[-1].txn and rng.random() < faults.reorder:
            self.injected["reorder"] += 1
            link.reordered = True
            queue[-1].data, frame.data = frame.data, queue[-1].data
        if frame.txn and rng.random() < faults.duplicate:
            self.injected["duplicate"] += 1
            link.duplicated = True
            return [frame, Frame(frame.at, frame.data, True)]
        return [frame]

    @staticmethod
    def _tail(queue: list[Frame]) -> int:
        return queue[-1].at if queue else 0

    def head(self, link: Link, direction: str) -> Frame | None:
        """Return the frame due for delivery now, or None (not due, or held by a partition)."""
        queue = link.queues[direction]
        if not queue or queue[0].at > self.sim.time or not self.reachable(link.sub, link.pub):
            return None
        self.inflight -= 1
        return queue.pop(0)

    def clear(self, link: Link) -> None:
        for queue in link.queues.values():
            self.inflight -= len(queue)
            queue.clear()

    def release(self, link: Link) -> None:
        """Reschedule frames a partition held, keeping each queue's order."""
        for direction, queue in link.queues.items():
            at = self.sim.time
            for frame in queue:
                at = frame.at = max(frame.at, at + self.rng.randint(*self.faults.delay_ms))
                self.sim.schedule_at(at, self.sim.deliver, link, direction)


# --- Nodes -----------------------------------------------------------------------------------


class SimNode:
    """One node's replication shell: the dialling side of each link and the serving side."""

    def __init__(self, sim: Sim, name: str, skew_ms: int) -> None:
        self.sim, self.name, self.skew_ms = sim, name, skew_ms
        self.store = SimStore(name)
        self.clock = HybridClock()
        self.up = True
        self.known: set[str] = {name}
        self.out: dict[str, Link] = {}  # links this node dialled, by peer
        self.inbound: dict[str, Link] = {}  # links peers dialled to this node, by peer
        self.redialing: set[str] = set()

    def now_ms(self) -> int:
        return EPOCH_MS + self.sim.time + self.skew_ms

    def now(self) -> float:
        return self.now_ms() / 1000.0

    # Lifecycle ---------------------------------------------------------------------------

    def crash(self) -> None:
        self.up = False  # first, so resetting its links schedules nothing on this node
        self.redialing.clear()
        for link in self.links():
            self.sim.reset(link, f"{self.name} crashed")

    def restart(self) -> None:
        self.up = True
        # On open the storage clock observes the highest stored cursor version and the
        # highest version merged from a copy (storage/DESIGN.md), so a local write after a
        # crash mid-copy still stamps past the copied rows.
        self.clock = HybridClock(max([*self.store.versions.values(), self.store.hlc], default=0))
        for peer in sorted(self.known - {self.name}):
            self.sim.dial(self, peer)

    def links(self) -> list[Link]:
        return [*self.out.values(), *self.inbound.values()]

    def flush(self) -> None:
        """Send what every machine on this node queued."""
        for link in list(self.out.values()):
            for msg in link.subscriber.take():
                self.sim.net.send(link, UP, msg)
        for link in list(self.inbound.values()):
            for msg in link.publisher.take():
                self.sim.net.send(link, DOWN, msg)

    def write(self, writes: list[Write]) -> int | None:
        """Commit a local transaction as the storage writer does; return its version."""
        writes = self._effective(writes)
        if not writes:
            return None
        version = self.clock.tick(self.now_ms())
        self.store.commit_local(version, self.now_ms(), writes)
        self.sim.committed.append((version, self.name, writes))
        self.pump_all()
        return version

    def _effective(self, writes: list[Write]) -> list[Write]:
        """Keep the last write per record and only deletes of live rows (writes.py)."""
        last = {(w.table, w.key): w for w in writes}
        return [
            w
            for w in last.values()
            if w.kind == PUT or (self.store.get(w.table, w.key) or (None,))[0] is not None
        ]

    def tick(self) -> None:
        now = self.now()
        for link in list(self.out.values()):
            self._dead(link, link.subscriber.tick(now), "subscriber")
        for link in list(self.inbound.values()):
            self._dead(link, link.publisher.tick(now), "publisher")
            self.pump(link)

    def _dead(self, link: Link, events: list, side: str) -> None:
        for event in events:
            if event.kind == "dead" and link.open:
                self.sim.reset(link, f"{side} declared dead: {event.reason}")

    # Subscriber side ---------------------------------------------------------------------

    def connected(self) -> list[str]:
        return sorted(p for p, link in self.out.items() if link.subscriber.peer is not None)

    def assignment(self) -> dict[str, set[str]]:
        connected = self.connected()
        reach = {p: self.out[p].subscriber.stats.reach for p in connected}
        return assign_origins(self.name, self.known, connected, reach)

    def reassign(self) -> None:
        """Subscribe (again) wherever the origin assignment or the sync state asks for it."""
        if not self.up:
            return
        plan = self.assignment()
        if self.store.never_synced():
            self._initial_copy(plan)
            return
        for peer in self.connected():
            link = self.out[peer]
            if link.copying or link.origins == frozenset(plan[peer]):
                continue
            self._subscribe(link, plan[peer], self._resume(peer))

    def _initial_copy(self, plan: dict[str, set[str]]) -> None:
        """An unsynced node copies from one link; the other links wait until it is done."""
        links = [self.out[p] for p in self.connected()]
        if not links or any(link.copying for link in links):
            return
        links.sort(key=lambda link: (link.pub not in self.store.copies, link.id))
        first = links[0]
        self._subscribe(first, plan[first.pub], self._resume(first.pub) or {"mode": "full"})

    def _resume(self, peer: str) -> dict | None:
        progress = self.store.copies.get(peer)
        if progress is not None and progress.table is None:
            del self.store.copies[peer]  # nothing was merged: start afresh
            return None
        return progress.request() if progress else None

    def _subscribe(self, link: Link, origins: Iterable[str], copy: dict | None) -> None:
        if link.awaiting:
            link.dirty = True  # one Subscribe at a time: ask again once Schema answers
            return
        link.origins = frozenset(origins)
        link.awaiting, link.dirty = True, False
        link.copying = copy is not None
        store = self.store
        link.subscriber.subscribe(
            dict(store.cursors), sorted(origins), copy, 0, dict(store.versions)
        )

    def at_subscriber(self, link: Link, msg: m.Message, vanish: bool = False) -> None:
        now = self.now()
        for event in link.subscriber.receive(msg, now):
            if not link.open:
                return
            if vanish and event.kind == "txn":
                # the apply is lost between the machine and storage; the link carries on
                self.sim.emit("vanished", node=self.name, peer=link.pub, txn=event.message)
                link.subscriber.applied(msg.seq, msg.records, now)
                continue
            handler = getattr(self, f"_sub_{event.kind}", None)
            if handler is not None:
                handler(link, event.message, now)

    def _sub_welcome(self, link: Link, msg: m.Message, now: float) -> None:
        self.reassign()

    def _sub_reach(self, link: Link, msg: m.Message, now: float) -> None:
        self.reassign()  # a peer now reaches (or no longer reaches) some origin

    def _sub_schema(self, link: Link, msg: m.Message, now: float) -> None:
        link.awaiting = False
        if link.dirty:
            link.origins = None
            self.reassign()

    def _sub_copy_start(self, link: Link, msg: m.Message, now: float) -> None:
        link.copying = True
        if not self.store.start_copy(link.pub, msg):
            self.sim.reset(link, f"gap: resumed copy from {link.pub} does not match progress")

    def _sub_chunk(self, link: Link, msg: m.Message, now: float) -> None:
        # As the real link: the machine's copy_done counts every row up to this chunk.
        stats = link.subscriber.stats
        copied = stats.copy_done + len(msg.rows)
        stats.copy_done = copied
        # pass_snapshot is sim-only knowledge: the instant the publisher read these rows.
        top = self.store.copy_chunk(link.pub, msg, copied, link.pass_snapshot)
        if top is None:
            self.sim.reset(link, f"gap: copy chunk from {link.pub} does not follow")
            return
        self.clock.observe(top)
        link.subscriber.applied(0, len(msg.rows), now)
        self.sim.emit("chunk", node=self.name, peer=link.pub, table=msg.table, rows=len(msg.rows))

    def _sub_copy_end(self, link: Link, msg: m.Message, now: float) -> None:
        stored = self.store.finish_copy(link.pub, msg)
        if stored is None:
            self.sim.reset(link, f"gap: copy from {link.pub} ended before every chunk applied")
            return
        for version in msg.versions.values():
            self.clock.observe(version)
        link.copying = False
        info = {"stored": stored, "message": msg.frontier, "cursors": dict(self.store.cursors)}
        self.sim.emit("copy_end", node=self.name, peer=link.pub, **info)
        self.pump_all()
        self.reassign()

    def _sub_txn(self, link: Link, msg: m.Message, now: float) -> None:
        decision = self.store.apply_txn(msg, link.pub)
        if decision == GAP:
            # The real shell: the writer refuses the job (StreamGap), the session ends and
            # the next one subscribes again from the cursors; nothing is acknowledged.
            cursor = self.store.cursors.get(msg.origin_id, 0)
            why = f"gap: {msg.origin_id} {msg.oseq} arrived after {cursor} on {link!r}"
            self.sim.reset(link, why)
            return
        if decision == APPLY:
            self.clock.observe(msg.version)
            self.pump_all()
        link.subscriber.applied(msg.seq, msg.records, now)

    def _sub_closed(self, link: Link, msg: m.Message, now: float) -> None:
        self.sim.reset(link, f"publisher closed: {msg.reason}")

    # Publisher side ----------------------------------------------------------------------

    def at_publisher(self, link: Link, msg: m.Message) -> None:
        for event in link.publisher.receive(msg, self.now()):
            if not link.open:
                return
            if event.kind == "hello":
                store = self.store
                welcome = m.Welcome(
                    self.name,
                    DATABASE,
                    [DATABASE],
                    self.name,
                    dict(store.cursors),
                    dict(store.versions),
                    None,
                )
                link.publisher.outbox.append(welcome)
            elif event.kind == "subscribe":
                self._plan(link, event.message)
            elif event.kind == "ack":
                self.pump(link)
            elif event.kind in ("refused", "closed"):
                self.sim.reset(link, f"subscriber closed: {event.reason}")

    def _plan(self, link: Link, msg: m.Message) -> None:
        pub = link.publisher
        plan = pub.plan_subscription(msg, dict(self.store.floors), self._resume_ok(msg))
        self.sim.plans.append((self.sim.time, self.name, link.sub, plan.copy, plan.origins))
        tables = [{"name": t, "primary_key": "id"} for t in sorted(self.store.rows)]
        pub.outbox.append(m.Schema(tables))
        link.run = CopyRun(self.store, plan, self.sim.chunk_rows) if plan.copy else None
        link.pass_snapshot = dict(link.run.snapshot) if link.run else {}
        link.pos, link.reported = 0, None
        self.pump(link)

    def _resume_ok(self, msg: m.Message) -> bool:
        """Continue a copy only if this node is at least as new as the stored frontier and
        its log still reaches it (the rows already copied are that old)."""
        copy = msg.copy or {}
        frontier = copy.get("frontier")
        if copy.get("mode") != "resume" or not isinstance(copy.get("table"), str):
            return False
        if not isinstance(frontier, dict):
            return False
        cursors = self.store.cursors
        if any(not isinstance(v, int) or cursors.get(o, 0) < v for o, v in frontier.items()):
            return False
        return served_from_log(
            after_snapshot(msg.cursors, frontier), msg.origins, self.store.floors
        )

    def pump_all(self) -> None:
        for link in list(self.inbound.values()):
            self.pump(link)

    def pump(self, link: Link) -> None:
        """Send what the plan and the window allow: copy chunks first, then log entries."""
        pub = link.publisher
        if pub.plan is None or not link.open:
            return
        if link.run is not None and not self._copy(link):
            self._progress(link)
            return
        if not served_from_log(pub.plan.sent, pub.plan.origins, self.store.floors):
            # Pruned or merged past what this stream has sent: continuing would leave a
            # hole in an origin's sequence; the subscriber re-subscribes and merges.
            self.sim.reset(link, "publisher: log no longer reaches the stream")
            return
        for entry in self.store.entries_after(link.pos):
            if not pub.window_open():
                break
            link.pos = entry.seq
            decision = pub.offer(entry.origin_id, entry.oseq)
            if decision == GAP:
                # never send past a hole: the next Subscribe is planned as a merge
                self.sim.reset(link, f"publisher: log lacks {entry.origin_id} before {entry.oseq}")
                return
            if decision == APPLY:
                pub.outbox.append(self._txn(pub, entry))
        self._progress(link)

    @staticmethod
    def _txn(pub: Publisher, e: Entry) -> m.Txn:
        return pub.txn(e.seq, e.origin, e.origin_id, e.oseq, e.version, e.records, e.at, e.body)

    def _copy(self, link: Link) -> bool:
        """Send copy frames inside the window; return True once CopyEnd is sent."""
        run, pub = link.run, link.publisher
        if not run.started:
            start = m.CopyStart(run.frontier, run.total, run.reason, run.resumed, 0)
            pub.outbox.append(start)
            run.started = True
        while pub.window_open() and not run.finished:
            chunk = run.next_chunk()
            pub.outbox.append(chunk)
            pub.chunk_sent(len(chunk.rows))
        if not run.finished:
            return False
        versions = self.store.frontier_versions(run.frontier)
        pub.outbox.append(m.CopyEnd(run.frontier, run.total, versions))
        for origin, seq in run.frontier.items():
            if seq > pub.plan.sent.get(origin, 0):
                pub.plan.sent[origin] = seq
        link.run = None
        return True

    def backlog(self, link: Link) -> tuple[int, int, float | None]:
        """Return (entries, records, oldest commit time) this link still has to send."""
        plan = link.publisher.plan
        if plan is None:
            return 0, 0, None
        wanted = [
            e
            for e in self.store.entries_after(link.pos)
            if e.origin_id in plan.origins and e.oseq > plan.sent.get(e.origin_id, 0)
        ]
        oldest = wanted[0].at if wanted else None
        return len(wanted), sum(e.records for e in wanted), oldest

    def _reach(self, link: Link) -> None:
        """Tell the subscriber which origins this node receives directly, when that changes."""
        reach = sorted({self.name, *self.connected()})
        if reach != link.reach_sent:
            link.publisher.outbox.append(m.Reach(reach))
            link.reach_sent = reach

    def _progress(self, link: Link) -> None:
        self._reach(link)
        _, pending, oldest = self.backlog(link)
        now = self.now()
        stale = now - link.reported_at >= self.sim.timing.ping_interval
        if pending == link.reported and not (pending and stale):
            return
        head = self.store.log[-1].seq if self.store.log else 0
        link.publisher.outbox.append(m.Progress(head, pending, oldest, now * 1000.0, {}))
        link.reported, link.reported_at = pending, now


# --- The cluster -----------------------------------------------------------------------------


class Sim:
    """A cluster in virtual time. Every node knows every other and dials each of them."""

    def __init__(
        self,
        names: Iterable[str] = ("a", "b", "c"),
        seed: int = 0,
        faults: Faults | None = None,
        timing: Timing = SIM_TIMING,
        window: int = 8,
        chunk_rows: int = 3,
        skew_ms: int = 300,
        tick_ms: int = 200,
        backoff_ms: tuple[int, int] = (100, 500),
    ) -> None:
        self.rng = random.Random(seed)
        self.time = 0
        self.timing, self.window, self.chunk_rows = timing, window, chunk_rows
        self.tick_ms, self.backoff_ms, self.skew_ms = tick_ms, backoff_ms, skew_ms
        self.net = SimNetwork(self, self.rng, faults or Faults())
        self.nodes: dict[str, SimNode] = {}
        self.plans: list[tuple] = []  # (time, publisher, subscriber, copy, origins)
        self.committed: list[tuple[int, str, list[Write]]] = []  # every local transaction
        self.resets: Counter = Counter()
        self.closed: list[tuple[Link, str]] = []  # every reset connection and why
        self.checks: list[Callable[[Sim, SimNode], None]] = []
        self.steps = 0
        self._listeners: dict[str, list[Callable]] = {}
        self._events: list[tuple] = []
        self._order = 0
        self._links = 0
        for name in names:
            self._create(name)
        for node in self.nodes.values():
            node.known = set(self.nodes)
        for node in self.nodes.values():
            node.restart()
        self.schedule(self.tick_ms, self._tick)

    # Scheduling --------------------------------------------------------------------------

    def schedule_at(self, at: int, fn: Callable, *args: Any) -> None:
        self._order += 1
        heapq.heappush(self._events, (max(at, self.time), self._order, fn, args))

    def schedule(self, delay_ms: int, fn: Callable, *args: Any) -> None:
        self.schedule_at(self.time + delay_ms, fn, *args)

    def step(self) -> None:
        at, _, fn, args = heapq.heappop(self._events)
        self.time = at
        self.steps += 1
        fn(*args)

    def run_for(self, ms: int) -> None:
        end = self.time + ms
        while self._events and self._events[0][0] <= end:
            self.step()
        self.time = end

    def run_until(self, done: Callable[[], bool], max_steps: int = 300_000) -> None:
        for _ in range(max_steps):
            if done():
                return
            self.step()
        raise SimStuck(f"condition not met after {max_steps} steps\n{self.describe()}")

    def run_until_quiet(self, max_steps: int = 300_000) -> None:
        """Advance until no frame is in flight and every allowed link is idle; fail loudly."""
        for _ in range(max_steps):
            if self.net.inflight == 0 and self.busy() is None:
                return
            self.step()
        raise SimStuck(
            f"not quiet after {max_steps} steps at t={self.time}ms: {self.busy()}\n"
            f"{self.describe()}"
        )

    def on(self, kind: str, fn: Callable) -> None:
        self._listeners.setdefault(kind, []).append(fn)

    def emit(self, kind: str, **info: Any) -> None:
        for fn in self._listeners.get(kind, []):
            fn(**info)

    def _tick(self) -> None:
        for name in sorted(self.nodes):
            node = self.nodes[name]
            if node.up:
                node.tick()
                node.flush()
        self.schedule(self.tick_ms, self._tick)

    # Connections -------------------------------------------------------------------------

    def dial(self, node: SimNode, peer: str) -> None:
        node.redialing.discard(peer)
        if not node.up or peer in node.out or peer not in self.nodes:
            return
        target = self.nodes[peer]
        if not target.up or not self.net.reachable(node.name, peer):
            self._redial(node, peer)
            return
        assert node.name not in target.inbound, "teardown is symmetric"
        self._links += 1
        link = Link(self._links, node.name, peer, self.timing, self.window)
        node.out[peer] = link
        target.inbound[node.name] = link
        link.subscriber.start(node.now(), None, node.name)
        node.flush()

    def _redial(self, node: SimNode, peer: str) -> None:
        if node.up and peer not in node.redialing:
            node.redialing.add(peer)
            self.schedule(self.rng.randint(*self.backoff_ms), self.dial, node, peer)

    def reset(self, link: Link, reason: str) -> None:
        """Close a connection at both ends; the subscriber re-dials after a backoff."""
        if not link.open:
            return
        link.open = False
        self.resets[reason.split(":")[0]] += 1
        self.closed.append((link, reason))
        self.net.clear(link)
        sub, pub = self.nodes[link.sub], self.nodes[link.pub]
        if sub.out.get(link.pub) is link:
            del sub.out[link.pub]
        if pub.inbound.get(link.sub) is link:
            del pub.inbound[link.sub]
        if sub.up:
            self._redial(sub, link.pub)
            sub.reassign()
            sub.flush()

    def deliver(self, link: Link, direction: str) -> None:
        if not link.open:
            return
        frame = self.net.head(link, direction)
        if frame is None:
            return
        if frame.lost:
            self.reset(link, "frame lost")
            return
        node = self.nodes[link.pub if direction == UP else link.sub]
        try:
            msg = m.parse(frame.data)
            if direction == UP:
                node.at_publisher(link, msg)
            else:
                node.at_subscriber(link, msg, frame.vanish)
        except RemoteProtocolError as exc:
            self.reset(link, f"protocol error: {exc}")
        node.flush()
        for check in self.checks:
            check(self, node)

    # Test API ----------------------------------------------------------------------------

    def _create(self, name: str) -> SimNode:
        skew = self.rng.randint(-self.skew_ms, self.skew_ms) if self.skew_ms else 0
        node = self.nodes[name] = SimNode(self, name, skew)
        return node

    def add_node(self, name: str) -> SimNode:
        """Join a new, empty node; everyone learns of it (as hdb_nodes would spread)."""
        node = self._create(name)
        for other in self.nodes.values():
            other.known.add(name)
        node.known = set(self.nodes)
        node.restart()
        for other in self.nodes.values():
            if other is not node and other.up:
                self.dial(other, name)
                other.reassign()
                other.flush()
        return node

    def write(self, name: str, writes: list[Write]) -> int | None:
        node = self.nodes[name]
        assert node.up, f"{name} is down"
        version = node.write(writes)
        node.flush()
        for check in self.checks:
            check(self, node)
        return version

    def partition(self, a: str, b: str) -> None:
        self.net.cut.add(frozenset((a, b)))

    def heal(self, a: str, b: str) -> None:
        pair = frozenset((a, b))
        if pair not in self.net.cut:
            return
        self.net.cut.discard(pair)
        for link in self.links():
            if frozenset((link.sub, link.pub)) == pair:
                self.net.release(link)

    def isolate(self, name: str) -> None:
        for other in self.nodes:
            if other != name:
                self.partition(name, other)

    def crash(self, name: str) -> None:
        if self.nodes[name].up:
            self.nodes[name].crash()

    def restart(self, name: str) -> None:
        node = self.nodes[name]
        if not node.up:
            node.restart()
            node.flush()

    def prune(self, name: str, before_ms: int | None = None) -> int:
        """Drop `name`'s log entries committed before `before_ms` (its clock; default now)."""
        node = self.nodes[name]
        gone = node.store.prune(node.now_ms() + 1 if before_ms is None else before_ms)
        node.pump_all()
        node.flush()
        return gone

    def heal_all(self) -> None:
        """Stop random faults, heal every partition and restart every crashed node."""
        self.net.faults.active = False
        for pair in list(self.net.cut):
            self.heal(*sorted(pair))
        for name in sorted(self.nodes):
            self.restart(name)

    # Inspection --------------------------------------------------------------------------

    def links(self) -> list[Link]:
        return sorted({link for n in self.nodes.values() for link in n.links()}, key=lambda x: x.id)

    def allowed(self, a: str, b: str) -> bool:
        return self.nodes[a].up and self.nodes[b].up and self.net.reachable(a, b)

    def busy(self) -> str | None:
        """Return why the cluster is not quiet yet, or None when it is."""
        for name in sorted(self.nodes):
            node = self.nodes[name]
            peers = [p for p in sorted(node.known - {name}) if self.allowed(name, p)]
            if not peers:
                continue
            if node.store.never_synced():
                return f"{name} has not synced"
            plan = node.assignment()
            for peer in peers:
                reason = self._link_busy(node, peer, plan)
                if reason:
                    return f"{name}->{peer}: {reason}"
        return None

    def _link_busy(self, node: SimNode, peer: str, plan: dict) -> str | None:
        link = node.out.get(peer)
        if link is None or link.subscriber.peer is None:
            return "not connected"
        pub, sub = link.publisher, link.subscriber
        checks = [
            (link.copying or peer in node.store.copies, "copying"),
            (link.awaiting or link.origins != frozenset(plan.get(peer, ())), "subscription stale"),
            (sub.state != STREAMING or pub.plan is None or link.run is not None, "not streaming"),
            (self.nodes[peer].backlog(link)[0] > 0, "log entries not sent"),
            (sub.stats.pending != 0, f"peer reports {sub.stats.pending} pending"),
            (not link.duplicated and pub.sent_records != pub.acked_records, "window unacked"),
        ]
        return next((why for bad, why in checks if bad), None)

    def up_nodes(self) -> list[SimNode]:
        return [self.nodes[n] for n in sorted(self.nodes) if self.nodes[n].up]

    def divergence(self) -> str | None:
        """Describe the first difference between up nodes' rows or cursors, or None."""
        nodes = self.up_nodes()
        base_rows, base_cursors = nodes[0].store.state()
        for node in nodes[1:]:
            rows, cursors = node.store.state()
            if cursors != base_cursors:
                return f"cursors {nodes[0].name}={base_cursors} {node.name}={cursors}"
            for table in sorted(set(rows) | set(base_rows)):
                a, b = base_rows.get(table, {}), rows.get(table, {})
                for key in sorted(set(a) | set(b), key=key_order):
                    if a.get(key) != b.get(key):
                        first, other = f"{nodes[0].name}={a.get(key)}", f"{node.name}={b.get(key)}"
                        return f"{table}/{key!r}: {first} {other}"
        return None

    def expected(self) -> tuple[dict, dict]:
        """The oracle: every committed write folded by the conflict rule, and each origin's
        sequence (how many transactions it committed); a quiet, healed cluster must hold
        exactly this everywhere."""
        rows: dict[str, dict] = {}
        cursors: dict[str, int] = {}
        for version, origin, writes in self.committed:
            cursors[origin] = cursors.get(origin, 0) + 1
            for w in writes:
                table = rows.setdefault(w.table, {})
                current = table.get(w.key)
                if current is None or supersedes(version, origin, current[1], current[2]):
                    table[w.key] = (w.value, version, origin)
        return rows, cursors

    def describe(self) -> str:
        lines = [
            f"t={self.time}ms cut={sorted(map(sorted, self.net.cut))} resets={dict(self.resets)}"
        ]
        for node in self.nodes.values():
            s = node.store
            lines.append(
                f"  {node.name} up={node.up} synced={s.synced} copies={sorted(s.copies)} "
                f"cursors={s.cursors} floors={s.floors} log={len(s.log)}"
            )
            for peer, link in sorted(node.out.items()):
                pub, origins = link.publisher, sorted(link.origins or [])
                lines.append(
                    f"    ->{peer} #{link.id} {link.subscriber.state} origins={origins} "
                    f"awaiting={link.awaiting} copying={link.copying} sent={pub.sent_records} "
                    f"acked={pub.acked_records} queued={[len(q) for q in link.queues.values()]}"
                )
        return "\n".join(lines)

    def fingerprint(self) -> tuple:
        """Everything a replay must reproduce exactly."""
        return (
            self.time,
            self.steps,
            tuple(sorted(self.resets.items())),
            tuple((n.name, repr(n.store.state()), len(n.store.log)) for n in self.nodes.values()),
        )
