"""Compile search conditions to SQLite over JSON documents, and run searches.

Attributes are read with json_extract; json_type keeps comparisons type-strict (a string never
equals a number, booleans are not 0/1), matching `agent.storage.conditions.matches`.

Large trees stay within SQLite's limits: equality tests OR'ed on one attribute merge into one
`in`, an `in` list travels as one JSON parameter read back with json_each (never one parameter
per value), and long AND/OR chains are parenthesised as a shallow tree (SQLite refuses
expressions deeper than 1,000). What is left may hold at most MAX_CONDITIONS tests.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from agent import jsonx
from agent.errors import ClientError
from agent.jsonx import INT64_MAX
from agent.storage.catalog import row_table
from agent.storage.conditions import (
    Aggregate,
    Compare,
    Condition,
    Group,
    Grouping,
    Measure,
    Not,
    Term,
)

# Tests one compiled search may hold after merging equalities into `in`: each binds at most
# three parameters, which keeps a search under SQLite's smallest default of 32,766.
MAX_CONDITIONS = 10_000
# Terms joined flat in one pair of parentheses; longer chains nest (depth log_8 of length).
_FANOUT = 8

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
class _Operand:
    """What a test compares: SQL for its value and for its JSON type name."""

    value: str
    type: str


def _attribute(attribute: str) -> _Operand:
    return _Operand(_v(attribute), _t(attribute))


def _measured(aggregate: Aggregate) -> _Operand:
    # typeof() names integer, real, text and null as json_type does, which _typed relies on.
    expr = aggregate_sql(aggregate)
    return _Operand(expr, f"typeof({expr})")


@dataclass(frozen=True)
class Sort:
    attribute: str
    descending: bool = False


def compile_condition(condition: Condition | Measure, params: list, negated: bool = False) -> str:
    """Return a SQL boolean expression for `condition`, appending its parameters.

    NOT is pushed down to the tests (De Morgan), and a group's nested groups come before its
    tests: SQLite's parser stack (100 entries) overflows on about 30 nested NOT(...) or right-
    nested parentheses, but holds the 64 levels SQL allows when each level opens leftmost.
    """
    if isinstance(condition, Not):
        return compile_condition(condition.condition, params, not negated)
    if isinstance(condition, Group):
        parts = _merge_equalities(condition.conditions) if condition.operator == "or" else None
        parts = sorted(parts or condition.conditions, key=_depth, reverse=True)
        conjunction = (condition.operator == "and") != negated
        terms = [compile_condition(c, params, negated) for c in parts]
        return _chain(" AND " if conjunction else " OR ", terms)
    if isinstance(condition, Measure):
        test = Compare(condition.aggregate.label, condition.comparator, condition.value)
        sql = _compare(_measured(condition.aggregate), test, params)
    else:
        sql = _compare(_attribute(condition.attribute), condition, params)
    # A test on a missing attribute is NULL, not false, and NOT NULL is NULL again: fold it
    # to false first so NOT means "does not match", as in conditions.matches.
    return f"NOT coalesce({sql}, 0)" if negated else sql


def _depth(condition: Condition | Measure) -> int:
    """Return how many groups nest in a condition (NOT adds none: it is pushed down)."""
    if isinstance(condition, Not):
        return _depth(condition.condition)
    if isinstance(condition, Group):
        return 1 + max(_depth(c) for c in condition.conditions)
    return 0


def _chain(joiner: str, terms: list[str]) -> str:
    """Join terms in nested parentheses of at most _FANOUT, so depth grows as log(length)."""
    while len(terms) > _FANOUT:
        terms = [
            "(" + joiner.join(terms[i : i + _FANOUT]) + ")" for i in range(0, len(terms), _FANOUT)
        ]
    return "(" + joiner.join(terms) + ")"


def _merge_equalities(conditions: tuple) -> list:
    """Return OR'ed conditions with every equals/in on one attribute merged into one `in`."""
    values: dict[str, list] = {}
    rest: list = []
    for c in conditions:
        if isinstance(c, Compare) and c.comparator in ("equals", "in"):
            values.setdefault(c.attribute, []).extend(
                c.value if c.comparator == "in" else [c.value]
            )
        else:
            rest.append(c)
    return [Compare(a, "in", tuple(v)) for a, v in values.items()] + rest


def count_tests(condition: Condition | Measure | None) -> int:
    """Count the tests a condition compiles to, after merging equalities into `in`."""
    if condition is None:
        return 0
    if isinstance(condition, Not):
        return count_tests(condition.condition)
    if isinstance(condition, Group):
        parts = _merge_equalities(condition.conditions) if condition.operator == "or" else None
        return sum(count_tests(c) for c in parts or condition.conditions)
    return 1


def check_size(condition: Condition | Measure | None) -> None:
    """Refuse a condition tree with more than MAX_CONDITIONS tests (400, not SQLite's 500)."""
    tests = count_tests(condition)
    if tests > MAX_CONDITIONS:
        raise ClientError(
            f"a search may hold at most {MAX_CONDITIONS} conditions, got {tests} "
            "(equality tests OR'ed on one attribute count as one: use 'in' for long lists)"
        )


def _typed(o: _Operand, value: Any, params: list) -> str:
    """Return SQL testing that the operand has `value`'s JSON type and equals it."""
    if value is None:
        return f"{o.type} = 'null'"
    if isinstance(value, bool):
        return f"{o.type} = '{'true' if value else 'false'}'"
    if isinstance(value, (int, float)):
        params.append(value)
        return f"({o.type} IN {NUMERIC} AND {o.value} = ?)"
    if isinstance(value, str):
        params.append(value)
        return f"({o.type} = 'text' AND {o.value} = ?)"
    raise ClientError(f"cannot compare with {type(value).__name__} value {value!r:.60}")


def _in(o: _Operand, values: tuple, params: list) -> str:
    """Return SQL testing membership, binding each kind's values as one JSON list."""
    numbers, texts, parts = [], [], []
    for value in (v for v in values if v is not None):
        if isinstance(value, bool) or (isinstance(value, str) and "\0" in value):
            # SQLite's JSON reader ends a string at NUL: such a value is bound on its own.
            parts.append(_typed(o, value, params))
        elif isinstance(value, (int, float)):
            numbers.append(value)
        elif isinstance(value, str):
            texts.append(value)
        else:
            _typed(o, value, params)  # raises: an object or array is never equal
    for kind, listed in ((NUMERIC, numbers), ("('text')", texts)):
        if listed:
            params.append(jsonx.dumps(listed).decode())
            parts.append(f"({o.type} IN {kind} AND {o.value} IN (SELECT value FROM json_each(?)))")
    return _chain(" OR ", parts) if parts else "0"


def _ordered(o: _Operand, op: str, value: Any, params: list) -> str:
    if isinstance(value, bool):
        params.append(int(value))
        kind = "('true','false')"
        expr = f"({o.type} = 'true')"
    elif isinstance(value, (int, float)):
        params.append(value)
        kind, expr = NUMERIC, o.value
    elif isinstance(value, str):
        params.append(value)
        kind, expr = "('text')", o.value
    else:
        raise ClientError(f"cannot order by {type(value).__name__} value {value!r:.60}")
    return f"({o.type} IN {kind} AND {expr} {op} ?)"


def _text(o: _Operand, comparator: str, value: Any, params: list) -> str:
    needle = str(value)
    text = o.value
    guard = f"{o.type} = 'text'"
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


def _compare(o: _Operand, c: Compare, params: list) -> str:
    name = c.comparator
    if name == "is_null":
        return f"{o.value} IS NULL"
    if name == "is_not_null":
        return f"{o.value} IS NOT NULL"
    if name == "equals":
        return _typed(o, c.value, params) if c.value is not None else "0"
    if name == "not_equal":
        inner = _typed(o, c.value, params) if c.value is not None else "0"
        return f"({o.value} IS NOT NULL AND NOT {inner})"
    if name == "in":
        return _in(o, c.value, params)
    if name == "between":
        lo = _ordered(o, ">=", c.value[0], params)
        hi = _ordered(o, "<=", c.value[1], params)
        return f"({lo} AND {hi})"
    if name in _ORDER_OPS:
        return _ordered(o, _ORDER_OPS[name], c.value, params)
    return _text(o, name, c.value, params)


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
    sql += _paging(limit, offset, params)
    return [row[0] for row in conn.execute(sql, params)]


def _paging(limit: int | None, offset: int | None, params: list) -> str:
    """Return a LIMIT/OFFSET clause, refusing values SQLite cannot take (400 naming them)."""
    for name, value in (("limit", limit), ("offset", offset)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
            raise ClientError(
                f"'{name}' must be an integer from 0 to {INT64_MAX}, got {str(value)[:40]}"
            )
    if limit is None and not offset:
        return ""
    params.extend([-1 if limit is None else limit, offset or 0])
    return " LIMIT ? OFFSET ?"


def count(conn: sqlite3.Connection, table: str, condition: Condition | None) -> int:
    """Count live records matching `condition`."""
    params: list = []
    where = _where(condition, params)
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
        check_size(condition)
        where += " AND " + compile_condition(condition, params)
    return where


def keys(conn: sqlite3.Connection, table: str, condition: Condition | None) -> list:
    """Return the primary keys of live records matching `condition`."""
    params: list = []
    sql = f"SELECT pk FROM {row_table(table)} WHERE {_where(condition, params)} ORDER BY pk"
    return [row[0] for row in conn.execute(sql, params)]


# --- aggregates and GROUP BY -------------------------------------------------------------

AGGREGATE_SQL = {"COUNT": "count", "SUM": "sum", "AVG": "avg", "MIN": "min", "MAX": "max"}


def aggregate_sql(aggregate: Aggregate) -> str:
    """Return SQL computing an aggregate over a group's documents.

    SUM and AVG add JSON numbers only (a string or boolean is skipped, never read as 0/1).
    """
    function, attribute = AGGREGATE_SQL[aggregate.function], aggregate.attribute
    if attribute is None:
        return f"{function}(*)"
    if function in ("sum", "avg"):
        return f"{function}(CASE WHEN {_t(attribute)} IN {NUMERIC} THEN {_v(attribute)} END)"
    return f"{function}({_v(attribute)})"


def _kind(attribute: str) -> str:
    """Return SQL for a grouped value's kind: null and absent are one, as are 1 and 1.0."""
    t = _t(attribute)
    return f"(CASE {t} WHEN 'real' THEN 'integer' WHEN 'null' THEN NULL ELSE {t} END)"


def _decode(kind: str | None, value: Any) -> Any:
    """Turn json_type and json_extract of a grouped attribute back into its JSON value."""
    if kind in ("true", "false"):
        return kind == "true"
    if kind in ("object", "array"):
        return jsonx.loads(value)
    return value


def _term_sql(term: Term) -> str:
    return aggregate_sql(term) if isinstance(term, Aggregate) else _v(term)


def grouped(
    conn: sqlite3.Connection,
    table: str,
    condition: Condition | None,
    grouping: Grouping,
    limit: int | None = None,
    offset: int | None = None,
) -> list[list]:
    """Run an aggregate query; return one list of output values per group, in order.

    Without keys the whole match is one group, so one row comes back even when nothing
    matched. Groups come sorted by `grouping.order`, then by their keys.
    """
    columns = []
    for term in grouping.outputs:
        columns += [aggregate_sql(term)] if isinstance(term, Aggregate) else [_t(term), _v(term)]
    params: list = []
    distinct = "DISTINCT " if grouping.distinct else ""
    sql = f"SELECT {distinct}{', '.join(columns)} FROM {row_table(table)}"
    sql += f" WHERE {_where(condition, params)}"
    if grouping.keys:
        sql += " GROUP BY " + ", ".join(f"{_kind(k)}, {_v(k)}" for k in grouping.keys)
    if grouping.having is not None:
        check_size(grouping.having)
        sql += " HAVING " + compile_condition(grouping.having, params)
    order = [f"{_term_sql(t)}{' DESC' if d else ''}" for t, d in grouping.order]
    order += [_v(k) for k in grouping.keys]
    if order:
        sql += " ORDER BY " + ", ".join(order)
    sql += _paging(limit, offset, params)
    try:
        rows = conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as error:
        if "integer overflow" not in str(error):
            raise
        raise ClientError("SUM overflows a 64-bit integer") from None
    return [_row(grouping.outputs, row) for row in rows]


def _row(outputs: tuple[Term, ...], row: tuple) -> list:
    values, index = [], 0
    for term in outputs:
        if isinstance(term, Aggregate):
            values.append(row[index])
            index += 1
        else:
            values.append(_decode(row[index], row[index + 1]))
            index += 2
    return values


def aggregate(
    conn: sqlite3.Connection,
    table: str,
    condition: Condition | None,
    specs: list[tuple[str, str | None]],
) -> list:
    """Compute (function, attribute|None) aggregates over matching live records."""
    outputs = tuple(Aggregate(function, attribute) for function, attribute in specs)
    (row,) = grouped(conn, table, condition, Grouping((), outputs))
    return row
