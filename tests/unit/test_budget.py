"""The verify CPU budget (agent/replication/budget.py), on a hand-driven clock."""

from __future__ import annotations

from agent.replication.budget import Budget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_share_over_time() -> None:
    clock = Clock()
    budget = Budget(0.02, 5.0, clock)
    assert budget.available() and budget.wait_seconds() == 0.0
    budget.spend(7.0)  # one index of a million records: overdrawn by 2 s
    assert not budget.available()
    assert abs(budget.wait_seconds() - 100.0) < 0.01  # 2 CPU seconds at 2% a second
    clock.now += 99.0
    assert not budget.available()
    clock.now += 1.5
    assert budget.available()


def test_tokens_never_exceed_the_burst_and_the_share_is_reported() -> None:
    clock = Clock()
    budget = Budget(0.02, 5.0, clock)
    clock.now += 10_000.0  # idle a long time: still only one burst
    budget.spend(5.5)
    assert not budget.available()
    assert abs(budget.used_share() - 5.5 / 10_000.0) < 1e-9
