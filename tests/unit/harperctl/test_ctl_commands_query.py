"""search, sql and op: bodies and output."""

from __future__ import annotations

import json
from typing import Any

import pytest

RECORDS = [{"id": 1, "name": "Penny", "age": 5}, {"id": 2, "name": "Kato", "age": 3}]
DOG = {
    "schema": "dev",
    "name": "dog",
    "hash_attribute": "id",
    "attributes": [{"attribute": name} for name in ("id", "name", "age", "breed")],
}
DESCRIBE = {"operation": "describe_table", "database": "dev", "table": "dog"}


def test_search_by_value(run: Any, fake: Any) -> None:
    fake.reply(DOG)
    fake.reply(RECORDS)
    outcome = run("search", "dev.dog", "name", "Pen*")
    assert fake.last == {
        "operation": "search_by_value",
        "database": "dev",
        "table": "dog",
        "attribute": "name",
        "value": "Pen*",
        "get_attributes": ["*"],
    }
    assert "│ 1  │ Penny │ 5   │" in outcome.stdout and "2 records" in outcome.stdout


def test_search_by_value_parses_json_values(run: Any, fake: Any) -> None:
    fake.reply(DOG)
    fake.reply([])
    outcome = run("search", "dev.dog", "age", "5", "--attributes", "id")
    assert (fake.last["value"], fake.last["get_attributes"]) == (5, ["id"])
    assert outcome.stdout == "no records\n"


def test_search_by_conditions(run: Any, fake: Any) -> None:
    fake.reply(DOG)
    fake.reply(RECORDS)
    outcome = run(
        "--json",
        "search",
        "dev.dog",
        "--where",
        "age>=3",
        "--where",
        "name=starts_with:Jo",
        "--sort",
        "age:desc",
        "--limit",
        "10",
        "--offset",
        "0",
        "--attributes",
        "id,name",
    )
    assert fake.last == {
        "operation": "search_by_conditions",
        "database": "dev",
        "table": "dog",
        "operator": "and",
        "conditions": [
            {"attribute": "age", "comparator": "greater_than_equal", "value": 3},
            {"attribute": "name", "comparator": "starts_with", "value": "Jo"},
        ],
        "get_attributes": ["id", "name"],
        "sort": {"attribute": "age", "descending": True},
        "limit": 10,
        "offset": 0,
    }
    assert json.loads(outcome.stdout) == RECORDS
    assert fake.bodies[0] == DESCRIBE and outcome.stderr == ""


def test_search_or_between(run: Any, fake: Any) -> None:
    fake.reply(DOG)
    fake.reply([])
    run("search", "dev.dog", "--where", "age between 2,5", "--or", "--where", "breed~terrier")
    assert fake.last["operator"] == "or"
    assert fake.last["conditions"] == [
        {"attribute": "age", "comparator": "between", "value": [2, 5]},
        {"attribute": "breed", "comparator": "contains", "value": "terrier"},
    ]
    assert "sort" not in fake.last and "limit" not in fake.last


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give ATTRIBUTE VALUE, or one or more --where"),
        (["name"], "missing the VALUE"),
        (["name", "x", "--where", "age>1"], "not both"),
        (["name", "x", "--limit", "0"], "need --where"),
        (["name", "x", "--or"], "need --where"),
        (["--where", "age"], "expected ATTR OP VALUE"),
    ],
)
def test_search_usage_errors(run: Any, fake: Any, args: list[str], message: str) -> None:
    outcome = run("search", "dev.dog", *args)
    assert outcome.code == 2 and message in outcome.stderr and fake.sent == []


def test_sql_select_renders_a_table(run: Any, fake: Any) -> None:
    fake.reply(RECORDS)
    outcome = run("sql", "SELECT * FROM dev.dog")
    assert fake.last == {"operation": "sql", "sql": "SELECT * FROM dev.dog"}
    assert "│ 2  │ Kato  │ 3   │" in outcome.stdout


def test_sql_write_prints_the_message(run: Any, fake: Any) -> None:
    fake.reply({"message": "1 of 1 record successfully deleted", "deleted_hashes": [1]})
    outcome = run("sql", "-", input="DELETE FROM dev.dog WHERE id = 1\n")
    assert fake.last["sql"] == "DELETE FROM dev.dog WHERE id = 1"
    assert outcome.stdout == "1 of 1 record successfully deleted\n"


def test_op_from_the_argument_prints_json(run: Any, fake: Any) -> None:
    canned = {"type": "cluster-status", "connections": []}
    fake.reply(canned)
    outcome = run("op", '{"operation": "cluster_status"}')
    assert fake.last == {"operation": "cluster_status"}
    assert json.loads(outcome.stdout) == canned
    assert outcome.stdout == json.dumps(canned, indent=2) + "\n"


def test_op_from_stdin(run: Any, fake: Any) -> None:
    for args in ((), ("-",)):
        fake.reply({"message": "ok"})
        outcome = run("op", *args, input='{"operation": "get_status", "x": [1]}')
        assert outcome.code == 0
    assert fake.bodies == [{"operation": "get_status", "x": [1]}] * 2


@pytest.mark.parametrize(
    ("text", "message"),
    [("{", "invalid JSON"), ("[]", "expected an object"), ('{"op": 1}', "expected an object")],
)
def test_op_usage_errors(run: Any, fake: Any, text: str, message: str) -> None:
    outcome = run("op", text)
    assert outcome.code == 2 and message in outcome.stderr and fake.sent == []


def test_names_the_table_does_not_have_are_warned_about(run: Any, fake: Any) -> None:
    fake.reply(DOG)
    fake.reply([])
    outcome = run(
        "search", "dev.dog", "--where", "nmae=Penny", "--sort", "agee", "--attributes", "id,colour"
    )
    assert outcome.code == 0 and fake.bodies[0] == DESCRIBE
    assert fake.last["operation"] == "search_by_conditions"
    known = "its attributes: age, breed, id, name"
    assert outcome.stderr.splitlines() == [
        f"harperctl: warning: dev.dog has no attribute 'nmae' (--where); {known}",
        f"harperctl: warning: dev.dog has no attribute 'agee' (--sort); {known}",
        f"harperctl: warning: dev.dog has no attribute 'colour' (--attributes); {known}",
    ]
    fake.reply(DOG)
    fake.reply([])
    outcome = run("search", "dev.dog", "colour", "red")
    assert "no attribute 'colour' (ATTRIBUTE)" in outcome.stderr and outcome.code == 0


def test_the_check_is_skipped_when_describe_fails(run: Any, fake: Any) -> None:
    fake.reply({"error": "not allowed to describe"}, status=403)
    fake.reply(RECORDS)
    outcome = run("--json", "search", "dev.dog", "--where", "nmae=Penny")
    assert outcome.code == 0 and outcome.stderr == ""
    assert json.loads(outcome.stdout) == RECORDS


@pytest.mark.parametrize("where", ["name==Penny", "age=>3", "age<>3", "age!==3", "age>"])
def test_a_where_that_does_not_parse_exits_2_before_anything_is_sent(
    run: Any, fake: Any, where: str
) -> None:
    outcome = run("search", "dev.dog", "--where", where)
    assert outcome.code == 2 and fake.sent == [] and outcome.stdout == ""
    assert outcome.stderr.startswith(f"harperctl: --where {where!r}: ")
    assert "operators: = != > >= < <= ~ (contains)" in outcome.stderr
