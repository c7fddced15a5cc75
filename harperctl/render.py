"""Turn operations API answers into text for people: the only module importing `rich`.

Every function takes the `Console` to print on, so tests render into
`Console(width=100, file=io.StringIO(), color_system=None)` and compare text. Values from the
database are wrapped in `Text`, never parsed as rich markup.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from rich import box
from rich.console import Console, Group  # Console is re-exported for type hints elsewhere
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from harperctl import terminal

TIME_COLUMNS = ("__createdtime__", "__updatedtime__")
_MISSING = object()


def stdout_console() -> Console:
    """Return the console for human output on stdout."""
    return Console(highlight=False)


def record_columns(
    records: Sequence[Mapping[str, Any]], primary_key: str | None = None
) -> list[str]:
    """Return the union of the records' keys: primary key first, timestamps last."""
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    key = primary_key if primary_key is not None else ("id" if "id" in seen else None)
    middle = [name for name in seen if name != key and name not in TIME_COLUMNS]
    first = [key] if key in seen else []
    return first + middle + [name for name in TIME_COLUMNS if name in seen]


def format_value(column: str, value: Any) -> Text:
    """Return one cell: JSON-style scalars, compact JSON for objects, UTC times."""
    if value is _MISSING:
        return Text("")
    if value is None:
        return Text("null", style="dim")
    if column in TIME_COLUMNS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return Text(_utc(value))
    if isinstance(value, bool):
        return Text("true" if value else "false")
    if isinstance(value, (dict, list)):
        return Text(json.dumps(value, ensure_ascii=False))
    return Text(str(value))


def _utc(epoch_ms: float) -> str:
    """Return epoch milliseconds as an ISO-8601 UTC time with milliseconds."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def records_table(records: Sequence[Mapping[str, Any]], primary_key: str | None = None) -> Table:
    """Return a table with one row per record and one column per attribute."""
    columns = record_columns(records, primary_key)
    table = Table(caption=_count(len(records), "record"))
    for name in columns:
        keep_whole = name in TIME_COLUMNS or name == columns[0]
        table.add_column(name, overflow="fold", no_wrap=keep_whole)
    for record in records:
        table.add_row(*(format_value(name, record.get(name, _MISSING)) for name in columns))
    return table


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def print_records(
    console: Console, records: Sequence[Mapping[str, Any]], primary_key: str | None = None
) -> None:
    """Print records as a table, or say there are none."""
    if not records:
        console.print(Text("no records"))
        return
    console.print(records_table(records, primary_key))


def print_answer(console: Console, answer: Any) -> None:
    """Print a list of records as a table, a message as text, anything else as JSON."""
    if isinstance(answer, list) and all(isinstance(item, dict) for item in answer):
        print_records(console, answer)
    else:
        print_message(console, answer)


def print_text(console: Console, text: str) -> None:
    """Print plain text, never interpreted as markup."""
    console.print(Text(text))


def print_json(console: Console, data: Any) -> None:
    """Print any answer as indented JSON."""
    console.print(Text(json.dumps(data, indent=2, ensure_ascii=False)), soft_wrap=True)


def print_message(console: Console, response: Any) -> None:
    """Print an answer's `message`, else the answer itself."""
    if isinstance(response, dict) and isinstance(response.get("message"), str):
        print_text(console, response["message"])
    elif isinstance(response, dict):
        print_mapping(console, response)
    else:
        print_json(console, response)


def print_mapping(console: Console, mapping: Mapping[str, Any], title: str | None = None) -> None:
    """Print a mapping as two columns: key and value."""
    table = Table(title=title, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in mapping.items():
        table.add_row(Text(str(key)), format_value(str(key), value))
    console.print(table)


def print_databases(console: Console, describe_all: Mapping[str, Any]) -> None:
    """Print each database with its number of tables and records (from describe_all)."""
    table = Table(caption=_count(len(describe_all), "database"))
    for name in ("database", "tables", "records"):
        table.add_column(name, justify="left" if name == "database" else "right")
    for database, tables in sorted(describe_all.items()):
        records = sum(_record_count(desc) for desc in (tables or {}).values())
        table.add_row(Text(database), str(len(tables or {})), str(records))
    console.print(table)


def _record_count(description: Any) -> int:
    count = description.get("record_count") if isinstance(description, dict) else None
    return count if isinstance(count, int) else 0


def print_tables(console: Console, describe_all: Mapping[str, Mapping[str, Any]]) -> None:
    """Print one row per table of a describe_all-shaped answer {db: {table: description}}."""
    rows = [
        _table_row(db, name, desc)
        for db, tables in sorted(describe_all.items())
        for name, desc in sorted((tables or {}).items())
    ]
    if not rows:
        print_text(console, "no tables")
        return
    table = Table(caption=_count(len(rows), "table"))
    for name in ("database", "table", "primary key", "attributes", "records"):
        table.add_column(name, justify="right" if name in ("attributes", "records") else "left")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _table_row(database: str, name: str, description: Mapping[str, Any]) -> list[Text]:
    """Return the cells of one table in print_tables."""
    count = description.get("record_count")
    return [
        Text(database),
        Text(name),
        Text(str(description.get("hash_attribute") or "")),
        Text(str(len(description.get("attributes") or []))),
        Text("" if count is None else str(count)),
    ]


def print_table_description(console: Console, description: Mapping[str, Any]) -> None:
    """Print one describe_table answer: summary lines, then its attributes."""
    database = description.get("schema") or description.get("database") or ""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("table", Text(f"{database}.{description.get('name', '')}"))
    summary.add_row("primary key", Text(str(description.get("hash_attribute") or "")))
    summary.add_row("records", Text(str(description.get("record_count", ""))))
    console.print(summary)
    console.print(attributes_table(description.get("attributes") or []))


def attributes_table(attributes: Sequence[Mapping[str, Any]]) -> Table:
    """Return a table of a table's attributes: name, type, indexed, primary key."""
    table = Table()
    for name in ("attribute", "type", "indexed", "primary key"):
        table.add_column(name)
    for attribute in attributes:
        table.add_row(
            Text(str(attribute.get("attribute", ""))),
            Text(str(attribute.get("type") or "")),
            _yes(attribute.get("indexed")),
            _yes(attribute.get("is_primary_key")),
        )
    return table


def _yes(flag: Any) -> str:
    return "yes" if flag else ""


def print_users(console: Console, users: Sequence[Mapping[str, Any]]) -> None:
    """Print users (list_users): name, role, super user, active."""
    table = Table(caption=_count(len(users), "user"))
    for name in ("username", "role", "super user", "active"):
        table.add_column(name)
    for user in users:
        role = user.get("role")
        table.add_row(
            Text(str(user.get("username", ""))),
            Text(_role_name(role)),
            _yes(_permission(role).get("super_user")),
            "yes" if user.get("active") else "no",
        )
    console.print(table)


def _role_name(role: Any) -> str:
    if isinstance(role, dict):
        return str(role.get("role", ""))
    return "" if role is None else str(role)


def _permission(role: Any) -> Mapping[str, Any]:
    permission = role.get("permission") if isinstance(role, dict) else None
    return permission if isinstance(permission, dict) else {}


def print_roles(console: Console, roles: Sequence[Mapping[str, Any]]) -> None:
    """Print roles (list_roles): name, id, super user, databases it grants on."""
    table = Table(caption=_count(len(roles), "role"))
    for name in ("role", "id", "super user", "databases"):
        table.add_column(name, overflow="fold")
    for role in roles:
        permission = _permission(role)
        grants = sorted(key for key, value in permission.items() if isinstance(value, dict))
        table.add_row(
            Text(_role_name(role)),
            Text(str(role.get("id", ""))),
            _yes(permission.get("super_user")),
            Text(", ".join(grants)),
        )
    console.print(table)


def print_user_info(console: Console, user: Mapping[str, Any]) -> None:
    """Print the caller's user record (user_info) with its role flattened."""
    shown: dict[str, Any] = {k: v for k, v in user.items() if k not in ("role", "password")}
    if "role" in user:
        shown["role"] = _role_name(user["role"])
        shown["super_user"] = bool(_permission(user["role"]).get("super_user"))
    print_mapping(console, shown, title=str(user.get("username", "")) or None)


def print_tokens(console: Console, tokens: Mapping[str, Any]) -> None:
    """Print each token on its own unwrapped line, ready to copy."""
    for name, value in tokens.items():
        console.print(Text(f"{name}: {value}"), soft_wrap=True)


@contextlib.contextmanager
def progress_bar(
    total: int, description: str, console: Console | None = None
) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`, drawing a bar on `console` or on stderr when it is a terminal."""
    if console is None and not terminal.stderr_is_terminal():
        yield lambda n: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console or Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


# --- cluster: nodes, cluster_status, routes -------------------------------------------------

_STATE_STYLES = {"connected": "green", "disconnected": "red", "copying": "yellow"}
_SUBSCRIPTION_MODES = {(True, True): "both", (True, False): "sub", (False, True): "pub"}
SHORT_ERROR = 40
STATUS_MIN_WIDTHS = {"copy": 10, "last error": 14}
# (name, header, justify): the columns of a connection table; headers break to stay narrow
STATUS_COLUMNS = (
    ("database", "database", "left"),
    ("state", "state", "left"),
    ("latency ms", "latency\nms", "right"),
    ("lag", "lag", "right"),
    ("behind", "behind", "right"),
    ("copy", "copy", "left"),
    ("clock offset ms", "clock\noffset ms", "right"),
    ("last received", "last\nreceived", "left"),
    ("last error", "last error", "left"),
)


def print_nodes(console: Console, nodes: Any) -> None:
    """Print system.hdb_nodes rows: name, url, replicates, subscriptions, shard."""
    rows = [node for node in nodes if isinstance(node, dict)] if isinstance(nodes, list) else []
    if not rows:
        print_text(console, "no nodes")
        return
    table = Table(caption=_count(len(rows), "node"))
    for name in ("name", "url", "replicates", "subscriptions", "shard"):
        table.add_column(name, overflow="fold", justify="right" if name == "shard" else "left")
    for node in sorted(rows, key=lambda row: str(row.get("name", ""))):
        shard = node.get("shard")
        table.add_row(
            Text(str(node.get("name", ""))),
            Text(str(node.get("url") or "")),
            Text(replicates_summary(node.get("replicates"))),
            Text(subscriptions_summary(node.get("subscriptions"))),
            Text("" if shard is None else str(shard)),
        )
    console.print(table)


def replicates_summary(replicates: Any) -> str:
    """Return `replicates` as text: yes/no, or the directions of a directional object."""
    if replicates is None:
        return ""
    if isinstance(replicates, bool):
        return "yes" if replicates else "no"
    if not isinstance(replicates, dict):
        return json.dumps(replicates)
    parts = []
    for key, value in replicates.items():
        if isinstance(value, list):
            targets = [_route_target(item) for item in value]
            parts.append(f"{key}: {', '.join(targets) or '-'}")
        elif value:
            parts.append(str(key) if value is True else f"{key}: {value}")
    return "; ".join(parts)


def _route_target(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    target = item.get("target") or item.get("node") or item.get("name") or ""
    database = item.get("database")
    return f"{target}/{database}" if target and database else str(target or database or item)


def subscriptions_summary(subscriptions: Any) -> str:
    """Return subscriptions as `DB[.TABLE]:sub|pub|both` items, the syntax add-node takes."""
    if not subscriptions:
        return ""
    if not isinstance(subscriptions, list):
        return json.dumps(subscriptions)
    items = []
    for sub in subscriptions:
        if not isinstance(sub, dict):
            items.append(str(sub))
            continue
        where = str(sub.get("database") or sub.get("schema") or "")
        if sub.get("table"):
            where += f".{sub['table']}"
        mode = (bool(sub.get("subscribe", True)), bool(sub.get("publish", True)))
        items.append(f"{where}:{_SUBSCRIPTION_MODES.get(mode, 'none')}")
    return ", ".join(items)


def print_cluster_status(console: Console, status: Any, now: float | None = None) -> None:
    """Print a cluster_status answer: a header line, then one table per peer connection.

    `now` (epoch seconds, default the current time) is what "last received" is relative to.
    """
    console.print(cluster_status_view(status, now))


def cluster_status_view(status: Any, now: float | None = None, note: str | None = None) -> Group:
    """Return what print_cluster_status prints, with an optional note line at the end."""
    if not isinstance(status, dict):
        return Group(Text(json.dumps(status, indent=2, ensure_ascii=False)))
    now = datetime.now(timezone.utc).timestamp() if now is None else now
    header = Text.assemble(("node ", "bold"), str(status.get("node_name") or "?"))
    if status.get("url"):
        header.append_text(Text.assemble("  ", ("url ", "bold"), str(status["url"])))
    if status.get("shard") is not None:
        header.append_text(Text.assemble("  ", ("shard ", "bold"), str(status["shard"])))
    parts: list[Any] = [header]
    connections = [c for c in status.get("connections") or [] if isinstance(c, dict)]
    if not connections:
        parts.append(Text("no peer connections"))
    for index, connection in enumerate(connections):
        parts.extend([Text("")] if index else [])
        parts.append(connection_table(connection, now))
    parts += _status_footer(status, now)
    if note:
        parts.append(Text(note, style="dim"))
    return Group(*parts)


def _status_footer(status: Mapping[str, Any], now: float) -> list[Text]:
    """The agent's warnings, origins no link brings (their writes cannot arrive), last verify."""
    lines = [
        Text(f"warning: {warning}", style="yellow")
        for warning in status.get("warnings") or []
        if isinstance(warning, str)
    ]
    for database, origins in sorted((status.get("origins") or {}).items()):
        for origin in origins if isinstance(origins, list) else []:
            if isinstance(origin, dict) and origin.get("unserved"):
                lines.append(
                    Text(
                        f"{database}: no link brings {origin.get('origin')}'s writes "
                        f"(applied up to {origin.get('applied')}, peers hold "
                        f"{origin.get('peersHold')})",
                        style="red",
                    )
                )
    verify = status.get("verify")
    if isinstance(verify, dict) and verify.get("at"):
        ago = f"{max(0.0, now - float(verify['at'])):.0f}s ago"
        if verify.get("agreed"):
            lines.append(Text(f"last verify {ago}: every node agreed", style="green"))
        else:
            lines.append(
                Text(f"last verify {ago}: {verify.get('divergent')} keys differed", style="red")
            )
    return [Text(""), *lines] if lines else []


def connection_table(connection: Mapping[str, Any], now: float) -> Table | Group:
    """Return the table of one peer connection: one row per database socket."""
    url = str(connection.get("url") or "")
    title = Text.assemble(("peer ", "bold"), str(connection.get("name") or url or "?"))
    if url and url != connection.get("name"):
        title.append(f"  {url}")
    title.append_text(Text.assemble("  ", ("security ", "bold"), link_security(connection)))
    if connection.get("replicates") is False:
        title.append("  (not replicating)")
    sockets = [s for s in connection.get("database_sockets") or [] if isinstance(s, dict)]
    if not sockets:
        return Group(title, Text("no database sockets", style="dim"))
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    for name, header, justify in STATUS_COLUMNS:
        table.add_column(
            header,
            justify=justify,  # type: ignore[arg-type]
            overflow="fold",
            no_wrap=name not in ("database", "copy", "last error"),
            min_width=STATUS_MIN_WIDTHS.get(name),
        )
    for socket in sockets:
        table.add_row(*socket_cells(socket, now, url))
    return table


def link_security(connection: Mapping[str, Any]) -> Text:
    """Return how a link was admitted: mTLS (peer, CA), signed, credentials, address only.

    "-" when the agent does not know yet (never connected) or does not say (older agents).
    """
    security = connection.get("security")
    if not isinstance(security, dict) or not security.get("mode"):
        return Text("-")
    mode, transport = str(security["mode"]), security.get("transport")
    if mode == "mtls":
        text = "mTLS"
        text += f" {security['peer']}" if security.get("peer") else ""
        text += f" · CA {security['ca']}" if security.get("ca") else ""
        return Text(text, style="green")
    if mode == "address":
        return Text("address only", style="red")
    text = f"{mode} ({transport})" if transport else mode
    # credentials over plain ws carry a super user's password in the clear
    return Text(text, style="yellow" if mode == "credentials" and transport == "ws" else "")


def socket_cells(socket: Mapping[str, Any], now: float, peer_url: str = "") -> list[Text]:
    """Return the cells of one database socket in a connection table."""
    state = socket_state(socket)
    return [
        Text(str(socket.get("database", ""))),
        Text(state, style=_STATE_STYLES.get(state, "")),
        Text(_milliseconds(socket.get("latency"))),
        Text(_lag(socket.get("lagSeconds"))),
        Text(_whole(socket.get("recordsBehind"))),
        Text(copy_progress(socket.get("copy"))),
        Text(_milliseconds(socket.get("clockOffsetMs"))),
        Text(relative_time(socket.get("lastReceivedLocalTime"), now)),
        # a past error on a link that is up again would only alarm: show it while it matters
        Text(
            short_error(socket.get("lastConnectionError"), peer_url) if state != "connected" else ""
        ),
    ]


def socket_state(socket: Mapping[str, Any]) -> str:
    """Return connected, disconnected or copying (a base copy in progress) for a socket."""
    copy = socket.get("copy")
    copying = (isinstance(copy, dict) and copy.get("state") == "copying") or (
        socket.get("lastReceivedStatus") == "Copying"
    )
    connected = socket.get("connected")
    if connected is False:
        return "disconnected"
    if copying:
        return "copying"
    return "connected" if connected else "unknown"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _milliseconds(value: Any) -> str:
    """Return milliseconds with 2 decimals below 10, 1 below 100, else none; "-" if unknown."""
    if not _is_number(value):
        return "-"
    if abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if abs(value) < 100 else f"{value:,.0f}"


def _whole(value: Any) -> str:
    return f"{value:,.0f}" if _is_number(value) else "-"


def _lag(seconds: Any) -> str:
    """Return a lag in seconds as 0.0s / 12.5s / 3m05s / 2h04m; "-" when unknown."""
    if not _is_number(seconds):
        return "-"
    return f"{seconds:.1f}s" if abs(seconds) < 60 else duration(seconds)


def duration(seconds: float) -> str:
    """Return a duration as 3s, 2m05s or 1h02m."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def copy_progress(copy: Any) -> str:
    """Return a base copy's progress as "42% 4,200/10,000 eta 3s"; "-" without a copy."""
    if not isinstance(copy, dict):
        return "-"
    copied, total = copy.get("copied"), copy.get("total")
    percent = copy.get("percent")
    if not _is_number(percent) and _is_number(copied) and _is_number(total):
        percent = 100.0 * copied / total if total else 100.0
    parts = [f"{percent:.0f}%"] if _is_number(percent) else []
    if _is_number(copied):
        parts.append(f"{copied:,.0f}/{total:,.0f}" if _is_number(total) else f"{copied:,.0f}")
    if copy.get("state") == "copying":
        eta = copy.get("eta_seconds")
        parts.append(f"eta {duration(eta)}" if _is_number(eta) else "eta ?")
    elif copy.get("state") and copy.get("state") != "done":
        parts.append(str(copy["state"]))
    return " ".join(parts) or "-"


def parse_time(value: Any) -> float | None:
    """Return a time (RFC 1123 or ISO-8601 string, or epoch ms) as epoch seconds, else None."""
    if _is_number(value):
        return float(value) / 1000.0
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def relative_time(value: Any, now: float) -> str:
    """Return how long ago `value` was: 4s ago, 3m ago, 2h ago, 5d ago; "-" when unknown."""
    if value in (None, ""):
        return "-"
    moment = parse_time(value)
    if moment is None:
        return str(value)
    ago = max(0.0, now - moment)
    if ago < 60:
        return f"{int(ago)}s ago"
    if ago < 3600:
        return f"{int(ago // 60)}m ago"
    if ago < 86400:
        return f"{int(ago // 3600)}h ago"
    return f"{int(ago // 86400)}d ago"


def short_error(error: Any, peer_url: str = "") -> str:
    """Return a connection error's reason, without the peer's URL, cut to SHORT_ERROR chars."""
    if not error:
        return ""
    if isinstance(error, dict):
        reason = error.get("reason") or error.get("message") or error.get("code") or ""
        reason = reason if isinstance(reason, str) else json.dumps(reason)
    else:
        reason = str(error)
    reason = " ".join(reason.split())
    if peer_url and reason.startswith(peer_url):
        reason = reason[len(peer_url) :].lstrip(" :")
    if len(reason) > SHORT_ERROR:
        reason = reason[: SHORT_ERROR - 1].rstrip() + "…"
    return reason


@contextlib.contextmanager
def watch_cluster_status(
    console: Console, footer: str | None = None
) -> Iterator[Callable[[Any, float, str | None], None]]:
    """Yield `show(status, now, note)`, redrawing in place on a terminal (rich.live.Live).

    Off a terminal every call prints the status again, followed by a blank line.
    """
    if not console.is_terminal:

        def show_again(status: Any, now: float, note: str | None = None) -> None:
            console.print(cluster_status_view(status, now, note))
            console.print()

        yield show_again
        return

    def view(status: Any, now: float, note: str | None) -> Group:
        lines = [note, footer]
        return cluster_status_view(status, now, "\n".join(line for line in lines if line))

    with Live(console=console, auto_refresh=False, transient=False) as live:
        yield lambda status, now, note=None: live.update(view(status, now, note), refresh=True)


def print_routes(console: Console, routes: Any) -> None:
    """Print cluster_get_routes: one route per row (URL, or host:port, or JSON)."""
    if not isinstance(routes, list):
        print_message(console, routes)
        return
    if not routes:
        print_text(console, "no routes")
        return
    table = Table(caption=_count(len(routes), "route"))
    table.add_column("route", overflow="fold")
    for route in routes:
        table.add_row(Text(route_text(route)))
    console.print(table)


def route_text(route: Any) -> str:
    """Return a route as text: a string as is, {hostname, port} as host:port, else JSON."""
    if isinstance(route, str):
        return route
    if isinstance(route, dict) and set(route) <= {"hostname", "host", "port"}:
        host = route.get("hostname") or route.get("host")
        if host:
            return f"{host}:{route['port']}" if route.get("port") is not None else str(host)
    return json.dumps(route, ensure_ascii=False)


def print_routes_change(console: Console, answer: Any) -> None:
    """Print a cluster_set_routes / cluster_delete_routes answer: message, then the lists."""
    if not isinstance(answer, dict):
        print_message(console, answer)
        return
    if isinstance(answer.get("message"), str):
        print_text(console, answer["message"])
    for key in ("set", "deleted", "skipped"):
        routes = answer.get(key)
        if isinstance(routes, list) and routes:
            print_text(console, f"{key}: " + ", ".join(route_text(route) for route in routes))


# --- certificates -----------------------------------------------------------------------------

EXPIRY_WARNING_DAYS = 30
SHORT_SERIAL = 17
# (header, no_wrap, min_width): short cells stay whole, long names fold down to min_width
CERTIFICATE_COLUMNS = (
    ("name", False, 10),
    ("CA", True, None),
    ("self-\nsigned", True, None),
    ("subject CN\nand SANs", False, 10),
    ("serial", False, 6),
    ("valid to", True, None),
    ("key file", False, 8),
    ("uses", False, 6),
)


def print_certificates(console: Console, certificates: Any, now: float | None = None) -> None:
    """Print list_certificates: one row per certificate, never its PEM.

    `now` (epoch seconds, default the current time) decides which have expired.
    """
    if not isinstance(certificates, list):
        print_message(console, certificates)
        return
    rows = [row for row in certificates if isinstance(row, dict)]
    if not rows:
        print_text(console, "no certificates")
        return
    now = time.time() if now is None else now
    table = Table(caption=_count(len(rows), "certificate"), box=box.SIMPLE_HEAD)
    for header, no_wrap, min_width in CERTIFICATE_COLUMNS:
        table.add_column(header, overflow="fold", no_wrap=no_wrap, min_width=min_width)
    for row in rows:
        table.add_row(*certificate_cells(row, now))
    console.print(table)


def certificate_cells(row: Mapping[str, Any], now: float) -> list[Text]:
    """Return the cells of one certificate in print_certificates."""
    details = row.get("details") if isinstance(row.get("details"), dict) else {}
    subject = Text(common_name(details.get("subject")) or "-")
    sans = subject_alt_names(details.get("subject_alt_name"))
    if sans:
        subject.append(f"\n{sans}", style="dim")
    uses = row.get("uses")
    return [
        Text(str(row.get("name", ""))),
        Text("yes" if row.get("is_authority") else "no"),
        Text("yes" if row.get("is_self_signed") else "no"),
        subject,
        Text(short_serial(details.get("serial_number"))),
        valid_to_cell(details.get("valid_to"), now),
        Text(str(row.get("private_key_name") or "-")),
        Text("\n".join(str(use) for use in uses) if isinstance(uses, list) and uses else "-"),
    ]


def short_serial(serial: Any) -> str:
    """Return a serial number, long ones cut to SHORT_SERIAL characters (--json has it whole)."""
    text = str(serial) if serial not in (None, "") else "-"
    return text if len(text) <= SHORT_SERIAL else text[: SHORT_SERIAL - 1] + "…"


def common_name(name: Any) -> str:
    """Return the CN of a distinguished name ("CN=n1, O=x", "C=US\\nCN=n1", {"CN": ...})."""
    if isinstance(name, dict):
        return str(name.get("CN") or "")
    if not isinstance(name, str):
        return ""
    found = re.search(r"(?:^|[,/\n])\s*CN\s*=\s*([^,/\n]+)", name)
    return found.group(1).strip() if found else name.strip()


def subject_alt_names(sans: Any) -> str:
    """Return subject alternative names compactly: "DNS:n1, IP:127.0.0.1"."""
    if isinstance(sans, list):
        sans = ", ".join(str(item) for item in sans)
    if not isinstance(sans, str):
        return ""
    return ", ".join(item.strip().replace("IP Address:", "IP:") for item in sans.split(","))


def valid_to_cell(value: Any, now: float) -> Text:
    """Return a certificate's end of validity as a date, marking expired and expiring ones."""
    moment = certificate_time(value)
    if moment is None:
        return Text(str(value) if value else "-")
    shown = datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%d")
    if moment <= now:
        return Text(f"{shown}\nexpired", style="red")
    left = moment - now
    if left < EXPIRY_WARNING_DAYS * 86400:
        soon = f"{left // 86400:.0f}d" if left >= 86400 else duration(left)
        return Text(f"{shown}\nin {soon}", style="yellow")
    return Text(shown)


def certificate_time(value: Any) -> float | None:
    """Return a certificate time as epoch seconds: OpenSSL's "Nov 30 10:14:10 2027 GMT" too."""
    if isinstance(value, str):
        try:
            moment = datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y GMT")
        except ValueError:
            return parse_time(value)
        return moment.replace(tzinfo=timezone.utc).timestamp()
    return parse_time(value)


# --- verify -----------------------------------------------------------------------------------

VERIFY_KEYS_SHOWN = 50


def print_verify(console: Console, answer: Mapping[str, Any]) -> None:
    """Print a cluster_verify answer: a summary table per database, then each divergent key."""
    nodes = list(answer.get("nodes") or [])
    for database, tables in sorted((answer.get("databases") or {}).items()):
        table = Table(title=f"database {database}", title_justify="left")
        for name, justify in (
            ("table", "left"),
            ("nodes", "right"),
            ("ranges", "right"),
            ("divergent", "right"),
            ("seconds", "right"),
        ):
            table.add_column(name, justify=justify, overflow="fold")
        for name, result in sorted(tables.items()):
            count = len(result.get("divergent") or [])
            before = result.get("divergent_before_repair")
            shown = f"{count} (was {before})" if before is not None else str(count)
            table.add_row(
                Text(name),
                Text(str(len(result.get("nodes") or []))),
                Text(str(result.get("ranges_compared", ""))),
                Text(shown, style="red" if count else "green"),
                Text(f"{result.get('seconds', 0):.2f}"),
            )
        console.print(table)
        for name, result in sorted(tables.items()):
            if result.get("divergent"):
                console.print(_divergent_table(f"{database}.{name}", nodes, result["divergent"]))
    skipped = answer.get("skipped") or []
    verdict = (
        "every node agrees" if answer.get("agreed") else f"{answer.get('divergent', 0)} keys differ"
    )
    extra = f"; repaired {answer['repaired']} rows" if "repaired" in answer else ""
    extra += f"; not compared: {', '.join(skipped)}" if skipped else ""
    style = "green" if answer.get("agreed") else "red"
    console.print(
        Text(
            f"{verdict} ({len(nodes)} nodes, {answer.get('bytes', 0)} bytes exchanged{extra})",
            style=style,
        )
    )


@contextlib.contextmanager
def verify_progress(label: str) -> Iterator[Callable[[Any], None]]:
    """Yield `show(verifying)`: a transient status line on stderr for one table's verify."""
    started = time.monotonic()
    console = Console(stderr=True)
    with console.status(f"verifying {label}") as status:

        def show(verifying: Any) -> None:
            status.update(
                f"verifying {label}: {verify_phase(verifying, time.monotonic() - started)}"
            )

        yield show


def verify_phase(verifying: Any, elapsed: float) -> str:
    """One line for cluster_status's `verifying`: phase, rounds, records, candidates."""
    if not isinstance(verifying, dict):
        return f"starting ({elapsed:.0f}s)"
    phase = str(verifying.get("phase", "?"))
    nodes = verifying.get("nodes") or []
    if phase == "indexing":
        return f"indexing on {len(nodes)} nodes ({elapsed:.0f}s)"
    records = verifying.get("records") or {}
    most = max(records.values(), default=0)
    return (
        f"{phase}, round {verifying.get('rounds', 0)}, {verifying.get('ranges', 0):,} ranges, "
        f"{most:,} records per node, {verifying.get('candidates', 0):,} keys apart so far "
        f"({elapsed:.0f}s)"
    )


def _divergent_table(title: str, nodes: list[str], divergent: list) -> Table:
    table = Table(title=f"{title}: keys that differ", title_justify="left")
    table.add_column("key", overflow="fold")
    for node in nodes:
        table.add_column(node, overflow="fold")
    table.add_column("winner", overflow="fold")
    for item in divergent[:VERIFY_KEYS_SHOWN]:
        views = item.get("nodes") or {}
        cells = [Text(_verify_view(views.get(n), n in views)) for n in nodes]
        win = item.get("winner")
        winner = "deleted (forgotten)" if win is None else _verify_view(win, True)
        table.add_row(Text(repr(item.get("key"))), *cells, Text(winner))
    if len(divergent) > VERIFY_KEYS_SHOWN:
        table.caption = f"{len(divergent) - VERIFY_KEYS_SHOWN} more; --json lists them all"
    return table


def _verify_view(view: Any, compared: bool) -> str:
    if not compared:
        return ""
    if view is None:
        return "absent"
    deleted = view.get("deleted") or view.get("doc") == "-"
    return f"{'deleted ' if deleted else ''}v{view.get('version')} {view.get('origin')}"
