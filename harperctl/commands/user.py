"""`harperctl user`: list, add, alter and drop users; show the caller."""

from __future__ import annotations

from typing import Any

import click

from harperctl import render, terminal
from harperctl.commands._context import AppContext, pass_app, prompt_secret
from harperctl.commands._options import examples, yes_option
from harperctl.errors import UsageError

ASK = "\0ask"  # --password given without a value: ask on the terminal


def password_option(help_text: str) -> Any:
    """Return --password [PW]; without a value it asks on the terminal."""
    return click.option(
        "--password", is_flag=False, flag_value=ASK, default=None, metavar="[PW]", help=help_text
    )


def new_password(username: str, given: str | None) -> str:
    """Return the password given, or ask twice for it on a terminal."""
    if given not in (None, ASK):
        if not given:
            raise UsageError("--password must not be empty")
        return given
    if not terminal.stdin_is_terminal():
        raise UsageError(f"no password for {username!r}: give --password PW (no terminal to ask)")
    return prompt_secret(f"New password for {username}", confirm=True)


def alter_body(
    username: str, role: str | None, password: str | None, active: bool | None
) -> dict[str, Any]:
    """Return alter_user with only the fields being changed."""
    body: dict[str, Any] = {"operation": "alter_user", "username": username}
    if role is not None:
        body["role"] = role
    if password is not None:
        body["password"] = new_password(username, password)
    if active is not None:
        body["active"] = active
    if len(body) == 2:
        raise UsageError("user alter: give --role, --password, --active or --inactive")
    return body


@click.group(epilog=examples("harperctl user list", "harperctl user add ann --role developer"))
def user() -> None:
    """List, add, alter and drop users."""


@user.command("list", epilog=examples("harperctl user list"))
@pass_app
def list_users(app: AppContext) -> None:
    """List users with their roles (list_users)."""
    app.emit(app.call({"operation": "list_users"}), render.print_users)


@user.command(
    epilog=examples(
        "harperctl user add ann --role developer",
        'harperctl user add bot --role reader --password "$BOT_PASSWORD" --inactive',
    )
)
@click.argument("username")
@click.option("--role", required=True, metavar="ROLE", help="Role name, e.g. super_user.")
@password_option("Password; asked for (twice, hidden) on a terminal when missing.")
@click.option("--inactive", is_flag=True, help="Create the user disabled.")
@pass_app
def add(app: AppContext, username: str, role: str, password: str | None, inactive: bool) -> None:
    """Add the user USERNAME with a role."""
    body = {
        "operation": "add_user",
        "username": username,
        "password": new_password(username, password),
        "role": role,
        "active": not inactive,
    }
    app.emit(app.call(body), render.print_message)


@user.command(
    epilog=examples("harperctl user alter ann --role admin", "harperctl user alter ann --password")
)
@click.argument("username")
@click.option("--role", metavar="ROLE", help="New role name.")
@password_option("New password; --password alone asks for it on the terminal.")
@click.option("--active/--inactive", default=None, help="Enable or disable the user.")
@pass_app
def alter(
    app: AppContext, username: str, role: str | None, password: str | None, active: bool | None
) -> None:
    """Change a user's role, password or active flag."""
    app.emit(app.call(alter_body(username, role, password, active)), render.print_message)


@user.command(epilog=examples("harperctl user drop ann --yes"))
@click.argument("username")
@yes_option
@pass_app
def drop(app: AppContext, username: str, yes: bool) -> None:
    """Drop the user USERNAME, after asking."""
    app.confirm(f"drop user {username!r}", yes)
    app.emit(app.call({"operation": "drop_user", "username": username}), render.print_message)


@user.command(epilog=examples("harperctl user info", 'harperctl --token "$JWT" user info'))
@pass_app
def info(app: AppContext) -> None:
    """Show the user these credentials belong to (user_info)."""
    app.emit(app.call({"operation": "user_info"}), render.print_user_info)


COMMANDS = [user]
