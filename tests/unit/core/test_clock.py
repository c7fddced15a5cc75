"""The hybrid logical clock: versions follow wall time but never go backwards."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.clock import (
    COUNTER_BITS,
    COUNTER_MAX,
    MAX_VERSION,
    HybridClock,
    ahead_ms,
    make_version,
    too_far_ahead,
    valid_version,
    version_counter,
    version_for_time,
    version_ms,
)

MS = st.integers(min_value=0, max_value=2**40)
COUNTERS = st.integers(min_value=0, max_value=COUNTER_MAX)

# Pure and fast, yet a loaded CI machine must not turn a slow example into a failure.
NO_DEADLINE = settings(deadline=None)


@NO_DEADLINE
@given(MS, COUNTERS)
def test_version_parts_round_trip(ms, counter):
    version = make_version(ms, counter)
    assert version_ms(version) == ms
    assert version_counter(version) == counter


@NO_DEADLINE
@given(st.tuples(MS, COUNTERS), st.tuples(MS, COUNTERS))
def test_versions_order_like_their_pairs(a, b):
    assert (make_version(*a) < make_version(*b)) == (a < b)
    assert (make_version(*a) == make_version(*b)) == (a == b)


@pytest.mark.parametrize("counter", [-1, COUNTER_MAX + 1])
def test_make_version_refuses_a_counter_out_of_range(counter):
    with pytest.raises(ValueError, match="out of range"):
        make_version(1000, counter)


def test_version_for_time_is_the_first_version_of_that_millisecond():
    assert version_for_time(1234.9) == make_version(1234, 0)
    assert version_for_time(1234.9) == 1234 << COUNTER_BITS


def test_max_version_is_the_largest_sqlite_integer():
    assert MAX_VERSION == 2**63 - 1


@pytest.mark.parametrize("version", [0, 1, make_version(1_700_000_000_000, 5), MAX_VERSION])
def test_valid_versions_are_integers_sqlite_can_store(version):
    assert valid_version(version)


@pytest.mark.parametrize("version", [-1, MAX_VERSION + 1, 2**64, True, False, 1.0, "5", None])
def test_invalid_versions(version):
    assert not valid_version(version)


def test_ahead_ms_is_the_physical_part_minus_wall_time():
    assert ahead_ms(make_version(10_000, 99), 4_000) == 6_000
    assert ahead_ms(make_version(10_000), 12_500.5) == -2_500.5


def test_a_version_is_too_far_ahead_only_beyond_the_tolerance():
    now = 1_700_000_000_000
    assert not too_far_ahead(make_version(now + 5_000, COUNTER_MAX), now, 5_000)
    assert too_far_ahead(make_version(now + 5_001), now, 5_000)
    assert not too_far_ahead(make_version(now - 60_000), now, 5_000)  # behind is fine


@pytest.mark.parametrize("tolerance", [0, -1])
def test_a_tolerance_of_zero_or_less_turns_the_guard_off(tolerance):
    assert not too_far_ahead(MAX_VERSION, 0, tolerance)


def test_tick_follows_a_moving_wall_clock():
    clock = HybridClock()
    assert clock.tick(1000) == make_version(1000)
    assert clock.tick(2000.7) == make_version(2000)
    assert clock.last == make_version(2000)


def test_tick_counts_while_the_wall_clock_stands_still():
    clock = HybridClock()
    stamps = [clock.tick(5000) for _ in range(3)]
    assert stamps == [make_version(5000, 0), make_version(5000, 1), make_version(5000, 2)]


def test_tick_keeps_increasing_when_the_wall_clock_goes_backwards():
    clock = HybridClock()
    first = clock.tick(9000)
    second = clock.tick(1000)
    third = clock.tick(8999)
    assert first < second < third
    assert version_ms(third) == 9000
    assert version_counter(third) == 2


def test_counter_overflow_carries_into_the_next_millisecond():
    clock = HybridClock(make_version(7000, COUNTER_MAX))
    after = clock.tick(7000)
    assert after > make_version(7000, COUNTER_MAX)
    assert after == make_version(7001, 0)


def test_clock_started_from_a_stored_version_ticks_past_it():
    stored = make_version(50_000, 3)
    clock = HybridClock(stored)
    assert clock.tick(10) > stored


def test_observing_a_future_version_makes_later_ticks_exceed_it():
    clock = HybridClock()
    clock.tick(1000)
    remote = make_version(60_000, 7)
    clock.observe(remote)
    assert clock.last == remote
    assert clock.tick(1001) == make_version(60_000, 8)


def test_observing_a_past_version_changes_nothing():
    clock = HybridClock()
    now = clock.tick(5000)
    clock.observe(make_version(10))
    assert clock.last == now
    assert clock.tick(6000) == make_version(6000)


EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.floats(min_value=0, max_value=1e12)),
        st.tuples(st.just("observe"), st.integers(min_value=0, max_value=make_version(10**12))),
    ),
    max_size=60,
)


@NO_DEADLINE
@given(EVENTS)
def test_any_interleaving_of_ticks_and_observes_gives_increasing_ticks(events):
    clock = HybridClock()
    seen = -1  # the greatest version this clock has stamped or observed so far
    for event, arg in events:
        if event == "observe":
            clock.observe(arg)
            seen = max(seen, arg)
            continue
        stamp = clock.tick(arg)
        assert stamp > seen  # later than every earlier tick and every observed version
        assert stamp >= make_version(int(arg))  # never behind the wall clock
        seen = stamp
        assert clock.last == stamp
