"""The error tree and its exit codes."""

from __future__ import annotations

import pytest

from harperctl import errors


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.HarperctlError("x"), 1),
        (errors.UsageError("x"), 2),
        (errors.ConnectionFailed("x"), 3),
        (errors.OperationRefused("x", status=400), 1),
        (errors.AuthenticationFailed("x", status=401), 4),
        (errors.AgentFailed("x", status=500), 5),
    ],
)
def test_each_error_carries_its_exit_code(error: errors.HarperctlError, code: int) -> None:
    assert error.exit_code == code
    assert isinstance(error, errors.HarperctlError)


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, errors.OperationRefused, 1),
        (403, errors.OperationRefused, 1),
        (404, errors.OperationRefused, 1),
        (409, errors.OperationRefused, 1),
        (401, errors.AuthenticationFailed, 4),
        (500, errors.AgentFailed, 5),
        (503, errors.AgentFailed, 5),
    ],
)
def test_error_for_status(status: int, kind: type, code: int) -> None:
    error = errors.error_for_status(status, "boom", {"error": "boom"})
    assert type(error) is kind
    assert (error.exit_code, error.status, error.message) == (code, status, "boom")
    assert isinstance(error, errors.ApiError)


def test_annotate_keeps_the_type_and_exit_code() -> None:
    error = errors.AgentFailed("disk full", status=500, body={"error": "disk full"})
    annotated = error.annotate("batch 2 of 3 failed")
    assert type(annotated) is errors.AgentFailed
    assert annotated.exit_code == 5 and annotated.status == 500
    assert str(annotated) == "batch 2 of 3 failed: disk full"
    assert str(error) == "disk full"


def test_interrupted_exit_code() -> None:
    assert errors.EXIT_INTERRUPTED == 130
