"""The connection shape replication needs, whichever library carries the bytes."""

from __future__ import annotations

from typing import Protocol


class LinkClosed(Exception):
    """The connection ended (closed by either side or broken)."""


class Connection(Protocol):
    remote_ip: str
    headers: dict

    async def send(self, data: bytes) -> None: ...

    async def recv(self) -> bytes: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...
