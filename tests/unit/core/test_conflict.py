"""The conflict rule: last write wins, ties broken by the greater origin name."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.conflict import supersedes, winner

ORIGINS = st.sampled_from(["", "a", "b", "node-1", "node-10", "node-2", "Z", "é"])
WRITES = st.tuples(st.integers(min_value=0, max_value=12), ORIGINS)

# Pure and fast, yet a loaded CI machine must not turn a slow example into a failure.
NO_DEADLINE = settings(deadline=None)


def fold(writes: list[tuple[int, str]]) -> tuple[int, str] | None:
    """Apply writes in order the way storage does: keep the current one unless superseded."""
    current: tuple[int, str] | None = None
    for version, origin in writes:
        if current is None or supersedes(version, origin, *current):
            current = (version, origin)
    return current


def test_anything_supersedes_no_write():
    assert supersedes(0, "a", None, None)


def test_greater_version_wins_whatever_the_origin():
    assert supersedes(2, "a", 1, "z")
    assert not supersedes(1, "z", 2, "a")


@pytest.mark.parametrize(
    ("origin", "current", "expected"),
    [("b", "a", True), ("a", "b", False), ("node-2", "node-10", True), ("a", "a", False)],
)
def test_equal_versions_are_broken_by_the_greater_origin_name(origin, current, expected):
    assert supersedes(5, origin, 5, current) is expected


def test_the_same_write_twice_does_not_supersede_itself():
    assert not supersedes(7, "n1", 7, "n1")


def test_a_missing_current_origin_loses_a_tie():
    assert supersedes(3, "a", 3, None)


@NO_DEADLINE
@given(WRITES, WRITES)
def test_winner_is_commutative_and_picks_the_greatest(a, b):
    assert winner(a, b) == winner(b, a) == max(a, b)


@NO_DEADLINE
@given(WRITES, WRITES, WRITES)
def test_winner_is_associative(a, b, c):
    assert winner(winner(a, b), c) == winner(a, winner(b, c))


@NO_DEADLINE
@given(WRITES)
def test_winner_is_idempotent(a):
    assert winner(a, a) == a


@NO_DEADLINE
@given(st.lists(WRITES, min_size=1, max_size=30), st.data())
def test_any_order_and_any_duplication_keeps_the_same_winner(writes, data):
    duplicates = data.draw(st.lists(st.sampled_from(writes), max_size=10))
    shuffled = data.draw(st.permutations(writes + duplicates))
    assert fold(shuffled) == fold(writes) == max(writes)


@NO_DEADLINE
@given(st.lists(WRITES, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_applying_the_stream_twice_changes_nothing(writes, rnd: random.Random):
    once = fold(writes)
    again = list(writes)
    rnd.shuffle(again)
    assert fold([once, *again]) == once
