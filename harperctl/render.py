"""Turn operations API answers into text for people: the only module importing `rich`.

Every function takes the `Console` to print on, so tests render into
`Console(width=100, file=io.StringIO(), color_system=None)` and compare text. Values from the
database are wrapped in `Text`, never parsed as rich markup.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from rich.console import Console  # re-exported for type hints elsewhere
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
