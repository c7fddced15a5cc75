"""db, table and describe: the operation each sends and what it prints."""

from __future__ import annotations

import json
from typing import Any

import pytest

DOG = {
    "schema": "dev",
    "name": "dog",
    "hash_attribute": "id",
    "record_count": 2,
    "attributes": [
        {"attribute": "id", "is_primary_key": True},
        {"attribute": "name", "indexed": True},
    ],
}
DESCRIBE_ALL = {"dev": {"dog": DOG}, "system": {}}


@pytest.mark.parametrize(
    ("args", "body"),
    [
        (["db", "list"], {"operation": "describe_all"}),
        (["db", "create", "dev"], {"operation": "create_database", "database": "dev"}),
        (["db", "drop", "dev", "--yes"], {"operation": "drop_database", "database": "dev"}),
        (["db", "describe", "dev"], {"operation": "describe_database", "database": "dev"}),
        (["table", "list"], {"operation": "describe_all"}),
        (["table", "list", "dev"], {"operation": "describe_database", "database": "dev"}),
        (
            ["table", "drop", "dev.dog", "-y"],
            {"operation": "drop_table", "database": "dev", "table": "dog"},
        ),
        (
            ["table", "describe", "dev.dog"],
            {"operation": "describe_table", "database": "dev", "table": "dog"},
        ),
        (["describe"], {"operation": "describe_all"}),
        (["describe", "dev"], {"operation": "describe_database", "database": "dev"}),
        (
            ["describe", "dev.dog"],
            {"operation": "describe_table", "database": "dev", "table": "dog"},
        ),
    ],
)
def test_operation_bodies_and_json_output(run: Any, fake: Any, args: list, body: dict) -> None:
    canned = {"any": ["canned", 1, None]}
    fake.reply(canned)
    outcome = run("--json", *args)
    assert outcome.code == 0, outcome.stderr
    assert fake.bodies == [body]
    assert json.loads(outcome.stdout) == canned


def test_db_list_human(run: Any, fake: Any) -> None:
    fake.reply(DESCRIBE_ALL)
    out = run("db", "list").stdout
    assert "│ dev      │      1 │       2 │" in out and "2 databases" in out


def test_db_create_prints_the_message(run: Any, fake: Any) -> None:
    fake.reply({"message": "database 'dev' successfully created"})
    assert run("db", "create", "dev").stdout == "database 'dev' successfully created\n"


def test_db_describe_human(run: Any, fake: Any) -> None:
    fake.reply({"dog": DOG})
    out = run("db", "describe", "dev").stdout
    assert "│ dev      │ dog   │ id          │          2 │       2 │" in out


def test_table_describe_human(run: Any, fake: Any) -> None:
    fake.reply(DOG)
    out = run("table", "describe", "dev.dog").stdout
    assert "dev.dog" in out and "│ name      │      │ yes     │             │" in out


def test_describe_all_human_lists_tables(run: Any, fake: Any) -> None:
    fake.reply(DESCRIBE_ALL)
    assert "│ dev      │ dog   │" in run("describe").stdout


def test_drop_refuses_without_yes_off_a_terminal(run: Any, fake: Any) -> None:
    outcome = run("db", "drop", "dev")
    assert outcome.code == 2 and "without --yes" in outcome.stderr
    assert fake.sent == []


def test_drop_asks_on_a_terminal(run: Any, fake: Any, on_terminal: None) -> None:
    fake.reply({"message": "successfully deleted table 'dev.dog'"})
    outcome = run("table", "drop", "dev.dog", input="y\n")
    assert outcome.code == 0 and "Really drop table 'dev.dog'" in outcome.stderr
    assert fake.last == {"operation": "drop_table", "database": "dev", "table": "dog"}
    assert outcome.stdout == "successfully deleted table 'dev.dog'\n"


def test_declining_the_prompt_sends_nothing(run: Any, fake: Any, on_terminal: None) -> None:
    outcome = run("db", "drop", "dev", input="n\n")
    assert outcome.code == 1 and "cancelled" in outcome.stderr and fake.sent == []


def test_table_create_defaults(run: Any, fake: Any) -> None:
    fake.reply({"message": "table 'dev.dog' successfully created."})
    outcome = run("table", "create", "dev.dog")
    assert fake.last == {
        "operation": "create_table",
        "database": "dev",
        "table": "dog",
        "primary_key": "id",
    }
    assert outcome.stdout == "table 'dev.dog' successfully created.\n"


def test_table_create_with_attributes_and_no_replicate(run: Any, fake: Any) -> None:
    fake.reply({"message": "ok"})
    run(
        "table",
        "create",
        "dev.dog",
        "--primary-key",
        "dog_id",
        "--attribute",
        "dog_id:ID",
        "--attribute",
        "name:String:indexed",
        "--attribute",
        "age",
        "--attribute",
        "tag:indexed",
        "--no-replicate",
    )
    assert fake.last == {
        "operation": "create_table",
        "database": "dev",
        "table": "dog",
        "primary_key": "dog_id",
        "attributes": [
            {"name": "dog_id", "type": "ID"},
            {"name": "name", "type": "String", "indexed": True},
            {"name": "age"},
            {"name": "tag", "indexed": True},
        ],
        "replicate": False,
    }


@pytest.mark.parametrize("spec", ["", ":String", "a:b:c:d", "a:String:Int", "a:St ring"])
def test_bad_attribute_specs(run: Any, fake: Any, spec: str) -> None:
    outcome = run("table", "create", "dev.dog", "--attribute", spec)
    assert outcome.code == 2 and "NAME[:TYPE][:indexed]" in outcome.stderr
    assert fake.sent == []


@pytest.mark.parametrize(
    ("command", "ref"),
    [
        ("table", "dog"),
        ("table", ".dog"),
        ("table", "dev."),
        ("describe", ".dog"),
        ("describe", "dev."),
    ],
)
def test_bad_table_refs(run: Any, fake: Any, command: str, ref: str) -> None:
    args = ["table", "describe", ref] if command == "table" else ["describe", ref]
    outcome = run(*args)
    assert outcome.code == 2 and "expected DB.TABLE" in outcome.stderr
    assert fake.sent == []
