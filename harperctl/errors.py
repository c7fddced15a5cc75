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
`harperctl: <message>` on stderr and an exit code.
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


def error_for_status(status: int, message: str, body: Any = None) -> ApiError:
    """Return the error for an HTTP error `status` carrying `message`."""
    if status == 401:
        return AuthenticationFailed(message, status=status, body=body)
    if 400 <= status < 500:
        return OperationRefused(message, status=status, body=body)
    return AgentFailed(message, status=status, body=body)
