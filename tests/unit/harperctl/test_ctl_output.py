"""Output modes through the CLI: pipes, --json anywhere, -o, streaming as records arrive."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import pytest

from harperctl import cli

NOTES = "likes long walks on the beach, and then some more of the same, every single day"
PENNY = {"id": 1, "name": "Penny", "notes": NOTES, "owner": None, "tags": ["a\tb"]}
DOG = {"name": "dog", "attributes": [{"attribute": n} for n in ("id", "name", "notes")]}
USERS = [{"username": "admin", "active": True, "role": {"role": "super_user"}}]


def test_get_in_a_pipe_prints_tsv_one_line_per_record(run: Any, fake: Any, piped: None) -> None:
    fake.reply([PENNY, {"id": 2, "name": "Kato"}])
    outcome = run("get", "dev.dog", "1", "2")
    assert outcome.code == 0
    assert outcome.stdout.splitlines() == [
        "id\tname\tnotes\towner\ttags",
        f'1\tPenny\t{NOTES}\t\t["a\\\\tb"]',
        "2\tKato\t\t\t",
    ]
    assert sum("Penny" in line for line in outcome.stdout.splitlines()) == 1  # grep -c Penny


def test_the_same_get_on_a_terminal_is_a_table(run: Any, fake: Any) -> None:
    fake.reply([PENNY])
    outcome = run("get", "dev.dog", "1")
    assert "┃ id ┃ name  ┃" in outcome.stdout and "1 record" in outcome.stdout


@pytest.mark.parametrize(
    ("args", "replies"),
    [
        (["get", "dev.dog", "1"], [[PENNY]]),
        (["sql", "SELECT * FROM dev.dog"], [[PENNY]]),
        (["sql", "UPDATE dev.dog SET a = 1"], [{"message": "updated 1 of 1 records"}]),
        (["search", "dev.dog", "name", "Penny"], [DOG, [PENNY]]),
        (["describe", "dev.dog"], [DOG]),
        (["db", "list"], [{"dev": {}}]),
        (["user", "list"], [USERS]),
        (["token", "create", "--username", "ann", "--password", "pw"], [{"operation_token": "t"}]),
        (["delete", "dev.dog", "1"], [{"message": "1 of 1 record successfully deleted"}]),
        (["insert", "dev.dog", "-"], [{"message": "inserted 1 of 1 records"}]),
    ],
)
def test_json_before_and_after_the_command_prints_the_same(
    run: Any, fake: Any, args: list[str], replies: list[Any]
) -> None:
    outcomes = []
    for position in ("before", "after", "-o"):
        for reply in replies:
            fake.reply(reply)
        argv = {
            "before": ["--json", *args],
            "after": [*args, "--json"],
            "-o": [*args[:1], "-o", "json", *args[1:]],
        }[position]
        outcomes.append(run(*argv, input='{"id": 1}'))
    assert outcomes[0].code == 0 and outcomes[0].stderr == ""
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert json.loads(outcomes[0].stdout) == replies[-1]


def test_json_on_a_group_and_on_the_root_together(run: Any, fake: Any) -> None:
    fake.reply(USERS)
    outcome = run("--json", "user", "--json", "list")
    assert outcome.code == 0 and json.loads(outcome.stdout) == USERS


@pytest.mark.parametrize(
    "args",
    [
        ["--json", "-o", "tsv", "db", "list"],
        ["-o", "jsonl", "db", "list", "--json"],
        ["db", "list", "--json", "-o", "table"],
    ],
)
def test_output_modes_that_disagree_are_a_usage_error(run: Any, fake: Any, args: list[str]) -> None:
    outcome = run(*args)
    assert outcome.code == 2 and fake.sent == [] and outcome.stdout == ""
    assert "contradicts" in outcome.stderr and "give one output mode" in outcome.stderr


def test_records_commands_pass_the_agents_bytes_through_with_json(run: Any, fake: Any) -> None:
    raw = b'[{"id":1,"name":"P\\u00e9nny"} , {"id":2}]'
    fake.reply(raw=raw)
    fake.piece_size = 4
    assert run("sql", "SELECT * FROM dev.dog", "--json").stdout == raw.decode() + "\n"
    fake.reply(raw=b'{"message":"updated 1 of 1 records"}\n')
    assert run("--json", "sql", "UPDATE x").stdout == '{"message":"updated 1 of 1 records"}\n'


def test_a_2xx_answer_that_is_not_json_still_fails_with_json(run: Any, fake: Any) -> None:
    fake.reply(raw=b"<html>studio</html>")
    outcome = run("--json", "sql", "SELECT 1")
    assert outcome.code == 5 and outcome.stdout == "" and "not JSON" in outcome.stderr


def test_jsonl_prints_one_object_per_record_or_per_answer(run: Any, fake: Any) -> None:
    fake.reply([PENNY, {"id": 2}])
    assert run("get", "dev.dog", "1", "2", "-o", "jsonl").stdout.splitlines() == [
        json.dumps(PENNY, separators=(",", ":")),
        '{"id":2}',
    ]
    fake.reply({"message": "database 'dev' successfully created"})
    outcome = run("-o", "jsonl", "db", "create", "dev")
    assert outcome.stdout == '{"message":"database \'dev\' successfully created"}\n'


def test_in_a_pipe_messages_are_single_lines_and_tables_are_tsv(
    run: Any, fake: Any, piped: None
) -> None:
    message = "database 'a_database_with_a_rather_long_name' successfully created " * 3
    fake.reply({"message": message})
    assert run("db", "create", "x").stdout == message + "\n"
    fake.reply(USERS)
    assert run("user", "list").stdout == (
        "username\trole\tsuper user\tactive\nadmin\tsuper_user\t\tyes\n"
    )


def test_o_table_draws_tables_in_a_pipe_and_o_tsv_on_a_terminal(
    run: Any, fake: Any, piped: None
) -> None:
    fake.reply([PENNY])
    assert "┃ id ┃" in run("get", "dev.dog", "1", "-o", "table").stdout
    fake.reply([PENNY])
    assert run("-o", "tsv", "get", "dev.dog", "1").stdout.startswith("id\tname\tnotes\t")


def test_an_error_leaves_stdout_empty_in_every_mode(run: Any, fake: Any, piped: None) -> None:
    for mode in ("tsv", "jsonl", "json", "table"):
        fake.reply({"error": "Table 'dev.nosuch' does not exist"}, status=404)
        outcome = run("-o", mode, "get", "dev.nosuch", "1")
        assert (outcome.code, outcome.stdout) == (1, "")
        assert outcome.stderr == "harperctl: Table 'dev.nosuch' does not exist\n"


@pytest.mark.parametrize("mode", ["tsv", "jsonl"])
def test_records_print_before_the_answer_has_fully_arrived(
    run: Any, fake: Any, piped: None, mode: str
) -> None:
    records = [{"id": n, "name": f"dog {n}"} for n in range(3000)]
    fake.reply(records)
    fake.piece_size = 4096
    printed: list[int] = []
    fake.between = lambda number: printed.append(sys.stdout.buffer.getvalue().count(b"\n"))
    outcome = run("-o", mode, "sql", "SELECT * FROM dev.dog")
    assert outcome.code == 0 and len(outcome.stdout.splitlines()) == 3000 + (mode == "tsv")
    assert 1000 < printed[-1] < 3000  # most lines were out before the last piece was read


def walk(command: click.Command, path: str = "") -> list[tuple[str, click.Command]]:
    """Return (command path, command) for the root and every command under it."""
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += walk(sub, f"{path} {name}".strip())
    return found


@pytest.mark.parametrize(("path", "command"), walk(cli.cli), ids=lambda v: str(v))
def test_help_shows_json_and_output_once_per_command(
    run: Any, path: str, command: click.Command
) -> None:
    outcome = run(*path.split(), "--help")
    assert outcome.code == 0
    section = outcome.stdout.split("\nOptions:\n")[1].split("\n\n")[0]
    options = [line.split()[0] for line in section.splitlines() if line.startswith("  -")]
    assert options.count("--json") == 1 and options.count("-o,") == 1, outcome.stdout
