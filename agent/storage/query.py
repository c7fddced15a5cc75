"""Compile search conditions to SQLite over JSON documents, and run searches.

Attributes are read with json_extract; json_type keeps comparisons type-strict (a string never
equals a number, booleans are not 0/1), matching `agent.storage.conditions.matches`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from agent.errors import ClientError
from agent.storage.catalog import row_table
from agent.storage.conditions import Compare, Condition, Group, Not

NUMERIC = "('integer','real')"
_ORDER_OPS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


def json_path(attribute: str) -> str:
    """Return the JSON path literal that reads one top-level attribute."""
    return "'$.\"" + attribute.replace("'", "''") + "\"'"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _plain(attribute: str) -> bool:
    # SQLite 3.40's JSON paths cannot name a key holding '"' or '\'; json_each can.
    return '"' not in attribute and "\\" not in attribute


def _v(attribute: str) -> str:
    """Return SQL reading an attribute's value from the document."""
    if _plain(attribute):
        return f"json_extract(doc, {json_path(attribute)})"
    return f"(SELECT value FROM json_each(doc) WHERE key = {_quoted(attribute)})"


def _t(attribute: str) -> str:
    """Return SQL reading an attribute's JSON type ('text', 'integer', 'true', ...)."""
    if _plain(attribute):
        return f"json_type(doc, {json_path(attribute)})"
    return f"(SELECT type FROM json_each(doc) WHERE key = {_quoted(attribute)})"


@dataclass(frozen=True)
class Sort:
    attribute: str
    descending: bool = False


def compile_condition(condition: Condition, params: list) -> str:
    """Return a SQL boolean expression for `condition`, appending its parameters."""
    if isinstance(condition, Not):
        # A test on a missing attribute is NULL, not false, and NOT NULL is NULL again: fold it
        # to false first so NOT means "does not match", as in conditions.matches.
        return f"NOT coalesce({compile_condition(condition.condition, params)}, 0)"
    if isinstance(condition, Group):
        joiner = " AND " if condition.operator == "and" else " OR "
        return "(" + joiner.join(compile_condition(c, params) for c in condition.conditions) + ")"
    return _compare(condition, params)


def _typed(path: str, value: Any, params: list) -> str:
    """Return SQL testing that the attribute has `value`'s JSON type and equals it."""
    if value is None:
        return f"{_t(path)} = 'null'"
    if isinstance(value, bool):
        return f"{_t(path)} = '{'true' if value else 'false'}'"
    if isinstance(value, (int, float)):
        params.append(value)
        return f"({_t(path)} IN {NUMERIC} AND {_v(path)} = ?)"
    if isinstance(value, str):
        params.append(value)
        return f"({_t(path)} = 'text' AND {_v(path)} = ?)"
    raise ClientError(f"cannot compare with {type(value).__name__} value {value!r:.60}")


def _ordered(path: str, op: str, value: Any, params: list) -> str:
    if isinstance(value, bool):
        params.append(int(value))
        kind = "('true','false')"
        expr = f"({_t(path)} = 'true')"
    elif isinstance(value, (int, float)):
        params.append(value)
        kind, expr = NUMERIC, f"{_v(path)}"
    elif isinstance(value, str):
        params.append(value)
        kind, expr = "('text')", f"{_v(path)}"
    else:
        raise ClientError(f"cannot order by {type(value).__name__} value {value!r:.60}")
    return f"({_t(path)} IN {kind} AND {expr} {op} ?)"


def _text(path: str, comparator: str, value: Any, params: list) -> str:
    needle = str(value)
    text = f"{_v(path)}"
    guard = f"{_t(path)} = 'text'"
    if comparator != "like" and not needle:
        return guard
    if comparator == "contains":
        params.append(needle)
        return f"({guard} AND instr({text}, ?) > 0)"
    if comparator == "starts_with":
        params.extend([len(needle), needle])
        return f"({guard} AND substr({text}, 1, ?) = ?)"
    if comparator == "ends_with":
        params.extend([len(needle), -len(needle), needle])
        return f"({guard} AND length({text}) >= ? AND substr({text}, ?) = ?)"
    params.append(like_to_glob(needle))
    return f"({guard} AND {text} GLOB ?)"


def like_to_glob(pattern: str) -> str:
    """Turn a LIKE pattern into GLOB, which is case-sensitive like the other comparators."""
    special = {"*": "[*]", "?": "[?]", "[": "[[]", "%": "*", "_": "?"}
    return "".join(special.get(ch, ch) for ch in pattern)


def _compare(c: Compare, params: list) -> str:
    path = c.attribute
    name = c.comparator
    if name == "is_null":
        return f"{_v(path)} IS NULL"
    if name == "is_not_null":
        return f"{_v(path)} IS NOT NULL"
    if name == "equals":
        return _typed(path, c.value, params) if c.value is not None else "0"
    if name == "not_equal":
        inner = _typed(path, c.value, params) if c.value is not None else "0"
        return f"({_v(path)} IS NOT NULL AND NOT {inner})"
    if name == "in":
        parts = [_typed(path, v, params) for v in c.value if v is not None]
        return "(" + (" OR ".join(parts) or "0") + ")"
    if name == "between":
        lo = _ordered(path, ">=", c.value[0], params)
        hi = _ordered(path, "<=", c.value[1], params)
        return f"({lo} AND {hi})"
    if name in _ORDER_OPS:
        return _ordered(path, _ORDER_OPS[name], c.value, params)
    return _text(path, name, c.value, params)


def order_clause(sorts: list[Sort]) -> str:
    """Return ORDER BY terms for the sorts, then the primary key for a stable order."""
    terms = [f"{_v(s.attribute)}{' DESC' if s.descending else ''}" for s in sorts]
    return "ORDER BY " + ", ".join(terms + ["pk"])


def search(
    conn: sqlite3.Connection,
    table: str,
    condition: Condition | None,
    sorts: list[Sort] | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> list[str]:
    """Return the JSON documents of live records matching `condition`, in order."""
    params: list = []
    where = _where(condition, params)
    sql = f"SELECT doc FROM {row_table(table)} WHERE {where} {order_clause(sorts or [])}"
    if limit is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        params.extend([-1 if limit is None else limit, offset or 0])
    return [row[0] for row in conn.execute(sql, params)]


def count(conn: sqlite3.Connection, table: str, condition: Condition | None) -> int:
    """Count live records matching `condition`."""
    params: list = []
    where = "doc IS NOT NULL"
    if condition is not None:
        where += " AND " + compile_condition(condition, params)
    return conn.execute(
        f"SELECT count(*) FROM {row_table(table)} WHERE {where}", params
    ).fetchone()[0]


def by_ids(conn: sqlite3.Connection, table: str, ids: list) -> list[str]:
    """Return the JSON documents of the live records among `ids`, in the order asked."""
    from agent.storage.rows import live_docs

    found = live_docs(conn, table, ids)
    return [found[k] for k in dict.fromkeys(ids) if k in found]


def _where(condition: Condition | None, params: list) -> str:
    where = "doc IS NOT NULL"
    if condition is not None:
        where += " AND " + compile_condition(condition, params)
    return where


def keys(conn: sqlite3.Connection, table: str, condition: Condition | None) -> list:
    """Return the primary keys of live records matching `condition`."""
    params: list = []
    sql = f"SELECT pk FROM {row_table(table)} WHERE {_where(condition, params)} ORDER BY pk"
    return [row[0] for row in conn.execute(sql, params)]


AGGREGATE_SQL = {"COUNT": "count", "SUM": "sum", "AVG": "avg", "MIN": "min", "MAX": "max"}


def aggregate(
    conn: sqlite3.Connection,
    table: str,
    condition: Condition | None,
    specs: list[tuple[str, str | None]],
) -> list:
    """Compute (function, attribute|None) aggregates over matching live records."""
    terms = []
    for func, attribute in specs:
        arg = "*" if attribute is None else _v(attribute)
        terms.append(f"{AGGREGATE_SQL[func]}({arg})")
    params: list = []
    sql = f"SELECT {', '.join(terms)} FROM {row_table(table)} WHERE {_where(condition, params)}"
    return list(conn.execute(sql, params).fetchone())
