"""`harperctl op`: run any operation given as raw JSON."""

from __future__ import annotations

import json
from typing import Any

import click

from harperctl.commands._context import AppContext, pass_app, print_json
from harperctl.commands._options import examples, read_input
from harperctl.errors import UsageError


def parse_operation(text: str, source: str) -> dict[str, Any]:
    """Return the operation object in `text`, or raise UsageError saying what is wrong."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("operation"), str):
        raise UsageError(f'{source}: expected an object like {{"operation": "describe_all"}}')
    return body


@click.command(
    epilog=examples(
        """harperctl op '{"operation": "describe_all"}'""",
        """echo '{"operation": "cluster_status"}' | harperctl op -""",
    )
)
@click.argument("operation_json", metavar="[JSON|-]", default="-")
@pass_app
def op(app: AppContext, operation_json: str) -> None:
    """Run any operation given as raw JSON; print the answer as JSON.

    The JSON comes from the argument, or from stdin when it is "-" or missing.
    The answer prints as indented JSON in every output mode but jsonl (one line per item).
    """
    if operation_json == "-":
        text, source = read_input("-", "the operation")
    else:
        text, source = operation_json, "argument"
    app.emit(app.call(parse_operation(text, source)), lambda _console, answer: print_json(answer))


COMMANDS = [op]
