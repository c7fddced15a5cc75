"""WebSocket transport for replication: the only module importing `websockets`.

Dials peers (`dial`) and serves the dedicated replication listeners (`serve`); both hand the
rest of the package a `Connection` with `send`, `recv` and `close`, the same shape as the
adapter agent.ops.server gives for upgrades on the operations API port.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import weakref
from typing import Awaitable, Callable

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from agent.replication.connection import FrameTooLarge, LinkClosed

SUBPROTOCOL = "harperctl-replication-v1"
# websockets logs every connection opening and closing at INFO: the links say what matters
_QUIET = logging.getLogger("agent.replication.websockets")
_QUIET.setLevel(logging.WARNING)
MAX_FRAME = 100 * 1024 * 1024  # replication.maxPayload's default; callers pass the setting


class DialError(Exception):
    """The peer could not be reached or refused the connection; the message says why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Connection:
    """A replication connection over the `websockets` library.

    `headers` are the other side's (the request's when serving, the 101's when dialling);
    `peer_certificate` is the DER of the other side's TLS certificate, when there is one.
    """

    def __init__(
        self, ws, remote_ip: str, headers: dict, peer_certificate: bytes | None = None
    ) -> None:
        self._ws = ws
        self.remote_ip = remote_ip
        self.headers = headers
        self.peer_certificate = peer_certificate
        self.identity = None  # set by the listener's admission hook
        self.security: dict = {}  # how this connection was authenticated, for status

    async def send(self, data: bytes) -> None:
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise LinkClosed(str(exc)) from None

    async def recv(self) -> bytes:
        try:
            data = await self._ws.recv()
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009 and not exc.rcvd_then_sent:
                # we refused a frame over max_size (checked from its header, never buffered)
                raise FrameTooLarge(f"refused a frame: {exc.sent.reason}") from None
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
    max_size: int = MAX_FRAME,
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
            max_size=max_size or None,
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
    answer = {k: v for k, v in ws.response.headers.raw_items()} if ws.response else {}
    return Connection(ws, (ws.remote_address or ("",))[0], answer, _peer_der(ws))


def _peer_der(ws) -> bytes | None:
    ssl_object = ws.transport.get_extra_info("ssl_object") if ws.transport else None
    return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None


Handler = Callable[[Connection], Awaitable[None]]
# (remote ip, request headers, peer certificate DER) -> (identity, headers for the 101);
# raises an exception with `status` and `message` to refuse the upgrade.
Admit = Callable[[str, dict, bytes | None], tuple[object, dict]]


async def serve(
    handler: Handler,
    admit: Admit,
    host: str,
    port: int,
    tls: ssl.SSLContext | None = None,
    compression: bool = False,
    max_size: int = MAX_FRAME,
):
    """Serve replication connections on a dedicated listener; returns the server.

    `admit` decides at the upgrade: a refused peer gets its 401/403 and a JSON reason,
    never a 101.
    """
    # who each connection was admitted as, until its handler starts (weak: a handshake
    # that fails after admission leaves nothing behind)
    admitted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def process_request(connection, request):
        headers = {k: v for k, v in request.headers.raw_items()}
        try:
            admitted[connection] = admit(
                connection.remote_address[0], headers, _peer_der(connection)
            )
        except Exception as exc:
            status = getattr(exc, "status", 500)
            body = json.dumps({"error": getattr(exc, "message", str(exc))})
            response = connection.respond(status, body + "\n")
            response.headers["Content-Type"] = "application/json"
            return response
        return None

    def process_response(connection, request, response):
        extra = admitted.get(connection, (None, {}))[1]
        for key, value in extra.items():
            response.headers[key] = value
        return None

    async def accept(ws) -> None:
        headers = {k: v for k, v in ws.request.headers.raw_items()} if ws.request else {}
        conn = Connection(ws, ws.remote_address[0], headers, _peer_der(ws))
        conn.identity = admitted.pop(ws, (None, {}))[0]
        await handler(conn)

    return await ws_serve(
        accept,
        host,
        port,
        process_request=process_request,
        process_response=process_response,
        subprotocols=[SUBPROTOCOL],
        compression="deflate" if compression else None,
        ping_interval=None,
        max_size=max_size or None,
        max_queue=64,
        write_limit=1 << 20,
        ssl=tls,
        reuse_address=True,
        logger=_QUIET,
    )
