"""Arguments and options several commands share, and reading input from a file or stdin."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import click

from harperctl import terminal
from harperctl.conditions import parse_attribute_list
from harperctl.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


class TableRef(NamedTuple):
    """A table named as DB.TABLE on the command line."""

    database: str
    table: str

    def body(self) -> dict[str, str]:
        """Return the {database, table} part of an operation body."""
        return {"database": self.database, "table": self.table}

    def __str__(self) -> str:
        return f"{self.database}.{self.table}"


class TableRefType(click.ParamType):
    """Parse DB.TABLE (split at the first dot) into a TableRef."""

    name = "DB.TABLE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: Any) -> TableRef:
        """Return the TableRef for `value`, or fail with a usage error."""
        if isinstance(value, TableRef):
            return value
        database, dot, table = str(value).partition(".")
        if not dot or not database or not table:
            self.fail(f"expected DB.TABLE (e.g. data.{value or 'dog'}), got {value!r}", param, ctx)
        return TableRef(database, table)

    def shell_complete(self, ctx: Any, param: Any, incomplete: str) -> list:
        """Offer the agent's DB.TABLE names (commands.completion.complete_tables)."""
        from harperctl.commands.completion import complete_tables  # avoids an import cycle

        return complete_tables(ctx, incomplete)


TABLE_REF = TableRefType()


def table_argument(function: F) -> F:
    """Add the DB.TABLE argument, passed as `ref`."""
    return click.argument("ref", metavar="DB.TABLE", type=TABLE_REF)(function)


def yes_option(function: F) -> F:
    """Add --yes/-y, which skips the confirmation prompt."""
    return click.option(
        "--yes", "-y", is_flag=True, help="Do not ask; required when stdin is not a terminal."
    )(function)


def _attribute_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str]:
    return ["*"] if value is None else parse_attribute_list(value)


def attributes_option(function: F) -> F:
    """Add --attributes a,b, passed as `attributes` (default ["*"], every attribute)."""
    return click.option(
        "--attributes",
        "attributes",
        metavar="A,B,...",
        callback=_attribute_list,
        help="Comma-separated attributes to return (default: all).",
    )(function)


def id_options(function: F) -> F:
    """Add IDS... with --int-ids/--string-ids, passed as `ids` and `id_mode`."""
    function = click.option(
        "--string-ids", "id_mode", flag_value="string", help="Send every id as a string."
    )(function)
    function = click.option(
        "--int-ids", "id_mode", flag_value="int", help="Send every id as a number."
    )(function)
    return click.argument("ids", metavar="ID...", nargs=-1, required=True)(function)


def batch_size_option(function: F) -> F:
    """Add --batch-size N (default 1000), passed as `batch_size`."""
    return click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=1000,
        metavar="N",
        show_default=True,
        help="Records per request.",
    )(function)


def read_input(source: str, what: str) -> tuple[str, str]:
    """Return (text, name) read from the file `source`, or from stdin when it is "-"."""
    if source == "-":
        if terminal.stdin_is_terminal():
            raise UsageError(f"expected {what} on stdin, but stdin is a terminal")
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(source).read_text(encoding="utf-8"), source
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source} is not UTF-8 text: {exc}") from exc


def examples(*lines: str) -> str:
    """Return an epilog listing example command lines, kept as written by click."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
