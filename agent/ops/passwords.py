"""Salted scrypt password hashes: `scrypt$N$r$p$<salt b64>$<hash b64>`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

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
