"""`harperctl completion`: the scripts, click's completion protocol, table names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harperctl.cli import cli
from harperctl.commands.completion import COMPLETE_VAR, TABLE_TIMEOUT, complete_tables

ROOT = Path(__file__).resolve().parents[3]


def complete(shell: str, words: str) -> list[str]:
    """Ask the real harperctl for completions of `words` (the last one being completed)."""
    split = words.split(" ")
    env = {
        **os.environ,
        COMPLETE_VAR: f"{shell}_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(split) - 1),
    }
    done = subprocess.run(
        [sys.executable, "-m", "harperctl"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script_naming_harperctl(run: Any, shell: str) -> None:
    outcome = run("completion", shell)
    assert outcome.code == 0
    assert outcome.stdout.strip() and "harperctl" in outcome.stdout
    assert f"{COMPLETE_VAR}={shell}_complete" in outcome.stdout


def test_the_help_says_where_each_script_goes(run: Any) -> None:
    outcome = run("completion", "--help")
    assert outcome.code == 0
    for place in ("bash-completion/completions", "fpath", "fish/completions"):
        assert place in outcome.stdout


def test_an_unknown_shell_is_a_usage_error(run: Any) -> None:
    outcome = run("completion", "tcsh")
    assert outcome.code == 2 and outcome.stdout == ""
    assert "'tcsh' is not one of" in outcome.stderr


def test_bash_completes_a_command_name() -> None:
    assert complete("bash", "harperctl ta") == ["plain,table"]


def test_bash_completes_subcommands_and_choices() -> None:
    assert "plain,create" in complete("bash", "harperctl table ")
    assert complete("bash", "harperctl completion ") == ["plain,bash", "plain,zsh", "plain,fish"]


def test_completing_a_command_needs_no_password() -> None:
    # -u without a password would be a usage error if the command ran; completing it is not
    lines = complete("zsh", "harperctl -u admin db ")
    triples = list(zip(lines[0::3], lines[1::3], lines[2::3], strict=True))
    assert ("plain", "create", "Create the database NAME.") in triples


def _context(*args: str) -> Any:
    return cli.make_context("harperctl", list(args), resilient_parsing=True)


def test_table_names_come_from_describe_all(fake: Any) -> None:
    fake.reply({"dev": {"dog": {}, "cat": {}}, "ops": {"log": {}}})
    ctx = _context("--url", "http://127.0.0.9:9925", "-u", "admin", "-p", "pw")
    items = complete_tables(ctx, "dev.")
    assert [item.value for item in items] == ["dev.cat", "dev.dog"]
    assert fake.last == {"operation": "describe_all"}
    assert fake.sent[0].url == "http://127.0.0.9:9925/"
    assert fake.sent[0].timeout == TABLE_TIMEOUT and fake.closed


def test_table_names_need_no_password_prompt(fake: Any, on_terminal: None) -> None:
    assert complete_tables(_context("-u", "admin"), "") == []
    assert fake.sent == []


@pytest.mark.parametrize(
    "failure",
    [ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out")],
)
def test_table_names_are_silent_on_failure(fake: Any, failure: OSError) -> None:
    fake.fail(failure)
    assert complete_tables(_context(), "") == []


def test_table_names_are_silent_on_a_refusal_or_a_bad_profile(
    fake: Any, write_profiles: Any
) -> None:
    fake.reply({"error": "Must login"}, status=401)
    assert complete_tables(_context(), "") == []
    write_profiles("profiles: {a: {nosuch: 1}}\n")
    assert complete_tables(_context("--profile", "a"), "") == []
