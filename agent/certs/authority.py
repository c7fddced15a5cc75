"""Certificates as values: make a CA, node certificates and CSRs, sign, inspect, verify.

No files and no sockets here: agent/certs/material.py keeps a node's keys and certificates
on disk and turns them into TLS contexts. Keys are ECDSA P-256 (HarperDB uses RSA-4096: a
P-256 key is made in a millisecond instead of seconds, and a TLS handshake costs less);
certificates from operators may carry RSA or EC keys, and both are accepted everywhere.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_PREFIX = "HarperDB-Certificate-Authority-"
VALID_DAYS = 3650
ORGANIZATION = [
    x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Colorado"),
    x509.NameAttribute(NameOID.LOCALITY_NAME, "Denver"),
    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HarperDB, Inc."),
]


class CertError(ValueError):
    """A certificate, key or CSR is malformed or does not verify; the message says why."""


@dataclass(frozen=True)
class Details:
    """What list_certificates shows of a certificate (HarperDB's `details`)."""

    issuer: str
    subject: str
    subject_alt_name: str
    serial_number: str
    valid_from: str
    valid_to: str

    def wire(self) -> dict:
        return dict(self.__dict__)


# --- keys ------------------------------------------------------------------------------------


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_key(pem: bytes | str):
    """Parse an unencrypted PEM private key (EC or RSA); never echo its content."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CertError("not an unencrypted PEM private key (EC or RSA)") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise CertError("private key must be EC or RSA")
    return key


def same_key(certificate: x509.Certificate, key) -> bool:
    """Tell whether `key` is the private half of the certificate's public key."""
    mine = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return mine == theirs


# --- making ----------------------------------------------------------------------------------


def ca_name(hostname: str) -> str:
    return f"{CA_PREFIX}{hostname}"


def make_ca(key, hostname: str, now: dt.datetime | None = None) -> x509.Certificate:
    """Return a self-signed CA for this node (CN HarperDB-Certificate-Authority-<hostname>)."""
    now = now or _now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name(hostname)), *ORGANIZATION])
    public = key.public_key()
    builder = (
        _base(subject, subject, public, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            _key_usage(signs_certificates=True, enciphers_keys=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def make_node_certificate(
    key, hostname: str, hosts: list[str], ca: x509.Certificate, ca_key, now=None
) -> x509.Certificate:
    """Return a node certificate (CN = hostname, SANs = hosts) signed by `ca`."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname), *ORGANIZATION])
    return _issue(subject, key.public_key(), alt_names(hostname, hosts), ca, ca_key, now)


def create_csr(key, hostname: str, hosts: list[str]) -> x509.CertificateSigningRequest:
    """Return a CSR for this node's key: CN = hostname, SANs for every name it answers to."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname), *ORGANIZATION])
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(alt_names(hostname, hosts), critical=False)
        .sign(key, hashes.SHA256())
    )


def sign_csr(csr_pem: bytes | str, ca: x509.Certificate, ca_key, now=None) -> x509.Certificate:
    """Verify a CSR and issue its certificate from `ca`, for server and client use."""
    data = csr_pem.encode() if isinstance(csr_pem, str) else csr_pem
    try:  # untrusted input: cryptography raises several unrelated types for a bad one
        csr = x509.load_pem_x509_csr(data)
        valid = csr.is_signature_valid
        public = csr.public_key()
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            san = None
    except Exception:
        raise CertError("csr is not a valid PEM certificate signing request") from None
    if not valid:
        raise CertError("csr signature does not verify")
    if not csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        raise CertError("csr has no common name")
    san = san or x509.SubjectAlternativeName([x509.DNSName(common_name(csr.subject))])
    return _issue(csr.subject, public, san, ca, ca_key, now)


def alt_names(hostname: str, hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in [hostname, "localhost", "127.0.0.1", "::1", *hosts]:
        if not host:
            continue
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(_dns_name(host))
        if name not in names:
            names.append(name)
    return x509.SubjectAlternativeName(names)


def _dns_name(host: str) -> str:
    """A host name as a certificate carries it (IDNA A-labels); CertError if it is none."""
    if (
        not isinstance(host, str)
        or not host
        or len(host) > 253
        or any(c in host for c in " /\\\x00")
    ):
        raise CertError(f"{host!r} is not a host name")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise CertError(f"{host!r} is not a host name") from None


def canonical_host(host: str) -> str:
    """An address in its one canonical form (so fd00:0::7 and fd00::7 compare equal)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _issue(subject, public, san, ca, ca_key, now) -> x509.Certificate:
    now = now or _now()
    builder = (
        _base(subject, ca.subject, public, now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(False, enciphers_keys=isinstance(public, rsa.RSAPublicKey)),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(san, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False
        )
    )
    return builder.sign(ca_key, hashes.SHA256())


def _key_usage(signs_certificates: bool, enciphers_keys: bool) -> x509.KeyUsage:
    """Signatures always; certificate and CRL signing for a CA; key encipherment for RSA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=enciphers_keys,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _base(subject, issuer, public, now) -> x509.CertificateBuilder:
    serial = int.from_bytes(secrets.token_bytes(8), "big") & ((1 << 63) - 1) or 1
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(serial)
        # a day back: a peer whose clock is behind ours still finds it valid
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --- reading ---------------------------------------------------------------------------------


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def csr_pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def parse_certificates(text: bytes | str) -> list[x509.Certificate]:
    """Parse one or more PEM certificates; raise CertError if there are none or one is bad."""
    data = text.encode() if isinstance(text, str) else text
    try:
        found = x509.load_pem_x509_certificates(data)
    except Exception:  # untrusted input: ValueError, InvalidVersion, ...
        raise CertError("not a PEM certificate") from None
    if not found:
        raise CertError("not a PEM certificate")
    return found


def from_der(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except Exception:  # untrusted input: ValueError, InvalidVersion, ...
        raise CertError("peer certificate is not DER") from None


def common_name(name: x509.Name) -> str:
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else ""


def names(certificate: x509.Certificate) -> set[str]:
    """Return the names a certificate vouches for: its CN, DNS and IP SANs."""
    out = {common_name(certificate.subject)} - {""}
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return out
    out.update(san.get_values_for_type(x509.DNSName))
    out.update(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return out


def is_authority(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def is_self_signed(certificate: x509.Certificate) -> bool:
    return certificate.issuer == certificate.subject


def serial(certificate: x509.Certificate) -> str:
    """The serial as upper-case hex, the form revoked_certificates lists (colons ignored)."""
    return format(certificate.serial_number, "X")


def normalize_serial(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return format(value, "X")
    text = str(value).replace(":", "").strip().upper()
    if text.startswith("0X"):
        text = text[2:]
    return text.lstrip("0") or "0"


def details(certificate: x509.Certificate) -> Details:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        alt = ", ".join(
            [f"DNS:{n}" for n in san.get_values_for_type(x509.DNSName)]
            + [f"IP Address:{ip}" for ip in san.get_values_for_type(x509.IPAddress)]
        )
    except x509.ExtensionNotFound:
        alt = ""
    return Details(
        certificate.issuer.rfc4514_string(),
        certificate.subject.rfc4514_string(),
        alt,
        serial(certificate),
        certificate.not_valid_before_utc.isoformat(),
        certificate.not_valid_after_utc.isoformat(),
    )


def issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    """Tell whether `ca` signed `certificate` (name and signature both)."""
    if certificate.issuer != ca.subject:
        return False
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_chain(
    chain: list[x509.Certificate], trusted: list[x509.Certificate], now: dt.datetime | None = None
) -> x509.Certificate:
    """Check that chain[0] leads to a trusted CA through chain[1:]; return the trusted CA.

    For identity proofs on plain ws; TLS links leave this to OpenSSL. Each certificate must
    be in its validity period, and every issuer but the leaf must be a CA.
    """
    if not chain:
        raise CertError("no certificate")
    now = now or _now()
    current = chain[0]
    pool = list(chain[1:])
    for _depth in range(8):
        _check_dates(current, now)
        for ca in trusted:
            if issued_by(current, ca):
                _check_dates(ca, now)
                return ca
        step = next((c for c in pool if is_authority(c) and issued_by(current, c)), None)
        if step is None:
            raise CertError(
                f"certificate for {common_name(chain[0].subject)!r} does not chain to a "
                f"trusted CA (issuer {common_name(current.issuer)!r})"
            )
        pool.remove(step)
        current = step
    raise CertError("certificate chain too long")


def _check_dates(certificate: x509.Certificate, now: dt.datetime) -> None:
    if now < certificate.not_valid_before_utc:
        raise CertError(f"certificate {common_name(certificate.subject)!r} is not valid yet")
    if now > certificate.not_valid_after_utc:
        raise CertError(f"certificate {common_name(certificate.subject)!r} has expired")


# --- signatures for identity proofs ------------------------------------------------------------


def sign(key, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify_signature(certificate: x509.Certificate, signature: bytes, data: bytes) -> bool:
    try:
        public = certificate.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, ValueError, UnsupportedAlgorithm, TypeError):
        return False
    return True
