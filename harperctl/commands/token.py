"""`harperctl token`: create operation/refresh tokens, refresh an operation token."""

from __future__ import annotations

import click

from harperctl import render, terminal
from harperctl.commands._context import AppContext, pass_app, prompt_secret
from harperctl.commands._options import examples
from harperctl.errors import UsageError
from harperctl.profiles import Settings


def token_credentials(
    settings: Settings, username: str | None, password: str | None
) -> tuple[str, str]:
    """Return the username and password to trade for tokens, asking when needed."""
    username = username or settings.user
    if not username:
        raise UsageError("token create: give --username (or the global --user)")
    if password is None and username == settings.user:
        password = settings.password
    if password is None:
        if not terminal.stdin_is_terminal():
            raise UsageError(f"token create: no password for {username!r}; give --password")
        password = prompt_secret(f"Password for {username}")
    return username, password


@click.group(epilog=examples("harperctl -u admin token create"))
def token() -> None:
    """Create and refresh JWT operation tokens."""


@token.command(
    epilog=examples(
        "harperctl -u admin token create",
        'harperctl token create --username ann --password "$PW" --json',
    )
)
@click.option("--username", help="User to create tokens for [the global --user].")
@click.option("--password", help="That user's password [the global --password, else asked].")
@pass_app
def create(app: AppContext, username: str | None, password: str | None) -> None:
    """Trade a username and password for an operation token and a refresh token.

    Use the operation token with --token or HARPERCTL_TOKEN.
    """
    username, password = token_credentials(app.resolve(), username, password)
    body = {"operation": "create_authentication_tokens", "username": username, "password": password}
    # The operation needs no Authorization header, and a stale --token would break it.
    app.emit(app.client_with().call(body), render.print_tokens)


@token.command(epilog=examples('harperctl token refresh "$REFRESH_TOKEN"'))
@click.argument("refresh_token")
@pass_app
def refresh(app: AppContext, refresh_token: str) -> None:
    """Get a new operation token, sending REFRESH_TOKEN as the bearer."""
    body = {"operation": "refresh_operation_token", "refresh_token": refresh_token}
    app.emit(app.client_with(token=refresh_token).call(body), render.print_tokens)


COMMANDS = [token]
