"""The operations API over HTTP: the only module importing aiohttp.

`POST /` takes `{"operation": ...}` JSON; `GET /health` answers without credentials. Every
error, whatever raised it, leaves here as JSON `{"error": ...}` with its status and a JSON
content type (HarperDB sometimes sends none).
"""

from __future__ import annotations

import logging
import ssl
import time
from typing import Any, Awaitable, Callable

from aiohttp import web

from agent import __version__, jsonx
from agent.errors import AgentError, ClientError, PayloadTooLarge
from agent.ops.registry import lookup
from agent.ops.request import Request
from agent.ops.services import Services

log = logging.getLogger(__name__)
SERVER = f"harper-agent/{__version__}"
UpgradeHandler = Callable[[Any, str, dict], Awaitable[None]]


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


class OpsServer:
    """Serve the operations API on one host and port (and its TLS twin when configured)."""

    def __init__(self, services: Services, max_body: int) -> None:
        self.services = services
        self.max_body = max_body
        self.upgrade: UpgradeHandler | None = None  # replication's WebSocket endpoint
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=max_body, handler_args={"access_log": None})
        self.app.router.add_post("/", self._operation)
        self.app.router.add_get("/health", self._health)
        self.app.router.add_get("/", self._root)

    async def start(
        self, host: str, port: int, tls: ssl.SSLContext | None = None, *more: tuple
    ) -> None:
        """Bind and serve; `more` holds extra (host, port, ssl) listeners."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=10.0)
        await self._runner.setup()
        for h, p, context in ((host, port, tls), *more):
            site = web.TCPSite(self._runner, h, p, ssl_context=context, reuse_address=True)
            await site.start()

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, then close."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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

    async def _root(self, request: web.Request) -> web.StreamResponse:
        if self.upgrade is not None and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.upgrade(request, request.remote or "", dict(request.headers))
        return json_response(
            {"error": 'send operations as POST / with a JSON body {"operation": ...}'}, 405
        )

    async def _operation(self, request: web.Request) -> web.Response:
        try:
            body = await self._body(request)
            op = lookup(body)
            user = None
            header = request.headers.get("Authorization")
            if op.auth:
                user = self.services.authenticator.authenticate(header)
            req = Request(body, user, self.services, header)
            if op.super_user:
                req.require_super_user()
            result = await op.handler(req)
        except Exception as exc:  # one place turns every failure into JSON
            return error_response(exc)
        return json_response(result)

    async def _body(self, request: web.Request) -> Any:
        if request.content_length is not None and request.content_length > self.max_body:
            raise PayloadTooLarge(f"request body exceeds the {self.max_body} byte limit")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge(f"request body exceeds the {self.max_body} byte limit") from None
        if not raw.strip():
            raise ClientError("Body cannot be empty: send a JSON object with an 'operation'")
        try:
            return jsonx.loads(raw)
        except ValueError as exc:
            raise ClientError(f"malformed JSON in request body: {exc}") from None


def websocket_response() -> type:
    """Return aiohttp's WebSocketResponse class for the replication endpoint adapter."""
    return web.WebSocketResponse
