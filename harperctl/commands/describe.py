"""`harperctl describe [DB[.TABLE]]`: describe everything, a database or a table."""

from __future__ import annotations

import click

from harperctl import render
from harperctl.commands._context import AppContext, pass_app
from harperctl.commands._options import TABLE_REF, examples


@click.command(
    epilog=examples("harperctl describe", "harperctl describe dev", "harperctl describe dev.dog")
)
@click.argument("target", metavar="[DB[.TABLE]]", required=False)
@pass_app
def describe(app: AppContext, target: str | None) -> None:
    """Describe every database, one database, or one table."""
    if target is None:
        app.emit(app.call({"operation": "describe_all"}), render.print_tables)
    elif "." in target:
        ref = TABLE_REF.convert(target, None, None)
        answer = app.call({"operation": "describe_table", **ref.body()})
        app.emit(answer, render.print_table_description)
    else:
        answer = app.call({"operation": "describe_database", "database": target})
        app.emit(answer, lambda console, tables: render.print_tables(console, {target: tables}))


COMMANDS = [describe]
