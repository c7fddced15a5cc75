"""A node's certificate material: its key, its CA, its certificates, the CAs it trusts.

Files live in `<rootPath>/keys/` (0700), private keys 0600: `privateKey.pem` is the node's own
key (its CA and its node certificate share it, as HarperDB's do); keys given with
add_certificate or the tls settings are kept as `<name>.pem`. Certificates are rows of
system.hdb_certificate (they replicate, so every node learns every CA), never private keys.

`Material.refresh(rows, node_cas)` is called whenever those rows or hdb_nodes change: it picks
this node's certificate (an operator's from the settings first, then one another node's CA
signed in add_node, then the one its own CA signed) and the trusted CAs (every authority row,
every hdb_nodes `ca`, the settings' CA files, and the system roots when enableRootCAs), and
rebuilds the TLS contexts. Listeners keep one server context whose SNI hook swaps in the
current one on every handshake, so a CA added or removed counts for the next connection.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from agent.certs import authority, proof, tls
from agent.certs.authority import CertError
from agent.errors import AgentError

log = logging.getLogger(__name__)
NODE_KEY = "privateKey.pem"
OPERATOR = "operator"  # `uses` mark of a certificate the settings name


@dataclass
class Configured:
    """One certificate the settings name (tls.*, operationsApi.tls.*, replication.*)."""

    setting: str
    certificate: str
    private_key: str | None = None
    authority: str | None = None


@dataclass
class _Chosen:
    name: str
    chain_pem: str
    key_path: Path
    leaf: x509.Certificate
    key: object = field(repr=False, default=None)


def row_for(
    name: str,
    certificate: x509.Certificate,
    *,
    authority_row: bool,
    key_name: str | None,
    uses: list | None,
    chain_pem: str | None = None,
    self_signed: bool | None = None,
) -> dict:
    """Return the hdb_certificate row for a certificate (never a private key in it)."""
    return {
        "name": name,
        "uses": uses,
        "certificate": chain_pem or authority.pem(certificate),
        "is_authority": authority_row,
        "private_key_name": key_name,
        "details": authority.details(certificate).wire(),
        "is_self_signed": authority.is_self_signed(certificate)
        if self_signed is None
        else self_signed,
    }


class Material:
    """Keys, certificates and TLS contexts of one node."""

    def __init__(self, root: Path, hostname: str, hosts: list[str], enable_root_cas: bool) -> None:
        self.keys = Path(root) / "keys"
        self.hostname = hostname
        self.hosts = [authority.canonical_host(h) for h in hosts if h]
        self.enable_root_cas = enable_root_cas
        self.configured: list[Configured] = []
        self._lock = threading.Lock()
        self._trusted: list[x509.Certificate] = []
        self._trusted_pem = ""
        self._chosen: _Chosen | None = None
        self._server: ssl.SSLContext | None = None  # the current context, swapped in by SNI
        self._listening: list[ssl.SSLContext] = []
        self._clients: dict[bool, ssl.SSLContext] = {}
        self.replays = proof.ReplayGuard()
        self._inputs: int | None = None
        self._own_ca: x509.Certificate | None = None

    # --- files -------------------------------------------------------------------------

    def node_key(self):
        """Return this node's private key, creating it (0600) the first time."""
        path = self.keys / NODE_KEY
        if not path.exists():
            write_private(path, authority.key_pem(authority.new_key()))
        return self._load_key(path)

    def _load_key(self, path: Path):
        try:
            return authority.load_key(path.read_bytes())
        except CertError:
            raise AgentError(f"{path}: not an unencrypted PEM private key (EC or RSA)") from None
        except OSError as exc:
            raise AgentError(f"{path}: cannot read: {exc.strerror}") from None

    def own_ca_row_name(self) -> str:
        return authority.ca_name(self.hostname)

    def initial_rows(self, existing: dict[str, dict]) -> list[dict]:
        """Return the rows init writes: this node's CA and its certificate, if not there yet.

        A restart finds them and writes nothing; a root whose key was replaced gets new ones.
        """
        key = self.node_key()
        ca_name = self.own_ca_row_name()
        ca_row = existing.get(ca_name)
        ca = _first(ca_row)
        out = []
        if ca is None or not authority.same_key(ca, key):
            ca = authority.make_ca(key, self.hostname)
            out.append(row_for(ca_name, ca, authority_row=True, key_name=NODE_KEY, uses=None))
        node = _first(existing.get(self.hostname))
        if (
            node is None
            or not authority.same_key(node, key)
            or not authority.issued_by(node, ca)
            or not set(self.hosts) <= authority.names(node)
        ):
            node = authority.make_node_certificate(key, self.hostname, self.hosts, ca, key)
            out.append(
                row_for(
                    self.hostname,
                    node,
                    authority_row=False,
                    key_name=NODE_KEY,
                    uses=["https", "wss"],
                    self_signed=True,  # signed by its own CA: peers learn to trust it at add_node
                )
            )
        return out

    def configured_rows(self) -> list[dict]:
        """Load the certificates the settings name; refuse one that does not name this node."""
        out = []
        for item in self.configured:
            chain = self._read_certificates(item.setting, item.certificate)
            leaf = chain[0]
            if not authority.is_authority(leaf) and self.hostname not in authority.names(leaf):
                raise AgentError(
                    f"{item.setting}: {item.certificate} names "
                    f"{', '.join(sorted(authority.names(leaf))) or 'nothing'}, not this node's "
                    f"replication.hostname {self.hostname!r}"
                )
            name = f"{self.hostname}-{item.setting.split('.')[0]}"  # never the init rows' names
            key_name = None
            if item.private_key:
                key = self._load_key(Path(item.private_key))
                if not authority.same_key(leaf, key):
                    raise AgentError(
                        f"{item.setting}: {item.private_key} is not the key of {item.certificate}"
                    )
                key_name = f"{_file_name(name)}.pem"
                self.save_key(key_name, Path(item.private_key).read_bytes())
            chain_pem = "".join(authority.pem(c) for c in chain)
            out.append(
                row_for(
                    name,
                    leaf,
                    authority_row=authority.is_authority(leaf),
                    key_name=key_name,
                    uses=[OPERATOR, item.setting],
                    chain_pem=chain_pem,
                )
            )
            if item.authority:
                for ca in self._read_certificates(item.setting, item.authority):
                    out.append(
                        row_for(
                            authority.common_name(ca.subject) or Path(item.authority).stem,
                            ca,
                            authority_row=True,
                            key_name=None,
                            uses=[OPERATOR],
                        )
                    )
        return out

    def _read_certificates(self, setting: str, path: str) -> list[x509.Certificate]:
        try:
            return authority.parse_certificates(Path(path).read_bytes())
        except OSError as exc:
            raise AgentError(f"{setting}: cannot read {path}: {exc.strerror}") from None
        except CertError as exc:
            raise AgentError(f"{setting}: {path}: {exc}") from None

    def save_key(self, name: str, pem: bytes) -> None:
        path = self.keys / _file_name(name)
        if path.exists() and path.read_bytes() == pem:
            return
        write_private(path, pem)

    def remove_key(self, name: str) -> None:
        (self.keys / _file_name(name)).unlink(missing_ok=True)

    # --- choosing and trusting ---------------------------------------------------------

    def refresh(self, rows: list[dict], node_cas: list[str]) -> bool:
        """Re-pick this node's certificate and the trusted CAs; return True if either changed."""
        inputs = hash(
            (
                tuple(
                    sorted(
                        (
                            str(r.get("name")),
                            str(r.get("certificate")),
                            bool(r.get("is_authority")),
                            str(r.get("private_key_name")),
                            str(r.get("uses")),
                        )
                        for r in rows
                    )
                ),
                tuple(sorted(str(c) for c in node_cas)),
            )
        )
        if inputs == self._inputs:
            return False
        self._inputs = inputs
        trusted: dict[bytes, x509.Certificate] = {}
        for text in [r.get("certificate") for r in rows if r.get("is_authority")] + node_cas:
            if not isinstance(text, str):
                continue
            try:
                for ca in authority.parse_certificates(text):
                    trusted[ca.fingerprint(_SHA256)] = ca
            except CertError:
                continue
        chosen = self._choose(rows)
        self._own_ca = self._find_own_ca(rows)
        trusted_pem = "".join(sorted(authority.pem(c) for c in trusted.values()))
        with self._lock:
            same_trust = trusted_pem == self._trusted_pem
            same_cert = (
                chosen is not None
                and self._chosen is not None
                and chosen.chain_pem == self._chosen.chain_pem
            )
            if same_trust and same_cert:
                return False
            self._trusted = list(trusted.values())
            self._trusted_pem = trusted_pem
            self._chosen = chosen
            self._rebuild()
        return True

    def _choose(self, rows: list[dict]) -> _Chosen | None:
        own_ca = None
        ranked = []
        for row in rows:
            if row.get("name") == self.own_ca_row_name():
                own_ca = _first(row)
        for row in rows:
            if row.get("is_authority") or not isinstance(row.get("private_key_name"), str):
                continue
            try:
                chain = authority.parse_certificates(row.get("certificate") or "")
            except CertError:
                continue
            leaf = chain[0]
            key_path = self.keys / _file_name(row["private_key_name"])
            if self.hostname not in authority.names(leaf) or not key_path.exists():
                continue
            try:
                key = authority.load_key(key_path.read_bytes())
            except CertError:
                continue
            if (
                not authority.same_key(leaf, key)
                or leaf.not_valid_after_utc.timestamp() < time.time()
            ):
                continue
            uses = row.get("uses") or []
            rank = (
                0 if OPERATOR in uses else 2 if own_ca and authority.issued_by(leaf, own_ca) else 1
            )
            ranked.append(
                (rank, -leaf.not_valid_after_utc.timestamp(), row["name"], chain, key_path, key)
            )
        if not ranked:
            return None
        rank, _, name, chain, key_path, key = min(ranked, key=lambda r: r[:3])
        return _Chosen(name, "".join(authority.pem(c) for c in chain), key_path, chain[0], key)

    def _find_own_ca(self, rows: list[dict]) -> x509.Certificate | None:
        ca = _first(next((r for r in rows if r.get("name") == self.own_ca_row_name()), None))
        key_path = self.keys / NODE_KEY
        if ca is None or not key_path.exists():
            return None
        return ca if authority.same_key(ca, self._load_key(key_path)) else None

    # --- add_node's certificate exchange -----------------------------------------------

    def own_ca_pem(self) -> str | None:
        return authority.pem(self._own_ca) if self._own_ca is not None else None

    def using_ca_pem(self) -> str | None:
        """The PEM of the CA this node's certificate chains to (its hdb_nodes `ca`)."""
        chosen = self._chosen
        if chosen is None:
            return None
        for ca in [*authority.parse_certificates(chosen.chain_pem)[1:], *self.trusted()]:
            if authority.issued_by(chosen.leaf, ca):
                return authority.pem(ca)
        return None

    def signed_by_own_ca(self) -> bool:
        chosen = self._chosen
        return bool(chosen and self._own_ca and authority.issued_by(chosen.leaf, self._own_ca))

    def create_csr(self, hosts: list[str] | None = None) -> str:
        csr = authority.create_csr(self.node_key(), self.hostname, [*self.hosts, *(hosts or [])])
        return authority.csr_pem(csr)

    def sign_csr(self, csr_pem: str) -> tuple[str, str]:
        """Sign a peer's CSR with this node's CA; return (certificate, CA) as PEM."""
        if self._own_ca is None:
            raise CertError("this node has no CA of its own to sign with")
        issued = authority.sign_csr(csr_pem, self._own_ca, self.node_key())
        return authority.pem(issued), authority.pem(self._own_ca)

    def signed_rows(self, certificate_pem: str, ca_pem: str, signer: str) -> list[dict]:
        """The row for a certificate a peer's CA issued to this node, after checking it is ours."""
        leaf = authority.parse_certificates(certificate_pem)[0]
        ca = authority.parse_certificates(ca_pem)[0]
        if not authority.same_key(leaf, self.node_key()):
            raise CertError("the signed certificate is not for this node's key")
        if self.hostname not in authority.names(leaf):
            raise CertError(f"the signed certificate does not name {self.hostname!r}")
        if not authority.is_authority(ca) or not authority.issued_by(leaf, ca):
            raise CertError("the signed certificate was not issued by the CA sent with it")
        # The CA travels in the chain, not as a row of its own: its owner's row (with the
        # owner's key file name) replicates, and a copy written here would replace it.
        return [
            row_for(
                f"{self.hostname}-signed-by-{signer}",
                leaf,
                authority_row=False,
                key_name=NODE_KEY,
                uses=["replication"],
                chain_pem=authority.pem(leaf) + authority.pem(ca),
                self_signed=False,
            )
        ]

    def trusted(self) -> list[x509.Certificate]:
        with self._lock:
            return list(self._trusted)

    @property
    def certificate_name(self) -> str | None:
        return self._chosen.name if self._chosen else None

    def leaf(self) -> x509.Certificate | None:
        return self._chosen.leaf if self._chosen else None

    # --- TLS contexts ------------------------------------------------------------------

    def _rebuild(self) -> None:
        if self._chosen is None:
            self._server = None
            self._clients = {}
            return
        chain_file = self.keys / ".active-certificate.pem"
        write_private(chain_file, self._chosen.chain_pem.encode())
        key, trusted, roots = self._chosen.key_path, self._trusted_pem, self.enable_root_cas
        self._server = tls.server(chain_file, key, trusted, roots)
        self._clients = {True: tls.client(chain_file, key, trusted, roots)}

    def server_context(self) -> ssl.SSLContext:
        """Return a context for a listener: every handshake uses the context current then."""
        with self._lock:
            if self._server is None:
                raise AgentError(
                    f"no certificate for {self.hostname!r} with its private key in {self.keys}"
                )
            base = self._server
        holder = tls.for_listener(base, self.current_server)
        self._listening.append(holder)
        return holder

    def client_context(self, verify: bool = True) -> ssl.SSLContext:
        """A context for dialling: full verification and our certificate, or neither.

        `verify=False` is the first add_node with verify_tls false: no certificate is
        presented either, since the peer does not trust our CA yet (the credentials admit us).
        """
        if not verify:
            return tls.unverified_client()
        with self._lock:
            client = self._clients.get(True)
        if client is None:
            raise AgentError(f"no certificate for {self.hostname!r}: cannot dial wss")
        return client

    def current_server(self) -> ssl.SSLContext | None:
        return self._server

    # --- identity proofs on plain ws ---------------------------------------------------

    def make_proof(
        self, target: str, nonce: str | None = None, answering: bool = False
    ) -> tuple[str, str] | None:
        """Return (header value, nonce) proving this node to `target`, or None without a cert."""
        chosen = self._chosen
        if chosen is None:
            return None
        nonce = nonce or proof.new_nonce()
        value = proof.make(
            chosen.key,
            chosen.chain_pem,
            self.hostname,
            target,
            nonce,
            int(time.time() * 1000),
            proof.ANSWER if answering else proof.DIAL,
        )
        return value, nonce

    def _addressed_as(self) -> set[str]:
        """Names a dialler may address this node by: those its certificate alone carries."""
        chosen = self._chosen
        names = authority.names(chosen.leaf) if chosen else set()
        return {authority.canonical_host(n) for n in names} - proof.SHARED_NAMES

    def check_proof(self, value: str, expect_nonce: str | None = None) -> proof.Claim:
        """Verify a peer's proof; return the claim (its node name and chain) or raise CertError."""
        claim = proof.read(value)
        wanted = proof.DIAL if expect_nonce is None else proof.ANSWER
        if claim.kind != wanted:  # an answer reflected back as a dial, or the reverse
            raise CertError(f"proof is a {claim.kind}, not a {wanted}")
        if claim.target != self.hostname and claim.target not in self._addressed_as():
            raise CertError(f"proof is addressed to {claim.target!r}, not {self.hostname!r}")
        if expect_nonce is not None:
            if claim.nonce != expect_nonce:
                raise CertError("proof answers another challenge")
            now_ms = int(time.time() * 1000)
            if abs(now_ms - claim.time_ms) > self.replays.window_ms:
                raise CertError("proof is stale")
        authority.verify_chain(claim.chain, self.trusted())
        if claim.node not in authority.names(claim.leaf):
            raise CertError(
                f"proof claims {claim.node!r} but its certificate names "
                f"{', '.join(sorted(authority.names(claim.leaf)))}"
            )
        if expect_nonce is None:  # remembered only once trusted: strangers cannot fill it
            self.replays.check(claim, int(time.time() * 1000))
        return claim


def _first(row: dict | None) -> x509.Certificate | None:
    if not row or not isinstance(row.get("certificate"), str):
        return None
    try:
        return authority.parse_certificates(row["certificate"])[0]
    except CertError:
        return None


def _file_name(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    return safe or "key"


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file atomically with `mode` from the first byte (0600 for keys)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_SHA256 = authority.hashes.SHA256()
