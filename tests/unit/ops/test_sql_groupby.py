"""GROUP BY, aggregates and HAVING: what the parser builds, what it refuses, what SQLite answers.

Execution runs `query.grouped` on an in-memory SQLite table shaped like a stored one (pk, doc),
and a Hypothesis property holds it to a grouping computed here in Python.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ClientError
from agent.ops.sql import Column, OrderBy, Select, SqlError, parse
from agent.storage import query
from agent.storage.conditions import Aggregate, Compare, Group, Grouping, Measure, Not

COUNT = Aggregate("COUNT")
DOGS = [
    {"id": 1, "name": "Harper", "breed": "Mutt", "age": 5},
    {"id": 2, "name": "Penny", "breed": "Husky", "age": 8},
    {"id": 3, "name": "Kato", "breed": "Mutt", "age": 2},
    {"id": 4, "name": "Blake", "breed": "Labrador", "age": 11},
    {"id": 5, "name": "Rex", "breed": "Husky", "age": 3, "owner": "Ann"},
    {"id": 6, "name": "Ziggy", "age": 1},
]


def select(sql: str) -> Select:
    statement = parse(sql)
    assert isinstance(statement, Select)
    return statement


def refused(sql: str) -> str:
    with pytest.raises(SqlError) as caught:
        parse(sql)
    return caught.value.message


def table(records: list[dict]) -> sqlite3.Connection:
    """Return a connection holding `records` as the stored table dev.dog would."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE r_dog (pk PRIMARY KEY, doc, version, origin) WITHOUT ROWID")
    rows = [(r["id"], json.dumps(r), 1, "a") for r in records]
    conn.executemany("INSERT INTO r_dog VALUES (?, ?, ?, ?)", rows)
    conn.execute("INSERT INTO r_dog VALUES (99, NULL, 1, 'a')")  # a tombstone: never counted
    return conn


def run(sql: str, records: list[dict] = DOGS) -> list[dict]:
    """Parse and run a grouped select as the sql operation does; return its rows."""
    statement = select(sql)
    assert statement.grouped
    rows = query.grouped(
        table(records),
        "dog",
        statement.where,
        statement.grouping(),
        statement.limit,
        statement.offset,
    )
    names = [c.output_name for c in statement.columns]
    return [dict(zip(names, row, strict=True)) for row in rows]


# --- what the parser builds ----------------------------------------------------------------


def test_group_by_builds_keys_outputs_and_names_as_harperdb() -> None:
    statement = select("SELECT breed, COUNT(*) FROM dev.dog GROUP BY breed")
    assert statement.group_by == ("breed",)
    assert statement.columns == (Column("breed"), Column(None, None, "COUNT"))
    assert [c.output_name for c in statement.columns] == ["breed", "COUNT(*)"]
    assert statement.grouping() == Grouping(("breed",), ("breed", COUNT))


def test_having_and_order_by_read_aggregates_aliases_and_grouped_columns() -> None:
    statement = select(
        "SELECT d.breed AS b, COUNT(*) AS n, SUM(age) FROM dev.dog AS d WHERE age > 1 "
        "GROUP BY dog.breed, owner HAVING n > 1 AND NOT b = 'x' OR MAX(d.age) >= 10 "
        "ORDER BY n DESC, AVG(age), b LIMIT 5 OFFSET 1"
    )
    assert statement.group_by == ("breed", "owner")
    assert statement.having == Group(
        "or",
        (
            Group(
                "and",
                (Measure(COUNT, "greater_than", 1), Not(Compare("breed", "equals", "x"))),
            ),
            Measure(Aggregate("MAX", "age"), "greater_than_equal", 10),
        ),
    )
    assert statement.order_by == (
        OrderBy(None, True, "COUNT"),
        OrderBy("age", False, "AVG"),
        OrderBy("breed"),
    )
    assert (statement.limit, statement.offset) == (5, 1)
    assert statement.grouping().order == (
        (COUNT, True),
        (Aggregate("AVG", "age"), False),
        ("breed", False),
    )


def test_aggregates_without_group_by_form_one_group() -> None:
    statement = select("SELECT COUNT(*) AS n, MAX(age) FROM dev.dog HAVING COUNT(*) > 2")
    assert statement.grouped and statement.group_by == ()
    assert statement.having == Measure(COUNT, "greater_than", 2)


def test_a_plain_select_is_not_grouped_and_its_order_by_reads_aliases() -> None:
    statement = select("SELECT name AS n FROM dev.dog ORDER BY n DESC")
    assert not statement.grouped
    assert statement.order_by == (OrderBy("name", True),)


def test_having_tests_aggregates_with_every_comparator_form() -> None:
    having = select(
        "SELECT breed FROM dev.dog GROUP BY breed HAVING COUNT(*) BETWEEN 1 AND 3 "
        "AND SUM(age) IN (7, 11) AND MIN(name) LIKE 'K%' AND MAX(age) IS NOT NULL "
        "AND 2 < COUNT(name)"
    ).having
    assert having == Group(
        "and",
        (
            Measure(COUNT, "between", (1, 3)),
            Measure(Aggregate("SUM", "age"), "in", (7, 11)),
            Measure(Aggregate("MIN", "name"), "starts_with", "K"),
            Measure(Aggregate("MAX", "age"), "is_not_null", None),
            Measure(Aggregate("COUNT", "name"), "greater_than", 2),
        ),
    )


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT name, COUNT(*) FROM dev.dog", "column 'name' must appear in GROUP BY"),
        ("SELECT name, breed FROM dev.dog GROUP BY breed", "column 'name' must appear in GROUP"),
        ("SELECT breed FROM dev.dog GROUP BY breed ORDER BY age", "column 'age' must appear"),
        ("SELECT breed FROM dev.dog GROUP BY breed HAVING age > 1", "column 'age' must appear"),
        ("SELECT * FROM dev.dog GROUP BY breed", "GROUP BY is not supported with SELECT *"),
        ("SELECT *, COUNT(*) FROM dev.dog", "SELECT * cannot be mixed with aggregates"),
        ("SELECT name FROM dev.dog HAVING name = 'x'", "HAVING is not supported without GROUP"),
        ("SELECT COUNT(*) AS n FROM dev.dog GROUP BY n", "GROUP BY cannot use the aggregate"),
        ("SELECT name FROM dev.dog ORDER BY COUNT(*)", "COUNT() is supported only in the select"),
        ("SELECT COUNT(*) FROM dev.dog WHERE COUNT(*) > 1", "COUNT() is supported only"),
        ("SELECT breed FROM dev.dog GROUP BY breed HAVING COUNT(*) > MAX(age)", "two aggregates"),
        ("SELECT breed FROM dev.dog GROUP BY breed HAVING SUM(*) > 1", "SUM(*) needs a column"),
        ("SELECT breed FROM dev.dog GROUP BY LOWER(breed)", "function LOWER() is not supported"),
        ("SELECT breed FROM dev.dog GROUP BY cat.breed", "'cat' does not name the table"),
    ],
)
def test_grouping_errors_name_the_problem(sql: str, words: str) -> None:
    assert words in refused(sql)


# --- what SQLite answers -------------------------------------------------------------------


def test_count_per_group_in_key_order_and_missing_is_null() -> None:
    assert run("SELECT breed, COUNT(*) FROM dev.dog GROUP BY breed") == [
        {"breed": None, "COUNT(*)": 1},
        {"breed": "Husky", "COUNT(*)": 2},
        {"breed": "Labrador", "COUNT(*)": 1},
        {"breed": "Mutt", "COUNT(*)": 2},
    ]


def test_every_aggregate_with_aliases_having_order_and_paging() -> None:
    rows = run(
        "SELECT breed AS b, COUNT(*) AS n, COUNT(owner), SUM(age), AVG(age), MIN(name), "
        "MAX(age) AS oldest FROM dev.dog WHERE id < 6 GROUP BY breed HAVING n >= 1 "
        "ORDER BY n DESC, oldest DESC"
    )
    assert rows == [
        {
            "b": "Husky",
            "n": 2,
            "COUNT(owner)": 1,
            "SUM(age)": 11,
            "AVG(age)": 5.5,
            "MIN(name)": "Penny",
            "oldest": 8,
        },
        {
            "b": "Mutt",
            "n": 2,
            "COUNT(owner)": 0,
            "SUM(age)": 7,
            "AVG(age)": 3.5,
            "MIN(name)": "Harper",
            "oldest": 5,
        },
        {
            "b": "Labrador",
            "n": 1,
            "COUNT(owner)": 0,
            "SUM(age)": 11,
            "AVG(age)": 11.0,
            "MIN(name)": "Blake",
            "oldest": 11,
        },
    ]
    paged = run(
        "SELECT breed, COUNT(*) AS n FROM dev.dog WHERE id < 6 GROUP BY breed "
        "ORDER BY n DESC LIMIT 1 OFFSET 1"
    )
    assert paged == [{"breed": "Mutt", "n": 2}]


@pytest.mark.parametrize(
    ("having", "breeds"),
    [
        ("COUNT(*) > 1", ["Husky", "Mutt"]),
        ("n = 1", [None, "Labrador"]),
        ("SUM(age) BETWEEN 7 AND 10", ["Mutt"]),
        ("SUM(age) IN (1, 11)", [None, "Husky", "Labrador"]),
        ("MIN(name) LIKE 'H%'", ["Mutt"]),
        ("NOT COUNT(*) = 1", ["Husky", "Mutt"]),
        ("COUNT(owner) = 0 AND breed <> 'Mutt'", ["Labrador"]),
        ("breed = 'Mutt' OR MAX(age) > 10", ["Labrador", "Mutt"]),
        ("breed IS NULL", [None]),
        ("COUNT(*) = 'two'", []),  # a string never equals a number
    ],
)
def test_having_filters_groups(having: str, breeds: list) -> None:
    rows = run(f"SELECT breed, COUNT(*) AS n FROM dev.dog GROUP BY breed HAVING {having}")
    assert [r["breed"] for r in rows] == breeds


def test_without_group_by_one_row_even_when_nothing_matches() -> None:
    assert run("SELECT COUNT(*), SUM(age) FROM dev.dog WHERE age > 99") == [
        {"COUNT(*)": 0, "SUM(age)": None}
    ]
    assert run("SELECT COUNT(*) FROM dev.dog HAVING COUNT(*) > 99") == []
    assert run("SELECT breed, COUNT(*) FROM dev.dog WHERE age > 99 GROUP BY breed") == []


def test_several_keys_and_distinct() -> None:
    rows = run("SELECT breed, owner, COUNT(*) AS n FROM dev.dog GROUP BY breed, owner")
    assert [(r["breed"], r["owner"], r["n"]) for r in rows] == [
        (None, None, 1),
        ("Husky", None, 1),
        ("Husky", "Ann", 1),
        ("Labrador", None, 1),
        ("Mutt", None, 2),
    ]
    counts = run("SELECT DISTINCT COUNT(*) AS n FROM dev.dog GROUP BY breed ORDER BY n")
    assert counts == [{"n": 1}, {"n": 2}]


def test_group_keys_keep_their_json_types() -> None:
    records = [
        {"id": 1, "v": 1},
        {"id": 2, "v": 1.0},
        {"id": 3, "v": True},
        {"id": 4, "v": "1"},
        {"id": 5, "v": [1, 2]},
        {"id": 6, "v": {"a": 1}},
        {"id": 7, "v": None},
        {"id": 8},
        {"id": 9, "v": False},
        {"id": 10, "v": 0},
    ]
    rows = run("SELECT v, COUNT(*) AS n FROM dev.dog GROUP BY v", records)
    found = sorted((json.dumps(r["v"]), r["n"]) for r in rows)
    assert found == sorted(
        [
            ("1", 2),  # 1 and 1.0 are one number
            ("true", 1),
            ('"1"', 1),
            ("[1, 2]", 1),
            ('{"a": 1}', 1),
            ("null", 2),  # null and absent are both null
            ("false", 1),
            ("0", 1),
        ]
    )


def test_sum_and_avg_add_numbers_only() -> None:
    records = [
        {"id": 1, "v": 2},
        {"id": 2, "v": "40"},
        {"id": 3, "v": True},
        {"id": 4, "v": 0.5},
    ]
    assert run("SELECT SUM(v), AVG(v), COUNT(v) FROM dev.dog", records) == [
        {"SUM(v)": 2.5, "AVG(v)": 1.25, "COUNT(v)": 4}
    ]


def test_a_sum_beyond_64_bits_is_a_client_error() -> None:
    records = [{"id": 1, "v": 2**63 - 1}, {"id": 2, "v": 1}]
    with pytest.raises(ClientError, match="SUM overflows"):
        run("SELECT SUM(v) FROM dev.dog", records)


# --- the property --------------------------------------------------------------------------

KEYS = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([1.0, 2.5]), st.sampled_from("ab")
)
NUMBERS = st.one_of(st.none(), st.integers(-5, 5), st.sampled_from([0.5, "3", True]))
RECORDS = st.lists(
    st.fixed_dictionaries({}, optional={"k": KEYS, "x": NUMBERS}), min_size=0, max_size=15
)


def _kind(value: Any) -> tuple:
    """Return the group a value falls in: bools apart from numbers, 1 with 1.0."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    return (type(value).__name__, value)


def _expected(records: list[dict]) -> dict[tuple, tuple]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        groups[_kind(record.get("k"))].append(record)
    out = {}
    for key, members in groups.items():
        xs = [r.get("x") for r in members]
        numbers = [x for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool)]
        total = sum(numbers) if numbers else None
        out[key] = (len(members), sum(x is not None for x in xs), total)
    return out


@settings(derandomize=True, database=None, deadline=None, max_examples=200)
@given(RECORDS)
def test_grouping_agrees_with_python(records: list[dict]) -> None:
    stored = [{**r, "id": n} for n, r in enumerate(records)]
    rows = run("SELECT k, COUNT(*), COUNT(x), SUM(x) FROM dev.dog GROUP BY k", stored)
    found = {_kind(r["k"]): (r["COUNT(*)"], r["COUNT(x)"], r["SUM(x)"]) for r in rows}
    assert found == _expected(stored)
    assert len(rows) == len(found)
