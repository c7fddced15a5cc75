"""A node's certificate material: files, rows, choosing, trusting, TLS and identity proofs."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from agent.certs import authority, proof
from agent.certs.authority import CertError
from agent.certs.material import NODE_KEY, Configured, Material
from agent.errors import AgentError

DAY = dt.timedelta(days=1)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@dataclass
class Node:
    """A Material with the rows its init wrote, as storage would hand them back."""

    material: Material
    rows: list[dict]

    @property
    def ca_pem(self) -> str:
        return self.material.own_ca_pem()

    def trust(self, *others: Node, extra_rows: list[dict] = ()) -> bool:
        return self.material.refresh([*self.rows, *extra_rows], [o.ca_pem for o in others])


def make_node(root: Path, hostname: str, hosts: list[str] | None = None) -> Node:
    material = Material(root / hostname, hostname, hosts or [], enable_root_cas=False)
    rows = material.initial_rows({})
    material.refresh(rows, [])
    return Node(material, rows)


@pytest.fixture
def a(tmp_path) -> Node:
    return make_node(tmp_path, "node-a")


@pytest.fixture
def b(tmp_path) -> Node:
    return make_node(tmp_path, "node-b")


@pytest.fixture
def c(tmp_path) -> Node:
    return make_node(tmp_path, "node-c")


# --- a real TLS handshake over a socket pair -------------------------------------------------


@dataclass
class Handshake:
    server_error: Exception | None = None
    client_error: Exception | None = None
    client_seen_by_server: dict | None = None
    server_seen_by_client: dict | None = None

    @property
    def ok(self) -> bool:
        return self.server_error is None and self.client_error is None


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str) -> Handshake:
    """Connect a client to a server over a socket pair; say what each side saw."""
    left, right = socket.socketpair()
    left.settimeout(5)
    right.settimeout(5)
    seen = Handshake()

    def serve() -> None:
        try:
            with server.wrap_socket(left, server_side=True) as tls:
                seen.client_seen_by_server = tls.getpeercert()
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError) as exc:
            seen.server_error = exc
        finally:
            left.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(right, server_hostname=server_hostname) as tls:
            seen.server_seen_by_client = tls.getpeercert()
            # TLS 1.3 finishes the client's handshake before the server checks its certificate
            if tls.recv(2) != b"ok":
                raise ConnectionResetError("the server closed the connection")
    except (ssl.SSLError, OSError) as exc:
        seen.client_error = exc
    finally:
        right.close()
        thread.join(10)
    assert not thread.is_alive()
    return seen


def common_name_of(peer: dict | None) -> str | None:
    for rdn in (peer or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


def test_two_nodes_that_trust_each_others_ca_complete_a_handshake(a, b):
    assert a.trust(b) and b.trust(a)
    seen = handshake(a.material.server_context(), b.material.client_context(), "node-a")
    assert seen.ok, seen
    assert common_name_of(seen.client_seen_by_server) == "node-b"
    assert common_name_of(seen.server_seen_by_client) == "node-a"
    back = handshake(b.material.server_context(), a.material.client_context(), "node-b")
    assert back.ok, back


def test_without_trust_the_handshake_fails(a, b):
    seen = handshake(a.material.server_context(), b.material.client_context(), "node-a")
    assert seen.client_error is not None
    assert "certificate verify failed" in str(seen.client_error)


def test_a_server_refuses_a_client_whose_ca_it_does_not_trust(a, b):
    b.trust(a)  # the client trusts the server, not the other way round
    seen = handshake(a.material.server_context(), b.material.client_context(), "node-a")
    assert seen.server_error is not None
    assert not seen.ok


def test_a_client_refuses_a_server_under_another_name(a, b):
    a.trust(b)
    b.trust(a)
    seen = handshake(a.material.server_context(), b.material.client_context(), "node-c")
    assert "Hostname mismatch" in str(seen.client_error)


def test_a_client_without_verification_presents_no_certificate(a, b):
    context = b.material.client_context(verify=False)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    seen = handshake(a.material.server_context(), context, "node-a")
    assert seen.ok, seen
    assert not seen.client_seen_by_server


@pytest.mark.parametrize("server_hostname", ["node-a", "127.0.0.1"], ids=["sni", "no-sni"])
def test_a_listener_honours_a_ca_trusted_later_and_drops_a_removed_one(a, b, server_hostname):
    b.trust(a)
    listener = a.material.server_context()  # made once, as a server would at start
    client = b.material.client_context()
    assert not handshake(listener, client, server_hostname).ok

    assert a.trust(b)
    seen = handshake(listener, client, server_hostname)
    assert seen.ok, seen
    assert common_name_of(seen.client_seen_by_server) == "node-b"

    assert a.trust()
    assert handshake(listener, client, server_hostname).server_error is not None


def test_a_listener_presents_a_certificate_chosen_later(a, b):
    listener = a.material.server_context()
    client = b.material.client_context()  # b trusts its own CA only
    assert "certificate verify failed" in str(handshake(listener, client, "node-a").client_error)
    signed = a.material.signed_rows(*b.material.sign_csr(a.material.create_csr()), "node-b")
    assert a.trust(b, extra_rows=signed)  # b's CA: from b's hdb_nodes row
    seen = handshake(listener, client, "node-a")
    assert seen.ok, seen
    issuer = dict(rdn[0] for rdn in seen.server_seen_by_client["issuer"])
    assert issuer["commonName"] == "HarperDB-Certificate-Authority-node-b"


def test_no_certificate_no_contexts(tmp_path):
    material = Material(tmp_path, "node-a", [], enable_root_cas=False)
    material.refresh([], [])
    assert material.leaf() is None
    with pytest.raises(AgentError, match="no certificate for 'node-a'"):
        material.server_context()
    with pytest.raises(AgentError, match="cannot dial wss"):
        material.client_context()
    assert material.make_proof("node-b") is None
    assert material.certificate_name is None and material.using_ca_pem() is None


# --- init rows and files --------------------------------------------------------------------


def test_init_makes_a_private_key_and_two_rows_without_key_material(tmp_path):
    material = Material(tmp_path, "node-a", ["10.0.0.7"], enable_root_cas=False)
    rows = material.initial_rows({})
    key_file = tmp_path / "keys" / NODE_KEY
    assert _mode(key_file) == 0o600
    assert _mode(tmp_path / "keys") == 0o700
    assert [r["name"] for r in rows] == ["HarperDB-Certificate-Authority-node-a", "node-a"]
    ca_row, node_row = rows
    assert ca_row["is_authority"] and not node_row["is_authority"]
    assert ca_row["private_key_name"] == node_row["private_key_name"] == NODE_KEY
    assert node_row["uses"] == ["https", "wss"] and node_row["is_self_signed"] is True
    assert "IP Address:10.0.0.7" in node_row["details"]["subject_alt_name"]
    text = json.dumps(rows)
    assert "PRIVATE" not in text
    assert key_file.read_text().strip().splitlines()[1] not in text
    ca, leaf = (authority.parse_certificates(r["certificate"])[0] for r in rows)
    assert authority.issued_by(leaf, ca)


def test_init_again_with_its_rows_writes_nothing(tmp_path):
    material = Material(tmp_path, "node-a", [], enable_root_cas=False)
    rows = material.initial_rows({})
    key = (tmp_path / "keys" / NODE_KEY).read_bytes()
    again = Material(tmp_path, "node-a", [], enable_root_cas=False)
    assert again.initial_rows({r["name"]: r for r in rows}) == []
    assert (tmp_path / "keys" / NODE_KEY).read_bytes() == key


def test_init_reissues_only_the_node_certificate_for_a_new_address(tmp_path):
    rows = Material(tmp_path, "node-a", [], False).initial_rows({})
    wider = Material(tmp_path, "node-a", ["10.0.0.9"], False)
    new = wider.initial_rows({r["name"]: r for r in rows})
    assert [r["name"] for r in new] == ["node-a"]
    assert "10.0.0.9" in authority.names(authority.parse_certificates(new[0]["certificate"])[0])


def test_init_with_a_replaced_key_reissues_both(tmp_path):
    rows = Material(tmp_path, "node-a", [], False).initial_rows({})
    (tmp_path / "keys" / NODE_KEY).unlink()
    new = Material(tmp_path, "node-a", [], False).initial_rows({r["name"]: r for r in rows})
    assert [r["name"] for r in new] == ["HarperDB-Certificate-Authority-node-a", "node-a"]


def test_init_again_with_a_non_canonical_address_writes_nothing(tmp_path):
    rows = Material(tmp_path, "node-a", ["fd00:0:0::7"], False).initial_rows({})
    again = Material(tmp_path, "node-a", ["fd00:0:0::7"], False)
    assert again.initial_rows({r["name"]: r for r in rows}) == []


def test_a_corrupt_node_key_names_the_file_not_its_content(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / NODE_KEY).write_text("hunter2")
    with pytest.raises(AgentError) as caught:
        Material(tmp_path, "node-a", [], False).initial_rows({})
    assert NODE_KEY in caught.value.message and "hunter2" not in caught.value.message


def test_save_and_remove_a_key(tmp_path):
    material = Material(tmp_path, "node-a", [], False)
    material.save_key("../escape.pem", b"secret")
    saved = tmp_path / "keys" / "_escape.pem"
    assert saved.read_bytes() == b"secret" and _mode(saved) == 0o600
    material.remove_key("../escape.pem")
    assert not saved.exists()
    material.remove_key("never-there.pem")


# --- choosing and trusting ------------------------------------------------------------------


def test_refresh_picks_the_node_certificate_and_trusts_its_own_ca(a):
    assert a.material.certificate_name == "node-a"
    assert authority.common_name(a.material.leaf().subject) == "node-a"
    assert [authority.common_name(c.subject) for c in a.material.trusted()] == [
        "HarperDB-Certificate-Authority-node-a"
    ]
    assert a.material.signed_by_own_ca()
    assert a.material.using_ca_pem() == a.ca_pem


def test_refresh_says_whether_anything_changed(a, b):
    assert a.material.refresh(a.rows, []) is False
    assert a.material.refresh(a.rows, [b.ca_pem]) is True
    assert a.material.refresh(a.rows, [b.ca_pem]) is False
    assert a.material.refresh(list(reversed(a.rows)), [b.ca_pem]) is False
    assert len(a.material.trusted()) == 2


def test_refresh_skips_garbage_rows_and_cas(a):
    garbage = {"name": "x", "certificate": "junk", "is_authority": True}
    not_text = {"name": "y", "certificate": 7, "is_authority": True}
    a.material.refresh([*a.rows, garbage, not_text], ["junk", authority.pem(a.material.leaf())])
    assert a.material.certificate_name == "node-a"
    assert len(a.material.trusted()) == 2  # own CA and the leaf given as a CA, once each


def test_refresh_ignores_a_certificate_whose_key_is_missing(a, b):
    foreign = [dict(r, name="stolen", uses=["https"]) for r in b.rows if not r["is_authority"]]
    foreign[0]["private_key_name"] = "absent.pem"
    a.material.refresh([*a.rows, *foreign], [])
    assert a.material.certificate_name == "node-a"


# --- identity proofs --------------------------------------------------------------------------


def test_a_proof_is_accepted_once(a, b):
    a.trust(b)
    value, nonce = b.material.make_proof("node-a")
    claim = a.material.check_proof(value)
    assert (claim.node, claim.target, claim.nonce) == ("node-b", "node-a", nonce)
    assert authority.common_name(claim.leaf.subject) == "node-b"
    with pytest.raises(CertError, match="already used"):
        a.material.check_proof(value)


def test_a_proof_may_address_a_node_by_a_name_only_its_certificate_carries(tmp_path, b):
    a = make_node(tmp_path, "node-a", ["10.0.0.7", "node-a.example"])
    a.trust(b)
    own = sorted(authority.names(a.material.leaf()) - proof.SHARED_NAMES - {"node-a"})
    assert own == ["10.0.0.7", "node-a.example"]
    for target in own:
        value, _ = b.material.make_proof(target)
        assert a.material.check_proof(value).node == "node-b"
    for shared in sorted(proof.SHARED_NAMES):  # every node's certificate names these
        value, _ = b.material.make_proof(shared)
        with pytest.raises(CertError, match="addressed to"):
            a.material.check_proof(value)


def test_a_proof_addressed_to_another_node_is_refused(a, b, c):
    a.trust(b)
    c.trust(b)
    value, _ = b.material.make_proof("node-c")
    with pytest.raises(CertError, match="addressed to 'node-c', not 'node-a'"):
        a.material.check_proof(value)
    assert c.material.check_proof(value).node == "node-b"


def test_a_proof_from_an_untrusted_ca_is_refused(a, b, c):
    a.trust(b)
    value, _ = c.material.make_proof("node-a")
    with pytest.raises(CertError, match="does not chain to a trusted CA"):
        a.material.check_proof(value)


def test_a_proof_from_a_ca_no_longer_trusted_is_refused(a, b):
    a.trust(b)
    a.material.check_proof(b.material.make_proof("node-a")[0])
    a.trust()
    with pytest.raises(CertError, match="does not chain"):
        a.material.check_proof(b.material.make_proof("node-a")[0])


def test_a_proof_claiming_a_name_its_certificate_lacks_is_refused(a, b):
    a.trust(b)
    key = authority.load_key((b.material.keys / NODE_KEY).read_bytes())
    chain = next(r["certificate"] for r in b.rows if r["name"] == "node-b")
    value = proof.make(key, chain, "node-z", "node-a", proof.new_nonce(), _now_ms())
    with pytest.raises(CertError, match="claims 'node-z'"):
        a.material.check_proof(value)


def test_a_stale_proof_is_refused(a, b):
    a.trust(b)
    key = authority.load_key((b.material.keys / NODE_KEY).read_bytes())
    chain = next(r["certificate"] for r in b.rows if r["name"] == "node-b")
    stale = _now_ms() - 10 * a.material.replays.window_ms
    value = proof.make(key, chain, "node-b", "node-a", proof.new_nonce(), stale)
    with pytest.raises(CertError, match="clocks"):
        a.material.check_proof(value)
    answer = proof.make(key, chain, "node-b", "node-a", "n1", stale, proof.ANSWER)
    with pytest.raises(CertError, match="stale"):
        a.material.check_proof(answer, expect_nonce="n1")


def test_an_answer_must_carry_the_challenge_nonce(a, b):
    a.trust(b)
    b.trust(a)
    dial, nonce = a.material.make_proof("node-b")
    b.material.check_proof(dial)
    answer, _ = b.material.make_proof("node-a", nonce, answering=True)
    assert a.material.check_proof(answer, expect_nonce=nonce).node == "node-b"
    with pytest.raises(CertError, match="not a answer"):
        a.material.check_proof(dial, expect_nonce=nonce)  # a dial is no answer
    with pytest.raises(CertError, match="another challenge"):
        a.material.check_proof(answer, expect_nonce="other")


def test_an_answer_cannot_be_replayed_as_a_dial(a, b):
    a.trust(b)
    b.trust(a)
    dial, nonce = a.material.make_proof("node-b")
    b.material.check_proof(dial)
    answer, _ = b.material.make_proof("node-a", nonce, answering=True)
    a.material.check_proof(answer, expect_nonce=nonce)
    with pytest.raises(CertError, match="is a answer, not a dial"):
        a.material.check_proof(answer)


def test_a_refused_proof_leaves_nothing_behind(a, c):
    """Strangers with a self-made CA must not fill the replay guard."""
    for _ in range(3):
        with pytest.raises(CertError):
            a.material.check_proof(c.material.make_proof("node-a")[0])
    assert a.material.replays._seen == {}


def _now_ms() -> int:
    return int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)


# --- add_node's certificate exchange ----------------------------------------------------------


def test_a_csr_signed_by_a_peer_becomes_a_ca_row_and_a_certificate_row(a, b):
    certificate, ca = b.material.sign_csr(a.material.create_csr(["10.0.0.7"]))
    assert ca == b.ca_pem
    rows = a.material.signed_rows(certificate, ca, "node-b")
    [leaf_row] = rows  # b's CA rides in the chain; b's own row for it replicates
    assert authority.parse_certificates(leaf_row["certificate"])[1:] == [
        authority.parse_certificates(ca)[0]
    ]
    assert leaf_row["name"] == "node-a-signed-by-node-b"
    assert not leaf_row["is_authority"] and leaf_row["private_key_name"] == NODE_KEY
    assert leaf_row["uses"] == ["replication"] and leaf_row["is_self_signed"] is False
    assert "PRIVATE" not in json.dumps(rows)
    leaf = authority.parse_certificates(leaf_row["certificate"])[0]
    assert {"node-a", "10.0.0.7"} <= authority.names(leaf)


def test_a_peer_signed_certificate_is_preferred_and_lets_both_sides_connect(a, b):
    signed = a.material.signed_rows(*b.material.sign_csr(a.material.create_csr()), "node-b")
    a.trust(b, extra_rows=signed)
    assert a.material.certificate_name == "node-a-signed-by-node-b"
    assert not a.material.signed_by_own_ca()
    assert a.material.using_ca_pem() == b.ca_pem
    # b trusts only its own CA, which signed a's certificate; a trusts b's CA through the row
    assert handshake(b.material.server_context(), a.material.client_context(), "node-b").ok
    assert a.material.check_proof(b.material.make_proof("node-a")[0]).node == "node-b"
    assert b.material.check_proof(a.material.make_proof("node-b")[0]).node == "node-a"


def test_signed_rows_refuse_a_certificate_for_another_key(a, b, c):
    certificate, ca = b.material.sign_csr(c.material.create_csr())
    with pytest.raises(CertError, match="not for this node's key"):
        a.material.signed_rows(certificate, ca, "node-b")


def test_signed_rows_refuse_a_certificate_for_another_hostname(a, b):
    csr = authority.csr_pem(authority.create_csr(a.material.node_key(), "node-z", []))
    certificate, ca = b.material.sign_csr(csr)
    with pytest.raises(CertError, match="does not name 'node-a'"):
        a.material.signed_rows(certificate, ca, "node-b")


def test_signed_rows_refuse_a_ca_that_did_not_sign(a, b, c):
    certificate, _ = b.material.sign_csr(a.material.create_csr())
    with pytest.raises(CertError, match="not issued by the CA"):
        a.material.signed_rows(certificate, c.ca_pem, "node-b")
    leaf_pem = authority.pem(b.material.leaf())
    with pytest.raises(CertError, match="not issued by the CA"):
        a.material.signed_rows(certificate, leaf_pem, "node-b")


def test_signed_rows_refuse_garbage(a):
    with pytest.raises(CertError):
        a.material.signed_rows("junk", a.ca_pem, "node-b")


def test_a_node_without_its_own_ca_cannot_sign(tmp_path, a):
    bare = Material(tmp_path / "bare", "node-x", [], False)
    with pytest.raises(CertError, match="no CA of its own"):
        bare.sign_csr(a.material.create_csr())


def test_sign_csr_refuses_a_garbage_request(a):
    with pytest.raises(CertError):
        a.material.sign_csr("junk")


# --- certificates named in the settings -----------------------------------------------------


@dataclass
class Operator:
    """An operator's CA and a certificate it issued, written as the settings name them."""

    certificate: Path
    key: Path
    ca: Path
    leaf: x509.Certificate


def issue(
    folder: Path,
    common_name: str,
    dns: list[str],
    *,
    ca_key=None,
    not_after: dt.datetime | None = None,
) -> Operator:
    """Write an operator's CA, leaf and key with plain cryptography, as a real CA would."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ca_key or authority.new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Operator Root CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = authority.new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - 2 * DAY)
        .not_valid_after(not_after or now + 20 * DAY)
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns]), critical=False
        )
    leaf = builder.sign(ca_key, hashes.SHA256())
    paths = Operator(folder / "cert.pem", folder / "key.pem", folder / "ca.pem", leaf)
    paths.certificate.write_text(authority.pem(leaf))
    paths.key.write_bytes(authority.key_pem(key))
    paths.ca.write_text(authority.pem(ca))
    return paths


def configure(node: Node, op: Operator, setting: str = "tls.certificate") -> None:
    node.material.configured.append(
        Configured(setting, str(op.certificate), str(op.key), str(op.ca))
    )


def test_a_certificate_naming_another_host_is_refused(tmp_path, a):
    configure(a, issue(tmp_path / "op", "node-b", ["node-b", "node-b.example"]))
    with pytest.raises(AgentError, match="names node-b, node-b.example, not this node's"):
        a.material.configured_rows()


def test_a_key_that_does_not_match_is_refused(tmp_path, a):
    op = issue(tmp_path / "op", "node-a", [])
    op.key.write_bytes(authority.key_pem(authority.new_key()))
    configure(a, op)
    with pytest.raises(AgentError, match="is not the key of"):
        a.material.configured_rows()
    assert not (a.material.keys / "node-a-tls.pem").exists()


def test_unreadable_or_garbage_files_are_refused_by_setting(tmp_path, a):
    a.material.configured.append(Configured("tls.certificate", str(tmp_path / "missing.pem")))
    with pytest.raises(AgentError, match="tls.certificate: cannot read"):
        a.material.configured_rows()
    junk = tmp_path / "junk.pem"
    junk.write_text("junk")
    a.material.configured = [Configured("replication.certificate", str(junk))]
    with pytest.raises(AgentError, match="replication.certificate: .*not a PEM certificate"):
        a.material.configured_rows()


def test_a_configured_certificate_is_kept_with_its_key_and_chosen_first(tmp_path, a):
    op = issue(tmp_path / "op", "service", ["node-a.example", "node-a"])
    configure(a, op)
    rows = a.material.configured_rows()
    leaf_row, ca_row = rows
    assert leaf_row["name"] == "node-a-tls"
    assert leaf_row["uses"] == ["operator", "tls.certificate"]
    assert leaf_row["private_key_name"] == "node-a-tls.pem"
    assert ca_row["name"] == "Operator Root CA" and ca_row["is_authority"]
    assert ca_row["private_key_name"] is None
    assert "PRIVATE" not in json.dumps(rows)
    copied = a.material.keys / "node-a-tls.pem"
    assert copied.read_bytes() == op.key.read_bytes() and _mode(copied) == 0o600

    assert a.trust(extra_rows=rows)
    assert a.material.certificate_name == "node-a-tls"
    assert a.material.leaf() == op.leaf
    assert a.material.using_ca_pem() == op.ca.read_text()
    assert a.material.signed_by_own_ca() is False


def test_a_configured_certificate_wins_over_a_peer_signed_one(tmp_path, a, b):
    signed = a.material.signed_rows(*b.material.sign_csr(a.material.create_csr()), "node-b")
    configure(a, issue(tmp_path / "op", "node-a", ["node-a"]), "replication.certificate")
    a.trust(extra_rows=[*signed, *a.material.configured_rows()])
    assert a.material.certificate_name == "node-a-replication"


def test_an_expired_configured_certificate_is_passed_over(tmp_path, a):
    gone = dt.datetime.now(dt.timezone.utc) - DAY
    configure(a, issue(tmp_path / "op", "node-a", ["node-a"], not_after=gone))
    a.trust(extra_rows=a.material.configured_rows())
    assert a.material.certificate_name == "node-a"


def test_a_configured_ca_alone_is_trusted_without_a_name_check(tmp_path, a, b):
    op = issue(tmp_path / "op", "node-b", ["node-b"])
    a.material.configured.append(Configured("tls.certificateAuthority", str(op.ca)))
    rows = a.material.configured_rows()
    assert [r["is_authority"] for r in rows] == [True]
    a.trust(extra_rows=rows)
    assert "Operator Root CA" in {authority.common_name(c.subject) for c in a.material.trusted()}
    assert a.material.certificate_name == "node-a"
