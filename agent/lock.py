"""One agent per root: an exclusive lock file held for the life of the process."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from agent.errors import Conflict

LOCK_NAME = "harper-agent.lock"


class RootLock:
    """Hold `<root>/harper-agent.lock` exclusively; the kernel drops it if we die."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise Conflict naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Conflict(
                f"another harper-agent (pid {holder}) is running on {self.path.parent}: "
                f"it holds the lock {self.path}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
