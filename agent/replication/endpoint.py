"""Incoming replication connections: admit the peer, then serve it as a publisher.

Admission is decided at the WebSocket upgrade, before any frame, in this order:
1. a TLS client certificate (already verified by OpenSSL against the CAs this node trusts)
   whose CN or a SAN names a node in hdb_nodes or in routes, and whose serial is not revoked;
2. on plain ws, an identity proof header (agent/certs/proof.py): a certificate chain that
   verifies against the same CAs, signed by its key, fresh and never seen before;
3. an Authorization header naming a super user (the first add_node exchange);
4. on the explicitly insecure `replication.port` only, the peer's IP (routes or hdb_nodes).
Anything else is refused with 401 (nothing proved) or 403 (proved, but not a member, or
revoked) and a JSON reason. An admitted node may only speak as itself: its Hello and its
add_node_back / remove_node_back must carry its own name.

The first frame says what it wants: Hello starts a publisher session for one database,
OpRequest runs one cluster operation (add_node_back, remove_node_back, ...) and answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from agent.core import messages as m
from agent.core.errors import RemoteProtocolError
from agent.errors import Forbidden, Unauthorized
from agent.replication.connection import Connection, FrameTooLarge, LinkClosed, checked, ending
from agent.replication.publisher import PublisherSession

log = logging.getLogger(__name__)

MTLS, SIGNED, CREDENTIALS, ADDRESS = "mtls", "signed", "credentials", "address"


@dataclass(frozen=True)
class Identity:
    """Who an admitted peer is: a node (by certificate or proof), a super user, or an IP."""

    kind: str  # "node", "user" or "ip"
    name: str
    # for "ip": the node names that address may speak as (None: any name not taken elsewhere)
    names: frozenset | None = None
    security: dict = field(default_factory=dict, compare=False)
    taken: frozenset = frozenset()  # for "ip": names that belong to nodes at other addresses

    def may_speak_as(self, node: object) -> bool:
        if self.kind == "user":
            return True
        if self.kind == "node":
            return node == self.name
        return node in self.names if self.names is not None else node not in self.taken


class Endpoint:
    """Admit and serve replication connections for a Replicator."""

    def __init__(self, replicator) -> None:
        self.replicator = replicator

    def authorize(
        self,
        remote_ip: str,
        headers: dict,
        peer_certificate: bytes | None = None,
        by_address: bool = False,
    ) -> Identity:
        """Return who the peer is, or raise Unauthorized/Forbidden with the reason.

        `peer_certificate` is the DER of a TLS client certificate OpenSSL verified;
        `by_address` is true only on the insecure replication.port listener.
        """
        rep = self.replicator
        refused: list[str] = []
        forbidden = None
        if peer_certificate is not None:
            try:
                return rep.trust.certificate_identity(peer_certificate)
            except Forbidden as exc:
                forbidden = exc
        header = _header(headers, "X-Harper-Node")
        if header:
            try:
                return rep.trust.proof_identity(header)
            except Forbidden as exc:
                forbidden = forbidden or exc
            except Unauthorized as exc:
                refused.append(exc.message)
        auth = _header(headers, "Authorization")
        if auth:
            user = rep.authenticator.authenticate(auth)
            if not user.permissions.super_user:
                raise Forbidden(f"user '{user.username}' may not replicate: super user needed")
            return Identity("user", user.username, security={"mode": CREDENTIALS})
        if forbidden is not None:
            raise forbidden
        if by_address:
            identity = rep.trust.address_identity(remote_ip)
            if identity is not None:
                return identity
            refused.append(f"no hdb_nodes entry or route for {remote_ip}")
        raise Unauthorized(
            "; ".join(refused or ["no certificate, identity proof or credentials"])
            + "; run add_node with a super user's credentials"
        )

    def answer_headers(self, identity: Identity, headers: dict) -> dict:
        """Headers for the 101: this node's proof over the client's nonce (mutual identity)."""
        header = _header(headers, "X-Harper-Node")
        if not header or identity.kind == "ip":
            return {}
        nonce = self.replicator.trust.nonce_of(header)
        return self.replicator.trust.answer(identity, nonce)

    async def serve_dedicated(self, conn: Connection) -> None:
        """Serve a connection from a dedicated listener, admitted by its upgrade hook."""
        identity = getattr(conn, "identity", None)
        if identity is None:
            await conn.close(1008, "not admitted")
            return
        await self.serve(conn, identity)

    async def serve(self, conn: Connection, identity: Identity) -> None:
        """Run one admitted connection to its end."""
        try:
            first = m.parse(await conn.recv())
            if isinstance(first, m.OpRequest):
                await self._operation(conn, first, identity)
                return
            if isinstance(first, m.Hello) and not identity.may_speak_as(first.node):
                reason = f"admitted as {identity.name}, but Hello says {first.node}"
                log.warning("refused replication from %s: %s", conn.remote_ip, reason)
                await conn.close(1008, reason)
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
                max_payload=rep.max_payload,
            )
            session.security = identity.security
            rep.publishers.add(session)
            try:
                await session.run(first)
            finally:
                rep.publishers.discard(session)
        except (LinkClosed, RemoteProtocolError) as exc:
            # a bad first frame (a session logs and closes for itself): say why, once
            code, reason, level = ending(exc)
            who = f"{identity.name} ({conn.remote_ip})"
            log.log(level, "replication connection from %s ended: %s", who, reason)
            await conn.close(code, reason)
        finally:
            await conn.close()

    async def _operation(self, conn: Connection, msg, identity: Identity) -> None:
        try:
            body = await self.replicator.peer_operation(msg.body, identity)
            reply = m.OpResult(msg.id, 200, body)
        except Exception as exc:
            status = getattr(exc, "status", 500)
            reply = m.OpResult(msg.id, status, {"error": getattr(exc, "message", str(exc))})
        try:
            data = checked(m.serialize(reply), self.replicator.max_payload, "the answer")
        except FrameTooLarge as exc:  # the caller would refuse the frame: say so instead
            data = m.serialize(m.OpResult(msg.id, 413, {"error": str(exc)}))
        await conn.send(data)


def _header(headers: dict, name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value
