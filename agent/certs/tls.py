"""TLS contexts from a certificate chain, its key and the trusted CAs (agent.certs.material
decides which; this builds them).

Both sides present the node's certificate and verify the peer's against the trusted CAs (and
the system roots with replication.enableRootCAs); TLS 1.2 at least. A server asks for a client
certificate but does not require one: harperctl and browsers have none.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path


def server(chain: Path, key: Path, trusted_pem: str, roots: bool) -> ssl.SSLContext:
    """Return a server context presenting `chain`, asking peers for a certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain, key)
    context.verify_mode = ssl.CERT_OPTIONAL
    _trust(context, ssl.Purpose.CLIENT_AUTH, trusted_pem, roots)
    return context


def client(chain: Path, key: Path, trusted_pem: str, roots: bool) -> ssl.SSLContext:
    """Return a client context presenting `chain` and verifying the server fully."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(chain, key)
    _trust(context, ssl.Purpose.SERVER_AUTH, trusted_pem, roots)
    return context


def unverified_client() -> ssl.SSLContext:
    """Return a client context that verifies nothing and presents nothing (verify_tls false)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _trust(context: ssl.SSLContext, purpose, trusted_pem: str, roots: bool) -> None:
    if trusted_pem:
        context.load_verify_locations(cadata=trusted_pem)
    if roots:
        context.load_default_certs(purpose)


def for_listener(
    base: ssl.SSLContext, current: Callable[[], ssl.SSLContext | None]
) -> ssl.SSLContext:
    """A listener context whose SNI hook hands each handshake the context `current()` gives.

    Python calls the hook on every ClientHello (with None when the client sent no SNI, as
    for an IP address), and setting the socket's context there switches its certificate and
    its trusted CAs.
    """

    def swap(sslobj, _server_name, _context) -> None:
        now = current()
        if now is not None:
            sslobj.context = now

    base.sni_callback = swap
    return base
