"""How replication connections open: the dedicated listeners, and dials that prove both sides.

Listeners: the insecure `replication.port` (admission by address allowed, warned about) and
`replication.securePort` (mutual TLS); both decide admission at the upgrade through the
endpoint. Dials: wss presents this node's certificate (none, unverified, for a first add_node
with verify_tls false); ws sends an identity proof and checks the one the peer answers with
(agent/replication/trust.py decides what that proved). The operations API port's upgrades
arrive through agent/ops/server.py instead.
"""

from __future__ import annotations

import logging

from agent.certs.authority import CertError
from agent.errors import AgentError
from agent.replication.transport import DialError, serve

log = logging.getLogger(__name__)


async def listen(rep) -> list:
    """Start the dedicated listeners the settings ask for; return their servers."""
    servers = []
    if rep.insecure_port:
        log.warning(
            "replication.port %s:%d admits peers by address alone (insecure: use it on "
            "private networks only; replication.securePort or add_node links prove identity)",
            *rep.insecure_port,
        )

        def by_address(remote_ip: str, headers: dict, certificate) -> tuple:
            return _admit(rep, remote_ip, headers, certificate, by_address=True)

        servers.append(
            await serve(
                rep.endpoint.serve_dedicated,
                by_address,
                *rep.insecure_port,
                compression=rep.compression,
                max_size=rep.max_payload,
            )
        )
    secure = rep.config.listener("replication.securePort")
    if secure:

        def by_proof(remote_ip: str, headers: dict, certificate) -> tuple:
            return _admit(rep, remote_ip, headers, certificate)

        servers.append(
            await serve(
                rep.endpoint.serve_dedicated,
                by_proof,
                *secure,
                tls=rep.trust.material.server_context(),
                compression=rep.compression,
                max_size=rep.max_payload,
            )
        )
    return servers


def _admit(rep, remote_ip: str, headers: dict, certificate, by_address: bool = False) -> tuple:
    identity = rep.endpoint.authorize(remote_ip, headers, certificate, by_address=by_address)
    return identity, rep.endpoint.answer_headers(identity, headers)


def warnings(rep) -> list[str]:
    if not rep.insecure_port:
        return []
    return [f"replication.port {rep.insecure_port[1]} admits peers by address alone (insecure)"]


async def connect(
    rep,
    url: str,
    *,
    peer_name: str | None,
    authorization: str | None,
    verify_tls: bool,
    timeout: float,
):
    """Dial `url` (through rep.dial, the seam tests replace); raise DialError if refused or
    if the peer does not prove it is who we meant."""
    headers = {"Authorization": authorization} if authorization else {}
    secure = url.lower().startswith("wss://")
    tls = nonce = None
    if secure:
        try:
            tls = rep.trust.material.client_context(verify_tls)
        except (AgentError, AttributeError) as exc:
            raise DialError(f"cannot dial {url}: {exc}") from None
    else:
        proof_headers, nonce = rep.trust.dial_headers(peer_name, url)
        headers.update(proof_headers)
    conn = await rep.dial(
        url,
        headers=headers,
        local_host=rep.local_host,
        tls=tls,
        compression=rep.compression,
        timeout=timeout,
    )
    try:
        conn.security = rep.trust.dialled(
            getattr(conn, "headers", None) or {},
            getattr(conn, "peer_certificate", None),
            secure,
            nonce,
            peer_name,
            authorization,
        )
    except CertError as exc:
        await conn.close(1008, "identity not proved")
        raise DialError(f"{url}: {exc}") from None
    return conn
