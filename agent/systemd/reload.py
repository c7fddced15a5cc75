"""Reload on SIGHUP (`systemctl reload`): re-read the settings, apply what can change live.

The settings are read again the way `run` read them: harperdb-config.yaml, the environment
and the original command-line flags (the `load` callable `run` hands over). Of what changed,
logging.* (level, path, stdStreams, format) and replication.routes apply at once; any other
changed key is logged as needing a restart. The whole new set is checked before any of it is
applied, so a bad file (or a route that does not parse) logs an error naming the key and the
node keeps every running setting; a reload never stops the node.

Routes are handed to the replicator as cluster_set_routes does: its `routes` list, then
`reconcile()`, which dials the new peers and drops the removed ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError
from agent.logs import configure_logging

if TYPE_CHECKING:
    from agent.config import Config
    from agent.systemd.notify import Notifier

log = logging.getLogger(__name__)

LOGGING_KEYS = ("logging.level", "logging.path", "logging.stdStreams", "logging.format")
ROUTES = "replication.routes"
RELOADABLE = (*LOGGING_KEYS, ROUTES)


def changed_keys(old: Config, new: Config) -> list[str]:
    """Return the keys whose values differ between two loads, in the settings' order."""
    before, after = old.flat(), new.flat()
    return [key for key, value in after.items() if before.get(key) != value]


class Reloader:
    """Apply a fresh load of the settings to a running node.

    `running` is the config the node started with (what a restart-only key still runs on);
    `loaded` is the last load that was applied, so a route or log change is applied once.
    """

    def __init__(self, running: Config, load: Callable[[], Config], replicator: Any) -> None:
        self.running = running
        self.loaded = running
        self.load = load
        self.replicator = replicator

    async def reload(self) -> bool:
        """Re-read and apply the settings; return False (after logging why) if refused."""
        try:
            fresh = await asyncio.to_thread(self.load)
            self._check_root(fresh)
            self._check_routes(fresh)
        except ConfigError as exc:
            log.error("reload refused, the running settings stay: %s", exc)
            return False
        try:
            configure_logging(fresh)
        except OSError as exc:
            log.error("reload refused, the running settings stay: logging.path: %s", exc)
            return False
        changed = changed_keys(self.loaded, fresh)
        if ROUTES in changed:
            await self._apply_routes(fresh.get(ROUTES))
        self.loaded = fresh
        self._report(changed, fresh)
        return True

    def _check_root(self, fresh: Config) -> None:
        """Refuse a new root: the log (and every path) would move away from the data."""
        if fresh.root != self.running.root:
            reason = f"the node runs on {self.running.root}; a new root needs a restart"
            raise ConfigError("rootPath", str(fresh.root), reason)

    def _check_routes(self, fresh: Config) -> None:
        """Raise ConfigError for a route the replicator could not dial (as cluster_set_routes)."""
        from agent.core.routes import RouteError, parse_route

        for route in fresh.get(ROUTES):
            try:
                parse_route(route, self.replicator.dialing)
            except RouteError as exc:
                raise ConfigError(ROUTES, route, f"{exc} (from {fresh.config_path})") from None

    async def _apply_routes(self, routes: list) -> None:
        self.replicator.routes = list(routes)
        try:
            await self.replicator.reconcile()
        except Exception:  # the next periodic reconcile tries again; the node keeps serving
            log.exception("reload: reconciling the new routes failed")

    def _report(self, changed: list[str], fresh: Config) -> None:
        applied = [key for key in changed if key in RELOADABLE]
        log.warning(
            "settings reloaded from %s: %s",
            fresh.config_path,
            f"applied {', '.join(applied)}" if applied else "no live setting changed",
        )
        restart = [key for key in changed_keys(self.running, fresh) if key not in RELOADABLE]
        if restart:
            log.warning("changed, needs a restart to apply: %s", ", ".join(restart))


async def reload_forever(hup: asyncio.Event, reloader: Reloader, notifier: Notifier) -> None:
    """Reload each time `hup` is set (SIGHUP); several signals during a reload make one more."""
    while True:
        await hup.wait()
        hup.clear()
        notifier.reloading()
        applied = False
        try:
            applied = await reloader.reload()
        except Exception:  # a reload never stops the node
            log.exception("reload failed; the running settings stay")
        finally:
            outcome = "settings reloaded" if applied else "reload refused, see the log"
            notifier.ready(f"serving ({outcome})")
