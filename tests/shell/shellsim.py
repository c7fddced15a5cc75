"""A simulated cluster that drives the real replication shell in one process.

Every node is a real `Replicator` (links, publisher sessions, endpoint, membership) over a
real `Storage` (SQLite files in a temporary folder, writer and reader threads), all on one
asyncio loop. Only the network is simulated (`memnet.py`): `Replicator.dial`, the seam links
and membership dial through, is replaced per node by an in-memory dialler, and an accepted
connection is served by the node's `Endpoint.serve`, admitted by IP as `serve_dedicated`
would admit a peer listed in hdb_nodes.

    SimNode      one node: config (agent.config, as agent/node.py builds it), Storage,
                 Replicator; start, crash (tasks cancelled, storage closed with what was
                 committed) and restart from the same folder
    Cluster      the nodes, the network, membership through `membership.add_node`, writes
                 through the real storage jobs with each acknowledged write recorded, and
                 `converge()`: wait until every node holds the same rows, versions and
                 cursors, no acknowledged write is lost and no log has a hole
    LostApplies  a fault of the shell itself: a queued apply the writer never runs while the
                 link believes it did (what the old shell did when it cancelled queued
                 applies); storage must refuse the origin's next transaction as a gap
    Blocker      a write job that holds a database's writer until released

Determinism, honestly: everything this harness decides comes from one `random.Random(seed)`
(the schedule) and a second one derived from it (frame delays), but the shell runs on the
wall clock, SQLite work runs on writer and reader threads, and asyncio interleaves tasks by
readiness. The same seed replays the same schedule of actions, not the same interleaving.
A failure prints the seed, the schedule as it ran, the differences and every link's state.
"""

from __future__ import annotations

import asyncio
import gc
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from converge import Report, dump_node, problems
from crashpoints import CrashPoints
from memnet import End, MemoryNetwork

from agent.config import Config, load_config
from agent.errors import AgentError
from agent.identity import node_name
from agent.replication import membership
from agent.replication.endpoint import Identity
from agent.replication.replicator import Replicator
from agent.storage import txlog
from agent.storage.apply import RemoteTransaction
from agent.storage.catalog import table_from_definition
from agent.storage.store import Storage
from agent.storage.system import SCHEMAS, SYSTEM
from agent.storage.writes import CreateTable, LocalTransaction, WriteOp

FAST = {
    "storage.writeAsync": True,  # a process crash keeps what committed; fsync adds nothing
    "replication.pingInterval": "200ms",
    "replication.pingTimeout": "1s",
    "replication.stallTimeout": "1s",
    "replication.retryInterval": "50ms",
}


def node_config(root: Path, name: str, ip: str, settings: dict | None = None) -> Config:
    """Build a node's Config the way the CLI does (flags over defaults), no file, no env."""
    flags = {
        "replication.hostname": name,
        "replication.url": f"ws://{ip}:9933",
        "operationsApi.network.port": f"{ip}:9925",
        **FAST,
        **(settings or {}),
    }
    return load_config(root, env={}, flags=flags)


@dataclass(frozen=True)
class Ack:
    """A write whose future resolved: committed on `node` under `version`."""

    node: str
    database: str
    table: str
    key: Any
    version: int
    deleted: bool


class Stamped:
    """Run a LocalTransaction; return its results and the version its log entry got."""

    def __init__(self, txn: LocalTransaction) -> None:
        self.txn = txn
        self.records = txn.records
        self.outcome: tuple[list, int | None] | None = None  # set once it ran

    def run(self, ctx) -> tuple[list, int | None]:
        results = self.txn.run(ctx)
        self.outcome = results, ctx.entries[-1].version if ctx.entries else None
        return self.outcome


class Blocker:
    """A write job that holds its database's writer until released; jobs queue behind it."""

    records = 1

    def __init__(self) -> None:
        self.running = threading.Event()
        self.release = threading.Event()

    def run(self, ctx) -> None:
        self.running.set()
        self.release.wait(30)


class Vanished:
    """A queued apply the writer never runs, though the link is told it was applied."""

    durable = False

    def __init__(self, job: RemoteTransaction) -> None:
        self.records = job.records

    def run(self, ctx) -> bool:
        return False


class LostApplies:
    """Count a node's queued applies and, when armed, lose some as a faulty shell would."""

    def __init__(self) -> None:
        self.seen = 0
        self.skip = 0
        self.lose = 0
        self.lost: list[str] = []

    def install(self, storage: Storage) -> None:
        """Wrap `submit_async` of every user database of `storage` (once each).

        Not `system`: its writes are too rare for a lost one to be revealed by the next.
        """
        for name in storage.names():
            if name == SYSTEM:
                continue
            db = storage.get(name)
            if "submit_async" not in vars(db):
                db.submit_async = self._wrap(name, db.submit_async)

    def arm(self, lose: int = 1, skip: int = 0) -> None:
        self.skip, self.lose = skip, lose

    def _wrap(self, database: str, submit: Callable) -> Callable:
        def submit_async(job):
            if isinstance(job, RemoteTransaction):
                self.seen += 1
                if self.skip:
                    self.skip -= 1
                elif self.lose:
                    self.lose -= 1
                    self.lost.append(f"{database} {job.msg.origin}#{job.msg.oseq}")
                    job = Vanished(job)
            return submit(job)

        return submit_async


def _replicator_tasks(rep: Replicator) -> list[asyncio.Task]:
    """Return a Replicator's long-running tasks: its reconcile loop and every link.

    Private fields: a killed process has no API, and `stop()` would close links politely.
    """
    tasks = [rep._reconcile_task, rep._background_task]
    tasks += [link._task for peer in rep.peers.values() for link in peer.links.values()]
    return [t for t in tasks if t is not None]


class SimNode:
    """One node: its config, storage and replicator, on the simulated network."""

    def __init__(self, net: MemoryNetwork, root: Path, ip: str, settings: dict) -> None:
        self.net = net
        self.ip = ip
        self.config = node_config(root, root.name, ip, settings)
        self.name = node_name(self.config)
        self.url = str(self.config.get("replication.url"))
        self.up = False
        self.storage: Storage | None = None
        self.replicator: Replicator | None = None
        self.serving: set[asyncio.Task] = set()
        self.faults = LostApplies()
        self.dead: list[asyncio.Task] = []  # the tasks a kill cancelled, until reaped
        net.add(self)

    async def start(self, points: CrashPoints | None = None) -> None:
        """Open storage from the node's folder and start a fresh Replicator.

        With `points`, every await point from here on is counted (and may be a crash).
        """
        self.storage = Storage(self.config.database_path, self.name, synchronous="NORMAL")
        await asyncio.to_thread(self.storage.open)
        rep = Replicator(self.name, self.config, self.storage, authenticator=None)
        rep.dial = self.net.dialler(self, lambda: rep is self.replicator)
        self.replicator = rep
        self.up = True
        self.net.points.pop(self.name, None)
        if points is not None:
            points.install()
        await rep.start()

    def accept(self, conn: End) -> None:
        """Serve an arriving connection, admitted by IP like a peer listed in hdb_nodes."""
        serve = self.replicator.endpoint.serve(conn, Identity("ip", conn.remote_ip))
        task = asyncio.create_task(serve, name=f"serve-{self.name}")
        self.serving.add(task)
        task.add_done_callback(self.serving.discard)

    async def crash(self) -> None:
        """Stop as a killed process would: connections break, tasks die, commits stay."""
        self.kill()
        await self.reap()

    def kill(self) -> None:
        """The instant of a crash, synchronously: the node is down, its connections break
        and every task of its shell is cancelled, so none of them runs another step.

        Safe to call from inside one of those tasks (a crash point): it is cancelled too.
        """
        self.up = False
        self.net.drop(self.name)
        self.dead = _replicator_tasks(self.replicator) + list(self.serving)
        for task in self.dead:
            task.cancel()

    async def reap(self) -> None:
        """Wait for the killed tasks, then close storage with what was committed.

        Storage.close lets the writer finish the jobs already queued, which is the crash
        that came right after they committed; their callers may or may not hear of it.
        """
        current = asyncio.current_task()
        await asyncio.gather(*(t for t in self.dead if t is not current), return_exceptions=True)
        self.dead = []
        await asyncio.to_thread(self.storage.close)

    async def stop(self) -> None:
        """Stop gracefully (end of a test)."""
        if not self.up:
            return
        self.up = False
        await self.replicator.stop()
        self.net.drop(self.name)
        for task in list(self.serving):
            task.cancel()
        await asyncio.gather(*self.serving, return_exceptions=True)
        await asyncio.to_thread(self.storage.close)

    def has(self, database: str, table: str | None = None) -> bool:
        """Tell whether this node is up and has `database` (and `table` in it)."""
        storage = self.storage
        if not self.up or not storage.exists(database):
            return False
        return table is None or storage.get(database).catalog.get(table) is not None

    def cursor(self, database: str, origin_id: str) -> int:
        """Return the last sequence of `origin_id` applied here (a short blocking read)."""
        return self.storage.get(database).read_sync(txlog.cursor, origin_id)[0]

    def link_states(self) -> list[str]:
        """Describe every subscriber link of this node, for a failure report."""
        out = []
        for peer in self.replicator.peers.values() if self.replicator else ():
            for database, link in sorted(peer.links.items()):
                s = link.state
                out.append(
                    f"{self.name}<-{peer.key} {database}: connected={s.connected} "
                    f"sessions={s.sessions} gaps={s.gaps} last_error={s.last_error!r}"
                )
        return out


class Cluster:
    """Nodes on one in-memory network; writes, faults and the convergence check."""

    def __init__(self, root: Path, seed: int, size: int, settings: dict | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.net = MemoryNetwork(random.Random(seed * 7919 + 1))
        self.nodes = {
            f"n{i}": SimNode(self.net, root / f"n{i}", f"127.0.0.{11 + i}", settings or {})
            for i in range(size)
        }
        self.acked: list[Ack] = []
        self.log: list[str] = []
        self._started = time.monotonic()

    def note(self, text: str) -> None:
        self.log.append(f"{time.monotonic() - self._started:7.2f}s {text}")

    async def start(self, tables: dict[str, list[str]]) -> None:
        """Start every node, create `tables` on the first, join the others to it."""
        for node in self.nodes.values():
            await node.start()
        first, *others = self.nodes.values()
        for database, names in tables.items():
            await self.create_database(first.name, database, names)
        for node in others:
            await membership.add_node(first.replicator, {"url": node.url})
            self.note(f"add_node {first.name} -> {node.name}")
        everywhere = [(n, d, t) for n in self.nodes.values() for d in tables for t in tables[d]]
        await self.wait_until(
            lambda: all(n.has(d, t) for n, d, t in everywhere), 30, "every node has the tables"
        )

    async def create_database(self, node: str, database: str, tables: list[str]) -> None:
        """Create a database and its tables as create_database/create_table do."""
        n = self.nodes[node]
        storage = n.storage
        await storage.create(database, exists_ok=True)
        row = WriteOp("upsert", SCHEMAS, records=[{"name": database}])
        await storage.get(SYSTEM).write(LocalTransaction([row], storage.clock, n.name))
        for table in tables:
            info = table_from_definition(database, {"name": table, "primary_key": "id"}, 0.0)
            await storage.get(database).write(CreateTable(info, storage.clock, n.name, True))
        self.note(f"{node} create_database {database} {tables}")

    async def transact(
        self, node: str, database: str, ops: list[WriteOp], record: bool = True
    ) -> list[Ack]:
        """Run one local transaction; return (and record) the writes it acknowledged."""
        n = self.nodes[node]
        if not n.up:
            return []
        job = Stamped(LocalTransaction(ops, n.storage.clock, n.name))
        try:
            results, version = await n.storage.get(database).write(job)
        except AgentError as exc:
            if job.outcome is None:
                self.note(f"  {node} write refused: {exc}")
                return []
            # it committed, and the node died before telling: a crash keeps it all the same
            self.note(f"  {node} write committed unheard: {exc}")
            results, version = job.outcome
        acks = [
            Ack(node, database, r.table, key, version, r.kind == "delete")
            for r in results
            for key in r.written
        ]
        if record:
            self.acked.extend(acks)
        return acks

    async def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting until {what}")
            await asyncio.sleep(0.05)

    async def converge(self, timeout: float = 40.0) -> float:
        """Wait until every node agrees and no acknowledged write is lost; return seconds."""
        started = time.monotonic()
        found: list[str] = []
        while time.monotonic() - started < timeout:
            if all(n.up for n in self.nodes.values()):
                dumps = {n.name: await dump_node(n.storage) for n in self.nodes.values()}
                found = problems(dumps, self.acked)
                if not found:
                    return time.monotonic() - started
            await asyncio.sleep(0.4)
        raise AssertionError(self.report(found, f"no convergence within {timeout}s"))

    def report(self, found: list[str], headline: str) -> str:
        links = [line for n in self.nodes.values() for line in n.link_states()]
        lost = [f"{n.name}: {n.faults.lost}" for n in self.nodes.values() if n.faults.lost]
        return Report(self.seed, headline, found, self.log, links, lost).text()

    async def close(self) -> None:
        """Stop every node, then cancel what a crashed node's shell left running."""
        for node in self.nodes.values():
            await node.stop()
        current = asyncio.current_task()
        leftovers = [t for t in asyncio.all_tasks() if t is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        gc.collect()  # run the finalizers of what the shells dropped now, not in a later test
