"""The operations API over HTTP: the only module importing aiohttp.

`POST /` takes `{"operation": ...}` JSON; `GET /health` and `GET /metrics` (Prometheus text,
numbers only) answer without credentials. Every error, whatever raised it, leaves here as
JSON `{"error": ...}` with its status and a JSON content type (HarperDB sometimes sends
none).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMsgType, web

from agent import __version__, jsonx
from agent.errors import AgentError, ClientError, PayloadTooLarge
from agent.ops.registry import lookup
from agent.ops.request import Request
from agent.ops.services import Services

log = logging.getLogger(__name__)
SERVER = f"harper-agent/{__version__}"
SUBPROTOCOL = "harperctl-replication-v1"
SHUTDOWN_TIMEOUT = 10.0  # seconds in-flight requests get to finish on SIGTERM


class WebSocketEndpoint(Protocol):
    """What replication offers for upgrades on this port (agent.replication.endpoint)."""

    def authorize(self, remote_ip: str, headers: dict, certificate: bytes | None) -> Any: ...

    def answer_headers(self, identity: Any, headers: dict) -> dict: ...

    async def serve(self, conn: Any, identity: Any) -> None: ...


class _Upgraded:
    """An aiohttp WebSocket dressed as a replication Connection."""

    def __init__(self, ws: web.WebSocketResponse, remote_ip: str, headers: dict) -> None:
        self._ws = ws
        self.remote_ip = remote_ip
        self.headers = headers

    async def send(self, data: bytes) -> None:
        from agent.replication.connection import LinkClosed

        try:
            await self._ws.send_bytes(data)
        except (ConnectionResetError, RuntimeError) as exc:
            raise LinkClosed(str(exc)) from None

    async def recv(self) -> bytes:
        from agent.replication.connection import FrameTooLarge, LinkClosed

        msg = await self._ws.receive()
        if msg.type == WSMsgType.BINARY:
            return msg.data
        if msg.type == WSMsgType.TEXT:
            return msg.data.encode()
        if getattr(msg.data, "code", None) == WSCloseCode.MESSAGE_TOO_BIG:  # over max_msg_size
            raise FrameTooLarge(f"refused a frame: {msg.data}")
        raise LinkClosed(f"websocket {msg.type.name.lower()}")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code=code, message=reason[:120].encode())


class _ReplicationSocket(web.WebSocketResponse):
    """A WebSocketResponse whose close for an oversized frame says why (aiohttp gives no
    reason; the peer records the one it gets in cluster_status)."""

    def __init__(self, max_msg_size: int, **kwargs: Any) -> None:
        super().__init__(max_msg_size=max_msg_size, **kwargs)
        self.limit = max_msg_size

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", **kwargs) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = f"frame over replication.maxPayload ({self.limit} bytes)".encode()
        return await super().close(code=code, message=message, **kwargs)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=jsonx.dumps(body),
        status=status,
        content_type="application/json",
        headers={"Server": SERVER},
    )


def error_response(exc: Exception) -> web.Response:
    """Turn any exception into the one JSON error shape."""
    if isinstance(exc, AgentError):
        return json_response({"error": exc.message}, exc.status)
    log.exception("operation failed unexpectedly")
    return json_response({"error": f"internal error: {type(exc).__name__}"}, 500)


async def _not_here(request: web.Request) -> web.Response:
    """Answer an unknown path or a wrong method in the one JSON shape too.

    Catch-all routes rather than a middleware: a middleware would wrap every operation.
    """
    known = {"/": "GET, POST", "/health": "GET", "/metrics": "GET"}
    allow = known.get(request.path)
    status, reason = (405, "Method Not Allowed") if allow else (404, "Not Found")
    message = f"{request.method} {request.path}: {reason}; send operations as POST /"
    response = json_response({"error": message}, status)
    if allow:
        response.headers["Allow"] = allow
    return response


class OpsServer:
    """Serve the operations API on one host and port (and its TLS twin when configured)."""

    def __init__(self, services: Services, max_body: int, max_frame: int = 0) -> None:
        self.services = services
        self.max_body = max_body
        self.max_frame = max_frame  # replication.maxPayload for upgraded connections (0: none)
        self.endpoint: WebSocketEndpoint | None = None  # replication, once wired
        self._runner: web.AppRunner | None = None
        # Operations being read or run, so stop() can wait for them (see there).
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self.app = web.Application(
            client_max_size=max_body,
            handler_args={"access_log": None},
        )
        self.app.router.add_post("/", self._operation)
        self.app.router.add_get("/health", self._health)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/", self._root)
        self.app.router.add_route("*", "/health", _not_here)
        self.app.router.add_route("*", "/metrics", _not_here)
        self.app.router.add_route("*", "/", _not_here)
        self.app.router.add_route("*", "/{tail:.*}", _not_here)

    async def start(
        self, host: str, port: int, tls: ssl.SSLContext | None = None, *more: tuple
    ) -> None:
        """Bind and serve; `more` holds extra (host, port, ssl) listeners."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        for h, p, context in ((host, port, tls), *more):
            site = web.TCPSite(self._runner, h, p, ssl_context=context, reuse_address=True)
            await site.start()

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, then close.

        The in-flight operations are awaited here, before aiohttp's own cleanup: that first
        marks every connection closing and from then on drops the bytes that arrive on it, so
        a request whose body was still arriving would hang until the timeout and be cut off.
        Operations that arrive meanwhile on kept-alive connections are refused with 503.
        """
        if self._runner is None:
            return
        self._stopping = True
        for site in list(self._runner.sites):
            await site.stop()
        await self._drain()
        await self._runner.cleanup()
        self._runner = None

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_TIMEOUT
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._idle.wait()
            except TimeoutError:
                log.warning("stopping with %d operations still running", self._in_flight)
                return
            await asyncio.sleep(0)  # a request whose headers just arrived starts its handler
            if self._idle.is_set():
                return

    async def _health(self, request: web.Request) -> web.Response:
        services = self.services
        return json_response(
            {
                "status": "ok",
                "node": services.node_name,
                "version": __version__,
                "uptime": round(time.time() - services.started, 3),
            }
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        from agent.ops import metrics
        from agent.replication.status import cluster_status

        rep = self.services.replication
        status = await cluster_status(rep) if rep is not None else None
        text = metrics.render(self.services, status)
        return web.Response(body=text.encode(), headers={"Content-Type": metrics.CONTENT_TYPE})

    async def _root(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._upgrade(request)
        return json_response(
            {"error": 'send operations as POST / with a JSON body {"operation": ...}'}, 405
        )

    async def _upgrade(self, request: web.Request) -> web.StreamResponse:
        """Accept a replication WebSocket on this port after the endpoint admits the peer."""
        if self.endpoint is None:
            return json_response({"error": "replication is starting on this node; retry"}, 503)
        headers = dict(request.headers)
        remote = request.remote or ""
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        certificate = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        try:
            identity = self.endpoint.authorize(remote, headers, certificate)
            answer = self.endpoint.answer_headers(identity, headers)
        except Exception as exc:
            return error_response(exc)
        ws = _ReplicationSocket(self.max_frame, protocols=[SUBPROTOCOL], compress=False)
        ws.headers.update(answer)  # our own identity proof, over the peer's nonce
        await ws.prepare(request)
        await self.endpoint.serve(_Upgraded(ws, remote, headers), identity)
        return ws

    async def _operation(self, request: web.Request) -> web.Response:
        self._in_flight += 1
        self._idle.clear()
        try:
            if self._stopping:
                return await self._refuse(request)
            return await self._run_operation(request)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _refuse(self, request: web.Request) -> web.Response:
        """Answer 503 while stopping, after reading the body: aiohttp would linger for it."""
        try:
            await request.read()
        except web.HTTPRequestEntityTooLarge:
            pass
        response = json_response({"error": "the node is shutting down; nothing was done"}, 503)
        response.force_close()
        return response

    async def _run_operation(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            op = lookup(body)
            user = None
            header = request.headers.get("Authorization")
            if op.auth:
                user = await self._authenticate(header)
            req = Request(body, user, self.services, header)
            if op.super_user:
                req.require_super_user()
            result = await op.handler(req)
        except Exception as exc:  # one place turns every failure into JSON
            return error_response(exc)
        return json_response(result)

    async def _authenticate(self, header: str | None):
        auth = self.services.authenticator
        user = auth.cached(header)  # the common case: one HMAC and a dict lookup
        if user is not None:
            return user
        if auth.would_hash(header):
            return await asyncio.to_thread(auth.authenticate, header)
        return auth.authenticate(header)

    async def _body(self, request: web.Request) -> Any:
        too_large = (
            f"request body exceeds the {self.max_body} byte limit "
            "(operationsApi.network.maxBodySize)"
        )
        if request.content_length is not None and request.content_length > self.max_body:
            raise PayloadTooLarge(too_large)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge(too_large) from None
        if not raw.strip():
            raise ClientError("Body cannot be empty: send a JSON object with an 'operation'")
        try:
            return jsonx.loads(raw)
        except ValueError as exc:
            raise ClientError(f"malformed JSON in request body: {exc}") from None
