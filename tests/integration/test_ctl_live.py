"""harperctl's output against a real agent: pipes, --json anywhere, exit codes, streaming.

harperctl runs as a subprocess with stdout a pipe, as a script would run it; the CliRunner
cases run it in process, where stdout is not a terminal either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from click.testing import CliRunner
from harness import PASSWORD, Agent
from support import make_table

from harperctl.cli import main

pytestmark = pytest.mark.timeout(180)

NOTES = "likes long walks on the beach and then some more of the same, every single day"
DOGS = [
    {"id": 1, "name": "Penny", "breed": "terrier", "age": 5, "notes": NOTES},
    {"id": 2, "name": "Kato", "breed": "lab", "age": 3, "notes": "tab\there"},
]


@pytest.fixture
def dogs(agent_factory: Any, db: str) -> tuple[Agent, str]:
    """One agent holding DB.dog with Penny and Kato; returns (agent, "DB.dog")."""
    agent = agent_factory("ctl")
    make_table(agent, db, "dog", records=DOGS)
    return agent, f"{db}.dog"


def ctl(agent: Agent, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run harperctl against `agent` with stdout and stderr pipes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARPERCTL_")}
    env.update(HARPERCTL_USER="admin", HARPERCTL_PASSWORD=PASSWORD, XDG_CONFIG_HOME="/nonexistent")
    return subprocess.run(
        [sys.executable, "-m", "harperctl", "--url", agent.url, *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )


def in_process(agent: Agent, *args: str) -> tuple[int, str, str]:
    """Run harperctl through click's CliRunner; return (exit code, stdout, stderr)."""
    runner = CliRunner()
    argv = ["--url", agent.url, "-u", "admin", "-p", PASSWORD, *args]
    with runner.isolation(env={"XDG_CONFIG_HOME": "/nonexistent"}) as (out, err, _):
        code = main(argv)
    return code, out.getvalue().decode(), err.getvalue().decode()


def test_get_in_a_pipe_gives_one_tsv_line_per_record(dogs: tuple[Agent, str]) -> None:
    agent, table = dogs
    done = ctl(agent, "get", table, "1")
    assert done.returncode == 0, done.stderr
    assert sum("Penny" in line for line in done.stdout.splitlines()) == 1  # | grep -c Penny
    header, line = done.stdout.splitlines()
    record = dict(zip(header.split("\t"), line.split("\t"), strict=True))
    assert record["name"] == "Penny" and record["notes"] == NOTES and record["age"] == "5"
    kato = ctl(agent, "get", table, "2", "--attributes", "id,notes").stdout
    assert kato == "id\tnotes\n2\ttab\\there\n"


@pytest.mark.parametrize(
    "args",
    [
        ["get", "{table}", "1", "2"],
        ["sql", "SELECT id, name FROM {table} ORDER BY id"],
        ["search", "{table}", "--where", "age>=3", "--sort", "age"],
        ["describe", "{table}"],
        ["user", "list"],
    ],
)
def test_json_before_and_after_the_command_is_the_same(
    dogs: tuple[Agent, str], args: list[str]
) -> None:
    agent, table = dogs
    args = [arg.format(table=table) for arg in args]
    before = ctl(agent, "--json", *args)
    after = ctl(agent, *args, "--json")
    assert (before.returncode, after.returncode) == (0, 0), before.stderr + after.stderr
    assert before.stdout == after.stdout and before.stderr == after.stderr == ""
    assert json.loads(before.stdout) is not None
    code, out, _ = in_process(agent, *args, "--json")
    assert (code, out) == (0, before.stdout)


def test_json_is_exactly_the_api_answer(dogs: tuple[Agent, str]) -> None:
    agent, table = dogs
    database, name = table.split(".")
    api = agent.op({"operation": "search_by_id", "database": database, "table": name, "ids": [1]})
    assert json.loads(ctl(agent, "get", table, "1", "--json").stdout) == api


def test_status_json_after_the_command(dogs: tuple[Agent, str]) -> None:
    agent, _ = dogs
    done = ctl(agent, "status", "--json")
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), dict)


def test_exit_codes(dogs: tuple[Agent, str]) -> None:
    agent, table = dogs
    missing = ctl(agent, "delete", table, "1", "99")
    assert missing.returncode == 1
    assert missing.stdout == "1 of 2 records successfully deleted\n"
    assert missing.stderr == f"harperctl: 1 of 2 ids not found in {table}: 99\n"
    refused = ctl(agent, "get", table.split(".")[0] + ".nosuch", "1")
    assert refused.returncode == 1 and refused.stdout == "" and "nosuch" in refused.stderr
    bad_where = ctl(agent, "search", table, "--where", "name==Penny")
    assert bad_where.returncode == 2 and bad_where.stdout == ""
    assert "'==' is not an operator" in bad_where.stderr
    wrong_password = ctl(agent, "-p", "wrong", "get", table, "1")
    assert wrong_password.returncode == 4
    code, out, err = in_process(agent, "delete", table, "98", "--json")
    assert code == 1 and json.loads(out)["skipped_hashes"] == [98]
    assert err == f"harperctl: 1 of 1 ids not found in {table}: 98\n"
    assert in_process(agent, "search", table, "--where", "age<>3")[0] == 2


def test_unknown_attributes_warn_and_still_search(dogs: tuple[Agent, str]) -> None:
    agent, table = dogs
    done = ctl(agent, "search", table, "--where", "nmae=Penny", "-o", "jsonl")
    assert done.returncode == 0 and done.stdout == ""
    assert f"harperctl: warning: {table} has no attribute 'nmae' (--where)" in done.stderr
    found = ctl(agent, "search", table, "--where", "name=Penny", "-o", "jsonl")
    assert [json.loads(line)["id"] for line in found.stdout.splitlines()] == [1]
    assert found.stderr == ""


def test_a_long_answer_streams_in_every_mode(agent_factory: Any, db: str) -> None:
    agent = agent_factory("ctl")
    rows = [{"id": n, "name": f"dog {n}", "age": n % 17} for n in range(7000)]
    make_table(agent, db, "many", records=rows)
    query = f"SELECT id, name, age FROM {db}.many ORDER BY id"
    tsv = ctl(agent, "sql", query)
    assert tsv.returncode == 0, tsv.stderr
    lines = tsv.stdout.splitlines()
    assert lines[0] == "id\tname\tage" and len(lines) == 7001 and lines[-1] == "6999\tdog 6999\t12"
    as_json = ctl(agent, "sql", query, "--json")
    assert json.loads(as_json.stdout) == agent.op({"operation": "sql", "sql": query})
    jsonl = ctl(agent, "-o", "jsonl", "sql", query)
    assert [json.loads(line) for line in jsonl.stdout.splitlines()] == json.loads(as_json.stdout)
    table = ctl(agent, "-o", "table", "sql", query)
    assert "records 1-1000" in table.stdout and "records 7001" not in table.stdout
    assert "records 6001-7000 of 7000" in " ".join(table.stdout.split())


def test_insert_json_is_one_object_across_batches(agent_factory: Any, db: str) -> None:
    agent = agent_factory("ctl")
    make_table(agent, db, "cat")
    lines = "".join(json.dumps({"id": n}) + "\n" for n in range(25))
    done = ctl(agent, "insert", f"{db}.cat", "--batch-size", "10", "--json", stdin=lines)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "message": "inserted 25 of 25 records",
        "inserted_hashes": list(range(25)),
        "skipped_hashes": [],
    }
    again = ctl(agent, "insert", f"{db}.cat", "--batch-size", "10", stdin=lines)
    assert again.stdout == "inserted 0 of 25 records; skipped 25\n"
