"""Set up stdlib logging from the config: HarperDB's levels, a log file, optionally stderr.

HarperDB's levels, least to most severe, are trace, debug, info, warn, error, fatal and notify;
`notify` is for the few lines an operator always wants (started, stopped) and sits above
fatal, so `logging.level: notify` writes only those. Lines look like HarperDB's:

    2024-05-01T12:00:00.123Z [warn] [agent.replication.link]: message

Secrets never reach the log: a filter blanks passwords and Authorization credentials in
case a caller formats a request into a message.
"""

from __future__ import annotations

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

    def format(self, record: logging.LogRecord) -> str:
        record.harper_level = _NAMES.get(record.levelno, record.levelname.lower())
        return super().format(record)


def configure_logging(config: Config, *, stream: TextIO | None = None) -> Path:
    """Send the root logger to the log file (and stderr with logging.stdStreams); return the file.

    Calling it again replaces the handlers it installed before, so a restart in one process
    (tests, init then run) does not double every line.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_harper_agent", False)]:
        root.removeHandler(handler)
        handler.close()
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
    for handler in handlers:
        _install(root, handler)
    root.setLevel(level_number(config.get("logging.level")))
    return log_file


def _install(root: logging.Logger, handler: logging.Handler) -> None:
    handler.setFormatter(HarperFormatter())
    handler.addFilter(RedactFilter())
    handler._harper_agent = True  # type: ignore[attr-defined]  # marks ours for replacement
    root.addHandler(handler)
