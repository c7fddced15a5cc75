"""The --where mini-syntax, --sort and --attributes."""

from __future__ import annotations

from typing import Any

import pytest

from harperctl.conditions import parse_attribute_list, parse_sort, parse_value, parse_where
from harperctl.errors import UsageError


@pytest.mark.parametrize(
    ("text", "comparator", "value"),
    [
        ("age>=30", "greater_than_equal", 30),
        ("age > 30", "greater_than", 30),
        ("age<=2.5", "less_than_equal", 2.5),
        ("age<1", "less_than", 1),
        ("name=Jo", "equals", "Jo"),
        ("name!=Jo", "not_equal", "Jo"),
        ("name~oh", "contains", "oh"),
        ("name^Jo", "starts_with", "Jo"),
        ("name$hn", "ends_with", "hn"),
        ("active=true", "equals", True),
        ("owner=null", "equals", None),
        ('code="30"', "equals", "30"),
        ("name=starts_with:Jo", "starts_with", "Jo"),
        ("name=ends_with:hn", "ends_with", "hn"),
        ("age=greater_than:3", "greater_than", 3),
        ("note=later:today", "equals", "later:today"),
        ('note="starts_with:Jo"', "equals", "starts_with:Jo"),
        ("name=  Jo Smith  ", "equals", "Jo Smith"),
        ("x=NaN", "equals", "NaN"),
        ("tags=[1, 2]", "equals", [1, 2]),
    ],
)
def test_parse_where(text: str, comparator: str, value: Any) -> None:
    condition = parse_where(text)
    assert condition == {
        "attribute": condition["attribute"],
        "comparator": comparator,
        "value": value,
    }
    assert condition["attribute"] in ("age", "name", "active", "owner", "code", "note", "x", "tags")


@pytest.mark.parametrize(
    "text", ["age between 20,30", "age BETWEEN 20, 30", "age=between:20,30", "age=between:[20,30]"]
)
def test_parse_between(text: str) -> None:
    assert parse_where(text) == {"attribute": "age", "comparator": "between", "value": [20, 30]}


def test_between_text_values() -> None:
    assert parse_where("name between a,m")["value"] == ["a", "m"]


@pytest.mark.parametrize("text", ["age", "=30", ">=", "age between 1", "age between 1,2,3"])
def test_bad_conditions_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_where(text)


def test_parse_value() -> None:
    assert parse_value("12") == 12
    assert parse_value("Jo*") == "Jo*"
    assert parse_value("Infinity") == "Infinity"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("age", {"attribute": "age", "descending": False}),
        ("age:desc", {"attribute": "age", "descending": True}),
        ("age:ASC", {"attribute": "age", "descending": False}),
        ("a:b", {"attribute": "a:b", "descending": False}),
    ],
)
def test_parse_sort(text: str, expected: dict) -> None:
    assert parse_sort(text) == expected


def test_parse_attribute_list() -> None:
    assert parse_attribute_list("id, name,,age") == ["id", "name", "age"]
    with pytest.raises(UsageError):
        parse_attribute_list(" , ")


@pytest.mark.parametrize(
    ("text", "operator"),
    [
        ("name==Penny", "'=='"),
        ("age=>3", "'=>'"),
        ("age=<3", "'=<'"),
        ("age<>3", "'<>'"),
        ("age!==3", "'!=='"),
        ("age >= =3", "'>=='"),
        ("name=~Pen", "'=~'"),
        ("name~=Pen", "'~='"),
    ],
)
def test_operators_that_are_not_operators_are_refused(text: str, operator: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_where(text)
    message = caught.value.message
    assert message.startswith(f"--where {text!r}: {operator} is not an operator; operators: =")
    assert "ATTR=COMPARATOR:VALUE" in message and caught.value.exit_code == 2


@pytest.mark.parametrize("text", ["age>", "name=", "name =  "])
def test_a_missing_value_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="no VALUE after"):
        parse_where(text)


def test_a_value_starting_with_an_operator_character_is_written_as_json() -> None:
    assert parse_where('name="=Penny"')["value"] == "=Penny"
    assert parse_where('name=""')["value"] == ""
    assert parse_where("age>-3")["value"] == -3
