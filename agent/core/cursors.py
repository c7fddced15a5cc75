"""Cursor arithmetic over gap-free per-origin sequences.

Every origin numbers its transactions per database 1, 2, 3, ... with no holes (`oseq`). A
node's cursor for an origin is the last of them it applied, and because it applies only the
next one, the cursor means "everything that origin wrote up to here is reflected". So a
transaction is exactly one of: the next one (apply it), one at or below the cursor (a
harmless duplicate), or one past the next (a gap: something in between never arrived, and
applying it would let the cursor pass a transaction that was never applied).

A log's floor for an origin is the sequence up to which it no longer holds that origin's
transactions (pruned by retention, or covered by a snapshot merge instead of log entries).
"""

from __future__ import annotations

from typing import Iterable, Mapping

APPLY, DUPLICATE, GAP = "apply", "duplicate", "gap"


def classify(cursor: int, oseq: int) -> str:
    """Return APPLY for the next transaction of an origin, DUPLICATE or GAP otherwise."""
    if oseq <= cursor:
        return DUPLICATE
    if oseq == cursor + 1:
        return APPLY
    return GAP


def served_from_log(
    cursors: Mapping[str, int], origins: Iterable[str], floors: Mapping[str, int]
) -> bool:
    """Return True when the log holds everything after each origin's cursor."""
    return all(cursors.get(o, 0) >= floors.get(o, 0) for o in origins)


def after_snapshot(cursors: Mapping[str, int], frontier: Mapping[str, int]) -> dict[str, int]:
    """Return the cursors once a snapshot taken at `frontier` has been merged in."""
    merged = dict(cursors)
    for origin, seq in frontier.items():
        if seq > merged.get(origin, 0):
            merged[origin] = seq
    return merged


def offer(origins: frozenset[str], sent: Mapping[str, int], origin: str, oseq: int) -> str:
    """Decide what a publisher does with one log entry on a link: APPLY means send it.

    A publisher never sends past a hole: GAP means its log lacks what the subscriber needs
    next for that origin, and the stream must end so the next Subscribe is planned as a merge.
    """
    if origin not in origins:
        return DUPLICATE
    return classify(sent.get(origin, 0), oseq)


def rolled_back(
    own_cursor: int, own_version_there: int | None, peer_seq: int, peer_version: int
) -> bool:
    """Return True when a peer holds transactions of this node's origin that it does not.

    `peer_seq`/`peer_version` are the peer's cursor for our origin; `own_version_there` is
    the version of our own transaction with that sequence (None if not in our log). The peer
    is ahead of us, or its transaction at that number is not ours: our data went back in time
    (a restored backup, a copied file), those sequence numbers are spent on writes the peers
    hold, so we must write under a new origin id and fetch those writes back.
    """
    if peer_seq > own_cursor:
        return True
    return own_version_there is not None and peer_seq > 0 and own_version_there != peer_version


def scoped(origin_id: str, scope: str | None) -> str:
    """Return the cursor key of an origin on a table-filtered stream (`scope`: its tables).

    A filtered stream carries only some tables of each transaction, so applying it must not
    move the origin's own cursor: a later full stream would start past rows it never
    delivered. It moves a cursor of its own instead, and what it applies is not relayed.
    """
    return origin_id if scope is None else f"{origin_id}@{scope}"


def scope_of(tables: list[str] | None) -> str | None:
    """Return the scope of a stream carrying `tables` (None: every table)."""
    return None if tables is None else ",".join(sorted(set(tables)))


def lacks_before(horizon: int, mine: Mapping[str, int], theirs: Mapping[str, int]) -> bool:
    """Return True when a peer lacks some origin's writes older than our tombstone horizon.

    `mine`/`theirs`: the version of the last transaction applied per origin, here and on the
    peer. Such a peer may still hold rows we deleted long ago (our tombstones are gone), so
    its snapshot must not give us back rows older than the horizon that we lack. A peer that
    has everything up to the horizon from every origin also has those deletes, so rows it
    holds that we lack are real, however old: writes that simply reached us late.
    """
    if not horizon:
        return False
    return any(theirs.get(o, 0) < min(horizon, v) for o, v in mine.items())
