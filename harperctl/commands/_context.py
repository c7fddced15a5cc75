"""The per-run context every command receives: settings, client, output, confirmation."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import click

from harperctl import profiles, render, terminal
from harperctl.client import Client
from harperctl.errors import HarperctlError, UsageError
from harperctl.profiles import Settings

if TYPE_CHECKING:
    from harperctl.render import Console


INSECURE_WARNING = "harperctl: warning: not verifying the TLS certificate of {url} (--insecure)"


def warn(message: str) -> None:
    """Print a warning on stderr."""
    click.echo(message, err=True)


def prompt_secret(label: str, confirm: bool = False) -> str:
    """Ask for a secret on the terminal without echoing it."""
    return click.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True)


@dataclasses.dataclass
class AppContext:
    """The global options of one run; builds settings and the client on first use."""

    options: dict[str, Any]
    json_output: bool = False
    env: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(os.environ))
    _settings: Settings | None = None
    _client: Client | None = None
    _console: Console | None = None
    _others: list[Client] = dataclasses.field(default_factory=list)

    def resolve(self) -> Settings:
        """Return the connection settings without asking for a password."""
        return profiles.resolve(self.options, self.env, warn)

    @property
    def settings(self) -> Settings:
        """Return the settings, asking for the password when a user has none."""
        if self._settings is None:
            self._settings = with_password(self.resolve())
        return self._settings

    @property
    def client(self) -> Client:
        """Return the client for the agent, built on first use."""
        if self._client is None:
            settings = self.settings
            if settings.insecure and settings.url.startswith("https:"):
                warn(INSECURE_WARNING.format(url=settings.url))
            self._client = make_client(settings)
        return self._client

    @property
    def console(self) -> Console:
        """Return the console human output goes to."""
        if self._console is None:
            self._console = render.stdout_console()
        return self._console

    def client_with(self, auth: tuple[str, str] | None = None, token: str | None = None) -> Client:
        """Return a client for the same agent with exactly these credentials (no prompt)."""
        client = make_client(self.resolve()).with_auth(auth, token)
        self._others.append(client)
        return client

    def call(self, operation: dict[str, Any]) -> Any:
        """Run one operation on the agent and return its answer."""
        return self.client.call(operation)

    def emit(self, response: Any, show: Callable[[Console, Any], None]) -> None:
        """Print `response` as JSON with --json, else through the render function `show`."""
        if self.json_output:
            print_json(response)
        else:
            show(self.console, response)

    def confirm(self, action: str, yes: bool) -> None:
        """Ask before `action` (e.g. "drop table 'dev.dog'") unless --yes was given."""
        if yes:
            return
        if not terminal.stdin_is_terminal():
            raise UsageError(f"refusing to {action} without --yes (stdin is not a terminal)")
        if not click.confirm(f"Really {action}?", default=False, err=True):
            raise HarperctlError(f"cancelled; did not {action}")

    def close(self) -> None:
        """Close the client's connections."""
        for client in [self._client, *self._others]:
            if client is not None:
                client.close()


def print_json(data: Any) -> None:
    """Print exactly `data` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def with_password(settings: Settings) -> Settings:
    """Return `settings` with a password, asking on a terminal when a user has none."""
    if settings.user is None or settings.password is not None or settings.token:
        return settings
    if not terminal.stdin_is_terminal():
        raise UsageError(
            f"no password for user {settings.user!r}: give --password, set "
            "HARPERCTL_PASSWORD or a profile password, or run on a terminal to be asked"
        )
    password = prompt_secret(f"Password for {settings.user}")
    return dataclasses.replace(settings, password=password)


def make_client(settings: Settings) -> Client:
    """Return a client for `settings`."""
    auth = (settings.user, settings.password or "") if settings.user else None
    return Client(settings.url, auth, settings.token, settings.timeout, settings.verify)


pass_app = click.make_pass_decorator(AppContext)
