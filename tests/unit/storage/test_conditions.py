"""The condition tree: parsing search_by_conditions, validation, and the reference evaluator."""

from __future__ import annotations

import pytest

from agent.errors import ClientError
from agent.storage.conditions import (
    ALIASES,
    COMPARATORS,
    Compare,
    Group,
    Not,
    attributes_of,
    comparator_name,
    compare,
    matches,
    parse_conditions,
)

# --- comparator names -----------------------------------------------------------------------


@pytest.mark.parametrize("name", COMPARATORS)
def test_canonical_names_map_to_themselves_in_any_case(name):
    assert comparator_name(name) == name
    assert comparator_name(name.upper()) == name


@pytest.mark.parametrize(("alias", "name"), sorted(ALIASES.items()))
def test_aliases_map_to_canonical_names(alias, name):
    assert comparator_name(alias) == name
    assert name in COMPARATORS


def test_an_unknown_comparator_is_refused_by_its_name():
    with pytest.raises(ClientError, match='Unknown query comparator "around"'):
        comparator_name("around")


def test_a_comparator_that_is_not_a_string_is_refused():
    with pytest.raises(ClientError, match="comparator must be a string"):
        comparator_name(3)


# --- building one comparison ----------------------------------------------------------------


def test_compare_normalises_between_and_in_values_to_tuples():
    assert compare("age", "between", [1, 5]) == Compare("age", "between", (1, 5))
    assert compare("age", "in", [1, "a"]) == Compare("age", "in", (1, "a"))
    assert compare("age", ">=", 3) == Compare("age", "greater_than_equal", 3)


@pytest.mark.parametrize(
    ("attribute", "comparator", "value", "message"),
    [
        ("", "equals", 1, "attribute must be a non-empty string"),
        (None, "equals", 1, "attribute must be a non-empty string"),
        ("age", "between", [1], "between on 'age' needs a value of two items"),
        ("age", "between", 5, "between on 'age' needs a value of two items"),
        ("age", "in", "abc", "in on 'age' needs a list value"),
        ("name", "contains", None, "contains on 'name' needs a string value"),
        ("name", "like", ["x"], "like on 'name' needs a string value"),
    ],
)
def test_compare_refuses_bad_shapes_naming_the_attribute(attribute, comparator, value, message):
    with pytest.raises(ClientError, match=message):
        compare(attribute, comparator, value)


# --- parsing search_by_conditions -----------------------------------------------------------


def test_parse_one_condition_gives_the_comparison_itself():
    parsed = parse_conditions([{"attribute": "age", "comparator": "equals", "value": 5}])
    assert parsed == Compare("age", "equals", 5)


def test_parse_accepts_harperdb_search_field_names():
    parsed = parse_conditions(
        [{"search_attribute": "age", "search_type": "greater_than", "search_value": 2}]
    )
    assert parsed == Compare("age", "greater_than", 2)


def test_parse_nested_groups_with_their_operators():
    parsed = parse_conditions(
        [
            {"attribute": "a", "comparator": "equals", "value": 1},
            {
                "operator": "OR",
                "conditions": [
                    {"attribute": "b", "comparator": "lt", "value": 2},
                    {"attribute": "c", "comparator": "is_null"},
                ],
            },
        ],
        operator="And",
    )
    assert parsed == Group(
        "and",
        (
            Compare("a", "equals", 1),
            Group("or", (Compare("b", "less_than", 2), Compare("c", "is_null", None))),
        ),
    )
    assert attributes_of(parsed) == {"a", "b", "c"}


@pytest.mark.parametrize(
    ("conditions", "operator", "message"),
    [
        ([], "and", "'conditions' must be a non-empty array"),
        ({"attribute": "a"}, "and", "'conditions' must be a non-empty array"),
        (["a"], "and", "each condition must be an object"),
        ([{"attribute": "a", "value": 1}], "and", "condition on 'a' is missing 'comparator'"),
        ([{"attribute": "a", "comparator": "eq", "value": 1}], "xor", "operator must be"),
        (
            [{"operator": 1, "conditions": [{"attribute": "a", "comparator": "eq"}]}],
            "and",
            "operator",
        ),
    ],
)
def test_parse_refuses_bad_requests(conditions, operator, message):
    with pytest.raises(ClientError, match=message):
        parse_conditions(conditions, operator)


def nested(depth: int) -> list:
    inner: list = [{"attribute": "a", "comparator": "equals", "value": 1}]
    for _ in range(depth):
        inner = [{"conditions": inner}]
    return inner


def test_parse_allows_32_levels_of_nesting_and_no_more():
    assert parse_conditions(nested(32)) == Compare("a", "equals", 1)
    with pytest.raises(ClientError, match="nested too deeply"):
        parse_conditions(nested(33))


def test_attributes_of_sees_through_not_and_none():
    assert attributes_of(None) == set()
    assert attributes_of(Not(Compare("x", "is_null"))) == {"x"}


# --- the reference evaluator ----------------------------------------------------------------

RECORD = {"s": "Penny", "i": 5, "f": 2.5, "t": True, "n": None, "l": [1, 2], "o": {"k": 1}}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Compare("s", "equals", "Penny"), True),
        (Compare("s", "equals", "penny"), False),
        (Compare("i", "equals", 5.0), True),  # numbers compare across int and float
        (Compare("i", "equals", "5"), False),  # a string never equals a number
        (Compare("t", "equals", 1), False),  # booleans are not 0/1
        (Compare("t", "equals", True), True),
        (Compare("i", "equals", True), False),
        (Compare("n", "equals", None), False),  # equals null matches nothing; use is_null
        (Compare("n", "is_null"), True),
        (Compare("missing", "is_null"), True),
        (Compare("l", "is_not_null"), True),
        (Compare("s", "not_equal", "Kato"), True),
        (Compare("s", "not_equal", 5), True),
        (Compare("missing", "not_equal", 5), False),  # not_equal needs the attribute
        (Compare("n", "not_equal", 5), False),
        (Compare("i", "in", (1, "5", 5)), True),
        (Compare("i", "in", ("5", None)), False),
        (Compare("i", "in", ()), False),
        (Compare("i", "between", (5, 5)), True),
        (Compare("f", "between", (3, 1)), False),
        (Compare("s", "between", ("A", "P")), False),  # "Penny" sorts after "P"
        (Compare("s", "between", ("A", "q")), True),
        (Compare("t", "greater_than", False), True),
        (Compare("t", "greater_than", 0), False),
        (Compare("i", "less_than", "9"), False),
        (Compare("l", "greater_than", 0), False),  # lists and objects are not ordered
        (Compare("o", "less_than", 9), False),
        (Compare("s", "contains", "enn"), True),
        (Compare("s", "contains", ""), True),
        (Compare("i", "contains", "5"), False),  # text tests need a string attribute
        (Compare("s", "starts_with", "Pe"), True),
        (Compare("s", "ends_with", "nny"), True),
        (Compare("s", "ends_with", "Pe"), False),
        (Compare("s", "like", "P%y"), True),
        (Compare("s", "like", "p%"), False),  # case-sensitive
        (Compare("s", "like", "P_nny"), True),
        (Compare("s", "like", "P.nny"), False),  # regex characters are literal
        (Compare("s", "like", "Penny%"), True),
        (Compare("s", "like", ""), False),
        (Not(Compare("missing", "equals", 1)), True),
        (Group("and", (Compare("i", "equals", 5), Compare("t", "equals", False))), False),
        (Group("or", (Compare("i", "equals", 4), Compare("t", "equals", True))), True),
    ],
    ids=repr,
)
def test_matches(condition, expected):
    assert matches(condition, RECORD) is expected


def test_no_condition_matches_everything():
    assert matches(None, {})
    assert matches(None, RECORD)


def test_like_wildcards_cross_lines():
    assert matches(Compare("s", "like", "a%b"), {"s": "a\nb"})
    assert matches(Compare("s", "like", "a_b"), {"s": "a\nb"})
