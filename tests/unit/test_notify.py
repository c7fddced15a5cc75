"""sd_notify by hand: addresses, the watchdog interval, and datagrams on a real unix socket."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.systemd.notify import Notifier, socket_address, watchdog_interval


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: a unix socket path must fit in 108 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="sd", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def listener(short_dir: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket standing where systemd's would; yields (path, socket)."""
    path = str(short_dir / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_socket_address_forms() -> None:
    assert socket_address(None) is None
    assert socket_address("") is None
    assert socket_address("relative/path") is None  # systemd always gives an absolute one
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@harper/notify") == b"\0harper/notify"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "42"}, 0.1),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "43"}, None),  # another process's
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(env: dict, expected: float | None) -> None:
    assert watchdog_interval(env, 42) == expected


def test_nothing_without_notify_socket() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "200000"}, pid=7)
    assert not notifier.enabled
    assert notifier.interval is None  # no socket: no watchdog either
    assert notifier.ready("serving") is False
    assert notifier.start_watchdog() is None


def test_ready_carries_status_and_mainpid(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    notifier = Notifier({"NOTIFY_SOCKET": path}, pid=1234)
    assert notifier.ready("node n1 serving on http://127.0.0.1:9925")
    lines = sock.recv(4096).decode().split("\n")
    assert lines == ["READY=1", "STATUS=node n1 serving on http://127.0.0.1:9925", "MAINPID=1234"]
    assert notifier.stopping()
    assert sock.recv(4096).decode().split("\n")[0] == "STOPPING=1"
    assert notifier.reloading()
    assert sock.recv(4096).decode().split("\n")[0] == "RELOADING=1"
    notifier.close()


def test_abstract_socket() -> None:
    name = f"harper-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.send("STATUS=hello")
        assert sock.recv(4096) == b"STATUS=hello"
        notifier.close()


def test_watchdog_pings_from_the_event_loop(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"}, pid=os.getpid())
    assert notifier.interval == 0.01

    async def three_pings() -> list[bytes]:
        task = notifier.start_watchdog()
        assert task is not None
        loop = asyncio.get_running_loop()
        got = [await loop.run_in_executor(None, sock.recv, 4096) for _ in range(3)]
        task.cancel()
        return got

    assert asyncio.run(three_pings()) == [b"WATCHDOG=1"] * 3
    notifier.close()


def test_a_failed_send_is_logged_once_at_debug_and_never_raises(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(short_dir / "nobody-listens")})
    with caplog.at_level(logging.DEBUG, logger="agent.systemd.notify"):
        assert notifier.ready("serving") is False
        assert notifier.send("WATCHDOG=1") is False
    records = [r for r in caplog.records if r.name == "agent.systemd.notify"]
    assert len(records) == 1
    assert records[0].levelno == logging.DEBUG
    assert "cannot notify systemd" in records[0].getMessage()
