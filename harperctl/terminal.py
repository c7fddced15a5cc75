"""Ask whether the standard streams are terminals; tests replace these to pretend."""

from __future__ import annotations

import sys
from typing import TextIO


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def stdin_is_terminal() -> bool:
    """Return True when a person could answer a prompt on stdin."""
    return _is_terminal(sys.stdin)


def stderr_is_terminal() -> bool:
    """Return True when stderr is a terminal (progress bars go there)."""
    return _is_terminal(sys.stderr)


def stdout_is_terminal() -> bool:
    """Return True when stdout is a terminal: tables for people, else plain lines (TSV)."""
    return _is_terminal(sys.stdout)
