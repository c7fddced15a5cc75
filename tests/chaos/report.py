"""What a chaos run found, as numbers, as readable text and as JSON.

A failing run must be replayable by someone who only has its output, so the text names the
seed, the exact command, the schedule and examples of each failure.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from check import FAILURE_KINDS
from faults import Fault, format_schedule


@dataclass
class Report:
    """The outcome of one run; `passed` is what the exit code says."""

    seed: int
    nodes: int
    minutes: float
    faults: list[str]
    schedule: list[Fault]
    root: str
    command: list[str]
    notes: list[str] = field(default_factory=list)  # faults skipped and why
    errors: list[str] = field(default_factory=list)  # faults that could not be played
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> outcome -> n
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    convergence_seconds: float | None = None
    converge_timeout: float = 120.0
    row_counts: dict = field(default_factory=dict)
    wall_seconds: float = 0.0
    verify: dict = field(default_factory=dict)  # cluster_verify's summary after agreement

    @property
    def acked(self) -> int:
        return sum(by.get("acked", 0) for by in self.outcomes.values())

    @property
    def passed(self) -> bool:
        clean = all(self.counts.get(kind, 0) == 0 for kind in FAILURE_KINDS)
        # the agents' own check must agree with ours (skipped only where it cannot run)
        verified = self.verify.get("agreed", "error" in self.verify or not self.verify)
        return clean and verified and self.convergence_seconds is not None and not self.errors

    def as_dict(self) -> dict:
        return {
            "seed": self.seed,
            "nodes": self.nodes,
            "minutes": self.minutes,
            "faults": self.faults,
            "passed": self.passed,
            "command": shlex.join(self.command),
            "schedule": [f.as_dict() for f in self.schedule],
            "acked": self.acked,
            "outcomes": self.outcomes,
            "counts": self.counts,
            "convergence_seconds": self.convergence_seconds,
            "converge_timeout": self.converge_timeout,
            "row_counts": self.row_counts,
            "examples": self.examples,
            "notes": self.notes,
            "errors": self.errors,
            "root": self.root,
            "wall_seconds": round(self.wall_seconds, 1),
            "verify": self.verify,
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n")


def summary(report: Report) -> str:
    """The lines every run prints: writes by outcome, failure counts, convergence, rows."""
    lines = [f"acked {report.acked} writes"]
    for kind, by in sorted(report.outcomes.items()):
        lines.append(f"  {kind:<12} " + "  ".join(f"{k} {v}" for k, v in sorted(by.items())))
    lines.append("  ".join(f"{k} {report.counts.get(k, 0)}" for k in FAILURE_KINDS))
    if report.convergence_seconds is None:
        lines.append(f"nodes did NOT agree within {report.converge_timeout:.0f}s of healing")
    else:
        lines.append(f"nodes agreed {report.convergence_seconds:.1f}s after healing")
    if report.verify:
        lines.append(f"cluster_verify: {report.verify}")
    for node, tables in report.row_counts.items():
        cells = [f"{t} {c['live']}+{c['tombstones']}t" for t, c in tables.items()]
        lines.append(f"  {node}: " + ", ".join(cells))
    lines.append(f"wall time {report.wall_seconds:.0f}s; agent roots and logs in {report.root}")
    return "\n".join(lines)


def failure_text(report: Report) -> str:
    """Everything needed to replay and read a failing run."""
    lines = [
        f"FAILED: seed {report.seed}",
        f"replay: {shlex.join(report.command)}",
        "schedule:",
        format_schedule(report.schedule),
    ]
    for error in report.errors:
        lines.append(f"fault error: {error}")
    for kind in FAILURE_KINDS:
        examples = report.examples.get(kind, [])
        if examples:
            lines.append(f"{kind} ({report.counts.get(kind, 0)}), first {len(examples)}:")
            lines.extend(f"  {e}" for e in examples)
    return "\n".join(lines)


def replay_command(options_argv: list[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve().with_name("chaos.py")), *options_argv]
