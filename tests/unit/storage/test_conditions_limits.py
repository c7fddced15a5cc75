"""Big condition trees stay within SQLite's limits, and numbers out of its range are refused.

SQLite refuses expressions deeper than 1,000 and more parameters than its variable limit, both
as a 500 ("Expression tree is too large"); these tests hold the compiler to answering such
searches, or refusing them as a ClientError past MAX_CONDITIONS.
"""

from __future__ import annotations

import math

import pytest

from agent import jsonx
from agent.errors import ClientError
from agent.storage import query
from agent.storage.conditions import Compare, Group, Not, compare, matches, parse_conditions
from agent.storage.query import MAX_CONDITIONS, Sort

ROWS = 500


@pytest.fixture
def many(kit, db):
    """A table of ROWS records with a number, a text and a few odd values; return a reader."""
    table = kit.table(db, "many").name
    records = [
        {"id": n, "n": n, "s": f"s{n}", "f": n / 4, "b": n % 3 == 0, "z": [n] if n % 7 else None}
        for n in range(ROWS)
    ]
    kit.insert(db, table, *records)

    def search(condition, *args):
        found = db.read_sync(query.search, table, condition, *args)
        return sorted(jsonx.loads(doc)["id"] for doc in found)

    search.records = records
    return search


def expected(many, condition) -> list:
    return sorted(r["id"] for r in many.records if matches(condition, r))


def ors(items: list[dict]):
    return parse_conditions(items, "or")


def test_two_thousand_ored_equalities_return_their_rows(many):
    condition = ors([{"attribute": "n", "comparator": "equals", "value": v} for v in range(2000)])
    assert many(condition) == list(range(ROWS))
    odd = ors(
        [{"attribute": "s", "comparator": "equals", "value": f"s{v}"} for v in range(1, 2001, 2)]
    )
    assert many(odd) == list(range(1, ROWS, 2))


def test_two_thousand_ored_ranges_on_several_attributes_return_their_rows(many):
    items = []
    for v in range(2000):
        attribute, comparator = ("n", "greater_than") if v % 2 else ("f", "less_than")
        items.append({"attribute": attribute, "comparator": comparator, "value": v + 400})
    condition = ors(items)
    assert many(condition) == expected(many, condition) == list(range(ROWS))
    mixed = ors(
        [{"attribute": "n", "comparator": "between", "value": [v, v]} for v in range(0, 4000, 9)]
        + [{"attribute": "s", "comparator": "starts_with", "value": f"s{v}"} for v in range(1500)]
    )
    assert many(mixed) == expected(many, mixed)


def test_two_thousand_anded_conditions(many):
    anded = parse_conditions(
        [{"attribute": "n", "comparator": "less_than", "value": ROWS + v} for v in range(2000)]
    )
    assert many(anded) == list(range(ROWS))


def _nested(levels: int, negate: bool, leaf_first: bool):
    """Return groups nested `levels` deep, alternating and/or, each with a test beside it."""
    tree = Compare("n", "less_than", 10)
    for level in range(levels):
        operator = "or" if level % 2 else "and"
        test = Compare("n", "greater_than" if operator == "and" else "equals", level % 5)
        inner = Not(tree) if negate else tree
        tree = Group(operator, (test, inner) if leaf_first else (inner, test))
    return tree


@pytest.mark.parametrize("negate", [False, True])
@pytest.mark.parametrize("leaf_first", [False, True])
def test_the_deepest_trees_sql_and_search_by_conditions_allow_compile(many, negate, leaf_first):
    # SQL nests at most 64 levels of parentheses and NOT; search_by_conditions 32 groups.
    for tree in (_nested(64, negate, leaf_first), _nested(32, negate, leaf_first)):
        assert many(tree) == expected(many, tree)
    nots = Compare("n", "less_than", 10)
    for _ in range(65):
        nots = Not(nots)
    assert many(nots) == expected(many, nots) == list(range(10, ROWS))


@pytest.mark.parametrize("count", [40_000, 100_000])
def test_a_long_in_list_returns_its_rows(many, count):
    numbers = compare("n", "in", list(range(0, 2 * count, 2)))
    assert many(numbers) == list(range(0, ROWS, 2))
    texts = compare("s", "in", [f"s{v}" for v in range(count)])
    assert many(texts) == list(range(ROWS))


def test_an_in_list_keeps_types_apart(many):
    values = [*range(1000, 41000), 3, "4", 5.0, 2.25, True, None, "a\x00b", "s6", -0.0]
    condition = compare("n", "in", values)
    assert many(condition) == expected(many, condition) == [0, 3, 5]
    for attribute in ("f", "b", "s", "z"):
        condition = compare(attribute, "in", values)
        assert many(condition) == expected(many, condition), attribute
    assert many(compare("b", "in", [False] * 3)) == [n for n in range(ROWS) if n % 3]
    with pytest.raises(ClientError, match="cannot compare with dict"):
        many(compare("n", "in", [1, {"a": 1}]))


def test_ored_equalities_merge_with_in_and_stay_exact(many):
    condition = Group(
        "or",
        (
            Compare("n", "equals", 1),
            Compare("n", "in", (2, "3")),
            Compare("s", "equals", "s4"),
            Compare("n", "equals", None),
            Compare("b", "equals", True),
            Not(Compare("n", "less_than", ROWS - 1)),
        ),
    )
    assert many(condition) == expected(many, condition)


def test_up_to_max_conditions_are_answered_and_one_more_refused(many):
    at_limit = ors(
        [{"attribute": "n", "comparator": "less_than", "value": -v} for v in range(MAX_CONDITIONS)]
    )
    assert many(at_limit) == []
    over = Group("or", (*at_limit.conditions, Compare("n", "greater_than", 1)))
    with pytest.raises(ClientError, match=f"at most {MAX_CONDITIONS} conditions, got"):
        many(over)
    merged = ors(
        [{"attribute": "n", "comparator": "equals", "value": v} for v in range(MAX_CONDITIONS * 3)]
    )
    assert query.count_tests(merged) == 1
    assert many(merged) == list(range(ROWS))


@pytest.mark.parametrize("field", ["limit", "offset"])
@pytest.mark.parametrize("value", [2**63, -1, 2**64, True, 1.5])
def test_limit_and_offset_outside_64_bits_are_refused_naming_them(many, field, value):
    args = (None, value) if field == "limit" else (None, 1, value)
    with pytest.raises(ClientError, match=f"'{field}' must be an integer from 0 to {2**63 - 1}"):
        many(None, [Sort("n")], *args[1:]) if field == "limit" else many(None, [], *args[1:])


def test_the_largest_limit_and_offset_are_accepted(many):
    assert many(None, [], 2**63 - 1, 0) == list(range(ROWS))
    assert many(None, [], 2**63 - 1, 2**63 - 1) == []
    assert many(None, [], None, ROWS - 2) == [ROWS - 2, ROWS - 1]


BAD_NUMBERS = [2**63, -(2**63) - 1, 2**64, 10**30, math.inf, -math.inf, math.nan]


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
@pytest.mark.parametrize("comparator", ["equals", "greater_than", "in", "between", "contains"])
def test_numbers_sqlite_cannot_hold_are_refused_naming_the_attribute(comparator, value):
    operand = {"in": [1, value], "between": [0, value]}.get(comparator, value)
    with pytest.raises(ClientError, match="condition on 'age' must") as caught:
        compare("age", comparator, operand)
    assert ("finite" if isinstance(value, float) else "64-bit integer") in caught.value.message
    with pytest.raises(ClientError, match="condition on 'age'"):
        parse_conditions([{"attribute": "age", "comparator": comparator, "value": operand}])


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 1e308, -0.0])
def test_numbers_at_the_edges_are_searchable(kit, db, value):
    table = kit.table(db).name
    kit.insert(db, table, {"id": 1, "v": value}, {"id": 2, "v": 0})
    found = db.read_sync(query.search, table, compare("v", "equals", value))
    assert [jsonx.loads(d)["id"] for d in found] == ([1, 2] if value == 0 else [1])
    found = db.read_sync(query.search, table, compare("v", "in", [value, "x"]))
    assert [jsonx.loads(d)["id"] for d in found] == ([1, 2] if value == 0 else [1])
