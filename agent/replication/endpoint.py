"""Incoming replication connections: admit the peer, then serve it as a publisher.

A peer is admitted by its IP (listed in routes or hdb_nodes) on insecure listeners, or by an
Authorization header naming a super user (the first add_node exchange). The first frame says
what it wants: Hello starts a publisher session for one database, OpRequest runs one
cluster operation (add_node_back, remove_node_back) and answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agent.core import messages as m
from agent.core.errors import RemoteProtocolError
from agent.errors import Forbidden, Unauthorized
from agent.replication.connection import Connection, LinkClosed
from agent.replication.publisher import PublisherSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    kind: str  # "ip" or "user"
    name: str


class Endpoint:
    """Admit and serve replication connections for a Replicator."""

    def __init__(self, replicator) -> None:
        self.replicator = replicator

    def authorize(self, remote_ip: str, headers: dict) -> Identity:
        """Return who the peer is, or raise Unauthorized/Forbidden with the reason."""
        header = headers.get("Authorization") or headers.get("authorization")
        if header:
            user = self.replicator.authenticator.authenticate(header)
            if not user.permissions.super_user:
                raise Forbidden(f"user '{user.username}' may not replicate: super user needed")
            return Identity("user", user.username)
        if remote_ip in self.replicator.allowed_ips():
            return Identity("ip", remote_ip)
        raise Unauthorized(
            f"no hdb_nodes entry or route for {remote_ip}; run add_node with credentials"
        )

    async def serve_dedicated(self, conn: Connection) -> None:
        """Serve a connection from a dedicated replication listener (authorize first)."""
        try:
            identity = self.authorize(conn.remote_ip, conn.headers)
        except (Unauthorized, Forbidden) as exc:
            log.info("refused replication connection from %s: %s", conn.remote_ip, exc)
            await conn.close(1008, exc.message)
            return
        await self.serve(conn, identity)

    async def serve(self, conn: Connection, identity: Identity) -> None:
        """Run one admitted connection to its end."""
        try:
            first = m.parse(await conn.recv())
            if isinstance(first, m.OpRequest):
                await self._operation(conn, first, identity)
                return
            rep = self.replicator
            session = PublisherSession(
                conn,
                rep.node,
                rep.storage,
                rep.tails,
                rep.replicated_databases(),
                rep.timing,
                rep.chunk_records,
                rep.publish_policy,
                rep.direct_origins,
            )
            rep.publishers.add(session)
            try:
                await session.run(first)
            finally:
                rep.publishers.discard(session)
        except (LinkClosed, RemoteProtocolError) as exc:
            log.info("replication connection from %s ended: %s", conn.remote_ip, exc)
        finally:
            await conn.close()

    async def _operation(self, conn: Connection, msg, identity: Identity) -> None:
        try:
            body = await self.replicator.peer_operation(msg.body, identity)
            reply = m.OpResult(msg.id, 200, body)
        except Exception as exc:
            status = getattr(exc, "status", 500)
            reply = m.OpResult(msg.id, status, {"error": getattr(exc, "message", str(exc))})
        await conn.send(m.serialize(reply))
