"""The background verify pass: each node compares its tables with its peers, one at a time.

Every `replication.verifyInterval` (0: off) the node compares the next replicated table, in
turn, with every peer (verify.Run, the same comparison as cluster_verify) and repairs what
differs; each repaired key is logged once, with the table and the nodes. Only writes older
than SETTLE seconds (to the minute) are compared, so what is still in flight is left to
replication, and a turn is skipped while any of this node's links is down, copying or has
records pending.

Its cost is bounded. One CPU budget (`budget.py`: `verifyCpuPercent` of one core, with a
1 s burst) is charged with every index this node builds, for its own checks and for the
peers' checks it answers, and with the rest of the process's CPU time while its own check
runs (so a busy node verifies less). Checks of the same table in the same minute share one
index per node. A turn waits until the budget holds tokens again; peers' background
requests that need a new index are refused while it is spent; the bytes a check exchanges,
spread since it began, stay within `verifyBytesPerSecond`. The counters (checks, divergent
keys, repairs, deferred turns, CPU seconds and share, bytes) are in cluster_status.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from agent.core.clock import version_for_time
from agent.replication import verify

log = logging.getLogger(__name__)

SETTLE = 10.0  # seconds: newer writes may still be on their way


class BackgroundVerify:
    """One node's pass: its schedule, its budget and what it found."""

    def __init__(self, replicator) -> None:
        config = replicator.config
        self.replicator = replicator
        self.interval = float(config.get("replication.verifyInterval"))
        self.byte_rate = float(config.get("replication.verifyBytesPerSecond"))
        self.turn = 0
        self.checks = 0
        self.divergent = 0
        self.repaired = 0
        self.errors = 0
        self.deferred = 0  # turns skipped: this node's verify budget was spent
        self.bytes = 0
        self.last: dict | None = None

    async def run_forever(self) -> None:
        if self.interval <= 0:
            return
        await asyncio.sleep(random.uniform(0.2, 1.0) * self.interval)  # nodes out of step
        budget = self.replicator.verify_indexes.budget
        while True:
            started = time.monotonic()
            if budget.available():
                cpu, charged = time.process_time(), budget.spent
                sent = await self.check_next()
                # the rest of what the check cost this process (dials, digests, reads, and
                # whatever else ran meanwhile: a busy node verifies less)
                budget.spend(max(0.0, time.process_time() - cpu - (budget.spent - charged)))
            else:
                sent = 0
                self.deferred += 1
            # the next check starts when the CPU bucket holds tokens again and the bytes of
            # this one, spread since it began, are within their rate
            due = max(self.interval, sent / self.byte_rate)
            await asyncio.sleep(max(budget.wait_seconds(), due - (time.monotonic() - started), 0.0))

    async def check_next(self) -> int:
        """Compare (and repair) the next table in turn; return the bytes exchanged."""
        rep = self.replicator
        targets = verify.table_targets(rep)
        nodes = verify.nodes(rep)
        if not targets or len(nodes) < 2 or not self._quiet(rep):
            return 0
        database, table = targets[self.turn % len(targets)]
        self.turn += 1
        # to the minute: peers checking this table in the same minute share their indexes
        ceiling = version_for_time((time.time() - SETTLE) // 60 * 60 * 1000.0)
        run = verify.Run(rep, nodes, ceiling=ceiling, background=True)
        try:
            result = await run.table(database, table)
            found = result["divergent"]
            repaired = await verify.repair(run, database, table, found) if found else 0
        except Exception as exc:  # a peer went away mid-check: try again next turn
            self.errors += 1
            log.info("background verify of %s.%s: %s", database, table, exc)
            return run.bytes
        self.checks += 1
        self.divergent += len(found)
        self.repaired += repaired
        self.bytes += run.bytes
        self.last = {
            "at": time.time(),
            "database": database,
            "table": table,
            "nodes": result["nodes"],
            "skipped": sorted(result["skipped"]),
            "divergent": len(found),
            "repaired": repaired,
        }
        return run.bytes

    @staticmethod
    def _quiet(rep) -> bool:
        """Check only while every link streams with nothing pending: a node catching up
        lacks rows replication is about to bring, and repairing them is wasted work."""
        for peer in rep.peers.values():
            for link in peer.links.values():
                machine = link.machine
                if not link.streaming or machine is None or machine.stats.pending:
                    return False
        return True

    def status(self) -> dict:
        budget = self.replicator.verify_indexes.budget
        return {
            "enabled": self.interval > 0,
            "interval": self.interval,
            "cpuPercentBudget": budget.share * 100.0,
            "bytesPerSecondBudget": self.byte_rate,
            "checks": self.checks,
            "divergentKeys": self.divergent,
            "repairedRows": self.repaired,
            "errors": self.errors,
            "deferred": self.deferred,
            "cpuSeconds": round(budget.spent, 3),
            "cpuShare": round(budget.used_share(), 5),
            "bytes": self.bytes,
            "last": self.last,
        }
