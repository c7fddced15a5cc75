"""Numbers in SQL reach SQLite unchanged or are refused: 64-bit integers, finite floats."""

from __future__ import annotations

import pytest

from agent.ops.sql import Insert, Select, SqlError, parse
from agent.storage.conditions import Compare

INT64_MAX = 2**63 - 1


def refused(sql: str) -> SqlError:
    with pytest.raises(SqlError) as caught:
        parse(sql)
    return caught.value


@pytest.mark.parametrize("value", [INT64_MAX, -(2**63), 0, -1])
def test_integers_in_64_bits_are_kept_exactly(value: int) -> None:
    statement = parse(f"INSERT INTO dev.dog (id, n) VALUES (1, {value})")
    assert isinstance(statement, Insert)
    assert statement.records[0]["n"] == value
    assert type(statement.records[0]["n"]) is int


@pytest.mark.parametrize(
    "literal", [str(2**63), str(-(2**63) - 1), "+" + str(2**63), str(10**40), "-" + str(2**64)]
)
@pytest.mark.parametrize(
    "template",
    [
        "INSERT INTO dev.dog (id, n) VALUES (1, {})",
        "UPDATE dev.dog SET n = {} WHERE id = 1",
        "SELECT * FROM dev.dog WHERE n = {}",
        "SELECT * FROM dev.dog WHERE n IN (1, {})",
        "SELECT * FROM dev.dog WHERE n BETWEEN 0 AND {}",
    ],
)
def test_integers_beyond_64_bits_are_refused_not_made_floats(template: str, literal: str) -> None:
    error = refused(template.format(literal))
    assert "must fit in a 64-bit integer" in error.message
    assert error.message.startswith("SQL syntax error at position")


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1.5e999"])
def test_numbers_beyond_a_double_are_refused(literal: str) -> None:
    assert "out of range" in refused(f"INSERT INTO dev.dog (id, n) VALUES (1, {literal})").message


def test_a_tiny_float_is_still_a_float() -> None:
    statement = parse("SELECT * FROM dev.dog WHERE n = 1e-400")
    assert isinstance(statement, Select)
    assert statement.where == Compare("n", "equals", 0.0)


@pytest.mark.parametrize("keyword", ["LIMIT", "OFFSET"])
def test_limit_and_offset_must_fit_in_64_bits(keyword: str) -> None:
    accepted = parse(f"SELECT * FROM dev.dog {keyword} {INT64_MAX}")
    assert isinstance(accepted, Select)
    assert INT64_MAX in (accepted.limit, accepted.offset)
    error = refused(f"SELECT * FROM dev.dog {keyword} {2**63}")
    assert f"{keyword} must be a whole number from 0 to {INT64_MAX}" in error.message
    assert keyword in refused(f"SELECT * FROM dev.dog {keyword} -1").message
