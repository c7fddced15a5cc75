"""Turn operations API answers into text for people (with render_records, render_plain).

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
from rich.console import Console  # Console is re-exported for type hints elsewhere
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from harperctl import terminal

# Records have a module of their own; these names stay reachable here.
from harperctl.render_records import TIME_COLUMNS as TIME_COLUMNS
from harperctl.render_records import format_value, print_records
from harperctl.render_records import record_columns as record_columns


def stdout_console() -> Console:
    """Return the console for human output on stdout."""
    return Console(highlight=False)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


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


# --- times, routes (nodes and cluster status: render_cluster.py) ---------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def duration(seconds: float) -> str:
    """Return a duration as 3s, 2m05s or 1h02m."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


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
