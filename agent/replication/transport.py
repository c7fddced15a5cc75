"""WebSocket transport for replication: the only module importing `websockets`.

Dials peers (`dial`) and serves the dedicated replication listeners (`serve`); both hand the
rest of the package a `Connection` with `send`, `recv` and `close`, the same shape as the
adapter agent.ops.server gives for upgrades on the operations API port.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Awaitable, Callable

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from agent.replication.connection import LinkClosed

SUBPROTOCOL = "harperctl-replication-v1"
MAX_FRAME = 256 * 1024 * 1024


class DialError(Exception):
    """The peer could not be reached or refused the connection; the message says why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Connection:
    """A replication connection over the `websockets` library."""

    def __init__(self, ws, remote_ip: str, headers: dict) -> None:
        self._ws = ws
        self.remote_ip = remote_ip
        self.headers = headers

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise LinkClosed(str(exc)) from None

    async def recv(self) -> bytes:
        try:
            data = await self._ws.recv()
        except ConnectionClosed as exc:
            raise LinkClosed(str(exc)) from None
        if isinstance(data, str):
            data = data.encode()
        return data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        try:
            await self._ws.close(code, reason[:120])
        except Exception:
            pass


async def dial(
    url: str,
    *,
    headers: dict | None = None,
    local_host: str | None = None,
    tls: ssl.SSLContext | None = None,
    compression: bool = False,
    timeout: float = 10.0,
) -> Connection:
    """Open a replication connection to `url`, leaving from `local_host` when given."""
    kwargs = {}
    if local_host:
        kwargs["local_addr"] = (local_host, 0)
    if url.startswith("wss://"):
        kwargs["ssl"] = tls or ssl.create_default_context()
    try:
        ws = await connect(
            url,
            subprotocols=[SUBPROTOCOL],
            additional_headers=headers or {},
            compression="deflate" if compression else None,
            open_timeout=timeout,
            ping_interval=None,
            close_timeout=2,
            max_size=MAX_FRAME,
            max_queue=64,
            write_limit=1 << 20,
            proxy=None,
            **kwargs,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        detail = exc.response.body.decode(errors="replace")[:200] if exc.response.body else ""
        raise DialError(
            f"{url} refused the connection: HTTP {status} {detail}".strip(), status
        ) from None
    except (OSError, InvalidHandshake, asyncio.TimeoutError, TimeoutError) as exc:
        raise DialError(f"cannot reach {url}: {exc or type(exc).__name__}") from None
    return Connection(ws, (ws.remote_address or ("",))[0], {})


Handler = Callable[[Connection], Awaitable[None]]


async def serve(
    handler: Handler,
    host: str,
    port: int,
    tls: ssl.SSLContext | None = None,
    compression: bool = False,
):
    """Serve replication connections on a dedicated listener; returns the server."""

    async def accept(ws) -> None:
        headers = {k: v for k, v in ws.request.headers.raw_items()} if ws.request else {}
        await handler(Connection(ws, ws.remote_address[0], headers))

    return await ws_serve(
        accept,
        host,
        port,
        subprotocols=[SUBPROTOCOL],
        compression="deflate" if compression else None,
        ping_interval=None,
        max_size=MAX_FRAME,
        max_queue=64,
        write_limit=1 << 20,
        ssl=tls,
        reuse_address=True,
    )
