"""Cluster membership commands: add-node, set-node, update-node, remove-node, routes.

status, wait and nodes live in commands/status.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from harperctl import render, terminal
from harperctl.commands._context import AppContext, pass_app, prompt_secret
from harperctl.commands._options import examples, yes_option
from harperctl.errors import UsageError

SUBSCRIPTION_MODES = {"both": (True, True), "sub": (True, False), "pub": (False, True)}


class SubscriptionType(click.ParamType):
    """Parse DB[.TABLE][:sub|:pub|:both] into an add_node subscription."""

    name = "DB[.TABLE][:MODE]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: Any) -> dict[str, Any]:
        """Return {database, table?, subscribe, publish}, or fail with a usage error."""
        if isinstance(value, dict):
            return value
        where, colon, mode = str(value).rpartition(":")
        if not colon:
            where, mode = str(value), "both"
        if mode not in SUBSCRIPTION_MODES:
            self.fail(f"expected DB[.TABLE][:sub|:pub|:both], got {value!r}", param, ctx)
        database, _, table = where.partition(".")
        if not database:
            self.fail(f"expected DB[.TABLE][:sub|:pub|:both], got {value!r}", param, ctx)
        subscribe, publish = SUBSCRIPTION_MODES[mode]
        subscription: dict[str, Any] = {"database": database}
        if table:
            subscription["table"] = table
        subscription.update(subscribe=subscribe, publish=publish)
        return subscription


SUBSCRIPTION = SubscriptionType()


def looks_like_url(text: str) -> bool:
    """Return True when `text` names a URL (ws://, wss://, ...) rather than a host."""
    return "://" in text


def target_fields(host_or_url: str, url: str | None) -> dict[str, str]:
    """Return the hostname / url fields naming the node."""
    if looks_like_url(host_or_url):
        if url is not None:
            raise UsageError(f"{host_or_url!r} is already a URL; do not also give --peer-url")
        return {"url": host_or_url}
    return {"hostname": host_or_url, **({"url": url} if url is not None else {})}


def peer_authorization(
    app: AppContext, user: str | None, password: str | None, header: str | None
) -> Any:
    """Return the `authorization` to send to the peer, or None to send none.

    --peer-auth is sent as is; --user-peer with --password-peer (asked for on a terminal)
    as {username, password}; with neither, this run's own --user and --password.
    """
    if header is not None and (user is not None or password is not None):
        raise UsageError("give --peer-auth or --user-peer/--password-peer, not both")
    if header is not None:
        return header
    if password is not None and user is None:
        raise UsageError("--password-peer needs --user-peer")
    if user is None:
        settings = app.settings
        if settings.user is None or settings.token:
            return None
        return {"username": settings.user, "password": settings.password or ""}
    if password is None:
        if not terminal.stdin_is_terminal():
            raise UsageError(f"no password for peer user {user!r}: give --password-peer")
        password = prompt_secret(f"Password for {user} on the peer")
    return {"username": user, "password": password}


def start_time_value(text: str | None) -> Any:
    """Return --start-time as sent: digits as epoch milliseconds, anything else as given."""
    if text is None:
        return None
    return int(text) if text.strip().isdigit() else text


def node_body(operation: str, host_or_url: str, options: dict[str, Any], app: AppContext) -> dict:
    """Return the add_node / set_node / update_node body for the command's options."""
    body: dict[str, Any] = {
        "operation": operation,
        **target_fields(host_or_url, options["peer_url"]),
    }
    authorization = peer_authorization(
        app, options["user_peer"], options["password_peer"], options["peer_auth"]
    )
    if authorization is not None:
        body["authorization"] = authorization
    body["verify_tls"] = options["verify_tls"]
    start_time = start_time_value(options["start_time"])
    if start_time is not None:
        body["start_time"] = start_time
    if options["subscriptions"]:
        body["subscriptions"] = list(options["subscriptions"])
    if options["retain_authorization"]:
        body["retain_authorization"] = True
    return body


NODE_HELP = """{summary}

\b
HOST_OR_URL is the peer's host name (this node picks the scheme and port) or
its replication URL (ws://host:9925, wss://host:9933). Options after the command
mean what they mean before it (--url, --user, --password: this node); the peer's
are --peer-url, --user-peer and --password-peer.

The peer is told about this node over a replication connection, which needs credentials
the peer accepts. Without --user-peer or --peer-auth, harperctl sends this run's own
credentials (--user and --password, given before or after the command): the same admin
authenticates to this node and is sent on to the peer for the join. With only a --token,
no credentials are sent (the peer must trust this node's certificate).

\b
--subscription (repeatable; discouraged, the default replicates everything):
  DB            subscribe and publish every table of DB
  DB.TABLE:sub  only receive TABLE from the peer
  DB.TABLE:pub  only send TABLE to the peer
  DB:both       both directions (the default)
"""


def node_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options add-node, set-node and update-node share."""
    decorators = [
        click.argument("host_or_url", metavar="HOST_OR_URL"),
        click.option(
            "--peer-url", metavar="URL", help="The peer's replication URL, with a HOST name."
        ),
        click.option(
            "--url",
            metavar="URL",
            help="Same as the global --url (this node's operations API).",
        ),
        click.option(
            "--user",
            "-u",
            metavar="NAME",
            help="Same as the global --user (this node's user, also sent to the peer).",
        ),
        click.option("--password", "-p", metavar="PASSWORD", help="Same as the global --password."),
        click.option("--user-peer", metavar="NAME", help="User to authenticate to the peer."),
        click.option(
            "--password-peer",
            metavar="PASSWORD",
            help="Password of --user-peer; asked for (hidden) on a terminal when missing.",
        ),
        click.option(
            "--peer-auth",
            metavar="HEADER",
            help="Authorization header for the peer, e.g. 'Basic ...' or 'Bearer ...'.",
        ),
        click.option(
            "--verify-tls/--no-verify-tls",
            default=True,
            help="Verify the peer's TLS certificate [verify].",
        ),
        click.option(
            "--start-time",
            metavar="ISO",
            help="Replicate from this time: ISO-8601 with a zone, or epoch milliseconds.",
        ),
        click.option(
            "--subscription",
            "subscriptions",
            type=SUBSCRIPTION,
            multiple=True,
            metavar="DB[.TABLE][:sub|:pub|:both]",
            help="Replicate only this (repeatable; see above).",
        ),
        click.option(
            "--retain-authorization",
            is_flag=True,
            help="Have this node keep the peer credentials to reconnect with.",
        ),
        pass_app,
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def node_command(name: str, operation: str, summary: str, *lines: str) -> click.Command:
    """Return the command `name` sending `operation` with the shared node options."""

    @click.command(name, help=NODE_HELP.format(summary=summary), epilog=examples(*lines))
    @node_options
    def command(
        app: AppContext,
        host_or_url: str,
        url: str | None,
        user: str | None,
        password: str | None,
        **options: Any,
    ) -> None:
        if url is not None and url.split("://")[0] in ("ws", "wss"):
            raise UsageError(
                f"--url {url} names this node's operations API, as before the command; "
                "give the peer's replication URL as --peer-url"
            )
        for key, value in (("url", url), ("user", user), ("password", password)):
            if value is not None:
                app.options[key] = value  # the global option, given after the command
        app.emit(app.call(node_body(operation, host_or_url, options, app)), render.print_message)

    return command


add_node = node_command(
    "add-node",
    "add_node",
    "Add the node HOST_OR_URL to this node's cluster (add_node).",
    "harperctl add-node server-two --user admin",
    "harperctl -u admin add-node wss://10.0.0.2:9933 --user-peer admin --password-peer s3cret",
    "harperctl -u admin add-node server-two --subscription dev.dog:sub --subscription dev.cat",
    "harperctl -u admin add-node server-two --start-time 2026-01-01T00:00:00Z",
)
set_node = node_command(
    "set-node",
    "set_node",
    "Add or change the node HOST_OR_URL (set_node, HarperDB's name for add_node).",
    "harperctl set-node server-two --user admin",
)
update_node = node_command(
    "update-node",
    "update_node",
    "Change how this node replicates with the node HOST_OR_URL, already added (update_node).",
    "harperctl update-node server-two --user admin --subscription dev:both",
)


@click.command(
    "remove-node",
    epilog=examples("harperctl remove-node server-two", "harperctl remove-node server-two --yes"),
)
@click.argument("host")
@yes_option
@pass_app
def remove_node(app: AppContext, host: str, yes: bool) -> None:
    """Remove the node HOST (its name or URL) from the cluster, after asking (remove_node)."""
    app.confirm(f"remove node {host!r} from the cluster", yes)
    app.emit(app.call({"operation": "remove_node", "hostname": host}), render.print_message)


def route_value(text: str) -> Any:
    """Return a ROUTE argument: a JSON object as an object, anything else as the string."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict) else text


@click.group(
    epilog=examples(
        "harperctl routes list",
        "harperctl routes add wss://server-two:9933",
        """harperctl routes add '{"hostname": "server-three", "port": 9933}'""",
    )
)
def routes() -> None:
    """List, add and delete the replication routes of this node's config."""


@routes.command("list", epilog=examples("harperctl routes list", "harperctl --json routes list"))
@pass_app
def list_routes(app: AppContext) -> None:
    """List the configured routes (cluster_get_routes)."""
    app.emit(app.call({"operation": "cluster_get_routes"}), render.print_routes)


ROUTE_HELP = (
    "A ROUTE is a URL (wss://host:9933) or host:port, sent as a string, or a JSON object "
    'such as \'{"hostname": "server-two", "port": 9933}\', sent as an object.'
)


@routes.command(
    "add",
    help="Add routes for this node to dial (cluster_set_routes).\n\n" + ROUTE_HELP,
    epilog=examples(
        "harperctl routes add wss://server-two:9933 wss://server-three:9933",
        """harperctl routes add '{"hostname": "server-two", "port": 9933}'""",
    ),
)
@click.argument("route_args", metavar="ROUTE...", nargs=-1, required=True)
@pass_app
def add_routes(app: AppContext, route_args: tuple[str, ...]) -> None:
    body = {"operation": "cluster_set_routes", "routes": [route_value(r) for r in route_args]}
    app.emit(app.call(body), render.print_routes_change)


@routes.command(
    "delete",
    help="Delete routes, given as they were added (cluster_delete_routes).\n\n" + ROUTE_HELP,
    epilog=examples("harperctl routes delete wss://server-two:9933"),
)
@click.argument("route_args", metavar="ROUTE...", nargs=-1, required=True)
@pass_app
def delete_routes(app: AppContext, route_args: tuple[str, ...]) -> None:
    body = {"operation": "cluster_delete_routes", "routes": [route_value(r) for r in route_args]}
    app.emit(app.call(body), render.print_routes_change)


COMMANDS = [add_node, set_node, update_node, remove_node, routes]
