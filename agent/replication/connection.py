"""The connection shape replication needs, whichever library carries the bytes.

Also how a session ends: `ending` maps what ended it to the close code, reason and log level,
so both ends of a link, on every listener, refuse a peer's bad frame the same way (a WARNING
naming the peer, once, without a traceback) and the other side learns why from the close.
"""

from __future__ import annotations

import logging
from typing import Protocol

from agent.core.errors import NORMAL, TOO_BIG, RemoteProtocolError


class LinkClosed(Exception):
    """The connection ended (closed by either side or broken), or we end it: `code` says why."""

    def __init__(self, message: str = "", code: int = NORMAL) -> None:
        super().__init__(message)
        self.code = code


class FrameTooLarge(LinkClosed):
    """A frame above replication.maxPayload: refused on arrival (closed 1009), or not sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, TOO_BIG)


class Connection(Protocol):
    remote_ip: str
    headers: dict

    async def send(self, data: bytes) -> None: ...

    async def recv(self) -> bytes: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


def checked(data: bytes, limit: int, what: str) -> bytes:
    """Return a frame to send, or raise FrameTooLarge: the peer would refuse it anyway."""
    if limit and len(data) > limit:
        raise FrameTooLarge(
            f"{what} of {len(data)} bytes exceeds replication.maxPayload ({limit} bytes); "
            "raise replication.maxPayload on both nodes"
        )
    return data


def ending(exc: BaseException) -> tuple[int, str, int]:
    """Return (close code, reason, log level) for a session that `exc` ended.

    A peer's bad frame (RemoteProtocolError) and a frame over the size limit are WARNINGs;
    a connection that merely went away is INFO.
    """
    if isinstance(exc, RemoteProtocolError):
        return exc.code, str(exc), logging.WARNING
    if isinstance(exc, FrameTooLarge):
        return exc.code, str(exc), logging.WARNING
    if isinstance(exc, LinkClosed):
        return exc.code, str(exc), logging.INFO
    return NORMAL, str(exc), logging.INFO
