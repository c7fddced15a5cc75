"""Certificate operations, as HarperDB: add/remove/list_certificates, create_csr, sign_certificate.

Rows live in system.hdb_certificate and replicate; a private key given with add_certificate is
written to `<rootPath>/keys/<name>.pem` (0600) on this node only and is never stored in a row,
answered or logged. A CA added or removed counts for the next connection, without a restart
(the replicator re-reads the table on every commit to it).
"""

from __future__ import annotations

from agent import jsonx
from agent.certs import authority
from agent.certs.authority import CertError
from agent.certs.material import NODE_KEY, row_for
from agent.errors import ClientError, NotFound
from agent.ops.registry import operation
from agent.ops.request import Request
from agent.storage import query
from agent.storage.system import CERTIFICATES, SYSTEM
from agent.storage.writes import LocalTransaction, WriteOp

MAX_NAME = 200


def _material(req: Request):
    if req.services.certs is None:
        raise ClientError("certificates are not available on this node")
    return req.services.certs


async def _rows(req: Request) -> dict[str, dict]:
    docs = await req.services.storage.get(SYSTEM).read(query.search, CERTIFICATES, None)
    rows = [jsonx.loads(d) for d in docs]
    return {r["name"]: r for r in rows if isinstance(r.get("name"), str)}


async def _write(req: Request, op: WriteOp) -> None:
    storage = req.services.storage
    await storage.get(SYSTEM).write(LocalTransaction([op], storage.clock, req.services.node_name))


def _strings(req: Request, name: str) -> list | None:
    value = req.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ClientError(f"'{name}' must be an array of strings")
    return value


@operation("add_certificate", super_user=True)
async def add_certificate(req: Request) -> dict:
    """Add a certificate (and its key, kept in keys/ on this node only) or a CA."""
    material = _material(req)
    text = req.string("certificate")
    is_ca = req.get("is_authority")
    if not isinstance(is_ca, bool):
        raise ClientError("'is_authority' is required: true for a CA, false otherwise")
    try:
        chain = authority.parse_certificates(text)
    except CertError as exc:
        raise ClientError(f"'certificate': {exc}") from None
    leaf = chain[0]
    if is_ca and not authority.is_authority(leaf):
        raise ClientError("'certificate' is not a CA certificate, but is_authority is true")
    name = (
        req.string("name", required=False)
        or authority.common_name(leaf.subject)
        or min(authority.names(leaf), default="")
    )
    if not name or len(name) > MAX_NAME or any(c in name for c in "/\\\x00\n\r"):
        raise ClientError("'name' must be 1-200 characters without slashes or line breaks")
    existing = (await _rows(req)).get(name)
    key_name = existing.get("private_key_name") if existing else None
    private = req.get("private_key")
    if private is not None:
        if not isinstance(private, str):
            raise ClientError("'private_key' must be a PEM string")
        try:
            key = authority.load_key(private)
        except CertError as exc:
            raise ClientError(f"'private_key': {exc}") from None
        if not authority.same_key(leaf, key):
            raise ClientError("'private_key' is not the key of 'certificate'")
        key_name = f"{_file_name(name)}.pem"
    elif not is_ca and not key_name:
        raise ClientError("a certificate that is not a CA needs its 'private_key'")
    row = row_for(
        name,
        leaf,
        authority_row=is_ca,
        key_name=key_name,
        uses=_strings(req, "uses"),
        chain_pem="".join(authority.pem(c) for c in chain),
    )
    hosts = _strings(req, "hosts")
    if hosts is not None:
        row["hosts"] = hosts
    if private is not None:
        material.save_key(key_name, private.encode())
    await _write(req, WriteOp("upsert", CERTIFICATES, [row]))
    return {"message": f"Successfully added certificate: {name}"}


@operation("remove_certificate", super_user=True)
async def remove_certificate(req: Request) -> dict:
    material = _material(req)
    name = req.string("name")
    rows = await _rows(req)
    row = rows.get(name)
    if row is None:
        raise NotFound(f"certificate {name!r} does not exist")
    await _write(req, WriteOp("delete", CERTIFICATES, ids=[name]))
    key_name = row.get("private_key_name")
    still_used = any(r.get("private_key_name") == key_name for n, r in rows.items() if n != name)
    if isinstance(key_name, str) and key_name != NODE_KEY and not still_used:
        material.remove_key(key_name)
    return {"message": f"Successfully removed {name}"}


@operation("list_certificates", super_user=True)
async def list_certificates(req: Request) -> list:
    return [row for _, row in sorted((await _rows(req)).items())]


@operation("create_csr", super_user=True)
async def create_csr(req: Request) -> dict:
    """A CSR for this node's own key (the key never leaves keys/)."""
    material = _material(req)
    try:
        csr = material.create_csr(_strings(req, "hosts"))
    except CertError as exc:
        raise ClientError(f"'hosts': {exc}") from None
    return {"csr": csr, "name": material.hostname}


@operation("sign_certificate", super_user=True)
async def sign_certificate(req: Request) -> dict:
    """Sign a CSR with this node's CA, for server and client use."""
    material = _material(req)
    try:
        certificate, ca = material.sign_csr(req.string("csr"))
    except CertError as exc:
        raise ClientError(f"'csr': {exc}") from None
    return {"certificate": certificate, "signingCA": ca}


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
