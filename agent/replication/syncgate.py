"""The initial-copy gate: one link copies a never-synced database, the others wait for it."""

from __future__ import annotations

import asyncio


class SyncGate:
    """Which link is copying each database, and an event per database for the waiters."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._holders: dict[str, object] = {}
        self._events: dict[str, asyncio.Event] = {}

    def plan(self, link, synced, copy_state, cursors, own_origin: str) -> dict | None | str:
        """Decide whether `link` copies first; 'wait' while another link copies."""
        if synced or any(origin != own_origin for origin in cursors):
            return None
        holder = self._holders.get(link.database)
        if holder is not None and holder is not link:
            return "wait"
        self._holders[link.database] = link
        if copy_state and copy_state.get("frontier"):
            return {"mode": "resume", **copy_state}
        return {"mode": "full"}

    async def wait(self, database: str, timeout: float) -> None:
        """Wait until the copying link of `database` finishes or gives up (or `timeout`)."""
        event = self._events.setdefault(database, asyncio.Event())
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass

    def finished(self, link) -> None:
        """The copy is done: the database is synced, so waiters go (and later ones too)."""
        if self._holders.get(link.database) is link:
            del self._holders[link.database]
        self._events.setdefault(link.database, asyncio.Event()).set()

    def released(self, link) -> None:
        """The copying link dropped: wake the waiters, one of which takes over."""
        if self._holders.get(link.database) is not link:
            return
        del self._holders[link.database]
        self._events.setdefault(link.database, asyncio.Event()).set()
        self._events[link.database] = asyncio.Event()
