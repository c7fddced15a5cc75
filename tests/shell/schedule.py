"""Seeded schedules for the shell simulator: writes on every node among faults.

Each step picks one action with the cluster's seeded random generator, runs it, and sleeps a
seeded moment. Writes (inserts, hot-key upserts, deletes of acknowledged keys, two-table
transactions) run as tasks, so they overlap the faults; faults are dropped connections,
partitions (healed after some steps), crashes (restarted after some steps), pruning past
a short retention, applies the shell loses, a second database, and a table that is created,
written and dropped. `heal()` ends every fault, restarts every node, and writes one marker
per node and database, so a transaction lost at the very end of a stream is followed by
its origin's next one (which reveals it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shellsim import Cluster, SimNode

from agent.storage.catalog import table_from_definition
from agent.storage.writes import CreateTable, DropTable, WriteOp

DATA, DATA2, SCRATCH = "data", "data2", "scratch"


@dataclass(frozen=True)
class Plan:
    """Which faults a schedule uses, and how long it runs."""

    steps: int = 90
    drops: bool = True
    crashes: bool = True
    partitions: bool = False
    prune: bool = False
    lost_applies: bool = True
    second_database: bool = True
    scratch_table: bool = True
    max_crashes: int = 2
    max_partitions: int = 2


class Schedule:
    """Run one seeded schedule of writes and faults against a started Cluster."""

    def __init__(self, cluster: Cluster, plan: Plan) -> None:
        self.c = cluster
        self.rng = cluster.rng
        self.plan = plan
        self.step = 0
        self.timers: list[tuple[int, str, tuple]] = []  # (due step, action, arguments)
        self.writes: list[asyncio.Task] = []
        self.count = {"crash": 0, "partition": 0}
        self.counter = 0
        self.scratch: str | None = None  # "pending" while created and not yet dropped

    async def run(self) -> None:
        self.c.note(f"schedule {self.plan}")
        for step in range(self.plan.steps):
            self.step = step
            await self._due()
            action = self._choose()
            await getattr(self, f"_{action}")()
            await asyncio.sleep(self.rng.uniform(0.02, 0.12))
        await self.heal()

    def _choose(self) -> str:
        plan, options = self.plan, [("insert", 8), ("hot", 4), ("delete", 3), ("pair", 3)]
        if plan.drops:
            options.append(("drop", 2))
        if plan.crashes and self.count["crash"] < plan.max_crashes and not self._down():
            options.append(("crash", 1))
        if plan.partitions and self.count["partition"] < plan.max_partitions:
            options += [] if self.c.net.cuts else [("partition", 1)]  # one at a time
        if plan.prune:
            options.append(("prune", 1))
        if plan.lost_applies:
            options.append(("lose", 1))
        if plan.second_database and not any(n.has(DATA2) for n in self._live()):
            options.append(("database", 1))
        if plan.scratch_table and self.scratch is None:
            options.append(("scratch", 1))
        names, weights = zip(*options, strict=True)
        return self.rng.choices(names, weights)[0]

    # --- helpers ------------------------------------------------------------------------

    def _live(self) -> list[SimNode]:
        return [n for n in self.c.nodes.values() if n.up]

    def _down(self) -> list[SimNode]:
        return [n for n in self.c.nodes.values() if not n.up]

    def _node(self) -> SimNode:
        return self.rng.choice(self._live())

    def _write(self, node: SimNode, database: str, ops: list[WriteOp], text: str) -> None:
        self.c.note(f"{node.name} {text}")
        self.writes.append(asyncio.create_task(self.c.transact(node.name, database, ops)))

    def _later(self, low: int, high: int, action: str, *args) -> None:
        self.timers.append((self.step + self.rng.randint(low, high), action, args))

    async def _due(self) -> None:
        due = [t for t in self.timers if t[0] <= self.step]
        self.timers = [t for t in self.timers if t[0] > self.step]
        for _, action, args in due:
            await getattr(self, f"_{action}")(*args)

    # --- writes -------------------------------------------------------------------------

    async def _insert(self) -> None:
        node, self.counter = self._node(), self.counter + 1
        key = f"{node.name}-{self.counter}"
        if node.has(DATA2, "c") and self.rng.random() < 0.25:
            database, table = DATA2, "c"
        else:
            database, table = DATA, self.rng.choice("ab")
        op = WriteOp("insert", table, [{"id": key, "n": self.counter}])
        self._write(node, database, [op], f"insert {database}.{table} {key}")

    async def _hot(self) -> None:
        node, self.counter = self._node(), self.counter + 1
        key = f"hot-{self.rng.randrange(3)}"
        op = WriteOp("upsert", "a", [{"id": key, "by": node.name, "n": self.counter}])
        self._write(node, DATA, [op], f"upsert {DATA}.a {key}")

    async def _delete(self) -> None:
        live = [a for a in self.c.acked if a.database == DATA and not a.deleted]
        if not live:
            return await self._insert()
        ack, node = self.rng.choice(live), self._node()
        op = WriteOp("delete", ack.table, ids=[ack.key])
        self._write(node, DATA, [op], f"delete {DATA}.{ack.table} {ack.key}")

    async def _pair(self) -> None:
        node, self.counter = self._node(), self.counter + 1
        key = f"pair-{self.counter}"
        ops = [WriteOp("upsert", t, [{"id": key, "n": self.counter}]) for t in "ab"]
        self._write(node, DATA, ops, f"upsert {DATA}.a and {DATA}.b {key} (one transaction)")

    # --- faults -------------------------------------------------------------------------

    async def _drop(self) -> None:
        a = self._node()
        b = self.rng.choice([n for n in self.c.nodes if n != a.name])
        self.c.note(f"drop {a.name}<->{b}: {self.c.net.drop(a.name, b)} connections")

    async def _crash(self) -> None:
        node = self._node()
        self.count["crash"] += 1
        self.c.note(f"crash {node.name}")
        await node.crash()
        self._later(5, 20, "restart", node.name)

    async def _restart(self, name: str) -> None:
        node = self.c.nodes[name]
        if not node.up:
            self.c.note(f"restart {name}")
            await node.start()

    async def _partition(self) -> None:
        a, b = self.rng.sample(sorted(self.c.nodes), 2)
        self.count["partition"] += 1
        self.c.note(f"partition {a}|{b}")
        self.c.net.partition(a, b)
        self._later(10, 30, "heal_pair", a, b)

    async def _heal_pair(self, a: str, b: str) -> None:
        self.c.note(f"heal {a}|{b}")
        self.c.net.heal(a, b)

    async def _prune(self) -> None:
        node = self._node()
        retention = node.config.get("logging.auditRetention")
        tombstones = node.config.get("replication.tombstoneRetention")
        pruned = await node.storage.prune(retention, tombstones)
        self.c.note(f"prune {node.name} ({retention}s, {tombstones}s): {pruned}")

    async def _lose(self) -> None:
        node = self._node()
        node.faults.install(node.storage)
        node.faults.arm(lose=1)
        self.c.note(f"lose {node.name}'s next queued apply")

    async def _database(self) -> None:
        node = self._node()
        await self.c.create_database(node.name, DATA2, ["c"])

    async def _scratch(self) -> None:
        node, self.scratch = self._node(), "pending"
        info = table_from_definition(DATA, {"name": SCRATCH, "primary_key": "id"}, 0.0)
        storage = node.storage
        await storage.get(DATA).write(CreateTable(info, storage.clock, node.name, True))
        ops = [WriteOp("insert", SCRATCH, [{"id": i} for i in range(3)])]
        self.c.note(f"{node.name} create_table {DATA}.{SCRATCH} and insert 3 rows")
        await self.c.transact(node.name, DATA, ops, record=False)
        self._later(5, 15, "drop_scratch")

    async def _drop_scratch(self) -> None:
        holders = [n for n in self._live() if n.has(DATA, SCRATCH)]
        if self.scratch != "pending" or not holders:
            return
        node, self.scratch = self.rng.choice(holders), "dropped"
        storage = node.storage
        self.c.note(f"{node.name} drop_table {DATA}.{SCRATCH} (replicated)")
        await storage.get(DATA).write(DropTable(SCRATCH, storage.clock, node.name, True))

    # --- the end ------------------------------------------------------------------------

    async def heal(self) -> None:
        """End every fault, restart every node, and write a marker per node and database."""
        self.c.note("heal everything")
        self.c.net.heal()
        for node in self._down():
            await self._restart(node.name)
        for node in self.c.nodes.values():
            node.faults.arm(lose=0)
        await self._drop_scratch()
        await asyncio.gather(*self.writes)
        for node in self.c.nodes.values():
            for database in (DATA, DATA2):
                if node.has(database, "a" if database == DATA else "c"):
                    table = "a" if database == DATA else "c"
                    op = WriteOp("upsert", table, [{"id": f"marker-{node.name}"}])
                    await self.c.transact(node.name, database, [op])
        self.c.note("markers written; waiting for convergence")
