"""Record commands: insert, upsert and update from a file; delete and get by id."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import click

from harperctl import render
from harperctl.commands._context import AppContext, pass_app
from harperctl.commands._options import (
    TableRef,
    attributes_option,
    batch_size_option,
    examples,
    id_options,
    read_input,
    table_argument,
)
from harperctl.errors import HarperctlError
from harperctl.records import (
    batches,
    coerce_ids,
    merge_answers,
    missing_ids,
    parse_records,
    summarize,
)

WRITE_HELP = {
    "insert": "Insert new records. Records whose primary key exists are skipped.",
    "upsert": (
        "Insert or update records. A record whose primary key exists is merged into the "
        "stored one: the attributes given replace theirs, the others are kept."
    ),
    "update": (
        "Update existing records. Each needs its primary key; the attributes given replace "
        "theirs, the others are kept; missing ones are skipped."
    ),
}
SOURCE_HELP = (
    '\n\nRecords come from FILE, or from stdin when it is "-" or missing: a JSON array, one '
    "JSON object, or NDJSON (one object per line). They are sent --batch-size at a time, "
    "with a progress bar when stderr is a terminal."
    "\n\nWith --json the output is one JSON object however many batches were sent: the "
    "agent's answer for one batch; for several, its fields merged: the message counting "
    "every record, the *_hashes lists (skipped_hashes too) joined in order."
)


class NotFound(HarperctlError):
    """Some ids of a delete were not there (exit 1, after the answer was printed)."""


def send_batches(
    app: AppContext, operation: str, ref: TableRef, records: list[dict[str, Any]], size: int
) -> list[tuple[int, Any]]:
    """Send `records` in batches and return (records sent, answer) per batch."""
    chunks = list(batches(records, size))
    results: list[tuple[int, Any]] = []
    with _progress(len(chunks), len(records), f"{operation} {ref}") as advance:
        for number, chunk in enumerate(chunks, start=1):
            try:
                answer = app.call({"operation": operation, **ref.body(), "records": chunk})
            except HarperctlError as exc:
                raise _batch_failure(exc, number, len(chunks), results) from exc
            results.append((len(chunk), answer))
            advance(len(chunk))
    return results


def _progress(
    chunks: int, total: int, label: str
) -> contextlib.AbstractContextManager[Callable[[int], None]]:
    """Return a progress bar when there are several batches, else a no-op."""
    if chunks > 1:
        return render.progress_bar(total, label)
    return contextlib.nullcontext(lambda n: None)


def _batch_failure(
    exc: HarperctlError, number: int, count: int, done: list[tuple[int, Any]]
) -> HarperctlError:
    """Say which batch failed and how many records went before it."""
    if count == 1:
        return exc
    sent = sum(size for size, _ in done)
    return exc.annotate(f"batch {number} of {count} failed ({sent} records sent before it)")


def write_command(operation: str) -> click.Command:
    """Return the insert, upsert or update command."""

    @click.command(
        operation,
        help=WRITE_HELP[operation] + SOURCE_HELP,
        short_help=WRITE_HELP[operation].split(".")[0] + ".",
        epilog=examples(
            f"harperctl {operation} dev.dog dogs.json",
            f"harperctl {operation} dev.dog - < dogs.ndjson",
            f"""echo '{{"id": 1, "name": "Penny"}}' | harperctl {operation} dev.dog""",
        ),
    )
    @table_argument
    @click.argument("source", metavar="[FILE|-]", default="-")
    @batch_size_option
    @pass_app
    def command(app: AppContext, ref: TableRef, source: str, batch_size: int) -> None:
        """Send the records of SOURCE with `operation`; the help text is WRITE_HELP's."""
        text, name = read_input(source, "records")
        results = send_batches(app, operation, ref, parse_records(text, name), batch_size)
        line = summarize(operation, results)
        app.emit(
            merge_answers(operation, results),
            lambda console, _: render.print_text(console, line),
        )

    return command


@click.command(
    epilog=examples("harperctl delete dev.dog 1 2 3", "harperctl delete dev.user 0042 --string-ids")
)
@table_argument
@id_options
@pass_app
def delete(app: AppContext, ref: TableRef, ids: tuple[str, ...], id_mode: str | None) -> None:
    """Delete records by primary key.

    An id made only of digits is sent as a number unless --string-ids is given.
    Ids that are not there are named on stderr, and the exit code is then 1.
    """
    sent = coerce_ids(ids, id_mode)
    answer = app.call({"operation": "delete", **ref.body(), "ids": sent})
    app.emit(answer, render.print_message)
    missing = missing_ids(sent, answer)
    if missing:
        shown = ", ".join(str(key) for key in missing)
        raise NotFound(f"{len(missing)} of {len(sent)} ids not found in {ref}: {shown}")


@click.command(
    epilog=examples(
        "harperctl get dev.dog 1 2",
        "harperctl get dev.dog 1 --attributes id,name --json",
        "harperctl get dev.dog 1 | grep -c Penny",
    )
)
@table_argument
@id_options
@attributes_option
@pass_app
def get(
    app: AppContext,
    ref: TableRef,
    ids: tuple[str, ...],
    id_mode: str | None,
    attributes: list[str],
) -> None:
    """Get records by primary key (search_by_id).

    Missing ids are left out of the answer. An id made only of digits is sent
    as a number unless --string-ids is given. Records print as they arrive.
    """
    body = {
        "operation": "search_by_id",
        **ref.body(),
        "ids": coerce_ids(ids, id_mode),
        "get_attributes": attributes,
    }
    app.emit_records(body)


COMMANDS = [write_command("insert"), write_command("upsert"), write_command("update"), delete, get]
