"""A 401 says what to do: which credentials to give, or that the ones sent were refused.

The agent's messages these hints key on ("Must login", "Login failed", "invalid token") are
pinned on the agent's side by tests/integration/test_ops_auth.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from harperctl import errors


def test_no_credentials_names_every_way_to_give_them(run: Any, fake: Any) -> None:
    fake.reply({"error": "Must login"}, status=401)
    outcome = run("db", "list")
    assert outcome.code == 4 and outcome.stdout == ""
    assert "Authorization" not in fake.sent[0].headers
    assert outcome.stderr.startswith("harperctl: Must login: no credentials were sent")
    for way in ("--user/-u", "HARPERCTL_USER", "--token", "HARPERCTL_TOKEN", "--profile"):
        assert way in outcome.stderr


def test_refused_password_says_so_without_echoing_it(run: Any, fake: Any) -> None:
    fake.reply({"error": "Login failed"}, status=401)
    outcome = run("-u", "ann", "-p", "hunter2-secret", "db", "list")
    assert outcome.code == 4
    assert fake.sent[0].headers["Authorization"].startswith("Basic ")
    assert "refused the user name and password that were sent" in outcome.stderr
    assert "hunter2-secret" not in outcome.stderr and "ann" not in outcome.stderr


def test_refused_token_says_so_without_echoing_it(run: Any, fake: Any) -> None:
    fake.reply({"error": "invalid token"}, status=401)
    outcome = run("--token", "eyJ.not-valid.sig", "db", "list")
    assert outcome.code == 4
    assert "refused the token that was sent" in outcome.stderr
    assert "eyJ" not in outcome.stderr


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ("Must login", errors.NO_CREDENTIALS_HINT),
        ("Login failed", errors.WRONG_PASSWORD_HINT),
        ("invalid token", errors.WRONG_TOKEN_HINT),
        ("invalid credentials", None),
        ("Table 'dev.dog' does not exist", None),
    ],
)
def test_login_hint_by_message(message: str, hint: str | None) -> None:
    assert errors.login_hint(message) == hint
    error = errors.error_for_status(401, message)
    expected = f"{message}: {hint}" if hint else message
    assert (type(error), error.message, error.exit_code) == (
        errors.AuthenticationFailed,
        expected,
        4,
    )


def test_other_statuses_get_no_login_hint() -> None:
    assert errors.error_for_status(403, "Must login").message == "Must login"


def test_exit_status_table_covers_every_exit_code() -> None:
    codes = [code for code, _ in errors.EXIT_STATUS]
    assert codes == sorted(set(codes))
    tree = [errors.HarperctlError, errors.UsageError, errors.ConnectionFailed, errors.ApiError]
    tree += [errors.OperationRefused, errors.AuthenticationFailed, errors.AgentFailed]
    assert {cls.exit_code for cls in tree} | {0, 130} == set(codes)
