"""Who this node trusts, and how it proves itself: the replication side of agent/certs.

`Trust` keeps what admission needs from the last reconcile: the hdb_nodes rows (names, the CA
each carries, revoked serials) and the routes, and the node's certificate Material (kept
current with system.hdb_certificate). It answers the endpoint's questions (is this
certificate or proof a member? which names may this IP speak as?) and gives dials what they
present: a TLS context for wss, an identity proof header for ws, and checks the proof the
peer answers with, so a process that took a peer's address cannot pose as it either way.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from agent.certs import authority, proof
from agent.certs.authority import CertError
from agent.errors import Forbidden, Unauthorized
from agent.replication.endpoint import ADDRESS, CREDENTIALS, MTLS, SIGNED, Identity
from agent.replication.peers import resolve

log = logging.getLogger(__name__)


class Trust:
    def __init__(self, node: str, material, insecure: bool) -> None:
        self.node = node
        self.material = material  # agent.certs.material.Material, or None (tests)
        self.insecure = insecure  # replication.port is set: address-only peers are accepted
        self.rows: dict[str, dict] = {}
        self.routes: list = []  # Peer objects from replication.routes
        self._ips: dict[str, set[str]] = {}

    # --- kept current by the replicator -----------------------------------------------

    def update(self, rows: dict[str, dict], routes: list, certificates: list[dict]) -> None:
        self.rows = rows
        self.routes = routes
        if self.material is not None:
            node_cas = [r["ca"] for r in rows.values() if isinstance(r.get("ca"), str)]
            if self.material.refresh(certificates, node_cas):
                log.info("replication trust changed: %d CAs", len(self.material.trusted()))
        ips: dict[str, set[str]] = {}
        for name, row in rows.items():
            host = urlsplit(str(row.get("url") or "")).hostname
            for ip in resolve(host) if host else ():
                ips.setdefault(ip, set()).add(name)
        for peer in routes:
            for ip in resolve(peer.host):
                ips.setdefault(ip, set())
                if peer.name:
                    ips[ip].add(peer.name)
        self._ips = ips

    # --- admission ----------------------------------------------------------------------

    def certificate_identity(self, der: bytes) -> Identity:
        """A TLS client certificate OpenSSL verified: which member does it name?"""
        try:
            leaf = authority.from_der(der)
        except CertError as exc:
            raise Forbidden(str(exc)) from None
        name = self._member(authority.names(leaf), leaf)
        return Identity("node", name, security=_described(MTLS, leaf))

    @staticmethod
    def describe(der: bytes) -> dict:
        """The security of a wss link we dialled, from the peer's certificate."""
        try:
            return _described(MTLS, authority.from_der(der))
        except CertError:
            return {"mode": MTLS}

    def proof_identity(self, header: str) -> Identity:
        if self.material is None:
            raise Unauthorized("this node has no certificates to check an identity proof")
        try:
            claim = self.material.check_proof(header)
        except CertError as exc:
            raise Unauthorized(f"identity proof refused: {exc}") from None
        name = self._member({claim.node}, claim.leaf)
        return Identity("node", name, security=_described(SIGNED, claim.leaf))

    def _member(self, names: set[str], leaf) -> str:
        """Return the member node the names stand for; Forbidden if none or revoked."""
        serial = authority.serial(leaf)
        for name in sorted(names):
            row = self.rows.get(name)
            if row is not None and name != self.node:
                self._check_revoked(serial, row.get("revoked_certificates"), name)
                return name
        for peer in self.routes:
            if peer.host in names or (peer.name and peer.name in names):
                self._check_revoked(serial, peer.revoked, peer.name or peer.host)
                return peer.name or next(iter(sorted(names - {peer.host})), peer.host)
        raise Forbidden(
            f"certificate for {', '.join(sorted(names))} names no node in hdb_nodes or routes"
        )

    def revoked_reason(self, security: dict) -> str | None:
        """Why a link admitted with `security` must end now (its certificate revoked)."""
        serial, peer = security.get("serial"), security.get("peer")
        if not serial:
            return None
        revoked = set()
        for row in self.rows.values():
            if isinstance(row.get("revoked_certificates"), list):
                revoked |= {authority.normalize_serial(s) for s in row["revoked_certificates"]}
        for route in self.routes:
            revoked |= {authority.normalize_serial(s) for s in route.revoked or []}
        return f"certificate {serial} of {peer} is revoked" if serial in revoked else None

    @staticmethod
    def _check_revoked(serial: str, revoked, name: str) -> None:
        if not isinstance(revoked, list):
            return
        if serial in {authority.normalize_serial(s) for s in revoked}:
            raise Forbidden(f"certificate {serial} of {name} is revoked")

    def address_identity(self, ip: str) -> Identity | None:
        """Who an address may be on the insecure listener; None if it is no peer's."""
        if ip not in self._ips:
            return None
        known = self._ips[ip]
        taken = frozenset(n for other, ns in self._ips.items() if other != ip for n in ns)
        taken |= {self.node}  # nobody speaks as this node to this node
        # a route whose node has not said its name yet may take any name no other address has
        return Identity("ip", ip, frozenset(known) or None, {"mode": ADDRESS}, taken)

    # --- proofs exchanged at the upgrade -------------------------------------------------

    @staticmethod
    def nonce_of(header: str) -> str | None:
        try:
            return proof.read(header).nonce
        except CertError:
            return None

    def answer(self, identity: Identity, nonce: str | None) -> dict:
        if nonce is None or self.material is None:
            return {}
        made = self.material.make_proof(identity.name, nonce, answering=True)
        return {proof.HEADER: made[0]} if made else {}

    def dial_headers(self, target: str | None, url: str) -> tuple[dict, str | None]:
        """The proof to send when dialling `target` over ws, and the nonce it carries.

        A peer whose name is not known yet (a bare route) is addressed by the host dialled,
        which its certificate names: the proof is good for that node only."""
        if self.material is None:
            return {}, None
        made = self.material.make_proof(target or urlsplit(url).hostname or "")
        if made is None:
            return {}, None
        return {proof.HEADER: made[0]}, made[1]

    def dialled(
        self,
        answer: dict,
        certificate: bytes | None,
        secure: bool,
        nonce: str | None,
        peer_name: str | None,
        authorization: str | None,
    ) -> dict:
        """How a dial proved the peer (its security, for status); CertError if it did not.

        `answer` holds the 101's headers, `certificate` the peer's TLS certificate (DER).
        """
        if secure:
            if certificate is None:
                return {"mode": CREDENTIALS, "transport": "wss"}
            return {**self.describe(certificate), "transport": "wss"}
        if nonce is not None and any(k.lower() == proof.HEADER.lower() for k in answer):
            try:
                return {**self.check_answer(answer, nonce, peer_name), "transport": "ws"}
            except CertError:
                # a first add_node does not know the peer's CA yet; the insecure
                # replication.port admits by address, whatever the proofs say meanwhile
                if not authorization and not self.insecure:
                    raise
        if authorization:
            return {"mode": CREDENTIALS, "transport": "ws"}
        if self.insecure or nonce is None:
            return {"mode": ADDRESS, "transport": "ws"}
        raise CertError("the peer did not prove its identity (no certificate proof)")

    def check_answer(self, headers: dict, nonce: str, expected: str | None) -> dict:
        """Verify the peer's answering proof; return the link's security description."""
        value = next((v for k, v in headers.items() if k.lower() == proof.HEADER.lower()), None)
        if not value:
            raise CertError("the peer did not prove its identity (no certificate proof)")
        claim = self.material.check_proof(value, expect_nonce=nonce)
        try:
            if expected:
                # the node we meant to reach: enough, even if it is no member any more (a
                # remove_node tells the removed node after deleting its row)
                if claim.node != expected:
                    raise CertError(f"the peer proved it is {claim.node!r}, not {expected!r}")
                row = self.rows.get(expected) or {}
                self._check_revoked(
                    authority.serial(claim.leaf), row.get("revoked_certificates"), expected
                )
            else:
                self._member({claim.node}, claim.leaf)
        except Forbidden as exc:
            raise CertError(exc.message) from None
        return _described(SIGNED, claim.leaf)


def _described(mode: str, leaf) -> dict:
    return {
        "mode": mode,
        "peer": authority.common_name(leaf.subject),
        "ca": authority.common_name(leaf.issuer),
        "serial": authority.serial(leaf),
    }
