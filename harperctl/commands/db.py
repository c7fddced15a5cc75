"""`harperctl db`: list, create, describe and drop databases."""

from __future__ import annotations

import click

from harperctl import render
from harperctl.commands._context import AppContext, pass_app
from harperctl.commands._options import examples, yes_option


@click.group(epilog=examples("harperctl db list", "harperctl db create dev"))
def db() -> None:
    """List, create, describe and drop databases."""


@db.command("list", epilog=examples("harperctl db list", "harperctl --json db list"))
@pass_app
def list_databases(app: AppContext) -> None:
    """List databases with their numbers of tables and records (describe_all)."""
    app.emit(app.call({"operation": "describe_all"}), render.print_databases)


@db.command(epilog=examples("harperctl db create dev"))
@click.argument("name")
@pass_app
def create(app: AppContext, name: str) -> None:
    """Create the database NAME."""
    app.emit(app.call({"operation": "create_database", "database": name}), render.print_message)


@db.command(epilog=examples("harperctl db drop dev", "harperctl db drop dev --yes"))
@click.argument("name")
@yes_option
@pass_app
def drop(app: AppContext, name: str, yes: bool) -> None:
    """Drop the database NAME and every table in it, after asking."""
    app.confirm(f"drop database {name!r} and all its tables", yes)
    app.emit(app.call({"operation": "drop_database", "database": name}), render.print_message)


@db.command(epilog=examples("harperctl db describe dev"))
@click.argument("name")
@pass_app
def describe(app: AppContext, name: str) -> None:
    """Show the tables of the database NAME (describe_database)."""
    answer = app.call({"operation": "describe_database", "database": name})
    app.emit(answer, lambda console, tables: render.print_tables(console, {name: tables}))


COMMANDS = [db]
