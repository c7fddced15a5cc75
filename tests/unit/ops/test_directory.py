"""The user directory learns of rows written without a log entry (snapshot merges) at once."""

from __future__ import annotations

import gc
import threading

import pytest

from agent.ops.directory import UserDirectory
from agent.storage.store import Storage
from agent.storage.system import SYSTEM, USERS
from agent.storage.writes import ForgetRows, LocalTransaction, WriteOp


@pytest.fixture
def storage(tmp_path):
    store = Storage(tmp_path / "db", "node-a")
    store.open()
    yield store
    store.close()


def add(storage, username: str) -> None:
    op = WriteOp("insert", USERS, records=[{"username": username, "password": "x"}])
    storage.get(SYSTEM).write_sync(LocalTransaction([op], storage.clock, "node-a"))


def test_poll_notices_a_change_no_commit_listener_announced(storage):
    add(storage, "ann")
    directory = UserDirectory(storage)  # not a commit listener: only poll can tell it
    changes: list = []
    directory.on_change.append(lambda: changes.append(1))
    assert directory.lookup("ann") is not None
    directory.poll()
    assert changes == []
    storage.get(SYSTEM).write_sync(ForgetRows(USERS, ["ann"]))  # no log entry at all
    directory.poll()
    assert changes == [1]
    assert directory.lookup("ann") is None


def test_the_watcher_starts_with_the_first_lookup_and_finds_changes(storage):
    directory = UserDirectory(storage)
    directory.users()
    assert directory._watcher is None  # start-up use (bootstrap) starts no thread
    changed = threading.Event()
    directory.on_change.append(changed.set)
    directory.lookup("nobody")
    add(storage, "ann")  # the directory is no listener here, as with a snapshot merge
    assert changed.wait(5)
    assert directory.lookup("ann") is not None


def test_the_watcher_ends_with_its_directory(storage):
    directory = UserDirectory(storage)
    directory.watch(interval=0.01)
    thread = directory._watcher
    del directory
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()
