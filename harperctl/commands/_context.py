"""The per-run context every command receives: settings, client, output, confirmation."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from harperctl import profiles, render, terminal
from harperctl.client import Client
from harperctl.commands._output import Output, Show, print_json, warn
from harperctl.errors import HarperctlError, UsageError
from harperctl.profiles import Settings

if TYPE_CHECKING:
    from harperctl.render import Console


INSECURE_WARNING = "harperctl: warning: not verifying the TLS certificate of {url} (--insecure)"


__all__ = ["AppContext", "make_client", "pass_app", "print_json", "prompt_secret", "warn"]


def prompt_secret(label: str, confirm: bool = False) -> str:
    """Ask for a secret on the terminal without echoing it."""
    return click.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True)


@dataclasses.dataclass
class AppContext:
    """The global options of one run; builds settings and the client on first use."""

    options: dict[str, Any]
    output: Output = dataclasses.field(default_factory=Output)
    env: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(os.environ))
    _settings: Settings | None = None
    _client: Client | None = None
    _others: list[Client] = dataclasses.field(default_factory=list)

    @property
    def json_output(self) -> bool:
        """Return True when the output is exactly the API's JSON (--json, -o json)."""
        return self.output.mode == "json"

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
        """Return the console output goes to: rich's on a terminal, a plain one for pipes."""
        return self.output.console

    def client_with(self, auth: tuple[str, str] | None = None, token: str | None = None) -> Client:
        """Return a client for the same agent with exactly these credentials (no prompt)."""
        client = make_client(self.resolve()).with_auth(auth, token)
        self._others.append(client)
        return client

    def retarget(self, url: str) -> None:
        """Talk to the agent at `url` from now on, with the same credentials."""
        self.close()
        self.options["url"] = url
        if self._settings is not None:  # keep a password already asked for
            self._settings = dataclasses.replace(self._settings, url=url)
        self._client = None

    def call(self, operation: dict[str, Any]) -> Any:
        """Run one operation on the agent and return its answer."""
        return self.client.call(operation)

    def emit(self, response: Any, show: Show) -> None:
        """Print `response` in the output mode: JSON, JSON lines, or the render function `show`."""
        self.output.emit(response, show)

    def emit_records(
        self, operation: dict[str, Any], show: Show = render.print_message, key: str | None = None
    ) -> None:
        """Run `operation` and print its records as they arrive (other answers with `show`)."""
        with self.client.stream(operation) as answer:
            self.output.records(answer, show, key)

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
