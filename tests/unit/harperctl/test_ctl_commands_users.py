"""user, role and token: bodies, prompts and output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

USERS = [
    {
        "username": "admin",
        "active": True,
        "role": {"id": "r0", "role": "super_user", "permission": {"super_user": True}},
    }
]
ROLES = [
    {"id": "r1", "role": "developer", "permission": {"super_user": False, "dev": {"tables": {}}}}
]


def test_user_list(run: Any, fake: Any) -> None:
    fake.reply(USERS)
    outcome = run("user", "list")
    assert fake.last == {"operation": "list_users"}
    assert "│ admin    │ super_user │ yes        │ yes    │" in outcome.stdout
    fake.reply(USERS)
    assert json.loads(run("--json", "user", "list").stdout) == USERS


def test_user_add_with_password(run: Any, fake: Any) -> None:
    fake.reply({"message": "ann successfully added"})
    outcome = run("user", "add", "ann", "--role", "developer", "--password", "pw", "--inactive")
    assert fake.last == {
        "operation": "add_user",
        "username": "ann",
        "password": "pw",
        "role": "developer",
        "active": False,
    }
    assert outcome.stdout == "ann successfully added\n"


def test_user_add_asks_twice_on_a_terminal(run: Any, fake: Any, on_terminal: None) -> None:
    fake.reply({"message": "ann successfully added"})
    outcome = run("user", "add", "ann", "--role", "developer", input="pw\npw\n")
    assert outcome.code == 0
    assert fake.last["password"] == "pw" and fake.last["active"] is True
    assert outcome.stderr.count("password for ann") == 1  # "Repeat for confirmation" follows
    assert "Repeat" in outcome.stderr and "pw" not in outcome.stderr + outcome.stdout


def test_user_add_without_password_off_a_terminal(run: Any, fake: Any) -> None:
    outcome = run("user", "add", "ann", "--role", "developer", input="pw\npw\n")
    assert outcome.code == 2 and "no password for 'ann'" in outcome.stderr and fake.sent == []


def test_user_add_needs_a_role(run: Any, fake: Any) -> None:
    assert run("user", "add", "ann", "--password", "pw").code == 2 and fake.sent == []


def test_user_alter_sends_only_what_changes(run: Any, fake: Any) -> None:
    fake.reply({"message": "updated 1 of 1 records"})
    run("user", "alter", "ann", "--inactive")
    assert fake.last == {"operation": "alter_user", "username": "ann", "active": False}
    fake.reply({"message": "updated 1 of 1 records"})
    run("user", "alter", "ann", "--role", "admin", "--password", "new", "--active")
    assert fake.last == {
        "operation": "alter_user",
        "username": "ann",
        "role": "admin",
        "password": "new",
        "active": True,
    }


def test_user_alter_password_alone_asks(run: Any, fake: Any, on_terminal: None) -> None:
    fake.reply({"message": "updated 1 of 1 records"})
    outcome = run("user", "alter", "ann", "--password", input="n3w\nn3w\n")
    assert outcome.code == 0 and fake.last["password"] == "n3w"


def test_user_alter_with_nothing_to_change(run: Any, fake: Any) -> None:
    outcome = run("user", "alter", "ann")
    assert outcome.code == 2 and "give --role" in outcome.stderr and fake.sent == []


def test_user_drop_and_info(run: Any, fake: Any) -> None:
    fake.reply({"message": "ann successfully deleted"})
    assert run("user", "drop", "ann", "--yes").stdout == "ann successfully deleted\n"
    assert fake.last == {"operation": "drop_user", "username": "ann"}
    assert run("user", "drop", "ann").code == 2 and len(fake.sent) == 1
    fake.reply(USERS[0])
    outcome = run("user", "info")
    assert fake.last == {"operation": "user_info"}
    assert "│ role       │ super_user │" in outcome.stdout


def test_role_list(run: Any, fake: Any) -> None:
    fake.reply(ROLES)
    outcome = run("role", "list")
    assert fake.last == {"operation": "list_roles"}
    assert "│ developer │ r1 │            │ dev       │" in outcome.stdout


def test_role_add_from_json_file_stdin_and_super_user(run: Any, fake: Any, tmp_path: Path) -> None:
    permission = {"super_user": False, "dev": {"tables": {"dog": {"read": True}}}}
    path = tmp_path / "perm.json"
    path.write_text(json.dumps(permission))
    for _ in range(4):
        fake.reply({"role": "developer", "id": "r1"})
    run("role", "add", "developer", json.dumps(permission))
    run("role", "add", "developer", f"@{path}")
    run("role", "add", "developer", "-", input=json.dumps(permission))
    run("role", "add", "ops", "--super-user")
    expected = {"operation": "add_role", "role": "developer", "permission": permission}
    assert fake.bodies[:3] == [expected] * 3
    assert fake.bodies[3] == {
        "operation": "add_role",
        "role": "ops",
        "permission": {"super_user": True},
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a PERMISSION"),
        (["{}", "--super-user"], "not both"),
        (["[1]"], "must be a JSON object"),
        (["{bad"], "invalid JSON"),
        (["@/no/such/file.json"], "cannot read"),
    ],
)
def test_role_add_usage_errors(run: Any, fake: Any, args: list[str], message: str) -> None:
    outcome = run("role", "add", "developer", *args)
    assert outcome.code == 2 and message in outcome.stderr and fake.sent == []


def test_role_alter_and_drop(run: Any, fake: Any) -> None:
    fake.reply({"id": "r1", "role": "devs"})
    fake.reply({"message": "devs successfully deleted"})
    run("role", "alter", "r1", '{"super_user": false}', "--name", "devs")
    outcome = run("role", "drop", "r1", "--yes")
    assert fake.bodies == [
        {
            "operation": "alter_role",
            "id": "r1",
            "role": "devs",
            "permission": {"super_user": False},
        },
        {"operation": "drop_role", "id": "r1"},
    ]
    assert outcome.stdout == "devs successfully deleted\n"


TOKENS = {"operation_token": "op.jwt", "refresh_token": "refresh.jwt"}


def test_token_create_uses_the_global_credentials_without_auth(run: Any, fake: Any) -> None:
    fake.reply(TOKENS)
    outcome = run("-u", "admin", "-p", "pw", "token", "create")
    assert fake.last == {
        "operation": "create_authentication_tokens",
        "username": "admin",
        "password": "pw",
    }
    assert "Authorization" not in fake.sent[0].headers
    assert outcome.stdout == "operation_token: op.jwt\nrefresh_token: refresh.jwt\n"


def test_token_create_with_its_own_credentials(run: Any, fake: Any) -> None:
    fake.reply(TOKENS)
    outcome = run(
        "--token", "stale", "--json", "token", "create", "--username", "ann", "--password", "x"
    )
    assert fake.last == {
        "operation": "create_authentication_tokens",
        "username": "ann",
        "password": "x",
    }
    assert "Authorization" not in fake.sent[0].headers
    assert json.loads(outcome.stdout) == TOKENS


def test_token_create_asks_for_the_password(run: Any, fake: Any, on_terminal: None) -> None:
    fake.reply(TOKENS)
    outcome = run("token", "create", "--username", "ann", input="s3cret\n")
    assert outcome.code == 0 and fake.last["password"] == "s3cret"


def test_token_create_without_a_user_or_password(run: Any, fake: Any) -> None:
    assert run("token", "create").code == 2
    outcome = run("token", "create", "--username", "ann")
    assert outcome.code == 2 and "no password for 'ann'" in outcome.stderr
    assert fake.sent == []


def test_token_refresh_sends_the_refresh_token_as_bearer(run: Any, fake: Any) -> None:
    fake.reply({"operation_token": "new.jwt"})
    outcome = run("-u", "admin", "-p", "pw", "token", "refresh", "refresh.jwt")
    assert fake.last == {"operation": "refresh_operation_token", "refresh_token": "refresh.jwt"}
    assert fake.sent[0].headers["Authorization"] == "Bearer refresh.jwt"
    assert outcome.stdout == "operation_token: new.jwt\n"
