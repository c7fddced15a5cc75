"""Who is calling: RS256 tokens and the Authorization header.

Password hashing lives in agent.ops.passwords and role permissions in agent.ops.permissions;
both are re-exported here for callers that think of them as "auth".

The only module importing `jwt`. Nothing here touches storage, the clock or the network: the
caller hands in a user lookup, key material and a clock, which keeps every rule testable.

Messages follow HarperDB's: 401 `Must login` without credentials, `Login failed` for a wrong
user, password or an inactive user, `invalid token` for any bearer token that does not check
out, and `invalid credentials` from create_authentication_tokens. No message, log line or
cache key ever holds a password, a token or a stored hash in the clear.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from agent.errors import AgentError, Unauthorized
from agent.ops.passwords import (  # noqa: F401
    DUMMY_HASH,
    CheckPool,
    LoginThrottle,
    TooManyAttempts,
    hash_password,
    utf8,
    verify_password,
)
from agent.ops.permissions import (  # noqa: F401
    ACTIONS,
    SYSTEM_DATABASE,
    Permissions,
    validate_permission,
)

_log = logging.getLogger(__name__)

# -- tokens ------------------------------------------------------------------------------------

OPERATION = "operation"
REFRESH = "refresh"
BASIC = "basic"  # what identify() says for a caller who sent a password
TOKEN_KINDS = (OPERATION, REFRESH)
_ALGORITHM = "RS256"


def _jwt():
    """Import pyjwt on first use: tokens are rare next to Basic auth, and importing it costs
    ~70 ms of every start-up."""
    import jwt
    import jwt.algorithms

    return jwt


_INVALID_TOKEN = "invalid token"
_STAMP = "pwd"  # the claim tying a token to the password it was issued under


def password_stamp(stored: str) -> str:
    """Return a short fingerprint of a stored password hash for tokens to carry.

    The stored hash has a fresh salt per change, so every change gives a new stamp; the
    stamp says nothing usable about the password (a truncated digest of a salted scrypt).
    """
    digest = hashlib.sha256(b"harper-agent token stamp\0" + utf8(stored)).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode("ascii")


# Expiry is checked against the caller's `now`, not pyjwt's wall clock, so it is testable.
_DECODE_OPTIONS = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "require": ["sub", "exp", "username"],
}


class TokenService:
    """Issue and check RS256 operation and refresh tokens; the kind rides in the `sub` claim."""

    def __init__(
        self, private_pem: bytes, public_pem: bytes, operation_ttl: float, refresh_ttl: float
    ) -> None:
        self._ttl = {OPERATION: float(operation_ttl), REFRESH: float(refresh_ttl)}
        if callable(private_pem):
            # A loader returning key objects (agent.certs.keys.load_or_create_keys): keys are
            # read, or generated, on the first token operation, not on the start-up path.
            self._loader = private_pem
            self._private_key = self._public_key = None
            return
        self._loader = None
        # Parse the PEMs once: doing it on every request would cost more than the signature.
        self._private_key = _load_key(private_pem, private=True)
        self._public_key = _load_key(public_pem, private=False)
        self._check_pair()

    def _keys(self) -> tuple[Any, Any]:
        if self._private_key is None:
            self._private_key, self._public_key = self._loader()
        return self._private_key, self._public_key

    def issue(self, username: str, now: float, stamp: str | None = None) -> dict[str, str]:
        """Return a fresh `{"operation_token", "refresh_token"}` pair for the user.

        `stamp` (password_stamp of the user's stored hash) ties both tokens to the password
        they were issued under: a password change, or a drop and re-create, voids them.
        """
        return {
            "operation_token": self._sign(username, OPERATION, now, stamp),
            "refresh_token": self._sign(username, REFRESH, now, stamp),
        }

    def issue_operation(self, username: str, now: float, stamp: str | None = None) -> str:
        """Return a fresh operation token (refresh_operation_token's answer)."""
        return self._sign(username, OPERATION, now, stamp)

    def verify(self, token: str, kind: str, now: float) -> str:
        """Return the username a valid, unexpired token of `kind` was issued to."""
        return self.claims(token, kind, now)[0]

    def claims(self, token: str, kind: str | None, now: float) -> tuple[str, str, str | None]:
        """Return (username, kind, stamp) of a valid, unexpired token; `kind` None takes both."""
        if kind is not None and kind not in TOKEN_KINDS:
            raise ValueError(f"unknown token kind {kind!r}")
        claims = self._decode(token)
        username, exp, sub = claims.get("username"), claims.get("exp"), claims.get("sub")
        if sub not in TOKEN_KINDS or (kind is not None and sub != kind):
            raise Unauthorized(_INVALID_TOKEN)
        if not isinstance(username, str) or not username:
            raise Unauthorized(_INVALID_TOKEN)
        if isinstance(exp, bool) or not isinstance(exp, int | float) or now >= exp:
            raise Unauthorized(_INVALID_TOKEN)
        stamp = claims.get(_STAMP)
        return username, sub, stamp if isinstance(stamp, str) else None

    def _sign(self, username: str, kind: str, now: float, stamp: str | None = None) -> str:
        claims = {"username": username, "sub": kind, "iat": now, "exp": now + self._ttl[kind]}
        if stamp is not None:
            claims[_STAMP] = stamp
        return _jwt().encode(claims, self._keys()[0], algorithm=_ALGORITHM)

    def _decode(self, token: object) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise Unauthorized(_INVALID_TOKEN)
        jwt = _jwt()
        try:
            return jwt.decode(
                token, self._keys()[1], algorithms=[_ALGORITHM], options=_DECODE_OPTIONS
            )
        except jwt.PyJWTError:
            raise Unauthorized(_INVALID_TOKEN) from None

    def _check_pair(self) -> None:
        """Refuse at start-up a public key that cannot verify what the private key signs."""
        try:
            self._decode(self._sign("probe", OPERATION, 0.0))
        except Unauthorized:
            raise AgentError("the token public key does not match the private key") from None


def _load_key(pem: bytes, *, private: bool) -> Any:
    """Parse a PEM RSA key, refusing a public key where a private one belongs and back."""
    kind = "private" if private else "public"
    try:
        rsa = _jwt().algorithms.RSAAlgorithm
        key = rsa(rsa.SHA256).prepare_key(pem)
        is_private = "d" in rsa.to_jwk(key, as_dict=True)
    except (_jwt().PyJWTError, ValueError, TypeError):
        raise AgentError(f"the token {kind} key is not a PEM RSA key") from None
    if is_private != private:
        raise AgentError(f"the token {kind} key is not a PEM RSA {kind} key")
    return key


# -- users and the Authorization header ----------------------------------------------------------

Lookup = Callable[[str], tuple[dict, dict | None] | None]
Verifier = Callable[[str, str], bool]
_HIDDEN_USER_KEYS = ("password", "refresh_token")
_LOGIN_FAILED = "Login failed"
_MALFORMED_BASIC = "Basic credentials must be base64 of 'username:password'"
_UNKNOWN_SCHEME = "Authorization header must be 'Basic <credentials>' or 'Bearer <token>'"
# The address of the caller whose request is being handled (set by the server per request),
# for the back-off of password checks made inside handlers (create_authentication_tokens).
CALLER_ADDRESS: ContextVar[str] = ContextVar("caller_address", default="")
_CHECK_WORKERS = min(4, max(1, (os.cpu_count() or 2) // 2))  # at most half the cores hash
_CHECK_QUEUE = 32
_REFUSAL_PAUSE = 1.0  # seconds a backed-off login waits for its 429


@dataclass(frozen=True)
class User:
    """An authenticated caller: the hdb_user name, its role row and what that role allows."""

    username: str
    role: dict | None
    permissions: Permissions
    active: bool


def public_user(row: Mapping[str, Any], role: dict | None) -> dict[str, Any]:
    """Return a user row as list_users and user_info show it: no secrets, the role expanded."""
    shown = {
        key: value
        for key, value in row.items()
        if key not in _HIDDEN_USER_KEYS and not key.endswith("_hash")
    }
    shown["role"] = dict(role) if role is not None else None
    return shown


def _make_user(row: Mapping[str, Any], role: dict | None) -> User:
    # A row without `active` predates the flag; only an explicit false disables the user.
    return User(
        username=row["username"],
        role=role,
        permissions=Permissions.from_role(role),
        active=row.get("active", True) is not False,
    )


class Authenticator:
    """Resolve an Authorization header or a login to a `User`.

    A successful password check is remembered (scrypt costs ~50 ms and the agent serves
    thousands of requests a second). The cache key is the user name and an HMAC of the
    presented password keyed by the stored hash: a password change gives a new stored hash, so
    stale entries can never match, and the password itself is never kept. A successful Basic
    header maps straight to its User (by a keyed digest) until `invalidate()`, which the agent
    calls on every hdb_user or hdb_role commit, local or replicated, before the writing
    request is answered, so deactivation and role changes still apply at once.
    """

    def __init__(
        self,
        lookup: Lookup,
        tokens: TokenService,
        clock: Callable[[], float],
        *,
        verify: Verifier = verify_password,
        cache_size: int = 1024,
    ) -> None:
        self._lookup = lookup
        self._tokens = tokens
        self._clock = clock
        self._verify = verify
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        # Successful Basic headers -> User, so a cached request costs one HMAC and a dict get
        self._by_header: dict[bytes, tuple[User, tuple[str, bytes]]] = {}
        self._secret = os.urandom(32)
        # Handlers may authenticate from worker threads while scrypt runs off the event loop.
        self._lock = threading.Lock()
        # Used from the event loop only (check, login_async), so they need no lock.
        self.throttle = LoginThrottle()
        self.pool = CheckPool(_CHECK_WORKERS, _CHECK_QUEUE)

    async def check(self, header: str | None, remote: str = "") -> tuple[User, str]:
        """Return (user, BASIC or the token kind) for a header, hashing off the event loop.

        A password check runs on the check pool, after the back-off for `remote` and the
        user allows it (TooManyAttempts, 429, otherwise). Cached Basic headers and tokens
        are answered at once and never backed off.
        """
        user = self.cached(header)
        if user is not None:
            return user, BASIC
        if not self.would_hash(header):
            return self.identify(header)
        username = _decode_basic(header.split(None, 1)[1].strip())[0]
        return await self._throttled(username, remote, self.identify, header)

    async def login_async(self, username: str, password: str, remote: str = "") -> User:
        """`login` on the check pool, behind the same back-off as `check`."""
        if not isinstance(username, str) or not isinstance(password, str):
            raise Unauthorized("invalid credentials")
        return await self._throttled(username, remote, self.login, username, password)

    async def _throttled(self, username: str, remote: str, fn: Callable, *args: Any) -> Any:
        keys = (("address", remote), ("user", username))
        try:
            self._refuse_if_backed_off(*keys)
        except TooManyAttempts as exc:
            # Answer a refused attempt after a pause: a client retrying at once would
            # otherwise turn its refusals into a flood of cheap requests.
            await asyncio.sleep(min(exc.retry_after, _REFUSAL_PAUSE))
            raise
        try:
            result = await self.pool.run(fn, *args)
        except Unauthorized:
            self.throttle.failed(keys, self._clock())
            raise
        self.throttle.succeeded(keys)
        return result

    def _refuse_if_backed_off(self, address: tuple, user: tuple) -> None:
        """Refuse a blocked address; refuse a blocked user only to addresses that failed too.

        So failed logins for `admin` from elsewhere never lock out an admin whose own address
        has not failed: a flood spread over many addresses gets one try per address.
        """
        now = self._clock()
        wait = self.throttle.wait(address, now)
        if wait:
            raise TooManyAttempts(
                f"too many failed logins from this address; retry in {wait:.0f} s", wait
            )
        wait = self.throttle.wait(user, now)
        if wait and self.throttle.failures(address, now):
            raise TooManyAttempts(
                f"too many failed logins for this user; retry in {wait:.0f} s", wait
            )

    def stamp(self, username: str) -> str | None:
        """Return the password stamp tokens issued to `username` now must carry."""
        found = self._lookup(username)
        stored = found[0].get("password") if found else None
        return password_stamp(stored) if isinstance(stored, str) else None

    def authenticate(self, header: str | None, *, token_kind: str = OPERATION) -> User:
        """Return the caller named by `Authorization: Basic ...` or `Bearer <token>`.

        `token_kind` is the kind a bearer token must be: refresh_operation_token passes REFRESH.
        """
        user, kind = self.identify(header)
        if kind not in (BASIC, token_kind):
            raise Unauthorized(_INVALID_TOKEN)
        return user

    def identify(self, header: str | None) -> tuple[User, str]:
        """Return (user, BASIC or the token's kind) for a header; either token kind passes."""
        parts = header.split(None, 1) if isinstance(header, str) else []
        if not parts:
            raise Unauthorized("Must login")
        scheme = parts[0].lower()
        value = parts[1].strip() if len(parts) > 1 else ""
        if scheme == "basic":
            return self._basic_header(header, value), BASIC
        if scheme == "bearer":
            return self._bearer(value)
        raise Unauthorized(_UNKNOWN_SCHEME)

    def _basic_header(self, header: str, value: str) -> User:
        key = self._header_key(header)
        user = self._cached_header(key)
        if user is not None:
            return user
        user = self._basic(value)
        self._remember_header(key, user, value)
        return user

    def login(self, username: str, password: str) -> User:
        """Check a create_authentication_tokens username and password."""
        if not isinstance(username, str) or not isinstance(password, str):
            raise Unauthorized("invalid credentials")
        user = self._check(username, password)
        if user is None:
            raise Unauthorized("invalid credentials")
        return user

    def invalidate(self) -> None:
        """Forget every remembered password check (hdb_user or hdb_role changed)."""
        with self._lock:
            self._cache.clear()
            self._by_header = {}

    def _header_key(self, header: str) -> bytes:
        # A keyed digest: the cache never holds the credentials themselves.
        return hmac.digest(self._secret, header.encode("utf-8", "surrogatepass"), "sha256")

    def _cached_header(self, key: bytes) -> User | None:
        """Return the user of a remembered header while its password check is remembered."""
        with self._lock:
            held = self._by_header.get(key)
            if held is None:
                return None
            user, check = held
            if check not in self._cache:  # the password check was evicted: verify again
                del self._by_header[key]
                return None
            self._cache.move_to_end(check)
            return user

    def _remember_header(self, key: bytes, user: User, value: str) -> None:
        """Remember a successful Basic header until users or roles change (invalidate)."""
        username, password = _decode_basic(value)
        found = self._lookup(username)
        stored = found[0].get("password") if found else None
        if not isinstance(stored, str):
            return
        check = (username, hmac.new(utf8(stored), utf8(password), hashlib.sha256).digest())
        with self._lock:
            if len(self._by_header) >= self._cache_size:
                self._by_header = {}
            self._by_header[key] = (user, check)

    def cached(self, header: str | None) -> User | None:
        """Return the user of a Basic header already verified (one HMAC), else None."""
        if not isinstance(header, str) or not header[:6].lower().startswith("basic "):
            return None
        return self._cached_header(self._header_key(header))

    def would_hash(self, header: str | None) -> bool:
        """Return True when authenticating `header` would run scrypt (not cached yet).

        The server runs those checks off the event loop, so a wrong password (never cached)
        costs its caller ~50 ms without stalling every other request.
        """
        parts = header.split(None, 1) if isinstance(header, str) else []
        if len(parts) != 2 or parts[0].lower() != "basic":
            return False
        if self._header_key(header) in self._by_header:
            return False
        try:
            username, password = _decode_basic(parts[1].strip())
        except Unauthorized:
            return False
        found = self._lookup(username) if username else None
        stored = found[0].get("password") if found else None
        if not isinstance(stored, str):
            return True
        key = (username, hmac.new(utf8(stored), utf8(password), hashlib.sha256).digest())
        with self._lock:
            return key not in self._cache

    def _basic(self, value: str) -> User:
        username, password = _decode_basic(value)
        user = self._check(username, password)
        if user is None:
            raise Unauthorized(_LOGIN_FAILED)
        return user

    def _bearer(self, token: str) -> tuple[User, str]:
        username, kind, stamp = self._tokens.claims(token, None, self._clock())
        found = self._lookup(username)
        if found is None:  # dropped since the token was issued
            raise Unauthorized(_INVALID_TOKEN)
        # Issued under another password (changed since, or a dropped and re-created user).
        # Tokens without a stamp predate stamps and live out their lifetime.
        stored = found[0].get("password")
        if stamp is not None and (not isinstance(stored, str) or stamp != password_stamp(stored)):
            raise Unauthorized(_INVALID_TOKEN)
        user = _make_user(*found)
        if not user.active:
            raise Unauthorized(_LOGIN_FAILED)
        return user, kind

    def _check(self, username: str, password: str) -> User | None:
        """Return the active user these credentials belong to, or None."""
        found = self._lookup(username) if username else None
        if found is None:
            self._verify(password, DUMMY_HASH)
            _log.debug("login failed: no user %r", username)
            return None
        row, role = found
        stored = row.get("password")
        if not isinstance(stored, str) or not self._password_ok(username, password, stored):
            _log.debug("login failed: wrong password for %r", username)
            return None
        user = _make_user(row, role)
        return user if user.active else None

    def _password_ok(self, username: str, password: str, stored: str) -> bool:
        key = (username, hmac.new(utf8(stored), utf8(password), hashlib.sha256).digest())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return True
        if not self._verify(password, stored):
            return False
        with self._lock:
            self._cache[key] = None
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return True


def _decode_basic(value: str) -> tuple[str, str]:
    """Split Basic credentials into (username, password)."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError both are
        raise Unauthorized(_MALFORMED_BASIC) from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise Unauthorized(_MALFORMED_BASIC)
    return username, password
