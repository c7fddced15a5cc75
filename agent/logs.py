"""Set up stdlib logging from the config: HarperDB's levels, a log file, optionally stderr.

HarperDB's levels, least to most severe, are trace, debug, info, warn, error, fatal and notify;
`notify` is for the few lines an operator always wants (started, stopped) and sits above
fatal, so `logging.level: notify` writes only those. Lines look like HarperDB's:

    2024-05-01T12:00:00.123Z [warn] [agent.replication.link]: message

With `logging.format: json` each line is one JSON object instead, for log collectors:

    {"time": "2024-05-01T12:00:00.123Z", "level": "warn", "logger": "agent", "message": "..."}

plus "exception" (the traceback text) when the record carries one.

Secrets never reach the log: a filter blanks passwords and Authorization credentials in
case a caller formats a request into a message, and both formats blank them in tracebacks.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from agent.lock import create_private, private_dirs

if TYPE_CHECKING:
    from agent.config import Config

TRACE = 5
NOTIFY = 60
LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "notify": NOTIFY,
}
_NAMES = {number: name for name, number in LEVELS.items()}

logging.addLevelName(TRACE, "TRACE")
logging.addLevelName(NOTIFY, "NOTIFY")

_SECRET = re.compile(
    r"""(?P<key>(?:authorization|proxy-authorization)\s*[:=]\s*["']?(?:basic|bearer)\s+"""
    r"""|["']?(?:password|admin_password|token|operation_token|refresh_token)["']?\s*[:=]\s*["']?)"""
    r"""(?P<secret>[^"',\s}]+)""",
    re.IGNORECASE,
)


def level_number(name: str) -> int:
    """Return the stdlib level number of a HarperDB level name ("warn" -> 30)."""
    return LEVELS[name.lower()]


def redact(text: str) -> str:
    """Blank the credentials in `text`: passwords, tokens and Authorization values."""
    return _SECRET.sub(lambda match: f"{match.group('key')}***", text)


class RedactFilter(logging.Filter):
    """Rewrite each record's message with its credentials blanked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class HarperFormatter(logging.Formatter):
    """Format records as `<UTC ISO time> [<harper level>] [<logger>]: <message>`."""

    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__("%(asctime)s [%(harper_level)s] [%(name)s]: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"

    def formatException(self, ei) -> str:
        """Return the traceback text with its credentials blanked."""
        return redact(super().formatException(ei))

    def format(self, record: logging.LogRecord) -> str:
        record.harper_level = harper_level(record)
        return super().format(record)


class JsonFormatter(HarperFormatter):
    """Format records as one JSON object a line: time, level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": harper_level(record),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


FORMATTERS = {"text": HarperFormatter, "json": JsonFormatter}


def harper_level(record: logging.LogRecord) -> str:
    """Return HarperDB's name for the record's level ("warn" for WARNING)."""
    return _NAMES.get(record.levelno, record.levelname.lower())


def configure_logging(config: Config, *, stream: TextIO | None = None) -> Path:
    """Send the root logger to the log file (and stderr with logging.stdStreams); return the file.

    Calling it again replaces the handlers it installed before, so a restart in one process
    (tests, init then run) does not double every line, and a reload (SIGHUP) applies a new
    level, path, stdStreams or format. The new handlers are opened before the old ones are
    removed: when the new log cannot be opened (OSError), the old set stays in place.
    """
    log_file = config.log_file
    # private from the first line: the log may quote records (an older file is tightened
    # with the rest of the root when the lock is taken, agent/lock.py)
    private_dirs(log_file.parent)
    create_private(log_file)
    # WatchedFileHandler reopens the file after logrotate moves it.
    handlers: list[logging.Handler] = [
        logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
    ]
    if config.get("logging.stdStreams"):
        handlers.append(logging.StreamHandler(stream or sys.stderr))
    formatter = FORMATTERS[config.get("logging.format")]
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_harper_agent", False)]:
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        _install(root, handler, formatter())
    root.setLevel(level_number(config.get("logging.level")))
    return log_file


def _install(root: logging.Logger, handler: logging.Handler, formatter: logging.Formatter) -> None:
    handler.setFormatter(formatter)
    handler.addFilter(RedactFilter())
    handler._harper_agent = True  # type: ignore[attr-defined]  # marks ours for replacement
    root.addHandler(handler)
