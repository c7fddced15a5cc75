"""Users and roles in memory, reloaded from `system` whenever either table commits."""

from __future__ import annotations

import threading
from typing import Callable

from agent import jsonx
from agent.storage.store import Storage
from agent.storage.system import ROLES, SYSTEM, USERS
from agent.storage.writer import Committed


def _load(conn, table: str, pk: str) -> dict[str, dict]:
    from agent.storage.query import search

    rows = [jsonx.loads(doc) for doc in search(conn, table, None)]
    return {row[pk]: row for row in rows if pk in row}


class UserDirectory:
    """Answer "who is this user and what is their role" without touching SQLite each time."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._users: dict[str, dict] = {}
        self._roles: dict[str, dict] = {}
        self._dirty = True
        self._lock = threading.Lock()
        self.on_change: list[Callable[[], None]] = []

    def committed(self, database: str, entries: list[Committed]) -> None:
        """Storage listener: mark the cache stale when users or roles changed."""
        if database != SYSTEM:
            return
        if any(USERS in e.tables or ROLES in e.tables for e in entries):
            self._dirty = True
            for hook in self.on_change:
                hook()

    def _refresh(self) -> None:
        if not self._dirty:
            return
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            db = self._storage.get(SYSTEM)
            self._users = db.read_sync(_load, USERS, "username")
            self._roles = db.read_sync(_load, ROLES, "id")

    def lookup(self, username: str) -> tuple[dict, dict | None] | None:
        """Return (user row, role row) or None."""
        self._refresh()
        user = self._users.get(username)
        if user is None:
            return None
        return user, self.role(user.get("role"))

    def role(self, name: object) -> dict | None:
        self._refresh()
        if not isinstance(name, str):
            return None
        found = self._roles.get(name)
        if found is None:  # HarperDB refers to roles by name; ids here are names too
            found = next((r for r in self._roles.values() if r.get("role") == name), None)
        return found

    def users(self) -> list[dict]:
        self._refresh()
        return list(self._users.values())

    def roles(self) -> list[dict]:
        self._refresh()
        return list(self._roles.values())
