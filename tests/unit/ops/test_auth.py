"""Passwords, role permissions, tokens and the Authorization header, with a fixed clock."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import jwt
import pytest

from agent.certs.keys import generate_rsa_keypair
from agent.errors import AgentError, ClientError, Unauthorized
from agent.ops import auth
from agent.ops.auth import (
    OPERATION,
    REFRESH,
    Authenticator,
    Permissions,
    TokenService,
    User,
    hash_password,
    public_user,
    validate_permission,
    verify_password,
)

NOW = 1_700_000_000.0
DAY = 86_400.0
PASSWORD = "s3cret:with-colon"

# -- fixtures and fakes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair() -> tuple[bytes, bytes]:
    """Generate one RSA pair for the module: generation is slow."""
    return generate_rsa_keypair()


@pytest.fixture(scope="module")
def stored() -> str:
    """Hash PASSWORD once: scrypt is deliberately slow."""
    return hash_password(PASSWORD)


@pytest.fixture
def tokens(pair: tuple[bytes, bytes]) -> TokenService:
    return TokenService(pair[0], pair[1], operation_ttl=DAY, refresh_ttl=30 * DAY)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingVerifier:
    """Verify passwords for real and count how often scrypt was asked to."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, password: str, stored: str) -> bool:
        self.calls += 1
        return verify_password(password, stored)


class Directory:
    """hdb_user and hdb_role rows in memory, looked up the way the Authenticator asks."""

    ROLES = {
        "super_user": {"id": "r1", "role": "super_user", "permission": {"super_user": True}},
        "reader": {
            "id": "r2",
            "role": "reader",
            "permission": {"super_user": False, "dev": {"tables": {"dog": {"read": True}}}},
        },
    }

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}

    def add(self, username: str, stored: str, role: str = "reader", active: bool = True) -> None:
        self.users[username] = {
            "username": username,
            "password": stored,
            "role": self.ROLES[role]["id"],
            "active": active,
        }

    def lookup(self, username: str) -> tuple[dict, dict | None] | None:
        row = self.users.get(username)
        if row is None:
            return None
        role = next((r for r in self.ROLES.values() if r["id"] == row["role"]), None)
        return row, role


@pytest.fixture
def directory(stored: str) -> Directory:
    directory = Directory()
    directory.add("admin", stored, role="super_user")
    directory.add("alice", stored)
    directory.add("gone", stored, active=False)
    return directory


@pytest.fixture
def verifier() -> CountingVerifier:
    return CountingVerifier()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def authenticator(
    directory: Directory, tokens: TokenService, clock: Clock, verifier: CountingVerifier
) -> Authenticator:
    return Authenticator(directory.lookup, tokens, clock, verify=verifier)


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def unauthorized(authenticator: Authenticator, header: str | None) -> str:
    """Return the message of the Unauthorized that authenticating `header` raises."""
    with pytest.raises(Unauthorized) as caught:
        authenticator.authenticate(header)
    assert caught.value.status == 401
    return caught.value.message


# -- passwords ---------------------------------------------------------------------------------


def test_hash_has_the_documented_shape(stored: str) -> None:
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) == 32
    assert PASSWORD not in stored


def test_hash_round_trips_and_rejects_a_wrong_password(stored: str) -> None:
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "x", stored)
    assert not verify_password("", stored)


def test_same_password_hashes_differently_each_time(stored: str) -> None:
    again = hash_password(PASSWORD)
    assert again != stored
    assert verify_password(PASSWORD, again)


def test_non_ascii_and_lone_surrogate_passwords_round_trip() -> None:
    for password in ("pässwörd ✓", "half \ud800 pair"):
        assert verify_password(password, hash_password(password))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plaintext",
        "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==",
        "bcrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
        "scrypt$16384$8$1$not base64!$" + "A" * 43 + "=",
        "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
        "scrypt$-16$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
        "scrypt$16384$0$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
        "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
        "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=",
    ],
)
def test_malformed_stored_hash_never_matches(bad: str) -> None:
    assert verify_password(PASSWORD, bad) is False


def test_non_string_inputs_never_match(stored: str) -> None:
    assert verify_password(PASSWORD, None) is False  # type: ignore[arg-type]
    assert verify_password(None, stored) is False  # type: ignore[arg-type]


# -- permissions -------------------------------------------------------------------------------

DEV_ROLE = {
    "id": "r2",
    "role": "developer",
    "permission": {
        "super_user": False,
        "dev": {
            "tables": {
                "dog": {"read": True, "insert": True, "update": False, "delete": False},
                "cat": {"read": False, "insert": False, "update": False, "delete": False},
                "bird": {"read": "true", "insert": 1},
            }
        },
        "system": {"tables": {"hdb_user": {"read": True}}},
    },
}


def test_super_user_may_do_everything_including_system_tables() -> None:
    perms = Permissions.from_role({"id": "r1", "role": "su", "permission": {"super_user": True}})
    assert perms.super_user
    for action in auth.ACTIONS:
        assert perms.allows("any", "table", action)
        assert perms.allows("system", "hdb_user", action)
    assert perms.can_describe("system", "hdb_nodes")


@pytest.mark.parametrize(
    ("database", "table", "action", "expected"),
    [
        ("dev", "dog", "read", True),
        ("dev", "dog", "insert", True),
        ("dev", "dog", "update", False),
        ("dev", "dog", "delete", False),
        ("dev", "cat", "read", False),
        ("dev", "bird", "read", False),  # only a JSON true grants
        ("dev", "bird", "insert", False),
        ("dev", "nosuch", "read", False),
        ("nosuch", "dog", "read", False),
        ("system", "hdb_user", "read", False),  # system tables are super_user only
    ],
)
def test_table_grants(database: str, table: str, action: str, expected: bool) -> None:
    perms = Permissions.from_role(DEV_ROLE)
    assert not perms.super_user
    assert perms.allows(database, table, action) is expected


def test_describe_needs_some_grant_on_the_table() -> None:
    perms = Permissions.from_role(DEV_ROLE)
    assert perms.can_describe("dev", "dog")
    assert not perms.can_describe("dev", "cat")
    assert not perms.can_describe("dev", "nosuch")
    assert not perms.can_describe("system", "hdb_user")


@pytest.mark.parametrize(
    "role",
    [None, {}, {"permission": None}, {"permission": "super_user"}, {"permission": {"x": 1}}],
)
def test_missing_or_junk_role_grants_nothing(role: dict | None) -> None:
    perms = Permissions.from_role(role)
    assert perms == Permissions()
    assert not perms.allows("dev", "dog", "read")
    assert not perms.can_describe("dev", "dog")


def test_super_user_must_be_exactly_true() -> None:
    assert not Permissions.from_role({"permission": {"super_user": "yes"}}).super_user


def test_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="drop"):
        Permissions().allows("dev", "dog", "drop")


# -- validate_permission -----------------------------------------------------------------------


def test_valid_permission_is_normalised() -> None:
    doc = {
        "dev": {
            "tables": {
                "dog": {
                    "read": True,
                    "insert": True,
                    "attribute_permissions": [
                        {"attribute_name": "name", "read": True, "delete": False}
                    ],
                }
            }
        }
    }
    assert validate_permission(doc) == {
        "super_user": False,
        "dev": {
            "tables": {
                "dog": {
                    "read": True,
                    "insert": True,
                    "update": False,
                    "delete": False,
                    "attribute_permissions": [
                        {"attribute_name": "name", "read": True, "insert": False, "update": False}
                    ],
                }
            }
        },
    }


@pytest.mark.parametrize(
    "doc",
    [
        {"super_user": True},
        {"cluster_user": True},
        {"super_user": False, "structure_user": ["dev"]},
        {"super_user": False, "dev": {}},
        {"dev": {"tables": {}}},
    ],
)
def test_valid_permission_documents_pass(doc: dict) -> None:
    assert validate_permission(doc)["super_user"] is doc.get("super_user", False)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (None, "permission is required"),
        ([], "'permission' must be an object"),
        ({"super_user": "true"}, "Value for 'super_user' permission must be a boolean"),
        ({"cluster_user": 1}, "Value for 'cluster_user' permission must be a boolean"),
        ({"structure_user": "dev"}, "'structure_user' permission must be a boolean or Array"),
        ({"super_user": True, "cluster_user": True}, "both 'super_user' and 'cluster_user'"),
        (
            {"super_user": True, "dev": {"tables": {}}},
            "Roles with 'super_user' set to true cannot have other permissions set.",
        ),
        ({"dev": []}, "Value for database 'dev' must be an object"),
        ({"dev": {"tabels": {}}}, "Invalid database permission key value 'tabels' for 'dev'"),
        ({"dev": {"tables": []}}, "Value for 'tables' must be an object for 'dev'"),
        ({"dev": {"tables": {"dog": True}}}, "must be an object for 'dev.dog'"),
        (
            {"dev": {"tables": {"dog": {"read": True, "drop": True}}}},
            "Invalid table permission key value 'drop' for 'dev.dog'",
        ),
        (
            {"dev": {"tables": {"dog": {"read": "yes"}}}},
            "Table READ permission must be a boolean for 'dev.dog'",
        ),
        (
            {"dev": {"tables": {"dog": {"delete": 0}}}},
            "Table DELETE permission must be a boolean for 'dev.dog'",
        ),
        (
            {"dev": {"tables": {"dog": {"attribute_permissions": {}}}}},
            "Value for 'attribute_permissions' must be an array for 'dev.dog'",
        ),
        (
            {"dev": {"tables": {"dog": {"attribute_permissions": ["name"]}}}},
            "Entries in 'attribute_permissions' must be objects for 'dev.dog'",
        ),
        (
            {"dev": {"tables": {"dog": {"attribute_permissions": [{"read": True}]}}}},
            "missing an 'attribute_name' for 'dev.dog'",
        ),
        (
            {
                "dev": {
                    "tables": {
                        "dog": {"attribute_permissions": [{"attribute_name": "n", "rd": True}]}
                    }
                }
            },
            "Invalid attribute permission key value 'rd' for 'dev.dog'",
        ),
        (
            {
                "dev": {
                    "tables": {
                        "dog": {"attribute_permissions": [{"attribute_name": "n", "read": 1}]}
                    }
                }
            },
            "READ attribute permission for 'n' must be a boolean for 'dev.dog'",
        ),
        (
            {
                "dev": {
                    "tables": {
                        "dog": {
                            "read": False,
                            "attribute_permissions": [{"attribute_name": "n", "read": True}],
                        }
                    }
                }
            },
            "conflict with TABLE permissions for 'dev.dog' being false",
        ),
    ],
)
def test_malformed_permission_names_the_bad_key(doc: object, message: str) -> None:
    with pytest.raises(ClientError) as caught:
        validate_permission(doc)
    assert caught.value.status == 400
    assert message in caught.value.message


# -- tokens ------------------------------------------------------------------------------------


def test_issued_tokens_verify_as_their_own_kind(tokens: TokenService) -> None:
    issued = tokens.issue("alice", NOW)
    assert set(issued) == {"operation_token", "refresh_token"}
    assert tokens.verify(issued["operation_token"], OPERATION, NOW) == "alice"
    assert tokens.verify(issued["refresh_token"], REFRESH, NOW) == "alice"
    assert tokens.verify(tokens.issue_operation("bob", NOW), OPERATION, NOW + 1) == "bob"


def test_tokens_are_rs256_with_the_kind_as_subject(tokens: TokenService) -> None:
    token = tokens.issue_operation("alice", NOW)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["username"], claims["exp"]) == ("operation", "alice", NOW + DAY)


def test_token_expires_at_its_ttl(tokens: TokenService) -> None:
    issued = tokens.issue("alice", NOW)
    assert tokens.verify(issued["operation_token"], OPERATION, NOW + DAY - 0.001) == "alice"
    for token, kind, ttl in [
        (issued["operation_token"], OPERATION, DAY),
        (issued["refresh_token"], REFRESH, 30 * DAY),
    ]:
        with pytest.raises(Unauthorized, match="^invalid token$"):
            tokens.verify(token, kind, NOW + ttl)


def test_token_of_the_other_kind_is_refused(tokens: TokenService) -> None:
    issued = tokens.issue("alice", NOW)
    with pytest.raises(Unauthorized, match="^invalid token$"):
        tokens.verify(issued["refresh_token"], OPERATION, NOW)
    with pytest.raises(Unauthorized, match="^invalid token$"):
        tokens.verify(issued["operation_token"], REFRESH, NOW)


def _tampered(token: str) -> str:
    """Change the payload of a signed token so that the signature no longer covers it."""
    header, _, signature = token.split(".")
    claims = {"username": "admin", "sub": "operation", "exp": NOW + DAY}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    return f"{header}.{payload.decode()}.{signature}"


@pytest.mark.parametrize(
    "forge",
    [
        _tampered,
        lambda token: token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        lambda token: "not-a-jwt",
        lambda token: "",
        lambda token: jwt.encode(
            {"username": "admin", "sub": "operation", "exp": NOW + DAY}, None, algorithm="none"
        ),
    ],
)
def test_forged_or_malformed_tokens_are_refused(tokens: TokenService, forge) -> None:
    token = forge(tokens.issue_operation("alice", NOW))
    with pytest.raises(Unauthorized, match="^invalid token$"):
        tokens.verify(token, OPERATION, NOW)


def test_token_signed_by_another_key_is_refused(
    pair: tuple[bytes, bytes], tokens: TokenService
) -> None:
    other_private, other_public = generate_rsa_keypair()
    other = TokenService(other_private, other_public, operation_ttl=DAY, refresh_ttl=DAY)
    with pytest.raises(Unauthorized, match="^invalid token$"):
        tokens.verify(other.issue_operation("alice", NOW), OPERATION, NOW)
    with pytest.raises(AgentError, match="does not match"):
        TokenService(other_private, pair[1], DAY, DAY)


def test_mismatched_or_swapped_keys_are_refused(pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = pair
    with pytest.raises(AgentError, match="private key"):
        TokenService(public_pem, public_pem, DAY, DAY)
    with pytest.raises(AgentError, match="public key"):
        TokenService(private_pem, private_pem, DAY, DAY)
    with pytest.raises(AgentError, match="not a PEM RSA key"):
        TokenService(b"garbage", public_pem, DAY, DAY)


# -- users -------------------------------------------------------------------------------------


def test_public_user_hides_secrets_and_expands_the_role() -> None:
    row = {
        "username": "alice",
        "password": "scrypt$...",
        "refresh_token": "x",
        "token_hash": "y",
        "role": "r2",
        "active": True,
    }
    role = Directory.ROLES["reader"]
    shown = public_user(row, role)
    assert shown == {"username": "alice", "role": role, "active": True}
    assert row["role"] == "r2" and "password" in row  # the row itself is untouched
    assert public_user(row, None)["role"] is None


# -- the Authorization header ------------------------------------------------------------------


def test_basic_credentials_resolve_the_user(authenticator: Authenticator) -> None:
    user = authenticator.authenticate(basic("alice", PASSWORD))
    assert isinstance(user, User)
    assert (user.username, user.active, user.role) == ("alice", True, Directory.ROLES["reader"])
    assert user.permissions.allows("dev", "dog", "read")
    assert not user.permissions.allows("dev", "dog", "insert")
    assert authenticator.authenticate(basic("admin", PASSWORD)).permissions.super_user


def test_scheme_is_case_insensitive_and_spacing_tolerated(authenticator: Authenticator) -> None:
    credentials = basic("alice", PASSWORD).split()[1]
    assert authenticator.authenticate(f"  basic   {credentials} ").username == "alice"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Must login"),
        ("", "Must login"),
        ("   ", "Must login"),
        ("Basic", "Basic credentials must be base64 of 'username:password'"),
        ("Basic !!not-base64!!", "Basic credentials must be base64 of 'username:password'"),
        (
            "Basic " + base64.b64encode(b"no colon here").decode(),
            "Basic credentials must be base64 of 'username:password'",
        ),
        (
            "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
            "Basic credentials must be base64 of 'username:password'",
        ),
        ("Digest abc", "Authorization header must be 'Basic <credentials>' or 'Bearer <token>'"),
        ("abc.def.ghi", "Authorization header must be 'Basic <credentials>' or 'Bearer <token>'"),
        (basic("alice", "wrong"), "Login failed"),
        (basic("nobody", PASSWORD), "Login failed"),
        (basic("", PASSWORD), "Login failed"),
        (basic("gone", PASSWORD), "Login failed"),
        ("Bearer", "invalid token"),
        ("Bearer not-a-jwt", "invalid token"),
    ],
)
def test_header_errors(authenticator: Authenticator, header: str | None, message: str) -> None:
    assert unauthorized(authenticator, header) == message


def test_errors_and_logs_never_show_the_password(
    authenticator: Authenticator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.ops.auth")
    for header in (basic("alice", "Wr0ngPassw0rd"), basic("nobody", "Wr0ngPassw0rd")):
        assert "Wr0ngPassw0rd" not in unauthorized(authenticator, header)
    assert "Wr0ngPassw0rd" not in caplog.text


def test_bearer_operation_token_resolves_the_user(
    authenticator: Authenticator, tokens: TokenService
) -> None:
    token = tokens.issue("alice", NOW)["operation_token"]
    assert authenticator.authenticate(f"Bearer {token}").username == "alice"


def test_refresh_token_is_only_a_bearer_where_asked_for(
    authenticator: Authenticator, tokens: TokenService
) -> None:
    issued = tokens.issue("alice", NOW)
    assert unauthorized(authenticator, f"Bearer {issued['refresh_token']}") == "invalid token"
    user = authenticator.authenticate(f"Bearer {issued['refresh_token']}", token_kind=REFRESH)
    assert user.username == "alice"
    with pytest.raises(Unauthorized, match="^invalid token$"):
        authenticator.authenticate(f"Bearer {issued['operation_token']}", token_kind=REFRESH)


def test_bearer_checks_expiry_against_the_clock(
    authenticator: Authenticator, tokens: TokenService, clock: Clock
) -> None:
    header = f"Bearer {tokens.issue_operation('alice', NOW)}"
    clock.now = NOW + DAY - 1
    assert authenticator.authenticate(header).username == "alice"
    clock.now = NOW + DAY
    assert unauthorized(authenticator, header) == "invalid token"


def test_bearer_of_a_dropped_or_deactivated_user_is_refused(
    authenticator: Authenticator, tokens: TokenService, directory: Directory
) -> None:
    header = f"Bearer {tokens.issue_operation('alice', NOW)}"
    directory.users["alice"]["active"] = False
    assert unauthorized(authenticator, header) == "Login failed"
    del directory.users["alice"]
    assert unauthorized(authenticator, header) == "invalid token"


def test_login_returns_the_user_or_invalid_credentials(authenticator: Authenticator) -> None:
    assert authenticator.login("alice", PASSWORD).username == "alice"
    for username, password in [("alice", "nope"), ("nobody", PASSWORD), ("gone", PASSWORD)]:
        with pytest.raises(Unauthorized, match="^invalid credentials$"):
            authenticator.login(username, password)
    with pytest.raises(Unauthorized, match="^invalid credentials$"):
        authenticator.login(None, None)  # type: ignore[arg-type]


# -- the verification cache --------------------------------------------------------------------


def test_second_verification_of_the_same_credentials_skips_scrypt(
    authenticator: Authenticator, verifier: CountingVerifier
) -> None:
    header = basic("alice", PASSWORD)
    authenticator.authenticate(header)
    authenticator.authenticate(header)
    authenticator.login("alice", PASSWORD)
    assert verifier.calls == 1


def test_failed_attempts_are_never_cached(
    authenticator: Authenticator, verifier: CountingVerifier
) -> None:
    for _ in range(2):
        unauthorized(authenticator, basic("alice", "wrong"))
        unauthorized(authenticator, basic("nobody", PASSWORD))  # costs a dummy check too
    assert verifier.calls == 4


def test_changed_stored_hash_forces_a_new_verification(
    authenticator: Authenticator, verifier: CountingVerifier, directory: Directory
) -> None:
    authenticator.authenticate(basic("alice", PASSWORD))
    directory.users["alice"]["password"] = hash_password("n3w-password")
    authenticator.invalidate()  # as the agent does on every hdb_user / hdb_role commit
    assert unauthorized(authenticator, basic("alice", PASSWORD)) == "Login failed"
    assert authenticator.authenticate(basic("alice", "n3w-password")).username == "alice"
    authenticator.authenticate(basic("alice", "n3w-password"))
    assert verifier.calls == 3


def test_deactivation_applies_even_when_the_password_is_cached(
    authenticator: Authenticator, directory: Directory
) -> None:
    authenticator.authenticate(basic("alice", PASSWORD))
    directory.users["alice"]["active"] = False
    authenticator.invalidate()  # as the agent does on every hdb_user / hdb_role commit
    assert unauthorized(authenticator, basic("alice", PASSWORD)) == "Login failed"


def test_invalidate_forgets_every_verification(
    authenticator: Authenticator, verifier: CountingVerifier
) -> None:
    authenticator.authenticate(basic("alice", PASSWORD))
    authenticator.invalidate()
    authenticator.authenticate(basic("alice", PASSWORD))
    assert verifier.calls == 2


def test_cache_is_bounded_and_evicts_the_least_recently_used(
    directory: Directory, tokens: TokenService, clock: Clock, verifier: CountingVerifier
) -> None:
    small = Authenticator(directory.lookup, tokens, clock, verify=verifier, cache_size=2)
    for username in ["admin", "alice", "admin"]:  # admin is hit, so alice is now oldest
        small.authenticate(basic(username, PASSWORD))
    assert verifier.calls == 2
    directory.add("carol", directory.users["alice"]["password"])
    small.authenticate(basic("carol", PASSWORD))  # evicts alice
    small.authenticate(basic("admin", PASSWORD))
    assert verifier.calls == 3
    small.authenticate(basic("alice", PASSWORD))
    assert verifier.calls == 4


def test_would_hash_tells_which_checks_cost_scrypt(authenticator: Authenticator) -> None:
    good = basic("admin", PASSWORD)
    assert authenticator.would_hash(good)  # never verified yet
    authenticator.authenticate(good)
    assert not authenticator.would_hash(good)  # cached now: cheap on the event loop
    assert authenticator.would_hash(basic("admin", "wrong"))  # failures are never cached
    assert authenticator.would_hash(basic("nobody", "x"))  # unknown users cost one check too
    assert not authenticator.would_hash(None)
    assert not authenticator.would_hash("Bearer abc")
