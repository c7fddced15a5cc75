"""Output for pipes and scripts: TSV and JSON lines, and record sinks that print as they go.

TSV (`-o tsv`, the default when stdout is not a terminal): a header line of column names,
then one line per record, cells separated by one tab. In names and values a backslash is
written `\\\\`, a tab `\\t`, a newline `\\n` and a carriage return `\\r`, so each record is one
line and each cell one field, never wrapped or cut. null and missing attributes are empty
cells; strings are written as they are; numbers and booleans as JSON (`5`, `2.5`, `true`);
objects and arrays as compact JSON. Times stay the epoch milliseconds the API sends.

JSON lines (`-o jsonl`): one compact JSON value per line: each record of a list of records
(each item of any list), else the whole answer on one line.

A `RecordSink` takes records in batches as they arrive. The first `FIRST_CHUNK` records (or
all, if fewer) fix the columns: the primary key first, then the attributes in the order
they appear, the timestamps last. Attributes that appear only later are not shown; the
sink names them on stderr at the end (jsonl and --json show everything).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

TIME_COLUMNS = ("__createdtime__", "__updatedtime__")
FIRST_CHUNK = 1000
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

Write = Callable[[str], None]


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


def escape(text: str) -> str:
    """Return `text` with backslash, tab, newline and carriage return escaped for TSV."""
    return text.translate(_ESCAPES)


def tsv_value(value: Any) -> str:
    """Return one TSV cell for a JSON value (null is empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return escape(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def tsv_line(cells: Iterable[str]) -> str:
    """Return one TSV line (with its newline) of cells that are already plain text."""
    return "\t".join(escape(cell) for cell in cells) + "\n"


def jsonl(value: Any) -> str:
    """Return `value` as one line of compact JSON, with its newline."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


def jsonl_lines(answer: Any) -> str:
    """Return an answer as JSON lines: one per item of a list, else one for the whole."""
    items = answer if isinstance(answer, list) else [answer]
    return "".join(jsonl(item) for item in items)


def as_record(item: Any) -> dict[str, Any]:
    """Return an item of a records answer as a record; a bare value becomes {"value": ...}."""
    return item if isinstance(item, dict) else {"value": item}


class RecordSink:
    """Print records handed over in batches; the first FIRST_CHUNK fix the columns.

    Subclasses implement `show(records)` (columns are set by then) and may override
    `finish()`; `warn` gets the stderr line about attributes left out.
    """

    def __init__(self, warn: Write, primary_key: str | None = None) -> None:
        self.warn = warn
        self.primary_key = primary_key
        self.columns: list[str] | None = None
        self.count = 0
        self._held: list[dict[str, Any]] = []
        self._shown: set[str] = set()
        self._left_out: dict[str, None] = {}

    def add(self, items: Iterable[Any]) -> None:
        """Take the next records; print them once the columns are known."""
        self._held.extend(as_record(item) for item in items)
        if self.columns is not None or len(self._held) >= FIRST_CHUNK:
            self._release()

    def close(self) -> None:
        """Print what is held, finish, and name the attributes that were left out."""
        self._release()
        self.finish()
        if self._left_out:
            names = ", ".join(self._left_out)
            self.warn(
                f"harperctl: warning: attributes that first appear after record {FIRST_CHUNK} "
                f"are not shown: {names} (-o jsonl or --json shows every attribute)"
            )

    def _release(self) -> None:
        held, self._held = self._held, []
        if not held:
            return
        if self.columns is None:
            self.columns = record_columns(held, self.primary_key)
            self._shown = set(self.columns)
        else:
            for record in held:
                if not self._shown.issuperset(record):
                    self._left_out.update(dict.fromkeys(k for k in record if k not in self._shown))
        self.count += len(held)
        self.show(held)

    def show(self, records: list[dict[str, Any]]) -> None:
        """Print `records` in `self.columns`."""
        raise NotImplementedError

    def finish(self) -> None:
        """Print whatever ends the output (nothing by default)."""


class TsvSink(RecordSink):
    """Print a header line, then one TSV line per record; nothing at all for no records."""

    def __init__(self, write: Write, warn: Write, primary_key: str | None = None) -> None:
        super().__init__(warn, primary_key)
        self.write = write

    def show(self, records: list[dict[str, Any]]) -> None:
        """Write the header before the first records, then the records."""
        columns = self.columns or []
        lines = [tsv_line(columns)] if self.count == len(records) else []
        get = dict.get
        lines += [
            "\t".join([tsv_value(get(record, name)) for name in columns]) + "\n"
            for record in records
        ]
        self.write("".join(lines))


class JsonlSink(RecordSink):
    """Print each record as one line of JSON, as soon as it arrives (every attribute)."""

    def __init__(self, write: Write, warn: Write, primary_key: str | None = None) -> None:
        super().__init__(warn, primary_key)
        self.write = write

    def add(self, items: Iterable[Any]) -> None:
        """Write the records at once: JSON lines need no columns."""
        text = "".join(jsonl(item) for item in items)
        if text:
            self.write(text)
