"""The `sql` operation (SELECT/INSERT/UPDATE/DELETE subset) against a real agent."""

from __future__ import annotations

import pytest
from support import error_of, make_table

DOGS = [
    {"id": 1, "name": "Harper", "breed": "Mutt", "age": 5},
    {"id": 2, "name": "Penny", "breed": "Husky", "age": 8},
    {"id": 3, "name": "Kato", "breed": "Mutt", "age": 2},
    {"id": 4, "name": "Blake", "breed": "Labrador", "age": 11},
]


@pytest.fixture
def dogs(shared_agent, db):
    make_table(shared_agent, db, "dog", records=DOGS)
    return db


def sql(agent, text):
    return agent.op({"operation": "sql", "sql": text})


def test_select_star(shared_agent, dogs):
    rows = sql(shared_agent, f"SELECT * FROM {dogs}.dog ORDER BY id")
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) == {"id", "name", "breed", "age", "__createdtime__", "__updatedtime__"}


def test_select_columns_where_order_limit(shared_agent, dogs):
    rows = sql(
        shared_agent,
        f"SELECT id, name AS dog_name FROM {dogs}.dog "
        "WHERE breed = 'Mutt' OR age > 10 ORDER BY age DESC LIMIT 2",
    )
    assert rows == [{"id": 4, "dog_name": "Blake"}, {"id": 1, "dog_name": "Harper"}]
    rows = sql(shared_agent, f"SELECT id FROM {dogs}.dog ORDER BY id LIMIT 2 OFFSET 1")
    assert rows == [{"id": 2}, {"id": 3}]


@pytest.mark.parametrize(
    "where, expected",
    [
        ("age BETWEEN 3 AND 8", [1, 2]),
        ("breed IN ('Husky', 'Labrador')", [2, 4]),
        ("name LIKE 'K%'", [3]),
        ("NOT breed = 'Mutt'", [2, 4]),
        ("breed <> 'Mutt' AND age < 10", [2]),
        ("owner IS NULL", [1, 2, 3, 4]),
        ("id = 3", [3]),
    ],
)
def test_select_where_forms(shared_agent, dogs, where, expected):
    rows = sql(shared_agent, f"SELECT id FROM {dogs}.dog WHERE {where} ORDER BY id")
    assert [r["id"] for r in rows] == expected


def test_select_aggregates(shared_agent, dogs):
    (row,) = sql(
        shared_agent,
        f"SELECT COUNT(*) AS n, MAX(age), MIN(age), SUM(age) FROM {dogs}.dog WHERE breed = 'Mutt'",
    )
    assert row == {"n": 2, "MAX(age)": 5, "MIN(age)": 2, "SUM(age)": 7}


def test_select_distinct(shared_agent, dogs):
    rows = sql(shared_agent, f"SELECT DISTINCT breed FROM {dogs}.dog ORDER BY breed")
    assert rows == [{"breed": "Husky"}, {"breed": "Labrador"}, {"breed": "Mutt"}]


def test_select_with_alias_and_quoted_names(shared_agent, dogs):
    rows = sql(shared_agent, f'SELECT d.name FROM "{dogs}"."dog" AS d WHERE d.id = 2')
    assert rows == [{"name": "Penny"}]


def test_insert(shared_agent, dogs):
    answer = sql(
        shared_agent,
        f"INSERT INTO {dogs}.dog (id, name, age) VALUES (10, 'Rex', 3), (11, 'Max', 4)",
    )
    assert answer == {
        "message": "inserted 2 of 2 records",
        "inserted_hashes": [10, 11],
        "skipped_hashes": [],
    }
    rows = sql(shared_agent, f"SELECT name FROM {dogs}.dog WHERE id >= 10 ORDER BY id")
    assert rows == [{"name": "Rex"}, {"name": "Max"}]
    again = sql(shared_agent, f"INSERT INTO {dogs}.dog (id, name) VALUES (10, 'dup')")
    assert again["skipped_hashes"] == [10]


def test_update_with_where(shared_agent, dogs):
    answer = sql(
        shared_agent, f"UPDATE {dogs}.dog SET breed = 'Mixed', good = true WHERE breed = 'Mutt'"
    )
    assert answer == {
        "message": "updated 2 of 2 records",
        "update_hashes": [1, 3],
        "skipped_hashes": [],
    }
    rows = sql(shared_agent, f"SELECT id, breed, good FROM {dogs}.dog ORDER BY id")
    assert rows[0] == {"id": 1, "breed": "Mixed", "good": True}
    assert rows[1] == {"id": 2, "breed": "Husky", "good": None}
    none = sql(shared_agent, f"UPDATE {dogs}.dog SET age = 1 WHERE id = 99")
    assert none["message"] == "updated 0 of 0 records"


def test_update_of_the_primary_key_is_refused(shared_agent, dogs):
    body = {"operation": "sql", "sql": f"UPDATE {dogs}.dog SET id = 5 WHERE id = 1"}
    error_of(shared_agent, body, 400, "primary key 'id'")


def test_delete(shared_agent, dogs):
    answer = sql(shared_agent, f"DELETE FROM {dogs}.dog WHERE id = 1")
    assert answer == {
        "message": "1 of 1 record successfully deleted",
        "deleted_hashes": [1],
        "skipped_hashes": [],
    }
    answer = sql(shared_agent, f"DELETE FROM {dogs}.dog WHERE age > 5")
    assert answer["deleted_hashes"] == [2, 4]
    assert [r["id"] for r in sql(shared_agent, f"SELECT id FROM {dogs}.dog")] == [3]
    answer = sql(shared_agent, f"DELETE FROM {dogs}.dog")
    assert answer["deleted_hashes"] == [3]
    assert sql(shared_agent, f"SELECT * FROM {dogs}.dog") == []


def test_sql_and_json_operations_see_the_same_data(shared_agent, dogs):
    sql(shared_agent, f"INSERT INTO {dogs}.dog (id, name) VALUES ('s1', 'from sql')")
    found = shared_agent.op(
        {
            "operation": "search_by_id",
            "database": dogs,
            "table": "dog",
            "ids": ["s1"],
            "get_attributes": ["name"],
        }
    )
    assert found == [{"name": "from sql"}]


def test_missing_table_or_database_is_404(shared_agent, dogs):
    error_of(
        shared_agent,
        {"operation": "sql", "sql": f"SELECT * FROM {dogs}.cat"},
        404,
        f"Table '{dogs}.cat' does not exist",
    )
    error_of(
        shared_agent,
        {"operation": "sql", "sql": f"DELETE FROM {dogs}_no.dog"},
        404,
        f"database '{dogs}_no' does not exist",
    )


@pytest.mark.parametrize(
    "text, words",
    [
        ("SELEC * FROM d.t", ["position 1"]),
        ("SELECT * FROM {db}.dog WHERE", ["position"]),
        ("SELECT * FROM dog", ["database.table"]),
        ("SELECT * FROM {db}.dog JOIN {db}.cat ON x = y", ["position"]),
        ("SELECT * FROM {db}.dog; DELETE FROM {db}.dog", ["multiple statements"]),
        ("SELECT name, COUNT(*) FROM {db}.dog", ["GROUP BY"]),
        ("", ["sql is empty"]),
    ],
)
def test_bad_sql_is_400(shared_agent, dogs, text, words):
    error_of(shared_agent, {"operation": "sql", "sql": text.format(db=dogs)}, 400, *words)
    rows = sql(shared_agent, f"SELECT COUNT(*) AS n FROM {dogs}.dog")
    assert rows == [{"n": 4}]


def test_sql_field_missing_or_not_a_string_is_400(shared_agent):
    error_of(shared_agent, {"operation": "sql"}, 400, "'sql' is required")
    error_of(shared_agent, {"operation": "sql", "sql": ["SELECT 1"]}, 400, "'sql' must be a string")
