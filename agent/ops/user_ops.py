"""Users, roles and tokens: add/alter/drop/list users and roles, user_info, JWTs."""

from __future__ import annotations

import time

from agent.errors import ClientError, NotFound, Unauthorized
from agent.ops.auth import (
    BASIC,
    CALLER_ADDRESS,
    REFRESH,
    hash_password,
    public_user,
    validate_permission,
)
from agent.ops.registry import operation
from agent.ops.request import Request
from agent.storage.system import ROLES, SUPER_USER_ROLE, SYSTEM, USERS
from agent.storage.writes import LocalTransaction, WriteOp


async def _write(req: Request, kind: str, table: str, records=None, ids=None) -> list:
    services = req.services
    db = services.storage.get(SYSTEM)
    op = WriteOp(kind, table, records=records or [], ids=ids or [])
    return await db.write(LocalTransaction([op], services.storage.clock, services.node_name))


def _password(req: Request) -> str:
    password = req.string("password")
    if not password:
        raise ClientError("'password' must not be empty")
    return password


def _role_name(req: Request, required: bool = True) -> str | None:
    name = req.string("role", required=required)
    if name is not None and req.services.directory.role(name) is None:
        raise NotFound(f"role '{name}' does not exist")
    return name


@operation("add_user", super_user=True)
async def add_user(req: Request) -> dict:
    username = req.string("username")
    if not username or ":" in username:
        raise ClientError("'username' must be non-empty and must not contain ':'")
    if req.services.directory.lookup(username) is not None:
        raise ClientError(f"User {username} already exists")
    row = {
        "username": username,
        "password": hash_password(_password(req)),
        "role": _role_name(req),
        "active": req.boolean("active", True),
    }
    await _write(req, "insert", USERS, records=[row])
    return {"message": f"{username} successfully added"}


@operation("alter_user")
async def alter_user(req: Request) -> dict:
    username = req.string("username")
    caller = req.user
    changing_others = caller is not None and caller.username != username
    if changing_others or (caller is not None and req.get("role", "active") is not None):
        req.require_super_user()
    if req.services.directory.lookup(username) is None:
        raise NotFound(f"User {username} does not exist")
    row: dict = {"username": username}
    if req.get("password") is not None:
        row["password"] = hash_password(_password(req))
    if req.get("role") is not None:
        row["role"] = _role_name(req)
    if req.get("active") is not None:
        row["active"] = req.boolean("active")
    (result,) = await _write(req, "update", USERS, records=[row])
    return {
        "message": f"updated {len(result.written)} of 1 records",
        "new_attributes": [],
        "update_hashes": result.written,
        "skipped_hashes": result.skipped,
    }


@operation("drop_user", super_user=True)
async def drop_user(req: Request) -> dict:
    username = req.string("username")
    if req.services.directory.lookup(username) is None:
        raise NotFound(f"User {username} does not exist")
    if req.user is not None and req.user.username == username:
        raise ClientError("you cannot drop the user you are logged in as")
    await _write(req, "delete", USERS, ids=[username])
    return {"message": f"{username} successfully deleted"}


@operation("list_users", super_user=True)
async def list_users(req: Request) -> list[dict]:
    directory = req.services.directory
    users = sorted(directory.users(), key=lambda u: u["username"])
    return [public_user(u, directory.role(u.get("role"))) for u in users]


@operation("user_info")
async def user_info(req: Request) -> dict:
    found = req.services.directory.lookup(req.user.username) if req.user else None
    if found is None:
        raise NotFound("the calling user no longer exists")
    return public_user(*found)


@operation("add_role", super_user=True)
async def add_role(req: Request) -> dict:
    name = req.string("role")
    if not name:
        raise ClientError("'role' must not be empty")
    if req.services.directory.role(name) is not None:
        raise ClientError(f"A role with name '{name}' already exists")
    row = {"id": name, "role": name, "permission": validate_permission(req.require("permission"))}
    await _write(req, "insert", ROLES, records=[row])
    return req.services.directory.role(name) or row


@operation("alter_role", super_user=True)
async def alter_role(req: Request) -> dict:
    role_id = req.string("id", "role")
    if req.services.directory.role(role_id) is None:
        raise NotFound(f"role '{role_id}' does not exist")
    permission = validate_permission(req.require("permission"))
    if role_id == SUPER_USER_ROLE and not permission.get("super_user"):
        # every admin holds it: demoting it would lock them all out, as dropping it would
        raise ClientError("the super_user role cannot lose super_user")
    row = {"id": role_id, "permission": permission}
    await _write(req, "update", ROLES, records=[row])
    return req.services.directory.role(role_id) or row


@operation("drop_role", super_user=True)
async def drop_role(req: Request) -> dict:
    role_id = req.string("id", "role")
    directory = req.services.directory
    role = directory.role(role_id)
    if role is None:
        raise NotFound(f"role '{role_id}' does not exist")
    if role["id"] == SUPER_USER_ROLE:
        raise ClientError("the super_user role cannot be dropped")
    holders = [u["username"] for u in directory.users() if u.get("role") == role["id"]]
    if holders:
        raise ClientError(f"role '{role_id}' is still held by: {', '.join(sorted(holders))}")
    await _write(req, "delete", ROLES, ids=[role["id"]])
    return {"message": f"{role['role']} successfully deleted"}


@operation("list_roles", super_user=True)
async def list_roles(req: Request) -> list[dict]:
    return sorted(req.services.directory.roles(), key=lambda r: r["id"])


@operation("create_authentication_tokens", auth=False)
async def create_authentication_tokens(req: Request) -> dict:
    """Log in with a password (in the body, or a Basic header), never with a token.

    A token must not mint a fresh refresh token, or tokens would renew themselves for ever.
    The password check runs off the event loop, behind the back-off for failed logins.
    """
    auth = req.services.authenticator
    remote = CALLER_ADDRESS.get()
    if req.get("username") is None and req.authorization:
        user, kind = await auth.check(req.authorization, remote)
        if kind != BASIC:
            raise Unauthorized(
                "create_authentication_tokens needs a username and password, not a token"
            )
    else:
        user = await auth.login_async(req.string("username"), req.string("password"), remote)
    stamp = auth.stamp(user.username)
    return req.services.tokens.issue(user.username, time.time(), stamp)


@operation("refresh_operation_token", auth=False)
async def refresh_operation_token(req: Request) -> dict:
    """Swap a refresh token (the bearer, or HarperDB's `refresh_token` field) for a new one."""
    token = req.string("refresh_token", required=False)
    header = f"Bearer {token}" if token else req.authorization
    auth = req.services.authenticator
    user = auth.authenticate(header, token_kind=REFRESH)
    stamp = auth.stamp(user.username)
    return {
        "operation_token": req.services.tokens.issue_operation(user.username, time.time(), stamp)
    }
