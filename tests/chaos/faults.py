"""The seeded fault schedule, the firewall that cuts links, and the runner that plays faults.

A schedule is a plain list of `Fault`s drawn from `random.Random(seed)` before anything starts,
so one seed always means the same faults at the same offsets against the same nodes: a failing
run can be replayed. Faults run one after another (each undone before the next starts), which
keeps at most one node down or cut off at a time, so the cluster never loses its majority.
"""

from __future__ import annotations

import atexit
import random
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

KINDS = ("kill", "pause", "partition", "cut", "slow", "remove", "retention", "join")
NEEDS_IPTABLES = ("partition", "cut", "slow")
MAX_JOINS = 2
LOSS = 0.3  # the drop probability of a "slow" (lossy) link


@dataclass(frozen=True)
class Fault:
    """One fault: when it starts (seconds into the run), what, against whom, for how long."""

    at: float
    kind: str
    target: str
    duration: float
    peer: str | None = None  # the other end of a cut/slow link; remove's/join's helper node

    def describe(self) -> str:
        """Return one schedule line: offset, kind, who, how long."""
        return f"+{self.at:6.1f}s  {self.what()}"

    def what(self) -> str:
        who = {
            "cut": f"{self.target}<->{self.peer}",
            "slow": f"{self.target}<->{self.peer} ({LOSS:.0%} loss)",
            "partition": f"{self.target} from all others",
            "remove": f"{self.target} (remove_node on {self.peer}, then add_node back)",
            "join": f"{self.target} (fresh node, add_node to {self.peer})",
        }.get(self.kind, self.target)
        hold = "" if self.kind == "join" else f" for {self.duration:.1f}s"
        return f"{self.kind:<9} {who}{hold}"

    def as_dict(self) -> dict:
        return asdict(self)


def make_schedule(
    seed: int, kinds: list[str], nodes: int, seconds: float, retention: float
) -> list[Fault]:
    """Draw faults until the window of `seconds` is full; the same seed gives the same list.

    Kinds come from a shuffled bag, so a run plays every kind it was given before repeating
    one (as far as the window allows): a seed never skips kills by chance.
    """
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(nodes)]
    faults: list[Fault] = []
    at, joins = rng.uniform(4.0, 8.0), 0
    bag: list[str] = []  # every kind once, in a seeded order, before any kind again
    while True:
        allowed = [k for k in kinds if k != "join" or joins < MAX_JOINS]
        if not allowed:
            return faults
        bag = [k for k in bag if k in allowed] or rng.sample(allowed, len(allowed))
        kind = bag.pop(0)
        fault = _draw(rng, kind, at, names, retention, f"n{nodes + joins}")
        if at + fault.duration > seconds:
            return faults
        joins += kind == "join"
        faults.append(fault)
        at = round(at + fault.duration + rng.uniform(4.0, 8.0), 1)


def _draw(
    rng: random.Random, kind: str, at: float, names: list[str], retention: float, fresh: str
) -> Fault:
    target = rng.choice(names)
    peer = rng.choice([n for n in names if n != target]) if len(names) > 1 else None
    duration = {
        "kill": rng.uniform(1.0, 3.0),
        "pause": rng.uniform(2.0, 6.0),
        "partition": rng.uniform(8.0, 12.0),
        "cut": rng.uniform(8.0, 12.0),
        "slow": rng.uniform(8.0, 12.0),
        "remove": rng.uniform(3.0, 6.0),
        "retention": retention + rng.uniform(8.0, 12.0),
        "join": 0.0,
    }[kind]
    if kind == "join":
        target, peer = fresh, target
    return Fault(round(at, 1), kind, target, round(duration, 1), peer)


def format_schedule(schedule: list[Fault]) -> str:
    return "\n".join(f"  {f.describe()}" for f in schedule) or "  (no faults)"


def iptables_usable() -> bool:
    """True when we may add and remove iptables rules (the binary is there and we are root)."""
    if shutil.which("iptables") is None:
        return False
    return subprocess.run(["iptables", "-L", "INPUT", "-n"], capture_output=True).returncode == 0


class Firewall:
    """iptables DROP rules on INPUT between loopback addresses, every one of them undone.

    Rules are removed when a fault ends, again by `clear()` on heal, and by an atexit hook, so
    an exception or Ctrl-C never leaves a link cut on the machine.
    """

    def __init__(self) -> None:
        self.rules: list[list[str]] = []
        self.lock = threading.Lock()
        atexit.register(self.clear)

    def drop(self, a: str, b: str, probability: float | None = None) -> list[list[str]]:
        """Drop packets both ways between `a` and `b` (only some of them with `probability`)."""
        odds = [] if probability is None else ["-m", "statistic", "--mode", "random"]
        odds += [] if probability is None else ["--probability", str(probability)]
        added = []
        for src, dst in ((a, b), (b, a)):
            rule = ["INPUT", "-s", src, "-d", dst, *odds, "-j", "DROP"]
            subprocess.run(["iptables", "-I", *rule], check=True, capture_output=True)
            with self.lock:
                self.rules.append(rule)
            added.append(rule)
        return added

    def undo(self, rules: list[list[str]]) -> None:
        for rule in rules:
            subprocess.run(["iptables", "-D", *rule], check=False, capture_output=True)
            with self.lock:
                if rule in self.rules:
                    self.rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule this firewall added and has not removed yet."""
        with self.lock:
            rules = list(self.rules)
        self.undo(rules)


class FaultRunner:
    """Play one fault against the cluster: do it, hold it for its duration, undo it."""

    def __init__(
        self,
        cluster,  # chaos.ChaosCluster; untyped to keep this module free of a cycle
        firewall: Firewall,
        log: Callable[[str], None],
        abort: threading.Event,
        on_join: Callable[[object], None],
    ) -> None:
        self.cluster, self.firewall, self.log, self.abort = cluster, firewall, log, abort
        self.on_join = on_join  # starts the fresh node's writers

    def run(self, fault: Fault) -> None:
        self.log(f"fault {fault.what()}")
        getattr(self, f"_{fault.kind}")(fault)

    def hold(self, seconds: float) -> None:
        """Keep a fault in place; a deliberate duration, cut short only by an abort."""
        self.abort.wait(seconds)

    def _kill(self, fault: Fault) -> None:
        self.cluster.kill(fault.target)
        self.hold(fault.duration)
        self.cluster.restart(fault.target)

    def _retention(self, fault: Fault) -> None:
        self.cluster.stop(fault.target)
        self.hold(fault.duration)
        self.cluster.restart(fault.target)

    def _pause(self, fault: Fault) -> None:
        self.cluster.pause(fault.target)
        self.hold(fault.duration)
        self.cluster.resume(fault.target)

    def _partition(self, fault: Fault) -> None:
        me = self.cluster.host(fault.target)
        rules = []
        try:
            for other in self.cluster.members():
                if other != fault.target:
                    rules += self.firewall.drop(me, self.cluster.host(other))
            self.hold(fault.duration)
        finally:
            self.firewall.undo(rules)

    def _cut(self, fault: Fault, probability: float | None = None) -> None:
        a, b = self.cluster.host(fault.target), self.cluster.host(fault.peer)
        rules = self.firewall.drop(a, b, probability)
        try:
            self.hold(fault.duration)
        finally:
            self.firewall.undo(rules)

    def _slow(self, fault: Fault) -> None:
        self._cut(fault, LOSS)

    def _remove(self, fault: Fault) -> None:
        self.cluster.remove(fault.target, via=fault.peer)
        self.hold(fault.duration)
        self.cluster.rejoin(fault.target, via=fault.peer)

    def _join(self, fault: Fault) -> None:
        self.on_join(self.cluster.add_fresh(fault.target, via=fault.peer))
