"""One agent per root, and the root its own: an exclusive lock file and private file modes.

The root holds password hashes, keys and every record, so it is private to the agent's user:
folders 0700, files 0600. The process umask becomes 0077 once the lock is taken (SQLite's
-wal/-shm files, rotated logs and anything else created later follow it), and what an older
version or another tool left more open is tightened then, and said once in the log.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
from pathlib import Path
from typing import Iterable

from agent.errors import Conflict

log = logging.getLogger(__name__)
LOCK_NAME = "harper-agent.lock"
PRIVATE_UMASK = 0o077
OPEN_BITS = 0o077  # group and other: what "private" takes away
_SHOWN = 10  # paths named in the log line; the rest are counted


class RootLock:
    """Hold `<root>/harper-agent.lock` exclusively; the kernel drops it if we die."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise Conflict naming the process that holds it.

        Then make the root private: umask 0077 from now on, and existing modes tightened.
        """
        private_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
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
        os.umask(PRIVATE_UMASK)
        tighten(walk(self.path.parent))

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def private_dirs(path: Path) -> None:
    """Create `path` and its missing parents with mode 0700 (mkdir gives parents 0755)."""
    missing = []
    path = Path(path)
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)


def create_private(path: Path) -> None:
    """Create an empty file with mode 0600 unless it exists (then leave it as it is)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))


def walk(root: Path) -> Iterable[Path]:
    """Yield `root` and everything under it, without following symbolic links."""
    root = Path(root)
    yield root
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            yield Path(folder) / name


def tighten(paths: Iterable[Path]) -> list[Path]:
    """Take group and other access from these folders and files; log and return what changed.

    Symbolic links and special files are left alone (chmod would reach their target), and
    a path this user cannot change is reported, not fatal.
    """
    changed: list[Path] = []
    for path in paths:
        try:
            info = os.lstat(path)
            if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
                continue
            if info.st_mode & OPEN_BITS:
                os.chmod(path, stat.S_IMODE(info.st_mode) & ~OPEN_BITS)
                changed.append(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot make %s private: %s", path, exc.strerror)
    if changed:
        shown = [str(p) for p in changed[:_SHOWN]]
        more = f" and {len(changed) - _SHOWN} more" if len(changed) > _SHOWN else ""
        log.info(
            "made private to this user (group and other access removed): %s%s",
            ", ".join(shown),
            more,
        )
    return changed
