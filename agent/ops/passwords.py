"""Salted scrypt password hashes, and the limits on how much work password checks may cost.

Hashes are `scrypt$N$r$p$<salt b64>$<hash b64>`. A check costs ~50 ms of CPU and 16 MiB, so
`CheckPool` runs them on a few threads of their own (never the event loop) and refuses when
too many wait, and `LoginThrottle` backs off addresses and users whose logins keep failing.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from agent.errors import ClientError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
# 128 * n * r bytes is what scrypt needs (16 MiB here); leave room, refuse absurd stored values.
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_SCHEME = "scrypt"

# Verified when the user does not exist, so that a wrong name costs what a wrong password
# costs and response times do not reveal which user names exist.
DUMMY_HASH = "$".join(
    [_SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), "A" * 22 + "==", "A" * 43 + "="]
)


def hash_password(password: str) -> str:
    """Hash a password with a fresh salt as `scrypt$n$r$p$<salt b64>$<hash b64>`."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    fields = [str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)]
    return "$".join([_SCHEME, *fields])


def verify_password(password: str, stored: str) -> bool:
    """Tell whether `password` matches a stored hash; a malformed stored value never matches."""
    parsed = _parse_hash(stored) if isinstance(stored, str) else None
    if parsed is None or not isinstance(password, str):
        return False
    n, r, p, salt, digest = parsed
    try:
        candidate = _scrypt(password, salt, n, r, p, len(digest))
    except (ValueError, MemoryError):  # parameters OpenSSL refuses
        return False
    return hmac.compare_digest(candidate, digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        utf8(password), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=dklen
    )


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    """Split a stored hash into (n, r, p, salt, digest), or None if it is not one of ours."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return None
    if not all(part.isascii() and part.isdigit() for part in parts[1:4]):
        return None
    n, r, p = (int(part) for part in parts[1:4])
    try:
        salt, digest = (base64.b64decode(part, validate=True) for part in parts[4:6])
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or not salt or not 16 <= len(digest) <= 64:
        return None
    return n, r, p, salt, digest


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def utf8(text: str) -> bytes:
    # JSON can carry lone surrogates; encode them rather than fail on them.
    return text.encode("utf-8", "surrogatepass")


# -- bounding the work -----------------------------------------------------------------------

T = TypeVar("T")


class TooManyAttempts(ClientError):
    """429: failed logins backed off this caller, or too many checks are waiting."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after + 0.999))  # whole seconds, as Retry-After


class LoginThrottle:
    """Back off logins that keep failing, per key (a caller's address, a user name). Pure.

    The first `free` failures of a key cost nothing more; each later one blocks the key for
    `base` seconds, doubling up to `cap`. Attempts refused while blocked do not count, so a
    block never outlasts `cap` after the last real failure. A success clears the key; a key
    quiet for `forget` seconds starts over. At most `size` keys are held (oldest dropped).
    """

    def __init__(
        self,
        *,
        free: int = 5,
        base: float = 1.0,
        cap: float = 30.0,
        forget: float = 600.0,
        size: int = 10_000,
    ) -> None:
        self.free, self.base, self.cap, self.forget, self.size = free, base, cap, forget, size
        # key -> [failures, blocked until, last failure]
        self._keys: OrderedDict[Hashable, list[float]] = OrderedDict()

    def wait(self, key: Hashable, now: float) -> float:
        """Return how many seconds `key` stays blocked (0: it may try now)."""
        entry = self._keys.get(key)
        return max(0.0, entry[1] - now) if entry is not None else 0.0

    def failures(self, key: Hashable, now: float) -> int:
        """Return the failures `key` has had and not yet forgotten."""
        entry = self._keys.get(key)
        if entry is None or now - entry[2] > self.forget:
            return 0
        return int(entry[0])

    def failed(self, keys: Iterable[Hashable], now: float) -> None:
        """Count a failed check against each key, blocking those past their free failures."""
        for key in keys:
            count = self.failures(key, now) + 1
            blocked = now + self.block_for(count) if count >= self.free else 0.0
            self._keys[key] = [count, blocked, now]
            self._keys.move_to_end(key)
        while len(self._keys) > self.size:
            self._keys.popitem(last=False)

    def succeeded(self, keys: Iterable[Hashable]) -> None:
        """Forget the failures of each key."""
        for key in keys:
            self._keys.pop(key, None)

    def block_for(self, failures: int) -> float:
        """Seconds a key is blocked after its `failures`-th failure (`free` or more)."""
        return min(self.cap, self.base * 2.0 ** min(failures - self.free, 32))


class CheckPool:
    """Run password checks on `workers` threads of their own, with at most `queue` waiting.

    Their own threads, so a flood of checks cannot take the default executor the rest of the
    agent uses; a bounded queue, so it cannot pile up work (and 16 MiB per check) either.
    """

    def __init__(self, workers: int, queue: int) -> None:
        self.workers, self.queue = workers, queue
        self._pending = 0
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on a check thread; TooManyAttempts when the queue is full."""
        if self._pending >= self.workers + self.queue:
            raise TooManyAttempts("too many logins in progress on this node; retry", 1)
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self.workers, thread_name_prefix="password-check"
            )
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._pending -= 1

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
