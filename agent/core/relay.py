"""Which connected peer serves each origin: direct when possible, else one relay.

Every node uses the same sorted order, so the choice is deterministic: an origin whose own
link is down is borrowed from the first connected peer after it in name order (wrapping),
among the peers that say (Reach) they receive that origin directly; only when none does is
any connected peer used. Exactly one link asks for each origin, so there are no duplicates to
begin with, and a node never asks for its own transactions, so nothing loops back.
"""

from __future__ import annotations

from typing import Iterable, Mapping


def assign_origins(
    me: str,
    origins: Iterable[str],
    connected: Iterable[str],
    reach: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, set[str]]:
    """Return {peer: origins to request from it} for the connected peers.

    `reach` maps a connected peer to the origins it receives directly; a borrowed origin goes
    to a peer that reaches it when there is one (a relay that is itself cut off from the origin
    would have nothing to give).
    """
    live = sorted(set(connected) - {me})
    plan: dict[str, set[str]] = {peer: {peer} for peer in live}
    if not live:
        return plan
    reach = reach or {}
    for origin in sorted(set(origins) - {me} - set(live)):
        reaching = [peer for peer in live if origin in set(reach.get(peer, ()))]
        plan[_next_after(origin, reaching or live)].add(origin)
    return plan


def _next_after(origin: str, live: list[str]) -> str:
    for peer in live:
        if peer > origin:
            return peer
    return live[0]
