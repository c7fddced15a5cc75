"""Certificates as values: CAs, node certificates, CSRs, parsing, chains and signatures."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.certs import authority
from agent.certs.authority import CertError

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)

# Pure and fast, yet a loaded CI machine must not turn a slow example into a failure.
NO_DEADLINE = settings(deadline=None)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    """One RSA key for the module: RSA generation is the slow part."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ca_for(hostname: str, now: dt.datetime = NOW) -> tuple[x509.Certificate, object]:
    key = authority.new_key()
    return authority.make_ca(key, hostname, now), key


def node_for(
    hostname: str, ca, ca_key, hosts: list[str] | None = None, now: dt.datetime = NOW
) -> tuple[x509.Certificate, object]:
    key = authority.new_key()
    return authority.make_node_certificate(key, hostname, hosts or [], ca, ca_key, now), key


def intermediate(name: str, issuer, issuer_key, now: dt.datetime = NOW):
    """Return (CA certificate, key) for an intermediate CA that `issuer` signed."""
    key = authority.new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    return certificate, key


def extension(certificate, kind):
    return certificate.extensions.get_extension_for_class(kind)


def der_pem(der: bytes, label: str = "CERTIFICATE") -> str:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n"


# --- making ----------------------------------------------------------------------------------


def test_a_ca_is_named_for_its_host_and_may_sign_certificates():
    ca, key = ca_for("node-a")
    assert authority.common_name(ca.subject) == "HarperDB-Certificate-Authority-node-a"
    assert authority.ca_name("node-a") == authority.common_name(ca.subject)
    constraints = extension(ca, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert extension(ca, x509.KeyUsage).value.key_cert_sign
    assert authority.is_authority(ca) and authority.is_self_signed(ca)
    assert authority.issued_by(ca, ca)
    assert authority.same_key(ca, key)


def test_a_ca_is_valid_from_a_little_before_now_for_ten_years():
    ca, _ = ca_for("node-a")
    assert ca.not_valid_before_utc == NOW - dt.timedelta(days=1)
    assert ca.not_valid_after_utc == NOW + authority.VALID_DAYS * DAY


def test_a_node_certificate_names_its_host_and_every_address():
    ca, ca_key = ca_for("node-a")
    leaf, key = node_for("node-a", ca, ca_key, ["10.0.0.7", "node-a.example", "fd00::7"])
    assert authority.common_name(leaf.subject) == "node-a"
    san = extension(leaf, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["node-a", "localhost", "node-a.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("fd00::7"),
    ]
    assert authority.names(leaf) == {
        "node-a",
        "localhost",
        "127.0.0.1",
        "::1",
        "10.0.0.7",
        "node-a.example",
        "fd00::7",
    }
    assert authority.same_key(leaf, key) and not authority.same_key(leaf, ca_key)


def test_a_node_certificate_serves_and_dials_but_signs_nothing():
    ca, ca_key = ca_for("node-a")
    leaf, _ = node_for("node-a", ca, ca_key)
    assert extension(leaf, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    assert not extension(leaf, x509.BasicConstraints).value.ca
    assert not extension(leaf, x509.KeyUsage).value.key_cert_sign
    assert not authority.is_authority(leaf) and not authority.is_self_signed(leaf)


def test_alt_names_skip_blanks_and_repeats():
    san = authority.alt_names("node-a", ["", "node-a", "localhost", "127.0.0.1", "b"])
    assert san.get_values_for_type(x509.DNSName) == ["node-a", "localhost", "b"]
    assert len(san.get_values_for_type(x509.IPAddress)) == 2


def test_a_certificate_is_issued_by_its_ca_and_no_other():
    ca, ca_key = ca_for("node-a")
    other, _ = ca_for("node-b")
    impostor, _ = ca_for("node-a")
    leaf, _ = node_for("node-a", ca, ca_key)
    assert authority.issued_by(leaf, ca)
    assert not authority.issued_by(leaf, other)
    assert not authority.issued_by(leaf, impostor)  # same name, another key
    assert not authority.issued_by(ca, leaf)


def test_serials_are_positive_and_fit_in_63_bits():
    ca, ca_key = ca_for("node-a")
    serials = {node_for("node-a", ca, ca_key)[0].serial_number for _ in range(40)}
    serials.add(ca.serial_number)
    assert len(serials) == 41
    assert all(0 < s < 2**63 for s in serials)


# --- CSRs --------------------------------------------------------------------------------------


def test_sign_csr_copies_subject_and_alt_names_from_the_request():
    ca, ca_key = ca_for("node-b")
    key = authority.new_key()
    csr = authority.create_csr(key, "node-a", ["10.0.0.7"])
    issued = authority.sign_csr(authority.csr_pem(csr), ca, ca_key, NOW)
    assert issued.subject == csr.subject
    assert (
        extension(issued, x509.SubjectAlternativeName).value
        == extension(csr, x509.SubjectAlternativeName).value
    )
    assert "10.0.0.7" in authority.names(issued)
    assert authority.same_key(issued, key)
    assert authority.issued_by(issued, ca)
    assert authority.verify_chain([issued], [ca], NOW) == ca


def test_sign_csr_accepts_bytes_and_text():
    ca, ca_key = ca_for("node-b")
    text = authority.csr_pem(authority.create_csr(authority.new_key(), "node-a", []))
    assert authority.names(authority.sign_csr(text.encode(), ca, ca_key)) == authority.names(
        authority.sign_csr(text, ca, ca_key)
    )


def test_sign_csr_never_grants_ca_rights_a_request_asks_for():
    ca, ca_key = ca_for("node-b")
    key = authority.new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node-a")]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    issued = authority.sign_csr(authority.csr_pem(csr), ca, ca_key)
    assert not authority.is_authority(issued)


def test_sign_csr_without_alt_names_names_the_common_name():
    ca, ca_key = ca_for("node-b")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node-a")]))
        .sign(authority.new_key(), hashes.SHA256())
    )
    issued = authority.sign_csr(authority.csr_pem(csr), ca, ca_key)
    assert extension(issued, x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["node-a"]


def test_sign_csr_refuses_a_request_without_common_name():
    ca, ca_key = ca_for("node-b")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HarperDB")]))
        .sign(authority.new_key(), hashes.SHA256())
    )
    with pytest.raises(CertError, match="no common name"):
        authority.sign_csr(authority.csr_pem(csr), ca, ca_key)


def _tampered_csr() -> str:
    """A CSR whose subject was edited after it was signed."""
    csr = authority.create_csr(authority.new_key(), "node-a", [])
    der = csr.public_bytes(serialization.Encoding.DER)
    assert der.count(b"node-a") == 2  # the CN and the DNS SAN
    return der_pem(der.replace(b"node-a", b"node-z", 1), "CERTIFICATE REQUEST")


@pytest.mark.parametrize(
    "csr",
    [
        pytest.param(_tampered_csr(), id="tampered"),
        pytest.param("", id="empty"),
        pytest.param("not a csr", id="text"),
        pytest.param(b"\x00\xff" * 40, id="bytes"),
        pytest.param(der_pem(b"\x30\x03\x02\x01\x00", "CERTIFICATE REQUEST"), id="bad-der"),
    ],
)
def test_sign_csr_refuses_a_tampered_or_garbage_request(csr):
    ca, ca_key = ca_for("node-b")
    with pytest.raises(CertError):
        authority.sign_csr(csr, ca, ca_key)


def test_sign_csr_refuses_a_request_with_a_malformed_alt_name_extension():
    ca, ca_key = ca_for("node-b")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node-a")]))
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x01\x01"),
            critical=False,
        )
        .sign(authority.new_key(), hashes.SHA256())
    )
    with pytest.raises(CertError):
        authority.sign_csr(authority.csr_pem(csr), ca, ca_key)


def test_sign_csr_refuses_a_request_with_an_invalid_version():
    ca, ca_key = ca_for("node-b")
    der = authority.create_csr(authority.new_key(), "node-a", []).public_bytes(
        serialization.Encoding.DER
    )
    at = der.index(bytes.fromhex("020100"))  # CertificationRequestInfo.version = 0
    bad = der[:at] + bytes.fromhex("020105") + der[at + 3 :]
    with pytest.raises(CertError):
        authority.sign_csr(der_pem(bad, "CERTIFICATE REQUEST"), ca, ca_key)


# --- parsing -----------------------------------------------------------------------------------


def test_parse_certificates_reads_every_certificate_of_a_bundle():
    ca, ca_key = ca_for("node-a")
    leaf, _ = node_for("node-a", ca, ca_key)
    bundle = authority.pem(leaf) + "\n" + authority.pem(ca)
    assert authority.parse_certificates(bundle) == [leaf, ca]
    assert authority.parse_certificates(bundle.encode()) == [leaf, ca]


@pytest.mark.parametrize(
    "text",
    [
        "",
        b"",
        "   \n",
        "hello",
        der_pem(b"\x30\x03\x02\x01\x00"),
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    ],
)
def test_parse_certificates_refuses_garbage_and_empty_input(text):
    with pytest.raises(CertError, match="not a PEM certificate"):
        authority.parse_certificates(text)


def test_parse_certificates_refuses_a_bundle_with_one_bad_certificate():
    ca, _ = ca_for("node-a")
    with pytest.raises(CertError):
        authority.parse_certificates(authority.pem(ca) + der_pem(b"\x30\x00"))


def _only_cert_error(call, value) -> None:
    try:
        call(value)
    except CertError:
        return
    pytest.fail(f"accepted {value!r}")


@NO_DEADLINE
@given(st.binary(max_size=512))
def test_parse_certificates_refuses_random_bytes_with_cert_error(data):
    _only_cert_error(authority.parse_certificates, data)


@NO_DEADLINE
@given(st.text(max_size=512))
def test_parse_certificates_refuses_random_text_with_cert_error(text):
    _only_cert_error(authority.parse_certificates, text)


@NO_DEADLINE
@given(st.binary(max_size=512))
def test_parse_certificates_refuses_random_der_in_pem_armour_with_cert_error(der):
    _only_cert_error(authority.parse_certificates, der_pem(der))


@NO_DEADLINE
@given(st.binary(max_size=256))
def test_from_der_refuses_random_bytes_with_cert_error(der):
    _only_cert_error(authority.from_der, der)


def _with_version(certificate, version: int) -> bytes:
    der = certificate.public_bytes(serialization.Encoding.DER)
    at = der.index(bytes.fromhex("a003020102"))  # [0] EXPLICIT version v3
    return der[:at] + bytes.fromhex("a0030201") + bytes([version]) + der[at + 5 :]


def test_parse_certificates_refuses_an_invalid_version_with_cert_error():
    ca, _ = ca_for("node-a")
    with pytest.raises(CertError):
        authority.parse_certificates(der_pem(_with_version(ca, 5)))


def test_from_der_round_trips():
    ca, _ = ca_for("node-a")
    assert authority.from_der(ca.public_bytes(serialization.Encoding.DER)) == ca


# --- inspecting -------------------------------------------------------------------------------


def test_details_show_issuer_subject_names_serial_and_dates():
    ca, ca_key = ca_for("node-a")
    leaf, _ = node_for("node-a", ca, ca_key, ["10.0.0.7"])
    shown = authority.details(leaf).wire()
    assert set(shown) == {
        "issuer",
        "subject",
        "subject_alt_name",
        "serial_number",
        "valid_from",
        "valid_to",
    }
    assert "CN=HarperDB-Certificate-Authority-node-a" in shown["issuer"]
    assert "CN=node-a" in shown["subject"]
    assert shown["subject_alt_name"] == (
        "DNS:node-a, DNS:localhost, IP Address:127.0.0.1, IP Address:::1, IP Address:10.0.0.7"
    )
    assert shown["serial_number"] == format(leaf.serial_number, "X")
    assert shown["valid_from"] == (NOW - dt.timedelta(days=1)).isoformat()
    assert shown["valid_to"] == (NOW + authority.VALID_DAYS * DAY).isoformat()


def test_names_and_details_of_a_certificate_without_alt_names():
    ca, _ = ca_for("node-a")
    assert authority.names(ca) == {"HarperDB-Certificate-Authority-node-a"}
    assert authority.details(ca).subject_alt_name == ""


def test_serial_is_upper_case_hex():
    ca, _ = ca_for("node-a")
    assert authority.serial(ca) == format(ca.serial_number, "X")
    assert authority.serial(ca) == authority.serial(ca).upper()
    assert authority.normalize_serial(authority.serial(ca)) == authority.serial(ca)


@pytest.mark.parametrize("value", ["0a:bc", "0xABC", "abc", "ABC", " 0A:BC ", "0x0abc", "0XAbC"])
def test_normalize_serial_ignores_colons_case_prefix_and_leading_zeros(value):
    assert authority.normalize_serial(value) == "ABC"


@pytest.mark.parametrize("value", ["0", "00", "0x0", "00:00"])
def test_normalize_serial_keeps_a_zero(value):
    assert authority.normalize_serial(value) == "0"


# --- chains -------------------------------------------------------------------------------------


def test_verify_chain_accepts_a_leaf_of_a_trusted_ca():
    ca, ca_key = ca_for("node-a")
    other, _ = ca_for("node-b")
    leaf, _ = node_for("node-a", ca, ca_key)
    assert authority.verify_chain([leaf], [other, ca], NOW) == ca


def test_verify_chain_follows_an_intermediate_in_the_chain():
    root, root_key = ca_for("root")
    middle, middle_key = intermediate("middle", root, root_key)
    leaf, _ = node_for("node-a", middle, middle_key)
    assert authority.verify_chain([leaf, middle], [root], NOW) == root
    assert authority.verify_chain([leaf, root, middle], [root], NOW) == root


def test_verify_chain_refuses_an_intermediate_missing_from_the_chain():
    root, root_key = ca_for("root")
    middle, middle_key = intermediate("middle", root, root_key)
    leaf, _ = node_for("node-a", middle, middle_key)
    with pytest.raises(CertError, match="does not chain to a trusted CA"):
        authority.verify_chain([leaf], [root], NOW)


def test_verify_chain_refuses_an_unknown_ca():
    ca, ca_key = ca_for("node-a")
    other, _ = ca_for("node-b")
    leaf, _ = node_for("node-a", ca, ca_key)
    with pytest.raises(CertError, match="'node-a' does not chain"):
        authority.verify_chain([leaf], [other], NOW)
    with pytest.raises(CertError):
        authority.verify_chain([leaf, ca], [other], NOW)  # sending the CA along is no trust
    with pytest.raises(CertError, match="no certificate"):
        authority.verify_chain([], [ca], NOW)


def test_verify_chain_refuses_a_ca_with_the_trusted_name_but_another_key():
    ca, _ = ca_for("node-a")
    forged, forged_key = ca_for("node-a")
    leaf, _ = node_for("node-a", forged, forged_key)
    with pytest.raises(CertError):
        authority.verify_chain([leaf, forged], [ca], NOW)


def test_verify_chain_refuses_an_expired_leaf():
    ca, ca_key = ca_for("node-a", NOW - 3000 * DAY)
    leaf, _ = node_for("node-a", ca, ca_key, now=NOW - 3660 * DAY)
    assert authority.verify_chain([leaf], [ca], NOW - 3000 * DAY) == ca
    with pytest.raises(CertError, match="'node-a' has expired"):
        authority.verify_chain([leaf], [ca], NOW)


def test_verify_chain_refuses_a_leaf_not_valid_yet():
    ca, ca_key = ca_for("node-a")
    leaf, _ = node_for("node-a", ca, ca_key, now=NOW + 2 * DAY)  # issued a day back
    with pytest.raises(CertError, match="'node-a' is not valid yet"):
        authority.verify_chain([leaf], [ca], NOW)
    assert authority.verify_chain([leaf], [ca], NOW + 2 * DAY) == ca


def test_verify_chain_refuses_an_expired_trusted_ca():
    ca, ca_key = ca_for("node-a", NOW - 3660 * DAY)
    leaf, _ = node_for("node-a", ca, ca_key, now=NOW - DAY)
    with pytest.raises(CertError, match="HarperDB-Certificate-Authority-node-a' has expired"):
        authority.verify_chain([leaf], [ca], NOW)


def test_verify_chain_refuses_an_expired_intermediate():
    root, root_key = ca_for("root")
    middle, middle_key = intermediate("middle", root, root_key, now=NOW - 400 * DAY)
    leaf, _ = node_for("node-a", middle, middle_key)
    with pytest.raises(CertError, match="'middle' has expired"):
        authority.verify_chain([leaf, middle], [root], NOW)


def test_verify_chain_refuses_an_intermediate_that_is_not_a_ca():
    root, root_key = ca_for("root")
    middle, middle_key = node_for("middle", root, root_key)  # a leaf posing as a CA
    leaf, _ = node_for("node-a", middle, middle_key)
    assert authority.issued_by(leaf, middle)
    with pytest.raises(CertError, match="does not chain to a trusted CA"):
        authority.verify_chain([leaf, middle], [root], NOW)


def test_verify_chain_stops_after_eight_intermediates():
    root, issuer_key = ca_for("root")
    issuer, chain = root, []
    for depth in range(9):
        issuer, issuer_key = intermediate(f"ca-{depth}", issuer, issuer_key)
        chain.insert(0, issuer)
    leaf, _ = node_for("node-a", issuer, issuer_key)
    with pytest.raises(CertError, match="too long"):
        authority.verify_chain([leaf, *chain], [root], NOW)


# --- keys and signatures ----------------------------------------------------------------------


def test_sign_and_verify_with_an_ec_key():
    ca, ca_key = ca_for("node-a")
    leaf, key = node_for("node-a", ca, ca_key)
    signature = authority.sign(key, b"payload")
    assert authority.verify_signature(leaf, signature, b"payload")
    assert not authority.verify_signature(leaf, signature, b"payload!")
    assert not authority.verify_signature(ca, signature, b"payload")
    assert not authority.verify_signature(leaf, b"\x00" * 8, b"payload")
    assert not authority.verify_signature(leaf, b"", b"payload")


def test_an_rsa_node_certificate_works_like_an_ec_one(rsa_key):
    ca, ca_key = ca_for("node-a")
    leaf = authority.make_node_certificate(rsa_key, "node-a", ["10.0.0.7"], ca, ca_key, NOW)
    assert extension(leaf, x509.KeyUsage).value.key_encipherment
    assert authority.names(leaf) >= {"node-a", "10.0.0.7"}
    assert "IP Address:10.0.0.7" in authority.details(leaf).subject_alt_name
    signature = authority.sign(rsa_key, b"payload")
    assert authority.verify_signature(leaf, signature, b"payload")
    assert not authority.verify_signature(leaf, signature, b"other")
    assert not authority.verify_signature(leaf, b"\x01" * 256, b"payload")
    assert not authority.verify_signature(leaf, b"short", b"payload")
    assert authority.verify_chain([leaf], [ca], NOW) == ca


def test_an_rsa_ca_issues_and_verifies(rsa_key):
    ca = authority.make_ca(rsa_key, "node-r", NOW)
    leaf, _ = node_for("node-a", ca, rsa_key)
    assert authority.issued_by(leaf, ca)
    assert authority.verify_chain([leaf], [ca], NOW) == ca
    assert authority.details(ca).subject.endswith("CN=HarperDB-Certificate-Authority-node-r")


def test_an_operator_rsa_certificate_from_trustme_is_understood():
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    issued = ca.issue_cert("node-a", "10.0.0.7", key_type=trustme.KeyType.RSA)
    leaf, ca_cert = authority.parse_certificates(
        issued.cert_chain_pems[0].bytes() + ca.cert_pem.bytes()
    )
    key = authority.load_key(issued.private_key_pem.bytes())
    assert isinstance(key, rsa.RSAPrivateKey)
    assert authority.same_key(leaf, key)
    assert {"node-a", "10.0.0.7"} <= authority.names(leaf)
    assert "DNS:node-a" in authority.details(leaf).subject_alt_name
    assert authority.verify_signature(leaf, authority.sign(key, b"hello"), b"hello")
    assert authority.verify_chain([leaf], [ca_cert]) == ca_cert


def test_load_key_reads_ec_and_rsa_and_names_no_content(rsa_key):
    ec_key = authority.new_key()
    assert isinstance(authority.load_key(authority.key_pem(ec_key)), ec.EllipticCurvePrivateKey)
    assert isinstance(authority.load_key(authority.key_pem(rsa_key).decode()), rsa.RSAPrivateKey)
    with pytest.raises(CertError) as caught:
        authority.load_key(b"hunter2")
    assert "hunter2" not in str(caught.value)


def test_load_key_refuses_an_encrypted_key():
    encrypted = authority.new_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(CertError, match="unencrypted"):
        authority.load_key(encrypted)


def test_verify_signature_is_false_for_a_certificate_with_an_unknown_key_type():
    ca, _ = ca_for("node-a")
    der = ca.public_bytes(serialization.Encoding.DER)
    ec_public_key_oid = bytes.fromhex("06072a8648ce3d0201")
    odd = authority.parse_certificates(
        der_pem(der.replace(ec_public_key_oid, bytes.fromhex("06072a8648ce3d0209")))
    )[0]
    assert authority.verify_signature(odd, b"sig", b"data") is False
