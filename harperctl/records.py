"""Read records for insert/upsert/update, cut them into batches, and sum the answers.

`merge_answers` makes the one --json answer of a write sent in several batches: the agent's
own answer when there was one batch, else its fields merged: lists (the *_hashes) joined in
batch order, numbers added, the message counting every record in the agent's words.

A record file is a JSON array of objects, a single JSON object, or NDJSON (one object per
line), told apart by its content. Problems are UsageErrors naming the line, raised before
anything is sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from harperctl.errors import UsageError

# The list of written ids in each write answer (HarperDB spells update's without "d").
HASH_FIELDS = {
    "insert": ("inserted_hashes",),
    "upsert": ("upserted_hashes",),
    "update": ("update_hashes", "updated_hashes"),
}
_PAST = {"insert": "inserted", "upsert": "upserted", "update": "updated"}
_MESSAGE = re.compile(r"^\w+ (\d+) of (\d+) records?")
_INTEGER = re.compile(r"^-?\d+$")
# Auto mode leaves "007" alone: as a number it would lose its zeros.
_PLAIN_INTEGER = re.compile(r"^-?(0|[1-9]\d*)$")


def parse_records(text: str, source: str = "<stdin>") -> list[dict[str, Any]]:
    """Return the records in `text`: a JSON array, one JSON object, or NDJSON."""
    stripped = text.strip()
    if not stripped:
        raise UsageError(f"{source}: no records")
    if stripped.startswith("["):
        return _parse_array(text, source)
    try:
        whole = json.loads(text)
    except ValueError:
        return _parse_lines(text, source)
    if not isinstance(whole, dict):
        raise UsageError(f"{source}: expected JSON objects, got {_kind(whole)}")
    return [whole]


def _parse_array(text: str, source: str) -> list[dict[str, Any]]:
    """Return the objects of a JSON array, naming the line of a syntax error."""
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise UsageError(f"{source}: record {number} is {_kind(record)}, not an object")
    return records


def _parse_lines(text: str, source: str) -> list[dict[str, Any]]:
    """Return one object per non-blank line (NDJSON)."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{source}: line {number}: invalid JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise UsageError(f"{source}: line {number}: expected an object, got {_kind(record)}")
        records.append(record)
    return records


def _kind(value: Any) -> str:
    """Name a JSON value's type for an error message."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def batches(records: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Yield consecutive slices of at most `size` records."""
    if size < 1:
        raise UsageError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(records), size):
        yield list(records[start : start + size])


def written_count(operation: str, response: Any, sent: int) -> int:
    """Return how many of the `sent` records one write answer says were written."""
    if not isinstance(response, dict):
        return 0
    for name in HASH_FIELDS[operation]:
        if isinstance(response.get(name), list):
            return len(response[name])
    found = _MESSAGE.match(str(response.get("message", "")))
    return int(found.group(1)) if found else sent


def summarize(operation: str, results: Sequence[tuple[int, Any]]) -> str:
    """Return one line summing (sent, answer) pairs: 'inserted 2 of 2 records; skipped 0'."""
    sent = sum(count for count, _ in results)
    written = sum(written_count(operation, answer, count) for count, answer in results)
    line = f"{_PAST[operation]} {written} of {sent} record" + ("" if sent == 1 else "s")
    skipped = [
        answer["skipped_hashes"]
        for _, answer in results
        if isinstance(answer, dict) and isinstance(answer.get("skipped_hashes"), list)
    ]
    if skipped:
        line += f"; skipped {sum(len(ids) for ids in skipped)}"
    return line


def merge_answers(operation: str, results: Sequence[tuple[int, Any]]) -> Any:
    """Return one answer for (records sent, answer) batches, shaped as a single answer."""
    if len(results) == 1:
        return results[0][1]
    merged: dict[str, Any] = {}
    for _, answer in results:
        for name, value in (answer if isinstance(answer, dict) else {}).items():
            merged[name] = _merge_value(merged.get(name), value)
    sent = sum(count for count, _ in results)
    written = sum(written_count(operation, answer, count) for count, answer in results)
    noun = "record" if sent == 1 else "records"
    merged.pop("message", None)
    return {"message": f"{_PAST[operation]} {written} of {sent} {noun}", **merged}


def _merge_value(before: Any, value: Any) -> Any:
    """Return two batches' values of one field together: lists joined, numbers added."""
    if before is None:
        return list(value) if isinstance(value, list) else value
    if isinstance(before, list) and isinstance(value, list):
        return before + value
    numbers = (int, float)
    if isinstance(before, numbers) and isinstance(value, numbers):
        if not isinstance(before, bool) and not isinstance(value, bool):
            return before + value
    return before


def missing_ids(sent: Sequence[Any], answer: Any) -> list[Any]:
    """Return the ids a delete answer says were not there (skipped_hashes, else not deleted)."""
    if not isinstance(answer, dict):
        return []
    if isinstance(answer.get("skipped_hashes"), list):
        return list(answer["skipped_hashes"])
    deleted = answer.get("deleted_hashes")
    if not isinstance(deleted, list):
        return []
    gone = {json.dumps(key) for key in deleted}
    return [key for key in sent if json.dumps(key) not in gone]


def coerce_ids(raw: Sequence[str], mode: str | None) -> list[str | int]:
    """Return ids as sent: 'int' makes all numbers, 'string' keeps text, None guesses."""
    if mode == "string":
        return list(raw)
    if mode == "int":
        bad = [value for value in raw if not _INTEGER.match(value)]
        if bad:
            raise UsageError(f"--int-ids: {bad[0]!r} is not an integer")
        return [int(value) for value in raw]
    return [int(value) if _PLAIN_INTEGER.match(value) else value for value in raw]
