"""Records on a terminal: tables of at most CHUNK rows that fit the width, or one block each.

A table is drawn only when every column can keep at least MIN_WIDTH characters (or its
whole width, if narrower) within the console's width; the widest columns are then folded
first, so no column is ever squeezed to nothing. When the columns do not fit, each record
is printed as a block of `attribute  value` lines (a vertical view, as psql's \\x). The
first chunk decides between the two for the whole answer; each later chunk of CHUNK rows is
a table of its own with the same columns, so a long answer prints as it arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from harperctl.plain import TIME_COLUMNS, RecordSink, as_record, record_columns

__all__ = ["TIME_COLUMNS", "record_columns"]

CHUNK = 1000
MIN_WIDTH = 10
MISSING = object()


def format_value(column: str, value: Any) -> Text:
    """Return one cell: JSON-style scalars, compact JSON for objects, UTC times."""
    if value is MISSING:
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


def cells(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[list[Text]]:
    """Return the formatted cells of `rows`, one list per record."""
    return [[format_value(name, record.get(name, MISSING)) for name in columns] for record in rows]


def natural_widths(columns: Sequence[str], rows: Sequence[Sequence[Text]]) -> list[int]:
    """Return each column's width unfolded: its longest line, header included."""
    widths = [cell_len(name) for name in columns]
    for row in rows:
        for index, cell in enumerate(row):
            longest = max(cell_len(line) for line in cell.plain.split("\n"))
            if longest > widths[index]:
                widths[index] = longest
    return widths


def fit_widths(natural: Sequence[int], width: int) -> list[int] | None:
    """Return column widths whose table fits `width`, folding the widest columns first.

    Each column keeps at least min(its natural width, MIN_WIDTH); None when even that does
    not fit (rich's boxed table spends 3 characters per column and 1 more on borders).
    """
    room = width - 3 * len(natural) - 1
    floors = [min(size, MIN_WIDTH) for size in natural]
    if sum(floors) > room:
        return None
    if sum(natural) <= room:
        return list(natural)

    def total(cap: int) -> int:
        """Return the width of all columns when none is wider than `cap`."""
        return sum(max(floor, min(size, cap)) for floor, size in zip(floors, natural, strict=True))

    low, high = MIN_WIDTH, max(natural)
    while low < high:  # the largest cap that fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if total(middle) <= room else (low, middle - 1)
    widths = [max(floor, min(size, low)) for floor, size in zip(floors, natural, strict=True)]
    spare = room - sum(widths)
    for index, size in enumerate(natural):
        if spare and size > widths[index]:
            widths[index] += 1
            spare -= 1
    return widths


def records_table(
    columns: Sequence[str], rows: Sequence[Sequence[Text]], widths: Sequence[int], caption: str
) -> Table:
    """Return a table of `rows` whose columns have exactly `widths` (long cells fold)."""
    table = Table(caption=caption)
    for name, size in zip(columns, widths, strict=True):
        table.add_column(name, width=size, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def print_vertical(
    console: Console, columns: Sequence[str], rows: Sequence[Sequence[Text]], first: int
) -> None:
    """Print each record as a block of `attribute  value` lines under a numbered rule."""
    for number, row in enumerate(rows, start=first):
        console.print(Rule(f"record {number}", align="left", style="dim"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for name, cell in zip(columns, row, strict=True):
            grid.add_row(Text(name), cell)
        console.print(grid)


class TableSink(RecordSink):
    """Print records on `console` as CHUNK-row tables (or vertical blocks) as they arrive."""

    def __init__(
        self, console: Console, warn: Callable[[str], None], primary_key: str | None = None
    ) -> None:
        super().__init__(warn, primary_key)
        self.console = console
        self.vertical: bool | None = None
        self._first_widths: list[int] = []
        self._rows: list[dict[str, Any]] = []
        self._printed = 0

    def show(self, records: list[dict[str, Any]]) -> None:
        """Hold records; print a full chunk once more follow it (so the last has the total)."""
        self._rows.extend(records)
        while len(self._rows) > CHUNK:
            chunk, self._rows = self._rows[:CHUNK], self._rows[CHUNK:]
            self._print(chunk, f"records {self._printed + 1}-{self._printed + CHUNK}")

    def finish(self) -> None:
        """Print the last chunk with the total; "no records" when there were none."""
        if not self.count:
            self.console.print(Text("no records"))
            return
        if not self._printed:
            caption = f"{self.count} record" + ("" if self.count == 1 else "s")
        else:
            caption = f"records {self._printed + 1}-{self.count} of {self.count}"
        self._print(self._rows, caption)
        self._rows = []

    def _print(self, records: list[dict[str, Any]], caption: str) -> None:
        columns = self.columns or []
        rows = cells(records, columns)
        widths = fit_widths(natural_widths(columns, rows), self.console.width)
        if self.vertical is None:
            self.vertical = widths is None
            self._first_widths = widths or []
        if self.vertical:
            print_vertical(self.console, columns, rows, self._printed + 1)
            self.console.print(Text(caption, style="dim"))
        else:
            table_widths = widths or self._first_widths
            self.console.print(records_table(columns, rows, table_widths, caption))
        self._printed += len(records)


def print_records(console: Console, records: Sequence[Any], primary_key: str | None = None) -> None:
    """Print records as tables (or vertical blocks when they do not fit), or "no records"."""
    sink = TableSink(console, lambda line: Console(stderr=True).print(Text(line)), primary_key)
    sink.add(as_record(record) for record in records)
    sink.close()
