"""Identity proofs: a signed header that round-trips, refuses tampering, and is used once."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.certs import authority, proof
from agent.certs.authority import CertError
from agent.certs.proof import Claim, ReplayGuard

AT = 1_900_000_000_000  # a fixed wall-clock time in ms
NO_DEADLINE = settings(deadline=None)


class Node:
    """A key with a certificate its own CA signed, and the chain a proof carries."""

    def __init__(self, hostname: str) -> None:
        self.ca_key = authority.new_key()
        self.ca = authority.make_ca(self.ca_key, hostname)
        self.key = authority.new_key()
        self.leaf = authority.make_node_certificate(self.key, hostname, [], self.ca, self.ca_key)
        self.chain_pem = authority.pem(self.leaf) + authority.pem(self.ca)

    def proof(self, target: str = "node-b", nonce: str = "nonce-1", time_ms: int = AT) -> str:
        return proof.make(self.key, self.chain_pem, "node-a", target, nonce, time_ms)


@pytest.fixture(scope="module")
def node() -> Node:
    return Node("node-a")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed(key, payload: bytes) -> str:
    """A header over any payload, signed properly: only the payload can be at fault."""
    return f"{b64(payload)}.{b64(authority.sign(key, payload))}"


def fields(sender: Node, **changes) -> bytes:
    values = {"node": "node-a", "target": "node-b", "time": AT, "nonce": "n"}
    values["chain"] = sender.chain_pem
    values.update(changes)
    return json.dumps(values).encode()


def claim(nonce: str, time_ms: int) -> Claim:
    return Claim("node-a", "node-b", time_ms, nonce, [])


# --- make and read --------------------------------------------------------------------------


def test_a_proof_reads_back_what_was_made(node):
    value = node.proof(nonce=proof.new_nonce())
    read = proof.read(value)
    assert (read.node, read.target, read.time_ms) == ("node-a", "node-b", AT)
    assert read.chain == [node.leaf, node.ca]
    assert read.leaf == node.leaf
    assert read.nonce == proof.read(value).nonce


def test_a_proof_carries_no_private_key(node):
    payload = unb64(node.proof().partition(".")[0])
    assert b"PRIVATE" not in payload
    assert (
        node.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        not in payload
    )


def test_nonces_are_fresh_and_header_safe():
    nonces = {proof.new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(len(n) >= 24 and n.replace("-", "").replace("_", "").isalnum() for n in nonces)


def test_an_rsa_certificate_proves_too():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_key = authority.new_key()
    ca = authority.make_ca(ca_key, "node-a")
    leaf = authority.make_node_certificate(key, "node-a", [], ca, ca_key)
    value = proof.make(key, authority.pem(leaf), "node-a", "node-b", "n", AT)
    assert proof.read(value).leaf == leaf


def test_a_changed_payload_no_longer_matches_its_signature(node):
    body, _, signature = node.proof().partition(".")
    payload = json.loads(unb64(body))
    payload["target"] = "node-c"
    forged = f"{b64(json.dumps(payload, separators=(',', ':')).encode())}.{signature}"
    with pytest.raises(CertError, match="signature does not match"):
        proof.read(forged)


def test_a_changed_signature_is_refused(node):
    body, _, signature = node.proof().partition(".")
    raw = bytearray(unb64(signature))
    raw[-1] ^= 0x01
    with pytest.raises(CertError, match="signature does not match"):
        proof.read(f"{body}.{b64(bytes(raw))}")
    with pytest.raises(CertError):
        proof.read(f"{body}.")


def test_a_proof_signed_with_another_key_is_refused(node):
    value = proof.make(authority.new_key(), node.chain_pem, "node-a", "node-b", "n", AT)
    with pytest.raises(CertError, match="signature does not match"):
        proof.read(value)


def test_a_proof_signed_by_the_ca_key_is_not_the_leafs(node):
    value = proof.make(node.ca_key, node.chain_pem, "node-a", "node-b", "n", AT)
    with pytest.raises(CertError):
        proof.read(value)


def test_a_header_over_the_size_limit_is_refused_before_parsing(node):
    value = node.proof()
    padded = value.partition(".")[0] + "A" * (proof.MAX_HEADER - len(value) + 1)
    oversized = f"{padded}.{value.partition('.')[2]}"
    assert len(oversized) == proof.MAX_HEADER + 1
    with pytest.raises(CertError, match="malformed"):
        proof.read(oversized)


@pytest.mark.parametrize(
    "value",
    [
        "",
        ".",
        "no-dot-at-all",
        "a.b.c",
        "!!!!.????",
        "é.é",
        "A.A",  # one base64 character is never whole bytes
        f"{b64(b'not json')}.{b64(b'sig')}",
        f"{b64(bytes([0xFF, 0xFE]))}.{b64(b'sig')}",
        f"{b64(b'[1, 2]')}.{b64(b'sig')}",
        f"{b64(b'null')}.{b64(b'sig')}",
    ],
)
def test_malformed_headers_are_refused(value):
    with pytest.raises(CertError, match="malformed"):
        proof.read(value)


@pytest.mark.parametrize("value", [None, 12, b"a.b", ["a", "b"]])
def test_a_header_that_is_not_text_is_refused(value):
    with pytest.raises(CertError, match="malformed"):
        proof.read(value)


@pytest.mark.parametrize(
    "change",
    [
        {"node": 7},
        {"node": ""},
        {"node": None},
        {"target": ["node-b"]},
        {"nonce": ""},
        {"nonce": 5},
        {"chain": {"pem": "x"}},
        {"chain": ""},
        {"time": "1900000000000"},
        {"time": 1.9e12},
        {"time": True},
        {"time": None},
    ],
    ids=repr,
)
def test_fields_of_the_wrong_type_are_refused(node, change):
    with pytest.raises(CertError, match="malformed"):
        proof.read(signed(node.key, fields(node, **change)))


def test_a_missing_field_is_refused(node):
    payload = json.loads(fields(node))
    del payload["nonce"]
    with pytest.raises(CertError, match="malformed"):
        proof.read(signed(node.key, json.dumps(payload).encode()))


def test_a_chain_that_is_not_a_certificate_is_refused(node):
    with pytest.raises(CertError, match="not a PEM certificate"):
        proof.read(signed(node.key, fields(node, chain="-----BEGIN CERTIFICATE-----\nAA")))


def test_a_correctly_signed_payload_with_extra_fields_is_read(node):
    assert proof.read(signed(node.key, fields(node, extra=[1, 2]))).nonce == "n"


@NO_DEADLINE
@given(st.text(max_size=300))
def test_random_text_is_refused_with_cert_error(value):
    with pytest.raises(CertError):
        proof.read(value)


@NO_DEADLINE
@given(st.binary(max_size=300), st.binary(max_size=80))
def test_random_payloads_are_refused_with_cert_error(payload, signature):
    with pytest.raises(CertError):
        proof.read(f"{b64(payload)}.{b64(signature)}")


@NO_DEADLINE
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=12,
    )
)
def test_random_json_is_refused_with_cert_error(document):
    with pytest.raises(CertError):
        proof.read(f"{b64(json.dumps(document).encode())}.{b64(b'sig')}")


def test_a_deeply_nested_payload_is_refused_with_cert_error():
    value = f"{b64(b'[' * 4000)}.{b64(b'sig')}"
    assert len(value) <= proof.MAX_HEADER
    with pytest.raises(CertError):
        proof.read(value)


def test_a_leaf_with_an_unknown_key_type_is_refused_with_cert_error(node):
    der = node.leaf.public_bytes(serialization.Encoding.DER)
    ec_public_key_oid = bytes.fromhex("06072a8648ce3d0201")
    odd = der.replace(ec_public_key_oid, bytes.fromhex("06072a8648ce3d0209"))
    body = base64.encodebytes(odd).decode()
    chain = f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"
    with pytest.raises(CertError):
        proof.read(signed(node.key, fields(node, chain=chain)))


@pytest.fixture(scope="module")
def rsa_chain() -> tuple[rsa.RSAPrivateKey, str]:
    """An operator's RSA-2048 leaf, intermediate and root, as one PEM bundle."""
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]
    root = authority.make_ca(keys[0], "root")
    middle = authority.make_ca(keys[1], "middle")  # the names are all the size test needs
    leaf = authority.make_node_certificate(keys[2], "node-a", [], middle, keys[1])
    return keys[2], "".join(authority.pem(c) for c in (leaf, middle, root))


def test_a_proof_made_from_an_operators_rsa_bundle_reads_back(rsa_chain):
    key, chain_pem = rsa_chain
    value = proof.make(key, chain_pem, "node-a", "node-b", "n", AT)
    assert proof.read(value).node == "node-a"


# --- replay guard -----------------------------------------------------------------------------


def test_a_nonce_is_accepted_once():
    guard = ReplayGuard(window_ms=1000)
    guard.check(claim("n1", AT), AT)
    guard.check(claim("n2", AT), AT)
    with pytest.raises(CertError, match="already used"):
        guard.check(claim("n1", AT), AT + 10)
    with pytest.raises(CertError, match="already used"):
        guard.check(claim("n1", AT + 5), AT + 10)  # a new time does not make it new


def test_a_proof_at_the_edge_of_the_window_is_accepted():
    guard = ReplayGuard(window_ms=1000)
    guard.check(claim("old", AT - 1000), AT)
    guard.check(claim("new", AT + 1000), AT)


@pytest.mark.parametrize("offset", [-1001, 1001, -(10**9), 10**9])
def test_a_proof_outside_the_window_is_refused(offset):
    guard = ReplayGuard(window_ms=1000)
    with pytest.raises(CertError, match="check the clocks"):
        guard.check(claim("n", AT + offset), AT)


def test_a_stale_proof_does_not_use_up_its_nonce():
    guard = ReplayGuard(window_ms=1000)
    with pytest.raises(CertError, match="clocks"):
        guard.check(claim("n", AT - 5000), AT)
    guard.check(claim("n", AT), AT)


def test_the_default_window_is_fifteen_minutes():
    guard = ReplayGuard()
    guard.check(claim("n", AT - 900_000), AT)
    guard.check(claim("m", AT + 900_000), AT)
    with pytest.raises(CertError, match="at most 900s"):
        guard.check(claim("o", AT - 900_001), AT)


def test_every_nonce_of_the_window_is_remembered_however_many():
    guard = ReplayGuard(window_ms=10_000)
    for i in range(1500):
        guard.check(claim(f"n{i}", AT + i), AT + i)
    for i in (0, 1024, 1499):
        with pytest.raises(CertError, match="already used"):
            guard.check(claim(f"n{i}", AT + i), AT + 1500)


def test_old_nonces_are_forgotten_without_refusing_new_ones():
    guard = ReplayGuard(window_ms=1000)
    for i in range(1100):
        guard.check(claim(f"old{i}", AT), AT)
    later = AT + 2001  # past twice the window: no old proof can pass the clock check
    guard.check(claim("fresh", later), later)
    assert len(guard._seen) == 1
    with pytest.raises(CertError, match="clocks"):
        guard.check(claim("old0", AT), later)
    with pytest.raises(CertError, match="already used"):
        guard.check(claim("fresh", later), later + 1)


def test_nonces_within_twice_the_window_are_kept_when_forgetting():
    guard = ReplayGuard(window_ms=1000)
    for i in range(1100):
        guard.check(claim(f"old{i}", AT), AT)
    guard.check(claim("recent", AT + 1500), AT + 1500)
    guard.check(claim("fresh", AT + 2000), AT + 2000)  # old ones at exactly 2 windows stay
    assert len(guard._seen) == 1102
    with pytest.raises(CertError, match="already used"):
        guard.check(claim("old7", AT + 1000), AT + 2000)
