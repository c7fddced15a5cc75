"""The conflict rule: last write wins per record, ties broken by origin node name.

A write is identified by (version, origin). Deletes are writes too (tombstones keep their
version), so an older put that arrives after a delete loses to it.
"""

from __future__ import annotations


def supersedes(
    version: int, origin: str, current_version: int | None, current_origin: str | None
) -> bool:
    """Return True when write (version, origin) replaces the stored one.

    Greater version wins; on equal versions the greater origin name wins (as HarperDB). The
    very same write delivered twice does not supersede itself, which makes apply idempotent.
    """
    if current_version is None:
        return True
    if version != current_version:
        return version > current_version
    return origin > (current_origin or "")


def winner(a: tuple[int, str], b: tuple[int, str]) -> tuple[int, str]:
    """Return whichever of two (version, origin) writes the rule keeps."""
    return a if supersedes(a[0], a[1], b[0], b[1]) or a == b else b
