"""What a SIGHUP reload compares and refuses, on real configs (the live parts: integration)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from agent.config import load_config
from agent.errors import ConfigError
from agent.systemd.reload import RELOADABLE, Reloader, changed_keys


def test_changed_keys_in_table_order(tmp_path: Path) -> None:
    old = load_config(tmp_path, env={})
    new = load_config(
        tmp_path,
        env={},
        flags={"REPLICATION_ROUTES": "a,b", "LOGGING_LEVEL": "debug", "REPLICATION_PORT": "9930"},
    )
    assert changed_keys(old, new) == ["logging.level", "replication.port", "replication.routes"]
    assert changed_keys(new, new) == []


def test_only_logging_output_and_routes_are_live() -> None:
    assert set(RELOADABLE) == {
        "logging.level",
        "logging.path",
        "logging.stdStreams",
        "logging.format",
        "replication.routes",
    }
    assert "logging.auditRetention" not in RELOADABLE


def test_a_bad_load_is_refused_and_logged_with_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def load():
        raise ConfigError("logging.level", "loud", "must be one of trace, debug")

    reloader = Reloader(load_config(tmp_path, env={}), load, replicator=None)
    with caplog.at_level(logging.ERROR, logger="agent.systemd.reload"):
        assert asyncio.run(reloader.reload()) is False
    assert "logging.level: 'loud': must be one of" in caplog.text
    assert reloader.loaded is reloader.running  # nothing was taken from the bad load


def test_a_new_root_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    running = load_config(tmp_path / "a", env={})
    moved = load_config(tmp_path / "b", env={})
    reloader = Reloader(running, lambda: moved, replicator=None)
    with caplog.at_level(logging.ERROR, logger="agent.systemd.reload"):
        assert asyncio.run(reloader.reload()) is False
    assert "rootPath" in caplog.text and "needs a restart" in caplog.text
