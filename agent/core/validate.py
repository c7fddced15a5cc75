"""What a peer may hand to storage: names, keys, documents, table definitions, writes.

Every value a frame carries into storage is checked here first, so a peer's bad data ends
its link (RemoteProtocolError with close code 1007, INVALID_PAYLOAD) instead of being stored
and breaking reads later. The rules are the ones the local write path applies
(agent/storage uses `valid_name`, `valid_attribute` and `valid_key` from here): a node never
accepts from a client what its peers would refuse from it.

A change set's writes `(table, kind, key, value)` (agent/core/changes.py):

    PUT           valid table, valid key, a JSON object's text whose keys are attribute names
    DELETE        valid table, valid key, None
    ATTRIBUTE     valid table, an attribute name, None or
                  {"type": str|None, "indexed": bool, "declared": bool (optional)}
    CREATE_TABLE  valid table, None, a table definition naming that table
    DROP_TABLE    valid table, None, None
    DROP_ATTRIBUTE valid table, an attribute name, None
"""

from __future__ import annotations

import math
import re
from typing import Any

from agent import jsonx
from agent.core.changes import (
    ATTRIBUTE,
    CREATE_TABLE,
    DELETE,
    DROP_ATTRIBUTE,
    DROP_TABLE,
    PUT,
    Write,
)
from agent.core.clock import valid_version
from agent.core.errors import INVALID_PAYLOAD, RemoteProtocolError

# Database and table names (agent/storage/catalog.py imports it from here).
# \A..\Z, not ^..$: `$` also matches before a final newline, and "x\n" would name a file.
NAME_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_\-]{0,63}\Z")
MAX_KEY_CHARS = 1024
MAX_DECLARED_ATTRIBUTE = 250  # declared attributes and primary keys (create_table, ...)
_INT64 = jsonx.INT64_MAX + 1  # one past what SQLite's INTEGER holds
_loads = jsonx.loads


def valid_name(name: object) -> bool:
    """Return True for a database or table name: 1-64 letters, digits, '_' or '-'."""
    return isinstance(name, str) and NAME_RE.match(name) is not None


def valid_attribute(name: object) -> bool:
    """Return True for an attribute name a record may carry: a non-empty string, no NUL."""
    return isinstance(name, str) and name != "" and "\x00" not in name


def valid_declared_attribute(name: object) -> bool:
    """Return True for a primary key or declared attribute name (also at most 250 chars)."""
    return valid_attribute(name) and len(name) <= MAX_DECLARED_ATTRIBUTE  # type: ignore[arg-type]


def valid_key(key: object) -> bool:
    """Return True for a primary key value: 1-1024 chars, a 64-bit int or a finite float."""
    if isinstance(key, str):
        return 0 < len(key) <= MAX_KEY_CHARS
    if isinstance(key, bool):
        return False
    if isinstance(key, int):
        return -_INT64 <= key < _INT64
    return isinstance(key, float) and math.isfinite(key)


def valid_node(name: object) -> bool:
    """Return True for a node name (it becomes system.hdb_nodes' primary key)."""
    return isinstance(name, str) and valid_key(name) and "\x00" not in name


def _refuse(what: str, value: Any) -> RemoteProtocolError:
    return RemoteProtocolError(f"{what}: {value!r:.80}", INVALID_PAYLOAD)


def check_document(doc: Any, what: str = "record") -> None:
    """Refuse a record unless it is a JSON object's text whose keys are attribute names."""
    if not isinstance(doc, str):
        raise _refuse(f"{what} is not JSON text", doc)
    try:
        value = jsonx.loads(doc)
    except ValueError:
        raise _refuse(f"{what} is not valid JSON", doc) from None
    if not isinstance(value, dict):
        raise _refuse(f"{what} is a JSON {type(value).__name__}, not an object", doc)
    if "" in value:
        raise _refuse(f"{what} has an empty attribute name", doc)
    # JSON text carries a NUL only escaped: look at the names only when one is there at all
    if "\\u0000" in doc and any("\x00" in name for name in value):
        raise _refuse(f"{what} has an attribute name with a NUL", doc)


def _check_attribute_spec(spec: Any) -> None:
    if spec is None:
        return
    if (
        not isinstance(spec, dict)
        or not (spec.get("type") is None or isinstance(spec.get("type"), str))
        or not (spec.get("indexed") is None or isinstance(spec.get("indexed"), bool))
        or not isinstance(spec.get("declared", False), bool)
    ):
        raise _refuse("malformed attribute", spec)


def check_table_definition(spec: Any) -> None:
    """Refuse a table definition (Schema frames, CREATE_TABLE) storage could not take."""
    if not isinstance(spec, dict) or not valid_name(spec.get("name")):
        raise _refuse("table definition without a valid name", spec)
    pk = spec.get("primary_key")
    if pk is not None and not valid_declared_attribute(pk):
        raise _refuse("table definition with a bad primary key", spec)
    for flag in ("replicate", "schema_defined"):
        if not isinstance(spec.get(flag, False), bool):
            raise _refuse(f"table definition with a non-boolean {flag}", spec)
    if not valid_version(spec.get("version", 0)) or not isinstance(spec.get("origin", ""), str):
        raise _refuse("table definition with a bad version or origin", spec)
    attributes = spec.get("attributes")
    if attributes is None:
        return
    if not isinstance(attributes, list):
        raise _refuse("table definition with malformed attributes", spec)
    for attr in attributes:
        if not isinstance(attr, dict) or not valid_attribute(attr.get("name")):
            raise _refuse("table definition with a bad attribute", attr)
        _check_attribute_spec(attr)


def check_write(table: Any, kind: Any, key: Any, value: Any) -> Write:
    """Return the write if storage can apply it, else raise RemoteProtocolError."""
    if not valid_name(table):
        raise _refuse("write to an invalid table name", table)
    if type(kind) is not int:  # True == PUT in Python, but not on the wire
        raise _refuse("unknown write kind", kind)
    if kind == PUT:
        if not valid_key(key):
            raise _refuse(f"write to {table} with a bad primary key", key)
        check_document(value)
    elif kind == DELETE:
        if not valid_key(key) or value is not None:
            raise _refuse(f"malformed delete in {table}", [key, value])
    elif kind == ATTRIBUTE:
        if not valid_attribute(key):
            raise _refuse(f"attribute of {table} with a bad name", key)
        _check_attribute_spec(value)
    elif kind == CREATE_TABLE:
        check_table_definition(value)
        if key is not None or value["name"] != table:
            raise _refuse(f"malformed create_table of {table}", value)
    elif kind == DROP_TABLE:
        if key is not None or value is not None:
            raise _refuse(f"malformed drop_table of {table}", [key, value])
    elif kind == DROP_ATTRIBUTE:
        if not valid_attribute(key) or value is not None:
            raise _refuse(f"malformed drop_attribute of {table}", [key, value])
    else:
        raise _refuse("unknown write kind", kind)
    return Write(table, kind, key, value)


class CheckedWrites(list):
    """A checked change set, with the attribute names its records carry, per table.

    Checking parses every record anyway; storage needs the names (to keep its attribute list
    in step) and would otherwise parse every record a second time.
    """

    names: dict[str, set[str]]


def check_writes(items: list) -> CheckedWrites:
    """Return a change set's writes `[table, kind, key, value]` checked (see check_write).

    The per-record hot path of replication, so the common write (a put of an int or string
    key with a record that parses to an object without an empty name) is checked inline, and
    a table name once per change set; anything else takes `check_write`, which also says what
    is wrong. Parsing the record (orjson) is most of the cost: about 1 us per record.
    """
    names: dict[str, set[str]] = {}
    out = CheckedWrites()
    out.names = names
    append, make = out.append, Write._make
    for item in items:
        if type(item) is not list or len(item) != 4:
            raise _refuse("malformed write", item)
        table, kind, key, value = item
        if type(table) is not str or table not in names:
            if not valid_name(table):
                raise _refuse("write to an invalid table name", table)
            names[table] = set()
        if (
            kind == PUT
            and type(kind) is int
            and type(value) is str
            and (
                (type(key) is int and -_INT64 <= key < _INT64)
                or (type(key) is str and 0 < len(key) <= MAX_KEY_CHARS)
            )
            and "\\u0000" not in value
        ):
            try:
                doc = _loads(value)
            except ValueError:
                doc = None
            if type(doc) is dict and "" not in doc:
                append(make(item))
                names[table].update(doc)
                continue
        append(check_write(table, kind, key, value))
        if kind == PUT:
            names[table].update(_loads(value))
    return out


def check_rows(rows: list) -> None:
    """Refuse a CopyChunk unless every row is `[pk, doc or None, version, origin]` storable."""
    for row in rows:
        if not isinstance(row, list) or len(row) != 4:
            raise _refuse("malformed copy row", row)
        pk, doc, version, origin = row
        if not valid_key(pk):
            raise _refuse("copy row with a bad primary key", pk)
        if doc is not None:
            check_document(doc, "malformed copy row: its record")
        if not valid_version(version):
            raise _refuse("copy row with an out-of-range version", version)
        if not isinstance(origin, str):
            raise _refuse("malformed copy row: its origin is not a string", origin)


def check_copy_request(copy: Any) -> bool:
    """Return True for a Subscribe's copy field: None or {mode, frontier, table, after, ...}."""
    if copy is None:
        return True
    if not isinstance(copy, dict):
        return False
    frontier, table = copy.get("frontier"), copy.get("table")
    after, copied = copy.get("after"), copy.get("copied", 0)
    return (
        copy.get("mode") in (None, "full", "merge", "resume")
        and (frontier is None or is_cursor_map(frontier))
        and (table is None or valid_name(table))
        and (after is None or valid_key(after))
        and (copied is None or _is_count(copied))
    )


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _INT64


def is_cursor_map(v: Any) -> bool:
    """Return True for {origin id: sequence} with sequences in 0..2**63-1."""
    return isinstance(v, dict) and all(isinstance(k, str) and _is_count(x) for k, x in v.items())
