"""Cursor arithmetic: what to apply, what to send, and when a snapshot must replace the log.

A node's cursor for an origin is the highest version applied from it; because every stream
delivers an origin's transactions in that origin's order, the cursor also means "everything
up to here". A log's floor for an origin is the version up to which it no longer holds that
origin's transactions (pruned by retention, or covered by a snapshot instead of log entries).
"""

from __future__ import annotations

from typing import Iterable, Mapping


def should_apply(cursors: Mapping[str, int], origin: str, version: int) -> bool:
    """Return True when a transaction is new: later than what was applied from its origin."""
    return version > cursors.get(origin, 0)


def served_from_log(
    cursors: Mapping[str, int], origins: Iterable[str], floors: Mapping[str, int]
) -> bool:
    """Return True when the log holds everything after each origin's cursor."""
    return all(cursors.get(o, 0) >= floors.get(o, 0) for o in origins)


def after_snapshot(cursors: Mapping[str, int], frontier: Mapping[str, int]) -> dict[str, int]:
    """Return the cursors once a snapshot taken at `frontier` has been merged in."""
    merged = dict(cursors)
    for origin, version in frontier.items():
        if version > merged.get(origin, 0):
            merged[origin] = version
    return merged


def stream_wants(
    origins: frozenset[str], sent: Mapping[str, int], origin: str, version: int
) -> bool:
    """Return True when a publisher should send this log entry on a link."""
    return origin in origins and version > sent.get(origin, 0)
