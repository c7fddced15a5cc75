"""Who is calling and what they may do: passwords, role permissions, tokens, the auth header.

The only module importing `jwt`. Nothing here touches storage, the clock or the network: the
caller hands in a user lookup, key material and a clock, which keeps every rule testable.

Messages follow HarperDB's: 401 `Must login` without credentials, `Login failed` for a wrong
user, password or an inactive user, `invalid token` for any bearer token that does not check
out, and `invalid credentials` from create_authentication_tokens. No message, log line or
cache key ever holds a password, a token or a stored hash in the clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.algorithms import RSAAlgorithm

from agent.errors import AgentError, ClientError, Unauthorized

_log = logging.getLogger(__name__)

# -- passwords ---------------------------------------------------------------------------------

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32
# 128 * n * r bytes is what scrypt needs (16 MiB here); leave room, refuse absurd stored values.
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_SCHEME = "scrypt"

# Verified when the user does not exist, so that a wrong name costs what a wrong password
# costs and response times do not reveal which user names exist.
_DUMMY_HASH = "$".join(
    [_SCHEME, str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), "A" * 22 + "==", "A" * 43 + "="]
)


def hash_password(password: str) -> str:
    """Hash a password with a fresh salt as `scrypt$n$r$p$<salt b64>$<hash b64>`."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    fields = [str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest)]
    return "$".join([_SCHEME, *fields])


def verify_password(password: str, stored: str) -> bool:
    """Tell whether `password` matches a stored hash; a malformed stored value never matches."""
    parsed = _parse_hash(stored) if isinstance(stored, str) else None
    if parsed is None or not isinstance(password, str):
        return False
    n, r, p, salt, digest = parsed
    try:
        candidate = _scrypt(password, salt, n, r, p, len(digest))
    except (ValueError, MemoryError):  # parameters OpenSSL refuses
        return False
    return hmac.compare_digest(candidate, digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        _utf8(password), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=dklen
    )


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    """Split a stored hash into (n, r, p, salt, digest), or None if it is not one of ours."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return None
    if not all(part.isascii() and part.isdigit() for part in parts[1:4]):
        return None
    n, r, p = (int(part) for part in parts[1:4])
    try:
        salt, digest = (base64.b64decode(part, validate=True) for part in parts[4:6])
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or not salt or not 16 <= len(digest) <= 64:
        return None
    return n, r, p, salt, digest


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _utf8(text: str) -> bytes:
    # JSON can carry lone surrogates; encode them rather than fail on them.
    return text.encode("utf-8", "surrogatepass")


# -- permissions -------------------------------------------------------------------------------

ACTIONS = ("read", "insert", "update", "delete")
ATTRIBUTE_ACTIONS = ("read", "insert", "update")
SYSTEM_DATABASE = "system"
ROLE_FLAGS = ("super_user", "cluster_user")
STRUCTURE_USER = "structure_user"
ATTRIBUTE_PERMISSIONS = "attribute_permissions"
_NOT_DATABASES = (*ROLE_FLAGS, STRUCTURE_USER)


@dataclass(frozen=True)
class Permissions:
    """What a role may do: everything (super_user) or per-table actions."""

    super_user: bool = False
    cluster_user: bool = False
    # database -> table -> granted actions; only grants that are exactly `true` count.
    grants: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)

    @classmethod
    def from_role(cls, role: Mapping[str, Any] | None) -> Permissions:
        """Read a role row `{"id", "role", "permission"}`; None or junk grants nothing."""
        permission = role.get("permission") if isinstance(role, Mapping) else None
        if not isinstance(permission, Mapping):
            return cls()
        return cls(
            super_user=permission.get("super_user") is True,
            cluster_user=permission.get("cluster_user") is True,
            grants=_grants_of(permission),
        )

    def allows(self, database: str, table: str, action: str) -> bool:
        """Tell whether this role may `action` (read/insert/update/delete) on the table."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        if self.super_user:
            return True
        if database == SYSTEM_DATABASE:
            return False
        return action in self.grants.get(database, {}).get(table, frozenset())

    def can_describe(self, database: str, table: str) -> bool:
        """Tell whether the role holds any grant on the table, enough to see its schema."""
        if self.super_user:
            return True
        if database == SYSTEM_DATABASE:
            return False
        return bool(self.grants.get(database, {}).get(table))


def _grants_of(permission: Mapping[str, Any]) -> dict[str, dict[str, frozenset[str]]]:
    grants: dict[str, dict[str, frozenset[str]]] = {}
    for database, spec in permission.items():
        tables = spec.get("tables") if isinstance(spec, Mapping) else None
        if database in _NOT_DATABASES or not isinstance(tables, Mapping):
            continue
        grants[database] = {
            table: frozenset(a for a in ACTIONS if grant.get(a) is True)
            for table, grant in tables.items()
            if isinstance(grant, Mapping)
        }
    return grants


def validate_permission(permission: object) -> dict[str, Any]:
    """Check an add_role/alter_role permission document and return it normalised.

    Missing table actions become `false` and a missing `attribute_permissions` becomes `[]`
    (HarperDB assumes false for what is not granted). Whether each database, table and
    attribute exists is the caller's check: this one knows no schema.
    """
    if permission is None:
        raise ClientError("permission is required")
    if not isinstance(permission, Mapping):
        raise ClientError("'permission' must be an object")
    result: dict[str, Any] = {"super_user": False}
    for key, value in permission.items():
        if key in ROLE_FLAGS:
            result[key] = _flag(key, value)
        elif key == STRUCTURE_USER:
            result[key] = _structure_user(value)
        else:
            result[key] = _database_permission(key, value)
    _check_role_type(result)
    return result


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ClientError(f"Value for '{key}' permission must be a boolean")
    return value


def _structure_user(value: object) -> bool | list[str]:
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ClientError(f"Value for '{STRUCTURE_USER}' permission must be a boolean or Array")


def _check_role_type(result: Mapping[str, Any]) -> None:
    """Refuse a super_user or cluster_user role that also lists grants (HarperDB does)."""
    flagged = [flag for flag in ROLE_FLAGS if result.get(flag) is True]
    if len(flagged) > 1:
        raise ClientError(
            "Roles cannot have both 'super_user' and 'cluster_user' values included in their "
            "permissions set."
        )
    if flagged and any(key not in ROLE_FLAGS for key in result):
        raise ClientError(
            f"Roles with '{flagged[0]}' set to true cannot have other permissions set."
        )


def _database_permission(database: str, spec: object) -> dict[str, Any]:
    if not database:
        raise ClientError("Invalid database name '' in permission")
    if not isinstance(spec, Mapping):
        raise ClientError(f"Value for database '{database}' must be an object")
    for key in spec:
        if key != "tables":
            raise ClientError(f"Invalid database permission key value '{key}' for '{database}'")
    tables = spec.get("tables", {})
    if not isinstance(tables, Mapping):
        raise ClientError(f"Value for 'tables' must be an object for '{database}'")
    return {"tables": {t: _table_permission(f"{database}.{t}", g) for t, g in tables.items()}}


def _table_permission(where: str, grant: object) -> dict[str, Any]:
    if not isinstance(grant, Mapping):
        raise ClientError(f"Value for table permissions must be an object for '{where}'")
    for key in grant:
        if key not in ACTIONS and key != ATTRIBUTE_PERMISSIONS:
            raise ClientError(f"Invalid table permission key value '{key}' for '{where}'")
    result: dict[str, Any] = {}
    for action in ACTIONS:
        result[action] = grant.get(action, False)
        if not isinstance(result[action], bool):
            raise ClientError(f"Table {action.upper()} permission must be a boolean for '{where}'")
    result[ATTRIBUTE_PERMISSIONS] = _attribute_permissions(where, grant, result)
    return result


def _attribute_permissions(where: str, grant: Mapping[str, Any], table: dict) -> list[dict]:
    entries = grant.get(ATTRIBUTE_PERMISSIONS)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ClientError(f"Value for '{ATTRIBUTE_PERMISSIONS}' must be an array for '{where}'")
    result = [_attribute_permission(where, entry) for entry in entries]
    for action in ATTRIBUTE_ACTIONS:
        if not table[action] and any(entry[action] for entry in result):
            raise ClientError(
                f"You have a conflict with TABLE permissions for '{where}' being false and "
                "ATTRIBUTE permissions being true"
            )
    return result


def _attribute_permission(where: str, entry: object) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise ClientError(f"Entries in '{ATTRIBUTE_PERMISSIONS}' must be objects for '{where}'")
    for key in entry:
        # HarperDB tolerates a `delete` key here although attributes have no delete grant.
        if key not in (*ATTRIBUTE_ACTIONS, "attribute_name", "delete"):
            raise ClientError(f"Invalid attribute permission key value '{key}' for '{where}'")
    name = entry.get("attribute_name")
    if not isinstance(name, str) or not name:
        raise ClientError(
            f"Permission object in '{ATTRIBUTE_PERMISSIONS}' missing an 'attribute_name' "
            f"for '{where}'"
        )
    result: dict[str, Any] = {"attribute_name": name}
    for action in ATTRIBUTE_ACTIONS:
        result[action] = entry.get(action, False)
        if not isinstance(result[action], bool):
            raise ClientError(
                f"{action.upper()} attribute permission for '{name}' must be a boolean "
                f"for '{where}'"
            )
    return result


# -- tokens ------------------------------------------------------------------------------------

OPERATION = "operation"
REFRESH = "refresh"
TOKEN_KINDS = (OPERATION, REFRESH)
_ALGORITHM = "RS256"
_RSA = RSAAlgorithm(RSAAlgorithm.SHA256)
_INVALID_TOKEN = "invalid token"
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
        # Parse the PEMs once: doing it on every request would cost more than the signature.
        # Already-parsed key objects (agent.certs.keys.load_or_create_keys) are used as given.
        self._private_key = (
            _load_key(private_pem, private=True) if isinstance(private_pem, bytes) else private_pem
        )
        self._public_key = (
            _load_key(public_pem, private=False) if isinstance(public_pem, bytes) else public_pem
        )
        self._ttl = {OPERATION: float(operation_ttl), REFRESH: float(refresh_ttl)}
        self._check_pair()

    def issue(self, username: str, now: float) -> dict[str, str]:
        """Return a fresh `{"operation_token", "refresh_token"}` pair for the user."""
        return {
            "operation_token": self._sign(username, OPERATION, now),
            "refresh_token": self._sign(username, REFRESH, now),
        }

    def issue_operation(self, username: str, now: float) -> str:
        """Return a fresh operation token (refresh_operation_token's answer)."""
        return self._sign(username, OPERATION, now)

    def verify(self, token: str, kind: str, now: float) -> str:
        """Return the username a valid, unexpired token of `kind` was issued to."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"unknown token kind {kind!r}")
        claims = self._decode(token)
        username, exp = claims.get("username"), claims.get("exp")
        if claims.get("sub") != kind or not isinstance(username, str) or not username:
            raise Unauthorized(_INVALID_TOKEN)
        if isinstance(exp, bool) or not isinstance(exp, int | float) or now >= exp:
            raise Unauthorized(_INVALID_TOKEN)
        return username

    def _sign(self, username: str, kind: str, now: float) -> str:
        claims = {"username": username, "sub": kind, "iat": now, "exp": now + self._ttl[kind]}
        return jwt.encode(claims, self._private_key, algorithm=_ALGORITHM)

    def _decode(self, token: object) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise Unauthorized(_INVALID_TOKEN)
        try:
            return jwt.decode(
                token, self._public_key, algorithms=[_ALGORITHM], options=_DECODE_OPTIONS
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
        key = _RSA.prepare_key(pem)
        is_private = "d" in RSAAlgorithm.to_jwk(key, as_dict=True)
    except (jwt.PyJWTError, ValueError, TypeError):
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

    def authenticate(self, header: str | None, *, token_kind: str = OPERATION) -> User:
        """Return the caller named by `Authorization: Basic ...` or `Bearer <token>`.

        `token_kind` is the kind a bearer token must be: refresh_operation_token passes REFRESH.
        """
        parts = header.split(None, 1) if isinstance(header, str) else []
        if not parts:
            raise Unauthorized("Must login")
        scheme = parts[0].lower()
        value = parts[1].strip() if len(parts) > 1 else ""
        if scheme == "basic":
            key = self._header_key(header)
            user = self._cached_header(key)
            if user is None:
                user = self._basic(value)
                self._remember_header(key, user, value)
            return user
        if scheme == "bearer":
            return self._bearer(value, token_kind)
        raise Unauthorized(_UNKNOWN_SCHEME)

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
        check = (username, hmac.new(_utf8(stored), _utf8(password), hashlib.sha256).digest())
        with self._lock:
            if len(self._by_header) >= self._cache_size:
                self._by_header = {}
            self._by_header[key] = (user, check)

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
        key = (username, hmac.new(_utf8(stored), _utf8(password), hashlib.sha256).digest())
        with self._lock:
            return key not in self._cache

    def _basic(self, value: str) -> User:
        username, password = _decode_basic(value)
        user = self._check(username, password)
        if user is None:
            raise Unauthorized(_LOGIN_FAILED)
        return user

    def _bearer(self, token: str, kind: str) -> User:
        username = self._tokens.verify(token, kind, self._clock())
        found = self._lookup(username)
        if found is None:  # dropped since the token was issued
            raise Unauthorized(_INVALID_TOKEN)
        user = _make_user(*found)
        if not user.active:
            raise Unauthorized(_LOGIN_FAILED)
        return user

    def _check(self, username: str, password: str) -> User | None:
        """Return the active user these credentials belong to, or None."""
        found = self._lookup(username) if username else None
        if found is None:
            self._verify(password, _DUMMY_HASH)
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
        key = (username, hmac.new(_utf8(stored), _utf8(password), hashlib.sha256).digest())
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
