"""The operations API over HTTP: the only module importing aiohttp.

`POST /` takes `{"operation": ...}` JSON; `GET /health` and `GET /metrics` (Prometheus text,
numbers only) answer without credentials. Every error, whatever raised it (aiohttp's own
parser included), leaves here as JSON `{"error": ...}` with its status and a JSON content
type (HarperDB sometimes sends none).

What one client can cost is bounded here: credentials are checked from the headers before
the body is read (a caller without any reads at most UNAUTHENTICATED_BODY); a connection
waits at most `keepalive` for a request's headers and `timeout` between body chunks;
at most `max_connections` are open at once; large answers are encoded a slice at a time so
other clients keep their latency.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from typing import Any, Protocol

from aiohttp import WSCloseCode, WSMsgType, http_exceptions, web

from agent import __version__, jsonx
from agent.errors import AgentError, ClientError, PayloadTooLarge, Unauthorized
from agent.ops import metrics
from agent.ops.auth import BASIC, CALLER_ADDRESS, OPERATION, TooManyAttempts
from agent.ops.registry import lookup
from agent.ops.request import Request
from agent.ops.services import Services

log = logging.getLogger(__name__)
SERVER = f"harper-agent/{__version__}"
SUBPROTOCOL = "harperctl-replication-v1"
SHUTDOWN_TIMEOUT = 10.0  # seconds in-flight requests get to finish on SIGTERM
REFUSAL_BODY_WAIT = 0.5  # seconds a request refused while stopping waits for its body
# Operations needing no credentials (create_authentication_tokens, refresh_operation_token
# with the token in the body) are small; anything larger without credentials is refused.
UNAUTHENTICATED_BODY = 64 * 1024
# Answers with more items than this are encoded SLICE items at a time, yielding in between:
# encoding 200,000 rows at once holds the loop (and the GIL) for ~100 ms.
SLICE = 2000


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
        response = json_response({"error": exc.message}, exc.status)
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, web.HTTPException):  # raised inside aiohttp (e.g. a WebSocket handshake)
        return json_response({"error": exc.text or exc.reason}, exc.status)
    log.exception("operation failed unexpectedly")
    return json_response({"error": f"internal error: {type(exc).__name__}"}, 500)


class _ClientGone(Exception):
    """The client closed its connection before its request body arrived."""


class _Connection(web.RequestHandler):
    """aiohttp's per-connection protocol, answering its own errors in the one JSON shape."""

    __slots__ = ()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request aiohttp could not parse (or a handler crash) as JSON, and close."""
        if request.writer.output_size > 0:  # an answer has started: nothing more can be said
            raise ConnectionError("response already started")
        if status == 500:
            log.error("request handling failed", exc_info=exc)
            text = "internal error"
        else:
            status = _parse_error_status(exc, status)
            log.debug("bad HTTP request from %s: %s", request.remote, exc or message)
            text = f"bad HTTP request: {getattr(exc, 'message', None) or message or status}"
        response = json_response({"error": text}, status)
        response.force_close()
        return response


def _parse_error_status(exc: BaseException | None, status: int) -> int:
    """414 for an over-long request line, 431 for an over-long header, else aiohttp's."""
    if isinstance(exc, http_exceptions.LineTooLong):
        # aiohttp names neither which line nor why; the line it quotes tells: a request
        # target starts with "/", anything else is a header
        return 414 if _LONG_TARGET.search(str(exc)) else 431
    return status


_LONG_TARGET = re.compile(r"reading: (bytearray\()?b'/")
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
)


class _Refused(asyncio.Protocol):
    """A connection over operationsApi.network.maxConnections: say so and close at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        body = jsonx.dumps(
            {"error": "too many connections (operationsApi.network.maxConnections); retry"}
        )
        transport.write(_REFUSED % (len(body), body))  # type: ignore[attr-defined]
        transport.close()


class _Site(web.TCPSite):
    """A TCPSite whose connections come from our factory (the connection cap)."""

    __slots__ = ("_factory",)

    def __init__(self, runner: web.BaseRunner, *args: Any, factory: Any, **kwargs: Any):
        super().__init__(runner, *args, **kwargs)
        self._factory = factory

    async def start(self) -> None:
        await web.BaseSite.start(self)
        self._server = await asyncio.get_running_loop().create_server(
            self._factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
        )


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

    def __init__(
        self,
        services: Services,
        max_body: int,
        max_frame: int = 0,
        *,
        timeout: float = 120.0,
        keepalive: float = 30.0,
        max_connections: int = 4096,
    ) -> None:
        self.services = services
        self.max_body = max_body
        self.max_frame = max_frame  # replication.maxPayload for upgraded connections (0: none)
        # Longest silence while a body arrives (operationsApi.network.timeout; 0: none)
        self.timeout = timeout or None
        # Longest wait for a request's headers, on a new connection or after an answer.
        # aiohttp's keep-alive timer runs from then until the headers are complete and data
        # arriving does not extend it, so a trickled request line or header is cut off too.
        waits = [t for t in (keepalive, timeout) if t]
        self.header_wait = min(waits) if waits else 0
        self.max_connections = max_connections
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
            site = _Site(
                self._runner, h, p, ssl_context=context, reuse_address=True, factory=self._protocol
            )
            await site.start()

    def _protocol(self) -> asyncio.BaseProtocol:
        """Make the protocol of a new connection: a refusal once at the cap."""
        server = self._runner.server if self._runner is not None else None
        if server is None or len(server.connections) >= self.max_connections:
            return _Refused()
        return _Connection(
            server,
            loop=asyncio.get_running_loop(),
            keepalive_timeout=self.header_wait,
            # how long an unread body is drained after the answer, to keep the connection
            lingering_time=min(10.0, self.timeout or 10.0),
            access_log=None,
        )

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
        from agent.replication.status import cluster_status

        rep = self.services.replication
        status = await cluster_status(rep) if rep is not None else None
        # read right after the status, with no await between: both describe one moment
        moved = metrics.traffic(rep) if rep is not None else []
        body, content_type = metrics.of(self.services).render(
            status, moved, request.headers.get("Accept")
        )
        return web.Response(body=body, headers={"Content-Type": content_type, "Server": SERVER})

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
            identity = await self._admit(remote, headers, certificate)
            answer = self.endpoint.answer_headers(identity, headers)
            ws = _ReplicationSocket(self.max_frame, protocols=[SUBPROTOCOL], compress=False)
            ws.headers.update(answer)  # our own identity proof, over the peer's nonce
            await ws.prepare(request)
        except Exception as exc:
            return error_response(exc)
        await self.endpoint.serve(_Upgraded(ws, remote, headers), identity)
        return ws

    async def _admit(self, remote: str, headers: dict, certificate: bytes | None) -> Any:
        """Ask the endpoint who the peer is, with any password checked off the event loop.

        The endpoint checks a Basic header synchronously, so it is checked here first (with
        the login back-off): a good one is then remembered and costs the endpoint nothing; a
        bad one is not shown to the endpoint at all, which may still admit the peer by its
        certificate or identity proof, and otherwise refuses with the header's own error.
        """
        assert self.endpoint is not None
        auth = self.services.authenticator
        name = next((k for k in headers if k.lower() == "authorization"), None)
        if name is None or not auth.would_hash(headers[name]):
            return self.endpoint.authorize(remote, headers, certificate)
        try:
            await auth.check(headers[name], remote)
        except Unauthorized as failed:
            rest = {k: v for k, v in headers.items() if k != name}
            try:
                return self.endpoint.authorize(remote, rest, certificate)
            except Unauthorized:
                raise failed from None
        return self.endpoint.authorize(remote, headers, certificate)

    async def _operation(self, request: web.Request) -> web.StreamResponse:
        self._in_flight += 1
        self._idle.clear()
        started, response = time.perf_counter(), None
        try:
            if self._stopping:
                response = await self._refuse(request)
            else:
                response = await self._run_operation(request)
            return response
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
            metrics.of(self.services).operation_done(
                request.get(metrics.OPERATION_KEY),
                response.status if response is not None else None,
                time.perf_counter() - started,
            )

    async def _refuse(self, request: web.Request) -> web.Response:
        """Answer 503 while stopping, after reading the body if it comes at once.

        Reading it lets the client see the answer rather than a reset. The wait is short:
        once aiohttp's cleanup has begun it drops what arrives, and a body still on its way
        would otherwise hold the stop for the whole shutdown timeout.
        """
        try:
            async with asyncio.timeout(REFUSAL_BODY_WAIT):
                await request.read()
        except (web.HTTPRequestEntityTooLarge, TimeoutError, ConnectionError):
            pass
        response = json_response({"error": "the node is shutting down; nothing was done"}, 503)
        response.force_close()
        return response

    async def _run_operation(self, request: web.Request) -> web.StreamResponse:
        remote = request.remote or ""
        CALLER_ADDRESS.set(remote)  # for the back-off of logins inside handlers
        header = request.headers.get("Authorization")
        try:
            # Credentials first: a bad header costs no body, and without one only a small
            # body is read (the operations that need no credentials are small).
            caller = await self.services.authenticator.check(header, remote) if header else None
            body = await self._body(request, caller is not None)
            op = lookup(body)
            request[metrics.OPERATION_KEY] = op.name  # for _operation's count
            user = _operation_user(caller) if op.auth else None
            req = Request(body, user, self.services, header)
            if op.super_user:
                req.require_super_user()
            result = await op.handler(req)
        except _ClientGone:
            log.debug("client %s closed its connection before its request body arrived", remote)
            return json_response({"error": "the request body did not arrive"}, 400)
        except Exception as exc:  # one place turns every failure into JSON
            response = error_response(exc)
            if isinstance(exc, _Stalled):
                await _answer_and_close(request, response)
            return response
        metrics.of(self.services).answered(op.name, body, result)
        if isinstance(result, list) and len(result) > SLICE:
            return await _stream_list(request, result)
        return json_response(result)

    async def _body(self, request: web.Request, authenticated: bool) -> Any:
        limit = self.max_body if authenticated else UNAUTHENTICATED_BODY
        if authenticated:
            too_large: AgentError = PayloadTooLarge(
                f"request body exceeds the {self.max_body} byte limit "
                "(operationsApi.network.maxBodySize)"
            )
        else:
            too_large = Unauthorized("Must login")
        if request.content_length is not None and request.content_length > limit:
            raise too_large
        raw = await self._read(request, limit, too_large)
        if not raw.strip():
            raise ClientError("Body cannot be empty: send a JSON object with an 'operation'")
        try:
            return jsonx.loads_request(raw)
        except ValueError as exc:
            raise ClientError(f"malformed JSON in request body: {exc}") from None

    async def _read(self, request: web.Request, limit: int, too_large: AgentError) -> bytes:
        """Read the body, at most `limit` bytes and no silence longer than `timeout`."""
        chunks, size = [], 0
        try:
            while True:
                async with asyncio.timeout(self.timeout):
                    chunk = await request.content.readany()
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
        except TimeoutError:
            raise _Stalled(
                f"no request body arrived for {self.timeout:g} s (operationsApi.network.timeout)"
            ) from None
        except ConnectionError:
            raise _ClientGone() from None
        except http_exceptions.HttpProcessingError as exc:
            if request.transport is None or request.transport.is_closing():
                raise _ClientGone() from None
            raise ClientError(f"malformed request body: {exc.message}") from None


class _Stalled(ClientError):
    """408: the body stopped arriving; the connection is closed with the answer."""

    status = 408


async def _answer_and_close(request: web.Request, response: web.StreamResponse) -> None:
    """Send `response`, then close the connection at once (not after lingering for a body
    that stopped arriving)."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()  # the transport sends what is buffered, then closes


def _operation_user(caller: tuple | None):
    """Return the user an operation needing credentials runs as: never a refresh token's."""
    if caller is None:
        raise Unauthorized("Must login")
    user, kind = caller
    if kind not in (BASIC, OPERATION):
        raise Unauthorized("invalid token")
    return user


async def _stream_list(request: web.Request, items: list) -> web.StreamResponse:
    """Send a long JSON array SLICE items at a time, letting other requests run between."""
    response = web.StreamResponse(headers={"Server": SERVER})
    response.content_type = "application/json"
    await response.prepare(request)
    for start in range(0, len(items), SLICE):
        part = jsonx.dumps(items[start : start + SLICE])
        # each slice is "[...]": drop its brackets, then bracket the whole
        head = b"[" if start == 0 else b","
        tail = b"]" if start + SLICE >= len(items) else b""
        await response.write(head + part[1:-1] + tail)
        await asyncio.sleep(0)
    await response.write_eof()
    return response
