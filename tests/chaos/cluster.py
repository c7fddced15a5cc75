"""The agents of one chaos run, by name, and the few things faults do to them.

Names are n0, n1, ... and each agent has its own 127.77.x.y address (not the 127.0.0.x range
the integration tests use, so a chaos run and a test run on the same machine never share an
address or an iptables rule). The cluster also keeps each node's writer `Target` in step:
writers are told a node is down before it is killed or paused and up once it answers again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from check import Contents, NodeContents, read_node, tombstone_horizon, without_expired
from harness import FAST_REPLICATION, Agent, meshed, wait_for
from workload import DATABASE, Target

TABLES = ("items", "hot", "pair_a", "pair_b")


def merged(*configs: dict) -> dict:
    """Deep-merge agent config mappings into a new one (later ones win)."""
    out: dict = {}
    for config in configs:
        for key, value in config.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = merged(value) if isinstance(value, dict) else value
    return out


def host_for(index: int) -> str:
    """Return node `index`'s loopback address, distinct per harness process."""
    return f"127.77.{os.getpid() % 250}.{10 + index}"


def renamed(contents: NodeContents, names: dict[str, str]) -> NodeContents:
    return {
        table: {pk: (doc, v, names.get(origin, origin)) for pk, (doc, v, origin) in rows.items()}
        for table, rows in contents.items()
    }


class ChaosCluster:
    """Start, join, hurt and heal the run's agents; read their database files."""

    def __init__(
        self, root: Path, config: dict, log: Callable[[str], None], env: dict[str, str]
    ) -> None:
        self.root, self.log, self.env = root, log, env
        # no background verify: a run measures replication alone, and the final
        # cluster_verify is the agents' own check (an older checkout ignores the key)
        self.config = merged(FAST_REPLICATION, {"replication": {"verifyInterval": 0}}, config)
        self.agents: dict[str, Agent] = {}
        self.targets: dict[str, Target] = {}
        self.down: set[str] = set()
        self.paused: set[str] = set()

    def create(self, name: str) -> Agent:
        index = int(name.removeprefix("n"))
        agent = Agent(
            self.root / name, host=host_for(index), config=merged(self.config), env=self.env
        )
        self.agents[name] = agent
        self.targets[name] = Target(name, agent.url, agent.password)
        return agent

    def start(self, count: int) -> None:
        """Start `count` agents, give n0 the chaos tables, join the rest to it, wait for mesh."""
        for i in range(count):
            self.create(f"n{i}").start(wait=False)
        for agent in self.agents.values():
            agent.wait_ready(30)
        self.create_tables("n0")
        for name in list(self.agents)[1:]:
            self.agents[name].join(self.agents["n0"])
        self.wait_mesh(60, must=True)
        for name in self.agents:
            self.wait_tables(name)
            self.targets[name].up.set()

    def create_tables(self, name: str) -> None:
        for table in TABLES:
            self.agents[name].op(
                {
                    "operation": "create_table",
                    "database": DATABASE,
                    "table": table,
                    "primary_key": "id",
                }
            )

    def wait_tables(self, name: str, timeout: float = 60) -> None:
        """Wait until a node has every chaos table, so its writers are not refused at first."""
        agent = self.agents[name]

        def has_tables() -> bool:
            answer = agent.op({"operation": "describe_database", "database": DATABASE}, timeout=5)
            return all(t in answer for t in TABLES)

        wait_for(has_tables, timeout, 0.2, f"the chaos tables on {name}")

    def members(self) -> list[str]:
        return list(self.agents)

    def host(self, name: str) -> str:
        return self.agents[name].host

    def meshed(self) -> bool:
        """True when every node streams every database from every other node."""
        return meshed(list(self.agents.values()), timeout=3)

    def wait_mesh(self, timeout: float, must: bool = False) -> bool:
        """Wait for a full mesh; after a fault a slow recovery is logged, not fatal."""
        started = time.monotonic()
        try:
            wait_for(self.meshed, timeout, 0.2, "a full mesh")
        except AssertionError:
            if must:
                raise
            self.log(f"no full mesh within {timeout:.0f}s; carrying on")
            return False
        self.log(f"full mesh after {time.monotonic() - started:.1f}s")
        return True

    def kill(self, name: str) -> None:
        self.targets[name].up.clear()
        self.down.add(name)
        self.agents[name].kill()

    def stop(self, name: str) -> None:
        self.targets[name].up.clear()
        self.down.add(name)
        self.agents[name].stop()

    def restart(self, name: str) -> None:
        """Start a downed node again and let its writers back in once it answers."""
        self.agents[name].start(wait=True, timeout=60)
        self.down.discard(name)
        self.targets[name].up.set()
        self.log(f"{name} restarted")

    def pause(self, name: str) -> None:
        self.targets[name].up.clear()
        self.paused.add(name)
        self.agents[name].pause()

    def resume(self, name: str) -> None:
        self.agents[name].resume()
        self.paused.discard(name)
        self.targets[name].up.set()

    def remove(self, name: str, via: str) -> None:
        """Run remove_node for `name` on `via`; `name` keeps running and taking writes."""
        answer = self.agents[via].op(
            {"operation": "remove_node", "hostname": self.agents[name].host}, timeout=30
        )
        self.log(f"remove_node {name} on {via}: {answer}")

    def rejoin(self, name: str, via: str) -> None:
        answer = self.agents[name].join(self.agents[via])
        self.log(f"add_node {via} on {name}: {answer}")

    def add_fresh(self, name: str, via: str) -> Target:
        """Start a brand-new node and add_node it to `via` while the others are under load."""
        agent = self.create(name).start(wait=True, timeout=60)
        answer = agent.join(self.agents[via])
        self.log(f"add_node {via} on fresh {name}: {answer}")
        self.wait_tables(name)
        self.targets[name].up.set()
        return self.targets[name]

    def heal(self) -> list[str]:
        """Resume what is paused and restart what is down; return what could not be healed."""
        errors = []
        for name in sorted(self.paused):
            self.resume(name)
        for name in sorted(self.down):
            try:
                self.restart(name)
            except Exception as exc:  # an agent that will not start again is a finding
                errors.append(f"heal: {name} did not restart: {type(exc).__name__}: {exc}")
        return errors

    def contents(self) -> Contents:
        """Read every node's chaos database file directly, read-only.

        Origins (node names, i.e. hosts) are shown as n0, n1, ...: examples stay readable,
        and renaming one-to-one changes no comparison.
        """
        names = {agent.host: name for name, agent in self.agents.items()}
        files = {
            name: agent.root / "database" / f"{DATABASE}.sqlite"
            for name, agent in self.agents.items()
        }
        horizon = max((tombstone_horizon(path) for path in files.values()), default=0)
        contents = {name: renamed(read_node(path), names) for name, path in files.items()}
        return without_expired(contents, horizon)

    def verify(self) -> dict:
        """Run cluster_verify on the first node (the agents' own anti-entropy check).

        Returns its summary, or {"error": ...} when the agents cannot (an older checkout
        run as a baseline has no cluster_verify).
        """
        name = sorted(self.agents)[0]
        status, answer = self.agents[name].request(
            {"operation": "cluster_verify", "database": DATABASE}, timeout=300
        )
        if status != 200:
            return {"error": f"{status}: {answer}"}
        return {k: answer[k] for k in ("agreed", "divergent", "skipped", "bytes", "seconds")}

    def shutdown(self) -> None:
        """SIGCONT then SIGKILL every agent; their roots stay for the logs."""
        for agent in self.agents.values():
            try:
                agent.resume()
                agent.kill()
            except Exception as exc:  # shutting down: report, keep killing the others
                self.log(f"could not kill {agent.host}: {exc}")
