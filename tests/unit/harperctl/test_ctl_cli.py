"""The root command: global options, credentials, exit codes, --json, registration."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import click
import pytest

from harperctl import cli

DESCRIBE_ALL = {
    "dev": {
        "dog": {
            "schema": "dev",
            "name": "dog",
            "hash_attribute": "id",
            "attributes": [{"attribute": "id"}],
            "record_count": 2,
        }
    }
}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_version_and_help(run: Any) -> None:
    assert run("--version").stdout.strip() == "harperctl, version 0.1.0"
    outcome = run("--help")
    assert outcome.code == 0 and "Exit codes" in outcome.stdout


def test_unknown_command_is_a_usage_error(run: Any) -> None:
    outcome = run("nosuch")
    assert outcome.code == 2 and "No such command" in outcome.stderr and outcome.stdout == ""


def test_default_url_and_no_auth(run: Any, fake: Any) -> None:
    fake.reply(DESCRIBE_ALL)
    assert run("db", "list").code == 0
    sent = fake.sent[0]
    assert sent.url == "http://127.0.0.1:9925/" and "Authorization" not in sent.headers
    assert (sent.timeout, sent.verify) == (30.0, True)
    assert fake.closed


def test_options_reach_the_request(run: Any, fake: Any, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    fake.reply(DESCRIBE_ALL)
    args = (
        "--url",
        "https://db:9925",
        "-u",
        "ann",
        "-p",
        "pw",
        "--ca-file",
        str(ca),
        "--timeout",
        "2.5",
        "db",
        "list",
    )
    assert run(*args).code == 0
    sent = fake.sent[0]
    assert (sent.url, sent.timeout, sent.verify) == ("https://db:9925/", 2.5, str(ca))
    assert sent.headers["Authorization"] == basic("ann", "pw")


def test_insecure_and_token(run: Any, fake: Any) -> None:
    fake.reply(DESCRIBE_ALL)
    assert run("--insecure", "--token", "jwt", "db", "list").code == 0
    assert fake.sent[0].verify is False
    assert fake.sent[0].headers["Authorization"] == "Bearer jwt"


def test_env_settings(run: Any, fake: Any) -> None:
    fake.reply(DESCRIBE_ALL)
    env = {"HARPERCTL_URL": "http://env:1", "HARPERCTL_USER": "eve", "HARPERCTL_PASSWORD": "e"}
    assert run("db", "list", env=env).code == 0
    assert fake.sent[0].url == "http://env:1/"
    assert fake.sent[0].headers["Authorization"] == basic("eve", "e")


def test_option_beats_env_beats_profile(run: Any, fake: Any, write_profiles: Any) -> None:
    write_profiles("default: p\nprofiles: {p: {url: 'http://profile:1', token: pt}}\n")
    for _ in range(3):
        fake.reply(DESCRIBE_ALL)
    run("db", "list")
    run("db", "list", env={"HARPERCTL_URL": "http://env:1"})
    run("--url", "http://opt:1", "db", "list", env={"HARPERCTL_URL": "http://env:1"})
    assert [s.url for s in fake.sent] == ["http://profile:1/", "http://env:1/", "http://opt:1/"]
    assert fake.sent[0].headers["Authorization"] == "Bearer pt"


def test_missing_profile_exits_2_before_any_request(run: Any, fake: Any) -> None:
    outcome = run("--profile", "nosuch", "db", "list")
    assert outcome.code == 2
    assert outcome.stderr.startswith("harperctl: no profile 'nosuch'")
    assert fake.sent == []


def test_help_does_not_need_settings(run: Any) -> None:
    assert run("--profile", "nosuch", "db", "--help").code == 0


def test_readable_profile_with_password_warns_on_stderr(
    run: Any, fake: Any, write_profiles: Any
) -> None:
    write_profiles("default: p\nprofiles: {p: {user: a, password: s}}\n", mode=0o644)
    fake.reply(DESCRIBE_ALL)
    outcome = run("--json", "db", "list")
    assert outcome.code == 0 and "readable by others" in outcome.stderr
    assert json.loads(outcome.stdout) == DESCRIBE_ALL


def test_password_is_asked_on_a_terminal(run: Any, fake: Any, on_terminal: None) -> None:
    fake.reply(DESCRIBE_ALL)
    outcome = run("-u", "admin", "--json", "db", "list", input="s3cret\n")
    assert outcome.code == 0
    assert fake.sent[0].headers["Authorization"] == basic("admin", "s3cret")
    assert "Password for admin" in outcome.stderr
    assert "s3cret" not in outcome.stderr + outcome.stdout
    assert json.loads(outcome.stdout) == DESCRIBE_ALL


def test_no_prompt_without_a_terminal(run: Any, fake: Any) -> None:
    outcome = run("-u", "admin", "db", "list", input="s3cret\n")
    assert outcome.code == 2
    assert "no password for user 'admin'" in outcome.stderr
    assert "Password" not in outcome.stderr and fake.sent == []


def test_no_prompt_when_a_token_is_given(run: Any, fake: Any, on_terminal: None) -> None:
    fake.reply(DESCRIBE_ALL)
    outcome = run("--token", "jwt", "db", "list", env={"HARPERCTL_USER": "admin"})
    assert outcome.code == 0 and "Password" not in outcome.stderr


@pytest.mark.parametrize(
    ("status", "code"), [(400, 1), (403, 1), (404, 1), (401, 4), (500, 5), (503, 5)]
)
def test_api_errors_exit_with_their_code(run: Any, fake: Any, status: int, code: int) -> None:
    fake.reply({"error": "Table 'dev.nosuch' does not exist"}, status=status)
    outcome = run("--json", "table", "describe", "dev.nosuch")
    assert outcome.code == code
    assert outcome.stderr == "harperctl: Table 'dev.nosuch' does not exist\n"
    assert outcome.stdout == ""


@pytest.mark.parametrize(
    "exc", [ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out")]
)
def test_connection_errors_exit_3(run: Any, fake: Any, exc: OSError) -> None:
    fake.fail(exc)
    outcome = run("db", "list")
    assert outcome.code == 3 and outcome.stderr.startswith("harperctl: ")
    assert "http://127.0.0.1:9925" in outcome.stderr


def test_interrupt_exits_130(run: Any, fake: Any) -> None:
    fake.fail(KeyboardInterrupt())
    outcome = run("db", "list")
    assert outcome.code == 130 and "interrupted" in outcome.stderr


def test_click_usage_error_exits_2(run: Any) -> None:
    outcome = run("get", "nodot", "1")
    assert outcome.code == 2 and "DB.TABLE" in outcome.stderr


def test_every_module_command_is_registered() -> None:
    for module in cli.COMMAND_MODULES:
        for command in module.COMMANDS:
            assert cli.cli.commands[command.name] is command


def walk(command: click.Command, path: str = "harperctl") -> list[tuple[str, click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += walk(sub, f"{path} {name}")
    return found


@pytest.mark.parametrize(("path", "command"), walk(cli.cli))
def test_every_command_has_help_and_an_example(path: str, command: click.Command) -> None:
    assert command.help, path
    assert command.epilog and "Examples:" in command.epilog, path
    assert "harperctl" in command.epilog, path
