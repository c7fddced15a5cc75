"""`harperctl role`: list, add, alter and drop roles."""

from __future__ import annotations

import json
from typing import Any

import click

from harperctl import render
from harperctl.commands._context import AppContext, pass_app
from harperctl.commands._options import examples, read_input, yes_option
from harperctl.errors import UsageError

PERMISSION_HELP = (
    "PERMISSION is a JSON object, @FILE to read it from a file, or - for stdin, e.g. "
    '\'{"super_user": false, "dev": {"tables": {"dog": {"read": true, "insert": true, '
    '"update": false, "delete": false, "attribute_permissions": []}}}}\'. '
    '--super-user stands for {"super_user": true}.'
)


def load_permission(raw: str | None, super_user: bool) -> dict[str, Any]:
    """Return the permission object from JSON, @FILE, - (stdin) or --super-user."""
    if super_user and raw is not None:
        raise UsageError("give PERMISSION or --super-user, not both")
    if super_user:
        return {"super_user": True}
    if raw is None:
        raise UsageError("give a PERMISSION object (JSON, @FILE or -) or --super-user")
    text, source = _permission_text(raw)
    try:
        permission = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(permission, dict):
        raise UsageError(f"{source}: the permission must be a JSON object")
    return permission


def _permission_text(raw: str) -> tuple[str, str]:
    if raw == "-":
        return read_input("-", "the permission")
    if raw.startswith("@"):
        return read_input(raw[1:], "the permission")
    return raw, "PERMISSION"


@click.group(epilog=examples("harperctl role list", "harperctl role add admins --super-user"))
def role() -> None:
    """List, add, alter and drop roles and their permissions."""


@role.command("list", epilog=examples("harperctl role list"))
@pass_app
def list_roles(app: AppContext) -> None:
    """List roles (list_roles)."""
    app.emit(app.call({"operation": "list_roles"}), render.print_roles)


@role.command(
    help="Add the role NAME with a permission object.\n\n" + PERMISSION_HELP,
    epilog=examples(
        "harperctl role add developer @developer.json", "harperctl role add ops --super-user"
    ),
)
@click.argument("name")
@click.argument("permission", required=False)
@click.option("--super-user", is_flag=True, help="Grant everything.")
@pass_app
def add(app: AppContext, name: str, permission: str | None, super_user: bool) -> None:
    """Add a role."""
    body = {
        "operation": "add_role",
        "role": name,
        "permission": load_permission(permission, super_user),
    }
    app.emit(app.call(body), render.print_message)


@role.command(
    help="Replace the permission (and optionally the name) of the role with id ID.\n\n"
    + PERMISSION_HELP,
    epilog=examples("harperctl role alter 2a7c1c5e @developer.json --name developers"),
)
@click.argument("role_id", metavar="ID")
@click.argument("permission", required=False)
@click.option("--name", metavar="NAME", help="New role name.")
@click.option("--super-user", is_flag=True, help="Grant everything.")
@pass_app
def alter(
    app: AppContext, role_id: str, permission: str | None, name: str | None, super_user: bool
) -> None:
    """Alter a role."""
    body: dict[str, Any] = {"operation": "alter_role", "id": role_id}
    if name is not None:
        body["role"] = name
    body["permission"] = load_permission(permission, super_user)
    app.emit(app.call(body), render.print_message)


@role.command(epilog=examples("harperctl role drop 2a7c1c5e --yes"))
@click.argument("role_id", metavar="ID")
@yes_option
@pass_app
def drop(app: AppContext, role_id: str, yes: bool) -> None:
    """Drop the role with id ID, after asking."""
    app.confirm(f"drop role {role_id!r}", yes)
    app.emit(app.call({"operation": "drop_role", "id": role_id}), render.print_message)


COMMANDS = [role]
