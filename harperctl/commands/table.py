"""`harperctl table`: list, create, describe and drop tables."""

from __future__ import annotations

import re
from typing import Any

import click

from harperctl import render
from harperctl.commands._context import AppContext, pass_app
from harperctl.commands._options import TableRef, examples, table_argument, yes_option
from harperctl.errors import UsageError

_NAME = re.compile(r"^[^:\s]+$")


def parse_attribute_spec(spec: str) -> dict[str, Any]:
    """Return the create_table attribute for NAME[:TYPE][:indexed]."""
    name, *rest = spec.split(":")
    if not _NAME.match(name) or len(rest) > 2:
        raise UsageError(f"--attribute {spec!r}: expected NAME[:TYPE][:indexed]")
    attribute: dict[str, Any] = {"name": name}
    if rest and rest[-1].lower() == "indexed":
        attribute["indexed"] = True
        rest = rest[:-1]
    if len(rest) > 1 or (rest and not rest[0].isidentifier()):
        raise UsageError(f"--attribute {spec!r}: expected NAME[:TYPE][:indexed]")
    if rest:
        attribute["type"] = rest[0]
    return attribute


def create_table_body(
    ref: TableRef, primary_key: str, specs: tuple[str, ...], replicate: bool
) -> dict[str, Any]:
    """Return the create_table operation for the command's options."""
    body: dict[str, Any] = {"operation": "create_table", **ref.body(), "primary_key": primary_key}
    if specs:
        body["attributes"] = [parse_attribute_spec(spec) for spec in specs]
    if not replicate:
        body["replicate"] = False
    return body


@click.group(epilog=examples("harperctl table list dev", "harperctl table create dev.dog"))
def table() -> None:
    """List, create, describe and drop tables."""


@table.command("list", epilog=examples("harperctl table list", "harperctl table list dev"))
@click.argument("database", required=False)
@pass_app
def list_tables(app: AppContext, database: str | None) -> None:
    """List the tables of DATABASE, or of every database."""
    if database is None:
        app.emit(app.call({"operation": "describe_all"}), render.print_tables)
        return
    answer = app.call({"operation": "describe_database", "database": database})
    app.emit(answer, lambda console, tables: render.print_tables(console, {database: tables}))


@table.command(
    epilog=examples(
        "harperctl table create dev.dog",
        "harperctl table create dev.dog --primary-key dog_id "
        "--attribute name:String:indexed --attribute age:Int",
        "harperctl table create dev.scratch --no-replicate",
    )
)
@table_argument
@click.option("--primary-key", default="id", show_default=True, help="Primary key attribute.")
@click.option(
    "--attribute",
    "specs",
    multiple=True,
    metavar="NAME[:TYPE][:indexed]",
    help="Declare an attribute (repeatable), e.g. name:String:indexed.",
)
@click.option(
    "--replicate/--no-replicate",
    default=True,
    help="With --no-replicate the table never leaves this node.",
)
@pass_app
def create(
    app: AppContext, ref: TableRef, primary_key: str, specs: tuple[str, ...], replicate: bool
) -> None:
    """Create the table DB.TABLE (and the database, if missing)."""
    body = create_table_body(ref, primary_key, specs, replicate)
    app.emit(app.call(body), render.print_message)


@table.command(epilog=examples("harperctl table drop dev.dog --yes"))
@table_argument
@yes_option
@pass_app
def drop(app: AppContext, ref: TableRef, yes: bool) -> None:
    """Drop the table DB.TABLE and its records, after asking."""
    app.confirm(f"drop table '{ref}' and its records", yes)
    app.emit(app.call({"operation": "drop_table", **ref.body()}), render.print_message)


@table.command(epilog=examples("harperctl table describe dev.dog"))
@table_argument
@pass_app
def describe(app: AppContext, ref: TableRef) -> None:
    """Show a table's primary key, record count and attributes (describe_table)."""
    answer = app.call({"operation": "describe_table", **ref.body()})
    app.emit(answer, render.print_table_description)


COMMANDS = [table]
