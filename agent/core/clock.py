"""Hybrid logical clock: versions that follow wall time yet never go backwards.

A version is one integer: the physical part in milliseconds since the epoch shifted left by
COUNTER_BITS, plus a logical counter. Integers compare exactly, fit SQLite's INTEGER, and order
the same way as the (ms, counter) pairs they encode.

The clock is pure: the caller passes the wall time in. `tick` stamps a local event, `observe`
folds in a version seen from a peer so that anything stamped afterwards is later than it, which
keeps causality across nodes whose clocks disagree.
"""

from __future__ import annotations

COUNTER_BITS = 16
COUNTER_MAX = (1 << COUNTER_BITS) - 1
MAX_VERSION = (1 << 63) - 1  # SQLite's INTEGER: a larger version cannot be stored at all


def make_version(ms: int, counter: int = 0) -> int:
    """Build a version from its physical milliseconds and logical counter."""
    if not 0 <= counter <= COUNTER_MAX:
        raise ValueError(f"counter {counter} out of range")
    return (int(ms) << COUNTER_BITS) | counter


def version_ms(version: int) -> int:
    """Return the physical part of a version in epoch milliseconds."""
    return version >> COUNTER_BITS


def version_counter(version: int) -> int:
    """Return the logical counter of a version."""
    return version & COUNTER_MAX


def version_for_time(ms: float) -> int:
    """Return the smallest version at or after wall time `ms` (for start_time filters)."""
    return make_version(int(ms))


def valid_version(version: object) -> bool:
    """Return True for an integer version SQLite can store (0 <= v < 2**63)."""
    return (
        isinstance(version, int) and not isinstance(version, bool) and 0 <= version <= MAX_VERSION
    )


def ahead_ms(version: int, now_ms: float) -> float:
    """Return how far a version's physical part is ahead of wall time `now_ms` (ms)."""
    return version_ms(version) - now_ms


def too_far_ahead(version: int, now_ms: float, max_ahead_ms: float) -> bool:
    """Return True when a version is further ahead of local wall time than is tolerated.

    Adopting such a version would drag this node's clock (and, through it, every node's)
    into the future for good, so the clock guard refuses it instead (max_ahead_ms <= 0: off).
    """
    return max_ahead_ms > 0 and ahead_ms(version, now_ms) > max_ahead_ms


class HybridClock:
    """A hybrid logical clock for one node; not thread-safe (the caller serialises)."""

    __slots__ = ("_last",)

    def __init__(self, last: int = 0) -> None:
        self._last = last

    @property
    def last(self) -> int:
        """The latest version stamped or observed."""
        return self._last

    def tick(self, now_ms: float) -> int:
        """Return a version for a local event at wall time `now_ms`, later than any before."""
        candidate = make_version(int(now_ms))
        if candidate > self._last:
            self._last = candidate
        else:
            self._last = self._bump(self._last)
        return self._last

    def observe(self, version: int) -> None:
        """Fold in a version seen from a peer, so later ticks come after it."""
        if version > self._last:
            self._last = version

    @staticmethod
    def _bump(version: int) -> int:
        # The counter overflowing into the millisecond part is harmless: versions stay
        # strictly increasing and the physical part moves a millisecond ahead.
        return version + 1
