"""Seeded chaos run: does replication keep every acknowledged write?

    python tests/chaos/chaos.py --seed 1 --nodes 3 --minutes 2 --faults kill,pause,cut

Starts NODES agents on their own loopback addresses, joins them, writes to every node from two
threads each, plays a fault schedule drawn from the seed (kills, pauses, partitions, cut and
lossy links, remove/re-add, a stop longer than log retention, a node joining under load),
heals everything, waits until all nodes hold the same rows, then checks every acknowledged
write against each node's SQLite file. Exit 0 only when nothing was lost, diverged, undeleted
or torn and the nodes agreed within the timeout. The same seed gives the same schedule.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from check import Contents, agree, behind, check, row_counts  # noqa: E402
from cluster import ChaosCluster  # noqa: E402
from faults import (  # noqa: E402
    KINDS,
    NEEDS_IPTABLES,
    Fault,
    FaultRunner,
    Firewall,
    format_schedule,
    iptables_usable,
    make_schedule,
)
from report import Report, failure_text, replay_command, summary  # noqa: E402
from workload import Workload  # noqa: E402


@dataclass
class Options:
    """One run's knobs; the seed alone decides the fault schedule."""

    seed: int = 1
    nodes: int = 3
    minutes: float = 3.0
    faults: list[str] = field(default_factory=lambda: list(KINDS))
    root: Path | None = None
    json_path: Path | None = None
    rate: float = 150.0  # writes per second per node, both its threads together
    converge_timeout: float = 120.0
    retention: float = 20.0  # logging.auditRetention, seconds, for runs with "retention"
    http_timeout: float = 5.0
    agent_src: Path | None = None  # run the agent code in this folder, not the work tree's

    def argv(self) -> list[str]:
        """The command-line arguments that replay this run."""
        return [
            *("--seed", str(self.seed), "--nodes", str(self.nodes)),
            *("--minutes", f"{self.minutes:g}", "--faults", ",".join(self.faults)),
            *("--rate", f"{self.rate:g}", "--converge-timeout", f"{self.converge_timeout:g}"),
            *(("--agent-src", str(self.agent_src)) if self.agent_src else ()),
        ]


class Clock:
    """Seconds since the writers started; every log line and fault offset uses it."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def reset(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0


def usable_faults(options: Options, note: Callable[[str], None]) -> list[str]:
    """Drop faults this machine cannot play (iptables ones without iptables), saying so."""
    kinds = [k for k in options.faults if k in KINDS]
    if any(k in NEEDS_IPTABLES for k in kinds) and not iptables_usable():
        dropped = [k for k in kinds if k in NEEDS_IPTABLES]
        note(f"iptables is not usable here (install it, run as root); skipping {dropped}")
        kinds = [k for k in kinds if k not in NEEDS_IPTABLES]
    if options.nodes < 2:
        kinds = [k for k in kinds if k not in ("cut", "slow", "partition", "remove")]
    return kinds


def agent_env(agent_src: Path | None) -> dict[str, str]:
    """Environment that makes `python -m agent` import the agent from `agent_src`.

    PYTHONSAFEPATH keeps the working directory (this checkout, perhaps mid-rewrite) off the
    front of sys.path, so PYTHONPATH decides which agent runs.
    """
    if agent_src is None:
        return {}
    return {"PYTHONPATH": str(agent_src.resolve()), "PYTHONSAFEPATH": "1"}


def agent_config(kinds: list[str], retention: float, env: dict[str, str]) -> dict:
    """Short log retention when the run stops a node past it; tombstones kept 4x longer."""
    if "retention" not in kinds:
        return {}
    logging: dict = {"auditRetention": f"{retention:g}s"}
    config = {"logging": logging}
    key = tombstone_setting(env)
    if key:
        section = config
        *parents, last = key.split(".")
        for part in parents:
            section = section.setdefault(part, {})
        section[last] = f"{4 * retention:g}s"
    return config


def tombstone_setting(env: dict[str, str]) -> str | None:
    """Return the tombstone retention key of the agent under test, if it has one.

    Asked in a child process with the agents' environment, so the answer is about the code
    the agents run, not whatever this process happens to import.
    """
    code = (
        "from agent.settings import SETTINGS\n"
        "print(*[s.key for s in SETTINGS if 'tombstone' in s.key.lower() "
        "and s.kind == 'duration'][:1])"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True
    )
    return found.stdout.strip() or None


def prepare_root(root: Path | None, seed: int) -> Path:
    """Use `root` if empty or new, else a fresh folder inside it; default a temp folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if root is None:
        return Path(tempfile.mkdtemp(prefix=f"chaos-seed{seed}-{stamp}-"))
    if root.exists() and any(root.iterdir()):
        root = root / f"seed{seed}-{stamp}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def play(
    schedule: list[Fault],
    runner: FaultRunner,
    cluster: ChaosCluster,
    clock: Clock,
    window: float,
    abort: threading.Event,
) -> list[str]:
    """Play each fault at its offset (or as soon as the previous one is over)."""
    errors = []
    for fault in schedule:
        abort.wait(max(0.0, fault.at - clock.now()))
        if abort.is_set():
            break
        try:
            runner.run(fault)
        except Exception as exc:  # a fault that fails is a finding, not a harness crash
            errors.append(f"{fault.describe()}: {type(exc).__name__}: {exc}")
            runner.log(f"fault failed: {errors[-1]}")
        cluster.wait_mesh(30)
    abort.wait(max(0.0, window - clock.now()))
    return errors


def converge(cluster: ChaosCluster, timeout: float, log: Callable[[str], None]):
    """Poll every node's file until all agree; return (seconds taken or None, contents)."""
    healed = time.monotonic()
    contents: Contents = {}
    shown = healed
    while True:
        try:
            contents = cluster.contents()
            if agree(contents):
                return time.monotonic() - healed, contents
            if time.monotonic() - shown >= 5.0:  # who is behind, while we wait
                shown = time.monotonic()
                log(
                    f"waiting for agreement; ids each node lacks the newest row of: "
                    f"{behind(contents)}"
                )
        except sqlite3.Error as exc:  # a file mid-checkpoint: read again next round
            log(f"reading node files: {exc}")
        if time.monotonic() - healed > timeout:
            return None, contents
        time.sleep(1.0)


def outcome_table(workload: Workload) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for w in workload.ledger.writes:
        by = table.setdefault(w.kind, {})
        by[w.outcome] = by.get(w.outcome, 0) + 1
    return table


def say(line: str) -> None:
    """Print at once: a run's progress must show up even when stdout is a file."""
    print(line, flush=True)


def run(options: Options, out: Callable[[str], None] = say) -> Report:
    """Run one seeded chaos run end to end and return what it found (agents are stopped)."""
    started, clock = time.monotonic(), Clock()

    def log(message: str) -> None:
        out(f"[{clock.now():7.1f}s] {message}")

    notes: list[str] = []
    kinds = usable_faults(options, notes.append)
    schedule = make_schedule(
        options.seed, kinds, options.nodes, options.minutes * 60, options.retention
    )
    root = prepare_root(options.root, options.seed)
    report = Report(
        options.seed,
        options.nodes,
        options.minutes,
        kinds,
        schedule,
        str(root),
        replay_command(options.argv()),
        notes,
    )
    out(f"chaos seed {options.seed}: {options.nodes} nodes, {options.minutes:g} min, roots {root}")
    out("\n".join(notes + ["schedule:", format_schedule(schedule)]))
    env = agent_env(options.agent_src)
    config = agent_config(kinds, options.retention, env)
    out(f"agent code: {options.agent_src or 'this checkout'}; extra config {config}")
    cluster = ChaosCluster(root, config, log, env)
    firewall, abort = Firewall(), threading.Event()
    workload = Workload(options.seed, options.rate, timeout=options.http_timeout)
    try:
        cluster.start(options.nodes)
        setup = clock.now()
        clock.reset()
        log(f"cluster up and meshed after {setup:.1f}s of setup; writers starting")
        workload.ledger.started = time.monotonic()
        for target in list(cluster.targets.values()):
            workload.add(target)
        runner = FaultRunner(cluster, firewall, log, abort, workload.add)
        report.errors = play(schedule, runner, cluster, clock, options.minutes * 60, abort)
        firewall.clear()
        report.errors += cluster.heal()
        workload.stop()
        log(f"healed and writers stopped: {workload.ledger.outcomes()}")
        workload.ledger.dump(root / "ledger.jsonl")
        seconds, contents = converge(cluster, options.converge_timeout, log)
        log("nodes agree" if seconds is not None else "nodes still disagree; checking anyway")
        _fill(report, workload, contents, seconds, options.converge_timeout)
        report.verify = cluster.verify()
        log(f"cluster_verify: {report.verify}")
    finally:
        abort.set()
        workload.stop()
        firewall.clear()
        cluster.shutdown()
    report.wall_seconds = time.monotonic() - started
    return report


def _fill(report: Report, workload: Workload, contents: Contents, seconds, timeout) -> None:
    findings = check(workload.ledger.writes, contents)
    report.outcomes = outcome_table(workload)
    report.counts, report.examples = findings.counts, findings.examples
    report.convergence_seconds = None if seconds is None else round(seconds, 1)
    report.converge_timeout = timeout
    report.row_counts = row_counts(contents)


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--faults", default=",".join(KINDS), help=f"any of {','.join(KINDS)}")
    parser.add_argument("--root", type=Path, help="where agent roots go (default: a temp dir)")
    parser.add_argument("--json", type=Path, dest="json_path", help="write a JSON report here")
    parser.add_argument("--rate", type=float, default=150.0, help="writes/s per node")
    parser.add_argument("--converge-timeout", type=float, default=120.0)
    parser.add_argument("--retention", type=float, default=20.0, help="auditRetention, s")
    parser.add_argument(
        "--agent-src",
        type=Path,
        help="folder holding the agent/ package to run (e.g. a HEAD export)",
    )
    args = parser.parse_args(argv)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = sorted(set(faults) - set(KINDS))
    if unknown:
        parser.error(f"unknown faults {unknown}; choose from {','.join(KINDS)}")
    return Options(
        seed=args.seed,
        nodes=args.nodes,
        minutes=args.minutes,
        faults=faults,
        root=args.root,
        json_path=args.json_path,
        rate=args.rate,
        converge_timeout=args.converge_timeout,
        retention=args.retention,
        agent_src=args.agent_src,
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run from the command line; SIGTERM unwinds like Ctrl-C so rules and agents are cleaned."""
    options = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    report = run(options)
    print(summary(report))
    if options.json_path:
        report.write_json(options.json_path)
        print(f"JSON report: {options.json_path}")
    if not report.passed:
        print(failure_text(report))
        return 1
    print(f"PASSED: seed {report.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
