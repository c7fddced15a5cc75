"""Log lines: HarperDB's text format, the json format, redaction, and replacing handlers."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import load_config
from agent.logs import (
    NOTIFY,
    TRACE,
    HarperFormatter,
    JsonFormatter,
    RedactFilter,
    configure_logging,
)


def record(
    message: str, *args: object, level: int = logging.WARNING, exc_info: object = None
) -> logging.LogRecord:
    made = logging.LogRecord("agent.test", level, __file__, 1, message, args, exc_info)
    made.created, made.msecs = 1714564800.123, 123.0  # 2024-05-01T12:00:00.123Z
    return made


def emitted(formatter: logging.Formatter, made: logging.LogRecord) -> str:
    """Format a record the way a handler does: the redaction filter first."""
    RedactFilter().filter(made)
    return formatter.format(made)


def failing() -> tuple:
    try:
        raise RuntimeError('login body {"password": "hunter2"}')
    except RuntimeError:
        return sys.exc_info()


@pytest.fixture
def clean_root() -> Iterator[None]:
    """Leave the root logger as it was found."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_text_line_is_harperdb_shaped() -> None:
    line = emitted(HarperFormatter(), record("node %s up", "n1"))
    assert line == "2024-05-01T12:00:00.123Z [warn] [agent.test]: node n1 up"


def test_json_line_fields() -> None:
    line = emitted(JsonFormatter(), record("node %s up", "n1", level=logging.INFO))
    assert json.loads(line) == {
        "time": "2024-05-01T12:00:00.123Z",
        "level": "info",
        "logger": "agent.test",
        "message": "node n1 up",
    }
    assert "\n" not in line


@pytest.mark.parametrize(
    "level, name",
    [(TRACE, "trace"), (logging.WARNING, "warn"), (logging.CRITICAL, "fatal"), (NOTIFY, "notify")],
)
def test_json_uses_harperdb_level_names(level: int, name: str) -> None:
    assert json.loads(emitted(JsonFormatter(), record("x", level=level)))["level"] == name


def test_json_time_is_iso_utc_with_milliseconds() -> None:
    stamp = json.loads(emitted(JsonFormatter(), record("x")))["time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)


def test_json_carries_the_exception_text() -> None:
    entry = json.loads(emitted(JsonFormatter(), record("failed", exc_info=failing())))
    assert entry["message"] == "failed"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert "RuntimeError" in entry["exception"]


def test_json_keeps_quotes_and_newlines_of_a_message_inside_one_line() -> None:
    line = emitted(JsonFormatter(), record('a "quoted"\nsecond line'))
    assert "\n" not in line
    assert json.loads(line)["message"] == 'a "quoted"\nsecond line'


@pytest.mark.parametrize("formatter", [HarperFormatter(), JsonFormatter()], ids=["text", "json"])
def test_passwords_are_blanked_in_messages(formatter: logging.Formatter) -> None:
    line = emitted(formatter, record("request %s", '{"username": "a", "password": "hunter2"}'))
    assert "hunter2" not in line
    assert "***" in line


@pytest.mark.parametrize("formatter", [HarperFormatter(), JsonFormatter()], ids=["text", "json"])
def test_passwords_are_blanked_in_tracebacks(formatter: logging.Formatter) -> None:
    line = emitted(formatter, record("failed", exc_info=failing()))
    assert "RuntimeError" in line
    assert "hunter2" not in line


def test_configure_logging_writes_json_to_file_and_stream(tmp_path: Path, clean_root: None) -> None:
    flags = {"LOGGING_FORMAT": "json", "LOGGING_STDSTREAMS": "true", "LOGGING_LEVEL": "info"}
    config = load_config(tmp_path, env={}, flags=flags)
    stream = io.StringIO()
    log_file = configure_logging(config, stream=stream)
    logging.getLogger("agent.test").info("token=abc123 for %s", "bob")
    for text in (stream.getvalue(), log_file.read_text()):
        entry = json.loads(text.strip().splitlines()[-1])
        assert entry["level"] == "info" and entry["logger"] == "agent.test"
        assert entry["message"] == "token=*** for bob"


def test_reconfiguring_replaces_the_format_and_level(tmp_path: Path, clean_root: None) -> None:
    configure_logging(load_config(tmp_path, env={}, flags={"LOGGING_FORMAT": "json"}))
    log_file = configure_logging(load_config(tmp_path, env={}, flags={"LOGGING_LEVEL": "info"}))
    logging.getLogger("agent.test").info("now text")
    assert log_file.read_text().splitlines()[-1].endswith("[info] [agent.test]: now text")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_harper_agent", False)]
    assert len(ours) == 1


def test_a_log_that_cannot_be_opened_keeps_the_old_handlers(
    tmp_path: Path, clean_root: None
) -> None:
    log_file = configure_logging(load_config(tmp_path, env={}, flags={"LOGGING_LEVEL": "info"}))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, so no folder can be made under it")
    bad = load_config(tmp_path, env={}, flags={"LOGGING_PATH": str(blocker / "log")})
    with pytest.raises(OSError):
        configure_logging(bad)
    logging.getLogger("agent.test").info("still here")
    assert log_file.read_text().splitlines()[-1].endswith("still here")
