"""GROUP BY/HAVING in `sql`, and searches too big or numbers too large for SQLite, on a real agent.

Before: GROUP BY answered 400; 2,000 OR'ed conditions or 40,000 `in` values answered 500
"Expression tree is too large"; a limit, offset or value of 2**63 answered 500 OverflowError.
"""

from __future__ import annotations

import pytest
from support import error_of, make_table

DOGS = [
    {"id": 1, "name": "Harper", "breed": "Mutt", "age": 5},
    {"id": 2, "name": "Penny", "breed": "Husky", "age": 8},
    {"id": 3, "name": "Kato", "breed": "Mutt", "age": 2},
    {"id": 4, "name": "Blake", "breed": "Labrador", "age": 11},
    {"id": 5, "name": "Rex", "breed": "Husky", "age": 3},
    {"id": 6, "name": "Ziggy", "breed": "Mutt", "age": 9},
]
ROWS = 300
BIG = 2**63


@pytest.fixture
def dogs(shared_agent, db):
    make_table(shared_agent, db, "dog", records=DOGS)
    return db


@pytest.fixture
def many(shared_agent, db):
    records = [{"id": n, "n": n, "s": f"s{n}"} for n in range(ROWS)]
    make_table(shared_agent, db, "many", records=records)
    return db


def sql(agent, text):
    return agent.op({"operation": "sql", "sql": text})


def search(agent, database, conditions, operator="or", **extra):
    body = {
        "operation": "search_by_conditions",
        "database": database,
        "table": "many",
        "operator": operator,
        "conditions": conditions,
        "get_attributes": ["id"],
        **extra,
    }
    return sorted(r["id"] for r in agent.op(body))


# --- GROUP BY ------------------------------------------------------------------------------


def test_group_by_counts_per_breed_as_harperdb_names_them(shared_agent, dogs):
    rows = sql(shared_agent, f"SELECT breed, COUNT(*) FROM {dogs}.dog GROUP BY breed")
    assert rows == [
        {"breed": "Husky", "COUNT(*)": 2},
        {"breed": "Labrador", "COUNT(*)": 1},
        {"breed": "Mutt", "COUNT(*)": 3},
    ]


def test_aggregates_aliases_having_order_and_paging(shared_agent, dogs):
    rows = sql(
        shared_agent,
        f"SELECT breed AS b, COUNT(*) AS n, SUM(age), AVG(age) AS mean, MIN(name), MAX(age) "
        f"FROM {dogs}.dog WHERE id > 0 GROUP BY breed HAVING COUNT(*) > 1 ORDER BY n DESC",
    )
    assert rows == [
        {"b": "Mutt", "n": 3, "SUM(age)": 16, "mean": 16 / 3, "MIN(name)": "Harper", "MAX(age)": 9},
        {"b": "Husky", "n": 2, "SUM(age)": 11, "mean": 5.5, "MIN(name)": "Penny", "MAX(age)": 8},
    ]
    paged = sql(
        shared_agent,
        f"SELECT breed, MAX(age) AS oldest FROM {dogs}.dog GROUP BY breed "
        "ORDER BY oldest DESC LIMIT 2 OFFSET 1",
    )
    assert paged == [{"breed": "Mutt", "oldest": 9}, {"breed": "Husky", "oldest": 8}]
    having = sql(
        shared_agent,
        f"SELECT breed FROM {dogs}.dog GROUP BY breed HAVING SUM(age) < 12 OR breed = 'Mutt'",
    )
    assert having == [{"breed": "Husky"}, {"breed": "Labrador"}, {"breed": "Mutt"}]


def test_a_column_neither_grouped_nor_aggregated_is_400(shared_agent, dogs):
    body = {"operation": "sql", "sql": f"SELECT name, COUNT(*) FROM {dogs}.dog GROUP BY breed"}
    error_of(shared_agent, body, 400, "column 'name' must appear in GROUP BY")


# --- big searches ------------------------------------------------------------------------


def test_two_thousand_ored_conditions_return_their_rows(shared_agent, many):
    equal = [{"attribute": "n", "comparator": "equals", "value": v} for v in range(0, 4000, 2)]
    assert search(shared_agent, many, equal) == list(range(0, ROWS, 2))
    ranges = [
        {"attribute": "n", "comparator": "between", "value": [v, v]} for v in range(1, 4001, 2)
    ]
    assert search(shared_agent, many, ranges) == list(range(1, ROWS, 2))
    where = " OR ".join(f"n = {v}" for v in range(2000, 4000)) + " OR n < 3 OR s = 's7'"
    rows = sql(shared_agent, f"SELECT id FROM {many}.many WHERE {where} ORDER BY id")
    assert rows == [{"id": 0}, {"id": 1}, {"id": 2}, {"id": 7}]
    ranges = " OR ".join(f"n BETWEEN {v} AND {v}" for v in range(5, 4005, 2))
    rows = sql(shared_agent, f"SELECT COUNT(*) AS n FROM {many}.many WHERE {ranges}")
    assert rows == [{"n": len(range(5, ROWS, 2))}]


def test_forty_thousand_in_values_return_their_rows(shared_agent, many):
    values = list(range(-40_000, 0)) + [10, 20, "30"]
    condition = [{"attribute": "n", "comparator": "in", "value": values}]
    assert search(shared_agent, many, condition) == [10, 20]
    listed = ", ".join(f"'s{v}'" for v in range(ROWS - 3, ROWS - 3 + 40_000))
    rows = sql(shared_agent, f"SELECT id FROM {many}.many WHERE s IN ({listed}) ORDER BY id")
    assert rows == [{"id": n} for n in range(ROWS - 3, ROWS)]


def test_more_than_the_documented_number_of_conditions_is_400(shared_agent, many):
    conditions = [{"attribute": "n", "comparator": "less_than", "value": -v} for v in range(10_001)]
    body = {
        "operation": "search_by_conditions",
        "database": many,
        "table": "many",
        "operator": "or",
        "conditions": conditions,
    }
    error_of(shared_agent, body, 400, "at most 10000 conditions")


# --- numbers out of range ----------------------------------------------------------------


@pytest.mark.parametrize("field", ["limit", "offset"])
@pytest.mark.parametrize("value", [BIG, -1])
def test_limit_and_offset_out_of_range_are_400_naming_them(shared_agent, many, field, value):
    condition = [{"attribute": "n", "comparator": "greater_than", "value": 1}]
    body = {
        "operation": "search_by_conditions",
        "database": many,
        "table": "many",
        "conditions": condition,
        field: value,
    }
    message = error_of(shared_agent, body, 400)
    assert field in message or str(BIG) in message, message
    by_value = {
        "operation": "search_by_value",
        "database": many,
        "table": "many",
        "search_attribute": "n",
        "search_value": 1,
        field: value,
    }
    message = error_of(shared_agent, by_value, 400)
    assert field in message or str(BIG) in message, message
    keyword = field.upper()
    literal = "-1" if value == -1 else str(value)
    body = {"operation": "sql", "sql": f"SELECT id FROM {many}.many {keyword} {literal}"}
    error_of(shared_agent, body, 400, keyword)


def test_a_search_value_of_2_63_is_400(shared_agent, many):
    body = {
        "operation": "search_by_conditions",
        "database": many,
        "table": "many",
        "conditions": [{"attribute": "n", "comparator": "equals", "value": BIG}],
    }
    message = error_of(shared_agent, body, 400)
    assert "64-bit" in message or str(BIG) in message, message
    body = {"operation": "sql", "sql": f"SELECT id FROM {many}.many WHERE n = {BIG}"}
    error_of(shared_agent, body, 400, "64-bit integer")


@pytest.mark.parametrize("literal", [str(BIG), str(-BIG - 1), "1e400"])
def test_sql_insert_of_a_number_sqlite_cannot_hold_is_400_and_stores_nothing(
    shared_agent, many, literal
):
    body = {"operation": "sql", "sql": f"INSERT INTO {many}.many (id, n) VALUES (9999, {literal})"}
    error_of(shared_agent, body, 400, "position")
    assert sql(shared_agent, f"SELECT id FROM {many}.many WHERE id = 9999") == []
    sql(shared_agent, f"INSERT INTO {many}.many (id, n) VALUES (9999, {-BIG})")
    rows = sql(shared_agent, f"SELECT n FROM {many}.many WHERE id = 9999")
    assert rows == [{"n": -BIG}]
    sql(shared_agent, f"DELETE FROM {many}.many WHERE id = 9999")
