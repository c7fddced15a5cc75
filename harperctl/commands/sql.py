"""`harperctl sql`: run one SQL statement."""

from __future__ import annotations

import click

from harperctl.commands._context import AppContext, pass_app
from harperctl.commands._options import examples, read_input


@click.command(
    epilog=examples(
        """harperctl sql "SELECT id, name FROM dev.dog WHERE age > 3 ORDER BY name\"""",
        """harperctl sql "UPDATE dev.dog SET age = 4 WHERE id = 1\"""",
        "harperctl sql - < query.sql",
        """harperctl sql "SELECT * FROM dev.dog" | wc -l""",
    )
)
@click.argument("statement", metavar="SQL|-")
@pass_app
def sql(app: AppContext, statement: str) -> None:
    """Run a SQL statement; rows print as they arrive (a table on a terminal).

    SELECT, INSERT, UPDATE and DELETE are supported. The statement comes from
    the argument, or from stdin when it is "-".
    """
    if statement == "-":
        statement = read_input("-", "the statement")[0].strip()
    app.emit_records({"operation": "sql", "sql": statement})


COMMANDS = [sql]
