"""add_node's certificate exchange: CAs and a signed certificate travel with the join.

The caller sends the CA its certificate chains to (`ca`) and, on a first join with
credentials while its certificate is only signed by its own CA, a CSR made from its own key
(the key never moves). The callee signs the CSR with its CA only for a super user's
credentials or for the node the link was admitted as, and answers with the certificate, the
CA that signed it (`signingCA`) and the CA its own certificate chains to (`usingCA`). Each side
records the other's CA in the other's hdb_nodes row (`ca`), so trust spreads with membership;
the caller stores the signed certificate and its CA in system.hdb_certificate and uses it from
then on. Everything received is checked before anything is written.
"""

from __future__ import annotations

from agent import jsonx
from agent.certs import authority
from agent.certs.authority import CertError
from agent.errors import ClientError, Forbidden
from agent.storage.system import CERTIFICATES, SYSTEM
from agent.storage.writes import LocalTransaction, WriteOp


def _material(replicator):
    return replicator.trust.material


def offer(replicator, credentialed: bool) -> dict:
    """Fields add_node_back carries: our CA, and a CSR when a first join may get us signed."""
    material = _material(replicator)
    if material is None:
        return {}
    out = {}
    ca = material.using_ca_pem()
    if ca:
        out["ca"] = ca
    if credentialed and material.signed_by_own_ca():
        out["csr"] = material.create_csr()
    return out


def own_fields(replicator) -> dict:
    material = _material(replicator)
    ca = material.using_ca_pem() if material is not None else None
    return {"ca": ca} if ca else {}


def peer_fields(ca_pem, existing: dict) -> dict:
    """The `ca` to record in a peer's row: the one it sent, if it is a CA certificate."""
    if not isinstance(ca_pem, str):
        return {"ca": existing["ca"]} if isinstance(existing.get("ca"), str) else {}
    try:
        ca = authority.parse_certificates(ca_pem)[0]
    except CertError as exc:
        raise ClientError(f"the peer's CA is not usable: {exc}") from None
    if not authority.is_authority(ca):
        raise ClientError("the peer's 'ca' is not a CA certificate")
    return {"ca": authority.pem(ca)}


def revoked(given, existing: dict) -> list[str]:
    """Serials revoked for a peer: the row's, united with those given (as HarperDB merges)."""
    if given is not None and (
        not isinstance(given, list) or not all(isinstance(s, (str, int)) for s in given)
    ):
        raise ClientError("'revoked_certificates' must be an array of serial numbers")
    old = existing.get("revoked_certificates")
    merged = {authority.normalize_serial(s) for s in (old if isinstance(old, list) else [])}
    merged |= {authority.normalize_serial(s) for s in given or []}
    return sorted(merged)


def sign_for(replicator, body: dict, identity) -> dict:
    """Callee: sign the caller's CSR if it may have one signed; {} when none was asked."""
    csr = body.get("csr")
    material = _material(replicator)
    if csr is None or material is None:
        return _using(material)
    if not isinstance(csr, str):
        raise ClientError("'csr' must be a PEM certificate signing request")
    if identity.kind not in ("user", "node"):
        raise Forbidden("a CSR is signed only for a super user's credentials or a proved node")
    try:
        certificate, ca = material.sign_csr(csr)
    except CertError as exc:
        raise ClientError(f"cannot sign the CSR: {exc}") from None
    leaf = authority.parse_certificates(certificate)[0]
    if authority.common_name(leaf.subject) != body.get("hostname"):
        raise Forbidden(
            f"the CSR is for {authority.common_name(leaf.subject)!r}, "
            f"not the caller {body.get('hostname')!r}"
        )
    return {**_using(material), "certificate": certificate, "signingCA": ca}


def _using(material) -> dict:
    ca = material.using_ca_pem() if material is not None else None
    return {"usingCA": ca} if ca else {}


def accept(replicator, answer: dict, peer: str) -> list[dict]:
    """Caller: check the certificate the peer signed for us; return the rows to store."""
    certificate, ca = answer.get("certificate"), answer.get("signingCA")
    material = _material(replicator)
    if certificate is None or material is None:
        return []
    if not isinstance(certificate, str) or not isinstance(ca, str):
        raise ClientError(f"{peer} answered with a malformed certificate")
    try:
        return material.signed_rows(certificate, ca, peer)
    except CertError as exc:
        raise ClientError(f"{peer} signed a certificate this node cannot use: {exc}") from None


async def store(replicator, rows: list[dict]) -> None:
    if not rows:
        return
    db = replicator.storage.get(SYSTEM)
    op = WriteOp("upsert", CERTIFICATES, jsonx.loads(jsonx.dumps(rows)))
    await db.write(LocalTransaction([op], replicator.storage.clock, replicator.node))
