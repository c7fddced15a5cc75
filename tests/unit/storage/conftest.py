"""Storage fixtures: real SQLite files under tmp_path, driven through the writer.

`Kit` wraps an open Storage with the few steps tests repeat (create a table, run a local
transaction, read rows and log entries back); nothing is faked.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any, Callable

import pytest

from agent import jsonx
from agent.core.messages import decode_changes
from agent.storage import rows, txlog
from agent.storage.catalog import TableInfo, row_table, table_from_definition
from agent.storage.clock import SharedClock
from agent.storage.database import Database
from agent.storage.store import Storage
from agent.storage.writes import CreateTable, DropTable, LocalTransaction, OpResult, WriteOp

ORIGIN = "node-a"
START = 1_700_000_000.0  # the wall clock every Kit starts at, in epoch seconds
WAIT = 10  # seconds any one step may take before a test gives up


class Wall:
    """A wall clock the test sets by hand (seconds since the epoch, as time.time)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Kit:
    """One open Storage on a folder, with helpers to write and read it back."""

    def __init__(self, path: Path, now: float) -> None:
        self.path = path
        self.origin = ORIGIN
        self.wall = Wall(now)  # tests move time by setting kit.wall.now
        self.storage = Storage(
            path, ORIGIN, clock=SharedClock(self.wall), synchronous="OFF", reader_threads=2
        )
        self.storage.open()
        self.closed = False
        self._names = itertools.count()

    def db(self, name: str = "dev") -> Database:
        return self.storage.create_sync(name, exists_ok=True)

    def table(
        self, db: Database, name: str | None = None, pk: str = "id", replicate: bool = True
    ) -> TableInfo:
        name = name or f"t{next(self._names)}"
        spec = {"name": name, "primary_key": pk, "replicate": replicate}
        info = table_from_definition(db.name, spec, 0.0)
        return db.write_sync(CreateTable(info, self.storage.clock, ORIGIN))

    def drop(self, db: Database, name: str) -> None:
        db.write_sync(DropTable(name, self.storage.clock, ORIGIN, replicated=True))

    def job(self, *ops: WriteOp) -> LocalTransaction:
        return LocalTransaction(list(ops), self.storage.clock, ORIGIN)

    def txn(self, db: Database, *ops: WriteOp) -> list[OpResult]:
        return db.write_sync(self.job(*ops))

    def insert(self, db: Database, table: str, *records: dict) -> OpResult:
        return self.txn(db, WriteOp("insert", table, records=list(records)))[0]

    def docs(self, db: Database, table: str) -> dict[Any, dict]:
        """Return {pk: document} of the live records."""
        sql = f"SELECT pk, doc FROM {row_table(table)} WHERE doc IS NOT NULL"
        return db.read_sync(lambda c: {k: jsonx.loads(d) for k, d in c.execute(sql)})

    def rows(self, db: Database, table: str) -> dict[Any, tuple]:
        """Return {pk: (doc, version, origin)}, tombstones included."""
        sql = f"SELECT pk, doc, version, origin FROM {row_table(table)}"
        return db.read_sync(lambda c: {r[0]: tuple(r[1:]) for r in c.execute(sql)})

    def row(self, db: Database, table: str, key: Any) -> tuple | None:
        return db.read_sync(rows.get_row, table, key)

    def log(self, db: Database) -> list[tuple]:
        """Return the log as (seq, version, origin, records, [Write, ...])."""
        entries = db.read_sync(lambda c: list(txlog.iter_all(c)))
        return [(s, v, o, n, decode_changes(bytes(b))) for s, v, o, n, b, _, _ in entries]

    def log_ids(self, db: Database) -> list[tuple[str, int]]:
        """Return each log entry's (origin id, origin sequence), in log order."""
        entries = db.read_sync(lambda c: list(txlog.iter_all(c)))
        return [(origin_id, oseq) for *_, origin_id, oseq in entries]

    def cursors(self, db: Database) -> dict[str, int]:
        """Return {origin id: last sequence applied}."""
        return db.read_sync(txlog.cursors)

    def cursor(self, db: Database, origin_id: str | None = None) -> tuple[int, int]:
        """Return (last sequence, its version) of an origin id (default: the file's own)."""
        return db.read_sync(txlog.cursor, origin_id or db.origin_id)

    def read(self, db: Database, fn: Callable, *args: Any) -> Any:
        return db.read_sync(fn, *args)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.storage.close()


class Gate:
    """A job that holds the writer until released, so the jobs queued meanwhile form one batch."""

    records = 0

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def run(self, ctx) -> str:
        self.entered.set()
        assert self.release.wait(WAIT)
        return "gate"


def _held_batch(db: Database, jobs: list) -> list:
    gate = Gate()
    first = db._writer.submit(gate)
    assert gate.entered.wait(WAIT)
    futures = [db._writer.submit(job) for job in jobs]
    gate.release.set()
    assert first.result(WAIT) == "gate"
    return futures


@pytest.fixture
def held_batch():
    """Return `held_batch(db, jobs)`: submit jobs while a gate holds the writer; get futures."""
    return _held_batch


@pytest.fixture
def make_kit(tmp_path):
    """Open a Storage (again) on tmp_path; every one opened is closed after the test."""
    opened: list[Kit] = []

    def make(now: float = START, path: Path | None = None) -> Kit:
        opened.append(Kit(path or tmp_path / "database", now))
        return opened[-1]

    yield make
    for each in opened:
        each.close()


@pytest.fixture
def kit(make_kit):
    """A fresh Storage in tmp_path, closed after the test."""
    return make_kit()


@pytest.fixture
def db(kit):
    return kit.db("dev")


@pytest.fixture(scope="module")
def module_kit(tmp_path_factory):
    """One Storage for a module's Hypothesis tests (each example uses its own table)."""
    opened = Kit(tmp_path_factory.mktemp("storage") / "database", START)
    yield opened
    opened.close()
