"""Tell systemd how the node is doing: sd_notify by hand, over the socket in $NOTIFY_SOCKET.

The protocol is one datagram of `KEY=value` lines to a unix socket whose path systemd puts
in NOTIFY_SOCKET (a leading '@' names an abstract socket). We send READY=1 once the
operations API listens, RELOADING=1 ... READY=1 around a SIGHUP reload, STOPPING=1 when the
stop begins, and WATCHDOG=1 every WATCHDOG_USEC/2 from a task on the event loop, so a loop
that is wedged stops the pings and systemd restarts the process (WatchdogSec= in the unit).

Without NOTIFY_SOCKET nothing is sent at all. A send that fails is logged once at debug and
never stops the node: systemd is a spectator, not a dependency.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def socket_address(value: str | None) -> str | bytes | None:
    """Return the address to send to for a NOTIFY_SOCKET value; None when unset or unusable.

    '@name' is the abstract socket "\\0name"; anything else must be an absolute path.
    """
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value if value.startswith("/") else None


def watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """Return seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None for none.

    None as well when WATCHDOG_PID names another process: the watchdog is not ours then.
    """
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner.strip() != str(pid):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


class Notifier:
    """Send state changes and watchdog pings to systemd; a no-op outside systemd."""

    def __init__(self, env: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if env is None else env
        self.pid = os.getpid() if pid is None else pid
        self.address = socket_address(env.get("NOTIFY_SOCKET"))
        self.interval = watchdog_interval(env, self.pid) if self.address else None
        self._socket: socket.socket | None = None
        self._failed = False  # a failure is logged once; after that the sends stay quiet

    @property
    def enabled(self) -> bool:
        """True when systemd asked for notifications (NOTIFY_SOCKET is set)."""
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send one datagram of `KEY=value` lines; return whether it went out."""
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # close-on-exec
            self._socket.sendto("\n".join(lines).encode(), self.address)
        except OSError as exc:
            if not self._failed:
                log.debug("cannot notify systemd at %r: %s", self.address, exc)
                self._failed = True
            return False
        return True

    def ready(self, status: str) -> bool:
        """Say the node serves (after start, and after each reload)."""
        return self.send("READY=1", f"STATUS={status}", f"MAINPID={self.pid}")

    def reloading(self) -> bool:
        """Say a reload began; systemd waits for the next READY=1."""
        return self.send("RELOADING=1", "STATUS=reloading the settings")

    def stopping(self) -> bool:
        """Say the stop began, so systemd does not mistake the shutdown for a crash."""
        return self.send("STOPPING=1", "STATUS=stopping: finishing in-flight work")

    async def watchdog_forever(self) -> None:
        """Ping WATCHDOG=1 every interval while the event loop runs (cancel to end it)."""
        if self.interval is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.interval)

    def start_watchdog(self) -> asyncio.Task | None:
        """Start the ping task on the running loop when systemd asked for one; else None."""
        if self.interval is None:
            return None
        return asyncio.create_task(self.watchdog_forever(), name="systemd-watchdog")

    def close(self) -> None:
        """Close the socket (the notifier may still be used; it opens a new one)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
