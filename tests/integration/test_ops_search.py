"""search_by_id, search_by_value and search_by_conditions against a real agent."""

from __future__ import annotations

import pytest
from support import error_of, make_table

DOGS = [
    {"id": 1, "name": "Harper", "breed": "Mutt", "age": 5, "owner": "Kyle"},
    {"id": 2, "name": "Penny", "breed": "Husky", "age": 8},
    {"id": 3, "name": "Kato", "breed": "Mutt", "age": 2, "owner": "Kyle"},
    {"id": 4, "name": "Blake", "breed": "Labrador", "age": 11, "owner": "Zach"},
    {"id": 5, "name": "Gemma", "breed": "Mutt", "age": 8, "owner": "Stephen"},
    {"id": 6, "name": "Hound", "breed": "hush", "age": 0},
]


@pytest.fixture
def dogs(shared_agent, db):
    """A database holding `dog` with DOGS; returns its name."""
    make_table(shared_agent, db, "dog", records=DOGS)
    return db


def _search(agent, operation, db, **fields):
    return agent.op({"operation": operation, "database": db, "table": "dog", **fields})


def _ids(records):
    return [r["id"] for r in records]


def test_search_by_id_in_the_order_asked_and_missing_left_out(shared_agent, dogs):
    found = _search(shared_agent, "search_by_id", dogs, ids=[3, 99, 1], get_attributes=["*"])
    assert _ids(found) == [3, 1]


def test_search_by_id_get_attributes(shared_agent, dogs):
    found = _search(
        shared_agent, "search_by_id", dogs, ids=[2], get_attributes=["name", "owner", "never_seen"]
    )
    assert found == [{"name": "Penny", "owner": None, "never_seen": None}]


def test_search_by_id_star_returns_every_attribute_and_times(shared_agent, dogs):
    (penny,) = _search(shared_agent, "search_by_id", dogs, ids=[2], get_attributes=["*"])
    assert set(penny) == {
        "id",
        "name",
        "breed",
        "age",
        "owner",
        "__createdtime__",
        "__updatedtime__",
    }
    assert penny["owner"] is None  # absent, but the table has it
    (default,) = _search(shared_agent, "search_by_id", dogs, ids=[2])
    assert default == penny


def test_search_by_hash_and_hash_values_aliases(shared_agent, dogs):
    found = _search(shared_agent, "search_by_hash", dogs, hash_values=[4], get_attributes=["name"])
    assert found == [{"name": "Blake"}]


def test_search_by_id_schema_alias(shared_agent, dogs):
    found = shared_agent.op(
        {
            "operation": "search_by_id",
            "schema": dogs,
            "table": "dog",
            "ids": [1],
            "get_attributes": ["name"],
        }
    )
    assert found == [{"name": "Harper"}]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Mutt", [1, 3, 5]),
        ("*", [1, 2, 3, 4, 5, 6]),
        ("Hu*", [2]),
        ("*tt", [1, 3, 5]),
        ("*ab*", [4]),
        ("nothing", []),
    ],
)
def test_search_by_value_wildcards(shared_agent, dogs, value, expected):
    found = _search(
        shared_agent, "search_by_value", dogs, attribute="breed", value=value, get_attributes=["id"]
    )
    assert _ids(found) == expected


def test_search_by_value_on_numbers_is_type_strict(shared_agent, dogs):
    found = _search(
        shared_agent, "search_by_value", dogs, attribute="age", value=8, get_attributes=["id"]
    )
    assert _ids(found) == [2, 5]
    found = _search(
        shared_agent, "search_by_value", dogs, attribute="age", value="8", get_attributes=["id"]
    )
    assert found == []


def test_search_by_value_deprecated_aliases(shared_agent, dogs):
    found = _search(
        shared_agent,
        "search_by_value",
        dogs,
        search_attribute="owner",
        search_value="Kyle",
        get_attributes=["id"],
    )
    assert _ids(found) == [1, 3]


def test_search_by_value_unknown_attribute_is_400(shared_agent, dogs):
    body = {
        "operation": "search_by_value",
        "database": dogs,
        "table": "dog",
        "attribute": "nosuch",
        "value": "x",
    }
    error_of(shared_agent, body, 400, "unknown attribute 'nosuch'")


def test_search_by_value_sort_limit_offset(shared_agent, dogs):
    found = _search(
        shared_agent,
        "search_by_value",
        dogs,
        attribute="breed",
        value="*",
        get_attributes=["id"],
        sort={"attribute": "age", "descending": True},
        limit=3,
        offset=1,
    )
    assert _ids(found) == [2, 5, 1]


@pytest.mark.parametrize(
    "comparator, value, expected",
    [
        ("equals", "Mutt", [1, 3, 5]),
        ("not_equal", "Mutt", [2, 4, 6]),
        ("contains", "us", [2, 6]),
        ("starts_with", "Lab", [4]),
        ("ends_with", "ky", [2]),
    ],
)
def test_search_by_conditions_text_comparators(shared_agent, dogs, comparator, value, expected):
    conditions = [{"attribute": "breed", "comparator": comparator, "value": value}]
    found = _search(
        shared_agent, "search_by_conditions", dogs, conditions=conditions, get_attributes=["id"]
    )
    assert _ids(found) == expected


@pytest.mark.parametrize(
    "comparator, value, expected",
    [
        ("greater_than", 5, [2, 4, 5]),
        ("greater_than_equal", 5, [1, 2, 4, 5]),
        ("less_than", 5, [3, 6]),
        ("less_than_equal", 5, [1, 3, 6]),
        ("between", [2, 8], [1, 2, 3, 5]),
        ("equals", 0, [6]),
    ],
)
def test_search_by_conditions_ordered_comparators(shared_agent, dogs, comparator, value, expected):
    conditions = [{"attribute": "age", "comparator": comparator, "value": value}]
    found = _search(
        shared_agent, "search_by_conditions", dogs, conditions=conditions, get_attributes=["id"]
    )
    assert _ids(found) == expected


def test_search_by_conditions_search_type_alias(shared_agent, dogs):
    conditions = [{"search_attribute": "age", "search_type": "greater_than", "search_value": 8}]
    found = _search(
        shared_agent, "search_by_conditions", dogs, conditions=conditions, get_attributes=["id"]
    )
    assert _ids(found) == [4]


def test_search_by_conditions_and_or(shared_agent, dogs):
    conditions = [
        {"attribute": "breed", "comparator": "equals", "value": "Mutt"},
        {"attribute": "age", "comparator": "greater_than", "value": 4},
    ]
    both = _search(
        shared_agent, "search_by_conditions", dogs, conditions=conditions, get_attributes=["id"]
    )
    assert _ids(both) == [1, 5]
    either = _search(
        shared_agent,
        "search_by_conditions",
        dogs,
        operator="or",
        conditions=conditions,
        get_attributes=["id"],
    )
    assert _ids(either) == [1, 2, 3, 4, 5]


def test_search_by_conditions_nested_groups(shared_agent, dogs):
    conditions = [
        {"attribute": "age", "comparator": "less_than", "value": 9},
        {
            "operator": "or",
            "conditions": [
                {"attribute": "owner", "comparator": "equals", "value": "Stephen"},
                {"attribute": "name", "comparator": "starts_with", "value": "K"},
            ],
        },
    ]
    found = _search(
        shared_agent,
        "search_by_conditions",
        dogs,
        operator="and",
        conditions=conditions,
        get_attributes=["id"],
    )
    assert _ids(found) == [3, 5]


def test_search_by_conditions_sort_chain_limit_offset(shared_agent, dogs):
    conditions = [{"attribute": "age", "comparator": "greater_than_equal", "value": 0}]
    sort = {
        "attribute": "breed",
        "descending": False,
        "next": {"attribute": "age", "descending": True},
    }
    found = _search(
        shared_agent,
        "search_by_conditions",
        dogs,
        conditions=conditions,
        sort=sort,
        get_attributes=["id"],
    )
    # Husky, Labrador, Mutt (8, 5, 2), hush: SQLite compares text by code point.
    assert _ids(found) == [2, 4, 5, 1, 3, 6]
    page = _search(
        shared_agent,
        "search_by_conditions",
        dogs,
        conditions=conditions,
        sort=sort,
        limit=2,
        offset=2,
        get_attributes=["id"],
    )
    assert _ids(page) == [5, 1]


def test_search_by_conditions_returns_times(shared_agent, dogs):
    conditions = [{"attribute": "id", "comparator": "equals", "value": 1}]
    (harper,) = _search(shared_agent, "search_by_conditions", dogs, conditions=conditions)
    assert isinstance(harper["__createdtime__"], float)
    assert isinstance(harper["__updatedtime__"], float)


def test_search_sees_the_latest_writes(shared_agent, dogs):
    shared_agent.op(
        {
            "operation": "update",
            "database": dogs,
            "table": "dog",
            "records": [{"id": 6, "breed": "Mutt"}],
        }
    )
    shared_agent.op({"operation": "delete", "database": dogs, "table": "dog", "ids": [1]})
    found = _search(
        shared_agent,
        "search_by_value",
        dogs,
        attribute="breed",
        value="Mutt",
        get_attributes=["id"],
    )
    assert _ids(found) == [3, 5, 6]


def test_search_unknown_comparator_is_400(shared_agent, dogs):
    conditions = [{"attribute": "age", "comparator": "bogus", "value": 1}]
    body = {
        "operation": "search_by_conditions",
        "database": dogs,
        "table": "dog",
        "conditions": conditions,
    }
    error_of(shared_agent, body, 400, 'Unknown query comparator "bogus"')


@pytest.mark.parametrize(
    "fields, words",
    [
        ({}, ["'conditions'"]),
        ({"conditions": []}, ["'conditions'"]),
        ({"conditions": {"attribute": "age"}}, ["'conditions'"]),
        ({"conditions": [{"attribute": "age", "value": 1}]}, ["comparator"]),
        (
            {"conditions": [{"attribute": "age", "comparator": "between", "value": 3}]},
            ["between", "age"],
        ),
        (
            {
                "conditions": [{"attribute": "age", "comparator": "equals", "value": 1}],
                "operator": "xor",
            },
            ["operator", "xor"],
        ),
        (
            {"conditions": [{"attribute": "age", "comparator": "equals", "value": 1}], "limit": -1},
            ["'limit'"],
        ),
        (
            {
                "conditions": [{"attribute": "age", "comparator": "equals", "value": 1}],
                "offset": "2",
            },
            ["'offset'"],
        ),
        (
            {
                "conditions": [{"attribute": "age", "comparator": "equals", "value": 1}],
                "sort": "age",
            },
            ["'sort'"],
        ),
        (
            {
                "conditions": [{"attribute": "age", "comparator": "equals", "value": 1}],
                "get_attributes": 5,
            },
            ["'get_attributes'"],
        ),
    ],
)
def test_search_by_conditions_bad_requests_are_400(shared_agent, dogs, fields, words):
    body = {"operation": "search_by_conditions", "database": dogs, "table": "dog", **fields}
    error_of(shared_agent, body, 400, *words)


def test_search_by_id_without_ids_is_400(shared_agent, dogs):
    error_of(
        shared_agent,
        {"operation": "search_by_id", "database": dogs, "table": "dog"},
        400,
        "'ids' is required",
    )
    body = {"operation": "search_by_id", "database": dogs, "table": "dog", "ids": 1}
    error_of(shared_agent, body, 400, "'ids' must be an array")


def test_search_missing_table_or_database_is_404(shared_agent, dogs):
    for operation, extra in (
        ("search_by_id", {"ids": [1]}),
        ("search_by_value", {"attribute": "id", "value": 1}),
        (
            "search_by_conditions",
            {"conditions": [{"attribute": "id", "comparator": "equals", "value": 1}]},
        ),
    ):
        error_of(
            shared_agent,
            {"operation": operation, "database": dogs, "table": "cat", **extra},
            404,
            f"Table '{dogs}.cat' does not exist",
        )
        error_of(
            shared_agent,
            {"operation": operation, "database": f"{dogs}_no", "table": "dog", **extra},
            404,
            f"database '{dogs}_no' does not exist",
        )


@pytest.mark.parametrize("attribute", ["it's", "a.b", "a[0]", "$", "sp ace", "ünï"])
def test_odd_attribute_names_can_be_searched(shared_agent, db, attribute):
    make_table(shared_agent, db, "odd", records=[{"id": 1, attribute: "x"}, {"id": 2}])
    for operation, fields in (
        ("search_by_value", {"attribute": attribute, "value": "x"}),
        (
            "search_by_conditions",
            {"conditions": [{"attribute": attribute, "comparator": "equals", "value": "x"}]},
        ),
    ):
        found = shared_agent.op(
            {
                "operation": operation,
                "database": db,
                "table": "odd",
                "get_attributes": ["id", attribute],
                **fields,
            }
        )
        assert found == [{"id": 1, attribute: "x"}], operation


@pytest.mark.parametrize("attribute", ['we"ird', "back\\slash"])
def test_attribute_names_with_quotes_or_backslashes_can_be_searched(shared_agent, db, attribute):
    make_table(shared_agent, db, "odd", records=[{"id": 1, attribute: "x"}, {"id": 2}])
    found = shared_agent.op(
        {
            "operation": "search_by_value",
            "database": db,
            "table": "odd",
            "attribute": attribute,
            "value": "x",
            "get_attributes": ["id"],
        }
    )
    assert found == [{"id": 1}]
