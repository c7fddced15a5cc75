"""Users and roles in memory, reloaded from `system` whenever either table changes.

Local and replicated transactions announce themselves through the storage's commit listener.
Rows merged from a peer's snapshot (the initial copy of a joining node, a beyond-retention
merge) are committed without a log entry, so nothing announces them: a watcher thread, started
with the first lookup, compares a fingerprint of both tables every WATCH_INTERVAL seconds and
marks the cache stale when it moved, so such rows, and the passwords in them, take effect at
once there too (the hooks in `on_change` clear the authenticator's remembered logins).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Callable

from agent import jsonx
from agent.storage.catalog import row_table
from agent.storage.store import Storage
from agent.storage.system import ROLES, SYSTEM, USERS
from agent.storage.writer import Committed

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.2


def _load(conn, table: str, pk: str) -> dict[str, dict]:
    from agent.storage.query import search

    rows = [jsonx.loads(doc) for doc in search(conn, table, None)]
    return {row[pk]: row for row in rows if pk in row}


def fingerprint(conn) -> tuple:
    """Return what changes whenever a user or role row is written, merged or removed.

    Versions only grow, so the sums of their high and low halves (kept apart: one sum of
    64-bit versions would overflow) move on every write; the counts move on every removal.
    """
    out: list = []
    for table in (USERS, ROLES):
        out.extend(
            conn.execute(
                "SELECT count(*), total(version >> 32), total(version & 4294967295) "
                f"FROM {row_table(table)}"
            ).fetchone()
        )
    return tuple(out)


def _load_all(conn) -> tuple[dict, dict, tuple]:
    """Read users, roles and their fingerprint in one read transaction."""
    return _load(conn, USERS, "username"), _load(conn, ROLES, "id"), fingerprint(conn)


def _watch(ref: weakref.ref, interval: float) -> None:
    """Poll the directory's tables until the directory is gone or its storage closed."""
    while True:
        time.sleep(interval)
        directory = ref()
        if directory is None:
            return
        try:
            directory.poll()
        except Exception as exc:  # the storage closed under us: the node is stopping
            log.debug("user directory watcher stopped: %s", exc)
            return
        finally:
            del directory


class UserDirectory:
    """Answer "who is this user and what is their role" without touching SQLite each time."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._users: dict[str, dict] = {}
        self._roles: dict[str, dict] = {}
        self._dirty = True
        self._seen: tuple | None = None  # the fingerprint of what the cache holds
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self.on_change: list[Callable[[], None]] = []

    def committed(self, database: str, entries: list[Committed]) -> None:
        """Storage listener: mark the cache stale when users or roles changed."""
        if database != SYSTEM:
            return
        if any(USERS in e.tables or ROLES in e.tables for e in entries):
            self._changed()

    def _changed(self) -> None:
        self._dirty = True
        for hook in self.on_change:
            hook()

    def poll(self) -> None:
        """Mark the cache stale if the tables changed without a log entry (snapshot merges)."""
        if self._dirty:
            return
        seen = self._storage.get(SYSTEM).read_sync(fingerprint)
        if seen != self._seen:
            self._changed()

    def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Start the watcher thread, once; it ends when this directory or its storage goes."""
        with self._lock:
            if self._watcher is not None:
                return
            self._watcher = threading.Thread(
                target=_watch, args=(weakref.ref(self), interval), name="user-directory"
            )
            self._watcher.daemon = True
        self._watcher.start()

    def _refresh(self) -> None:
        if not self._dirty:
            return
        with self._lock:
            if not self._dirty:
                return
            self._dirty = False
            loaded = self._storage.get(SYSTEM).read_sync(_load_all)
            self._users, self._roles, self._seen = loaded

    def lookup(self, username: str) -> tuple[dict, dict | None] | None:
        """Return (user row, role row) or None; the first call starts the watcher.

        Only a serving node authenticates, so a directory used once at start-up (bootstrap)
        starts no thread.
        """
        if self._watcher is None:
            self.watch()
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
