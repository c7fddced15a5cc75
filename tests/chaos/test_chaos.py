"""A short seeded chaos run on real agents: every acknowledged write must survive.

It runs with every `make test` (CI included); `-m "not chaos"` leaves it out. Longer runs:
`make chaos SEED=.. NODES=.. MINUTES=..`. HARPER_CHAOS_AGENT_SRC names a folder whose agent/
package the agents run instead of this checkout's (e.g. an export of an older commit).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chaos import Options, run
from faults import iptables_usable, make_schedule
from report import failure_text, summary

SEED = 3
SECONDS = 120  # the issue asks CI for a two-minute seeded run with kills


def faults() -> list[str]:
    return ["kill", "pause", *(["cut"] if iptables_usable() else [])]


def test_the_seed_plays_every_fault_the_test_wants():
    kinds = {f.kind for f in make_schedule(SEED, faults(), 3, SECONDS, 20)}
    assert kinds == set(faults())


@pytest.mark.chaos
@pytest.mark.timeout(330)
def test_seeded_chaos_keeps_every_acknowledged_write(tmp_path):
    src = os.environ.get("HARPER_CHAOS_AGENT_SRC")
    options = Options(
        seed=SEED,
        nodes=3,
        minutes=SECONDS / 60,
        faults=faults(),
        root=tmp_path,
        converge_timeout=90,
        agent_src=Path(src) if src else None,
    )
    report = run(options)
    assert report.passed, f"{summary(report)}\n{failure_text(report)}"
    assert report.acked > 1000
