"""Errors harperctl reports, each carrying the exit code it ends the process with.

    HarperctlError (1)                 root; anything harperctl reports to the person
    ├── UsageError (2)                 bad arguments, bad record file, unknown profile
    ├── ConnectionFailed (3)           cannot connect, timed out, TLS failure
    └── ApiError (1)                   the agent answered with an error status
        ├── OperationRefused (1)       4xx other than 401 (403 included)
        ├── AuthenticationFailed (4)   401: no, wrong or expired credentials
        └── AgentFailed (5)            5xx, or an answer that is not JSON

Callers catch at the level they need: `ApiError` for "the agent said no", the root for
everything. Interrupts (Ctrl-C) are not in the tree: `harperctl.cli.main` turns
KeyboardInterrupt into EXIT_INTERRUPTED, and it alone turns these errors into
`harperctl: <message>` on stderr and an exit code. `EXIT_STATUS` lists every code with its
meaning, for the man page.

A 401 gets a hint after the agent's message. The agent's message says what it received, as
HarperDB's does: `Must login` (no credentials at all), `Login failed` (a user and password it
refused), `invalid token`. The hint names where credentials come from; it never repeats them.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_INTERRUPTED = 130


class HarperctlError(Exception):
    """Root of every error harperctl reports; `message` is what the person reads."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def annotate(self, context: str) -> HarperctlError:
        """Return a copy of this error whose message starts with `context`."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.message = f"{context}: {self.message}"
        clone.args = (clone.message,)
        return clone


class UsageError(HarperctlError):
    """The command line, a record file or the profile file is wrong."""

    exit_code = 2


class ConnectionFailed(HarperctlError):
    """No answer from the agent: refused, unreachable, timed out or TLS failed."""

    exit_code = 3


class ApiError(HarperctlError):
    """The agent answered with an error status; `body` is its parsed answer, if any."""

    def __init__(self, message: str, *, status: int, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class OperationRefused(ApiError):
    """The agent refused the operation (4xx other than 401): bad request, forbidden..."""


class AuthenticationFailed(ApiError):
    """The agent did not accept the credentials (401)."""

    exit_code = 4


class AgentFailed(ApiError):
    """The agent failed (5xx) or answered something that is not JSON."""

    exit_code = 5


EXIT_STATUS: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success"),
    (
        OperationRefused.exit_code,
        "the agent refused the operation (HTTP 4xx other than 401, "
        "403 included), or the person cancelled at a confirmation prompt",
    ),
    (UsageError.exit_code, "usage error: bad arguments, record file, profile or profile file"),
    (ConnectionFailed.exit_code, "cannot connect: refused, unreachable, timed out, or TLS failed"),
    (
        AuthenticationFailed.exit_code,
        "authentication failed (HTTP 401): no, wrong or expired credentials",
    ),
    (AgentFailed.exit_code, "the agent failed (HTTP 5xx) or answered something that is not JSON"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)

NO_CREDENTIALS_HINT = (
    "no credentials were sent: give --user/-u NAME (with --password or HARPERCTL_PASSWORD; "
    "asked for on a terminal), set HARPERCTL_USER, give --token JWT or HARPERCTL_TOKEN, or "
    "use a profile (--profile) that has them"
)
WRONG_PASSWORD_HINT = (
    "the agent refused the user name and password that were sent (from --user/--password, "
    "HARPERCTL_USER/HARPERCTL_PASSWORD or the profile); check them"
)
WRONG_TOKEN_HINT = (
    "the agent refused the token that was sent: it is wrong or expired; get a new one with "
    "`harperctl token create` or `harperctl token refresh`, or log in with --user instead"
)
_LOGIN_HINTS = {
    "must login": NO_CREDENTIALS_HINT,
    "login failed": WRONG_PASSWORD_HINT,
    "invalid token": WRONG_TOKEN_HINT,
}


def login_hint(message: str) -> str | None:
    """Return the hint for a 401 whose agent message is `message`, if the message is known."""
    return _LOGIN_HINTS.get(message.strip().lower())


def error_for_status(status: int, message: str, body: Any = None) -> ApiError:
    """Return the error for an HTTP error `status` carrying `message` (a 401 gets a hint)."""
    if status == 401:
        hint = login_hint(message)
        if hint:
            message = f"{message}: {hint}"
        return AuthenticationFailed(message, status=status, body=body)
    if 400 <= status < 500:
        return OperationRefused(message, status=status, body=body)
    return AgentFailed(message, status=status, body=body)
