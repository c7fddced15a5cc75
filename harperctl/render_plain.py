"""A console for pipes: every render function's output as plain lines, never wrapped.

`PlainConsole` is what the render functions print on when stdout is not a terminal (or
with `-o tsv`). It keeps their content and drops the drawing: a `Table` becomes TSV lines
(its title, if any, on a line before it; its header as the first line; its caption, a
count, left out), text is written whole on its own line, a `Group` item by item. Cells are
escaped as `plain.tsv_line` says. Anything else is rendered by rich without a width limit.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from harperctl.plain import tsv_line

WIDE = 1_000_000


class PlainConsole(Console):
    """A rich Console that prints tables as TSV and text as single lines."""

    def __init__(self) -> None:
        super().__init__(width=WIDE, highlight=False, color_system=None, soft_wrap=True)

    @property
    def is_terminal(self) -> bool:
        """Never a terminal: nothing redraws in place on a pipe."""
        return False

    def print(self, *objects: Any, sep: str = " ", end: str = "\n", **kwargs: Any) -> None:
        """Write each object as plain lines; a bare print() writes an empty line."""
        if not objects:
            self.file.write(end)
            return
        for item in objects:
            self.file.write(self.plain(item, end))
        self.file.flush()

    def plain(self, item: Any, end: str = "\n") -> str:
        """Return the plain text for one renderable."""
        if isinstance(item, Table):
            return table_lines(item)
        if isinstance(item, Text):
            return item.plain + end
        if isinstance(item, str):
            return Text.from_markup(item).plain + end
        if isinstance(item, Group):
            return "".join(self.plain(part) for part in item.renderables)
        with self.capture() as capture:
            super().print(item, end=end)
        return capture.get()


def cell_text(cell: Any) -> str:
    """Return a table cell or header as plain text."""
    if isinstance(cell, Text):
        return cell.plain
    return "" if cell is None else str(cell)


def table_lines(table: Table) -> str:
    """Return a table as TSV: its title, its header (line breaks made spaces), its rows."""
    lines = []
    if table.title:
        lines.append(cell_text(table.title) + "\n")
    if table.show_header:
        lines.append(tsv_line(cell_text(c.header).replace("\n", " ") for c in table.columns))
    columns = [list(column.cells) for column in table.columns]
    for index in range(table.row_count):
        lines.append(tsv_line(cell_text(cells[index]) for cells in columns))
    return "".join(lines)
