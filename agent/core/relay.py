"""Which connected peer serves each origin: direct when possible, else one relay.

Every node uses the same sorted order, so the choice is deterministic: an origin whose own
link is down is borrowed from the first connected peer after it in name order (wrapping).
Exactly one link asks for each origin, so there are no duplicates to begin with, and a node
never asks for its own transactions, so nothing loops back.
"""

from __future__ import annotations

from typing import Iterable


def assign_origins(
    me: str, origins: Iterable[str], connected: Iterable[str]
) -> dict[str, set[str]]:
    """Return {peer: origins to request from it} for the connected peers."""
    live = sorted(set(connected) - {me})
    plan: dict[str, set[str]] = {peer: {peer} for peer in live}
    if not live:
        return plan
    for origin in sorted(set(origins) - {me} - set(live)):
        plan[_next_after(origin, live)].add(origin)
    return plan


def _next_after(origin: str, live: list[str]) -> str:
    for peer in live:
        if peer > origin:
            return peer
    return live[0]
