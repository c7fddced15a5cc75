"""Identity proofs for plain ws links: a signed, time-limited header that cannot be replayed.

Over wss the TLS handshake proves who each side is. Over plain ws on the operations port a
node proves it instead with one header: its certificate chain, its name, the name of the node
it dials, the time and a fresh nonce, signed with the private key of that certificate. The
server checks the chain against the CAs it trusts (the same set as for TLS), the signature,
that the proof is addressed to it, fresh (within `window_ms` of its clock, 15 minutes) and not seen
before (every nonce is remembered for the window). The server answers with its own proof over
the client's nonce, so the client knows it reached the node it meant to and not a process that
took its address.

The key never travels; a captured header is useless after the window, to another node, or a
second time.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass

from cryptography import x509

from agent.certs import authority
from agent.certs.authority import CertError

HEADER = "X-Harper-Node"
# names every node's certificate carries: a proof addressed to one of them would be good
# for any node, so none is accepted as a target
SHARED_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_HEADER = 8000  # under the usual 8 KB header limit; an RSA chain of three fits
DIAL, ANSWER = "dial", "answer"  # signed, so a node's answer cannot be replayed as its dial


@dataclass(frozen=True)
class Claim:
    """A parsed proof whose signature verified against its own leaf certificate."""

    node: str
    target: str
    time_ms: int
    nonce: str
    chain: list[x509.Certificate]
    kind: str = DIAL

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def make(
    key, chain_pem: str, node: str, target: str, nonce: str, time_ms: int, kind: str = DIAL
) -> str:
    """Return the header value proving `node` (holder of `key`) to `target`."""
    payload = json.dumps(
        {
            "node": node,
            "target": target,
            "time": int(time_ms),
            "nonce": nonce,
            "kind": kind,
            "chain": chain_pem,
        },
        separators=(",", ":"),
    ).encode()
    value = f"{_b64(payload)}.{_b64(authority.sign(key, payload))}"
    if len(value) > MAX_HEADER:
        raise CertError(
            f"this node's certificate chain is too long for an identity proof on plain ws "
            f"({len(value)} bytes, at most {MAX_HEADER}): use wss, or a shorter chain"
        )
    return value


def read(value: str) -> Claim:
    """Parse a proof and check its signature with its leaf's key; raise CertError if bad."""
    if not isinstance(value, str) or len(value) > MAX_HEADER or value.count(".") != 1:
        raise CertError(f"malformed {HEADER} header")
    body, _, signature = value.partition(".")
    try:
        payload = _unb64(body)
        sig = _unb64(signature)
        if not payload.startswith(b"{"):
            raise ValueError("not an object")
        fields = json.loads(payload)
    except (ValueError, RecursionError):
        raise CertError(f"malformed {HEADER} header") from None
    if not isinstance(fields, dict):
        raise CertError(f"malformed {HEADER} header")
    node, target, when, nonce, chain, kind = (
        fields.get("node"),
        fields.get("target"),
        fields.get("time"),
        fields.get("nonce"),
        fields.get("chain"),
        fields.get("kind", DIAL),
    )
    if kind not in (DIAL, ANSWER):
        raise CertError(f"malformed {HEADER} header")
    if not all(isinstance(v, str) and v for v in (node, target, nonce, chain)) or not (
        isinstance(when, int) and not isinstance(when, bool)
    ):
        raise CertError(f"malformed {HEADER} header")
    certificates = authority.parse_certificates(chain)
    if not authority.verify_signature(certificates[0], sig, payload):
        raise CertError(f"{HEADER} signature does not match its certificate")
    return Claim(node, target, when, nonce, certificates, kind)


class ReplayGuard:
    """Refuse proofs that are stale, from the future, or already seen (per nonce)."""

    # 15 minutes: wide enough for the clock skew nodes live with (the clock guard, not this,
    # decides about versions from a fast clock), short enough to remember every nonce seen
    def __init__(self, window_ms: int = 900_000) -> None:
        self.window_ms = window_ms
        self._seen: dict[str, int] = {}

    def check(self, claim: Claim, now_ms: int) -> None:
        if abs(now_ms - claim.time_ms) > self.window_ms:
            raise CertError(
                f"{HEADER} proof is {abs(now_ms - claim.time_ms) / 1000:.0f}s from this node's "
                f"clock (at most {self.window_ms / 1000:.0f}s): check the clocks"
            )
        self._forget(now_ms)
        if claim.nonce in self._seen:
            raise CertError(f"{HEADER} proof was already used (a replay)")
        self._seen[claim.nonce] = claim.time_ms

    def _forget(self, now_ms: int) -> None:
        if len(self._seen) < 1024:
            return
        horizon = now_ms - 2 * self.window_ms
        self._seen = {n: t for n, t in self._seen.items() if t >= horizon}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError("bad base64") from None
