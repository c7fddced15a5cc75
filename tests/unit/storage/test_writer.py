"""The single writer: group commit, isolation of failing jobs, drain on close."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.errors import ClientError, NotFound, StorageError
from agent.storage import rows
from agent.storage.catalog import Catalog
from agent.storage.sqlite import connect
from agent.storage.writer import Writer
from agent.storage.writes import WriteOp

WAIT = 10  # seconds any single step may take before the test gives up


class Sql:
    """A job running one statement; optionally raising afterwards, or registering a hook."""

    records = 1

    def __init__(self, sql: str, raises: Exception | None = None, hook=None) -> None:
        self.sql, self.raises, self.hook = sql, raises, hook

    def run(self, ctx) -> str:
        ctx.conn.execute(self.sql)
        if self.hook is not None:
            ctx.after_commit.append(self.hook)
        if self.raises is not None:
            raise self.raises
        return self.sql


class Batches:
    """A commit listener recording each batch's log entries."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list]] = []
        self.lock = threading.Lock()

    def __call__(self, database, entries) -> None:
        with self.lock:
            self.calls.append((database, list(entries)))


def outcome(future):
    try:
        return future.result(WAIT)
    except Exception as exc:
        return exc


# --- group commit ---------------------------------------------------------------------------


def test_jobs_queued_together_commit_as_one_batch(kit, db, held_batch):
    kit.table(db, "dog")
    batches = Batches()
    kit.storage.add_listener(batches)
    futures = held_batch(
        db, [kit.job(WriteOp("insert", "dog", records=[{"id": i}])) for i in range(20)]
    )
    assert [f.result(WAIT)[0].written for f in futures] == [[i] for i in range(20)]
    assert len(batches.calls) == 1
    database, entries = batches.calls[0]
    assert database == "dev"
    assert len(entries) == 20
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    assert set(kit.docs(db, "dog")) == set(range(20))


def test_a_failing_job_in_the_middle_of_a_batch_leaves_the_others_alone(kit, db, held_batch):
    kit.table(db, "dog")
    batches = Batches()
    kit.storage.add_listener(batches)
    jobs = [kit.job(WriteOp("insert", "dog", records=[{"id": i}])) for i in range(10)]
    jobs[4] = kit.job(
        WriteOp("insert", "dog", records=[{"id": 4}]), WriteOp("insert", "nope", records=[{}])
    )
    jobs[6] = Sql("INSERT INTO \"r_dog\" VALUES (6, '{}', 1, 'x')", raises=ValueError("boom"))
    results = [outcome(f) for f in held_batch(db, jobs)]
    assert isinstance(results[4], NotFound)
    assert isinstance(results[6], StorageError)  # anything not an AgentError is a StorageError
    assert "write failed: boom" in str(results[6])
    assert all(isinstance(r, list) for i, r in enumerate(results) if i not in (4, 6))
    assert set(kit.docs(db, "dog")) == set(range(10)) - {4, 6}
    assert [len(entries) for _, entries in batches.calls] == [8]


def test_jobs_from_many_threads_all_commit(kit, db):
    kit.table(db, "dog")
    start = len(kit.log(db))

    def work(worker: int) -> list:
        return [
            kit.insert(db, "dog", {"id": f"{worker}-{i}", "worker": worker}).written
            for i in range(25)
        ]

    with ThreadPoolExecutor(max_workers=8) as pool:
        done = list(pool.map(work, range(8)))
    assert sorted(k for per in done for [k] in per) == sorted(
        f"{w}-{i}" for w in range(8) for i in range(25)
    )
    assert len(kit.docs(db, "dog")) == 200
    log = kit.log(db)[start:]
    assert len(log) == 200
    versions = [entry[1] for entry in log]
    assert versions == sorted(set(versions))  # one writer, one clock: versions follow commits


def test_futures_resolve_only_after_the_commit(kit, db):
    kit.table(db, "dog")
    seen = []
    checked = threading.Event()

    def check(_future):  # runs on the writer thread as the future resolves
        try:
            seen.append(rows.live_keys(reader, "dog", [1]))
        finally:
            checked.set()

    reader = connect(db.path, readonly=True)
    try:
        future = db._writer.submit(kit.job(WriteOp("insert", "dog", records=[{"id": 1}])))
        future.add_done_callback(check)
        future.result(WAIT)
        assert checked.wait(WAIT)
    finally:
        reader.close()
    assert seen == [{1}]  # a separate connection already sees the committed row


def test_listeners_hear_of_a_commit_before_its_future_resolves(kit, db):
    kit.table(db, "dog")
    batches = Batches()
    kit.storage.add_listener(batches)
    kit.insert(db, "dog", {"id": 1})
    assert len(batches.calls) == 1  # already there when write_sync returned


def test_a_failing_listener_does_not_fail_the_write(kit, db):
    kit.table(db, "dog")

    def broken(database, entries):
        raise RuntimeError("listener bug")

    kit.storage.add_listener(broken)
    batches = Batches()
    kit.storage.add_listener(batches)
    assert kit.insert(db, "dog", {"id": 1}).written == [1]
    assert len(batches.calls) == 1


def test_after_commit_hooks_run_for_committed_jobs_only(kit, db, held_batch):
    ran = []
    jobs = [
        Sql("SELECT 1", hook=lambda: ran.append("ok")),
        Sql("SELECT 1", hook=lambda: ran.append("refused"), raises=ClientError("no")),
        Sql("SELECT 1", hook=lambda: 1 / 0),  # a broken hook is logged, not raised
        Sql("SELECT 1", hook=lambda: ran.append("also ok")),
    ]
    results = [outcome(f) for f in held_batch(db, jobs)]
    assert ran == ["ok", "also ok"]
    assert isinstance(results[1], ClientError)
    assert results[3] == "SELECT 1"


def test_when_the_transaction_itself_fails_every_job_of_the_batch_fails(kit, db, held_batch):
    kit.table(db, "dog")
    batches = Batches()
    kit.storage.add_listener(batches)
    jobs = [
        kit.job(WriteOp("insert", "dog", records=[{"id": 1}])),
        Sql("ROLLBACK"),  # ends the writer's transaction from inside: the batch cannot commit
        kit.job(WriteOp("insert", "dog", records=[{"id": 2}])),
    ]
    results = [outcome(f) for f in held_batch(db, jobs)]
    assert all(isinstance(r, StorageError) for r in results), results
    assert kit.rows(db, "dog") == {}
    assert batches.calls == []
    assert kit.insert(db, "dog", {"id": 3}).written == [3]  # the writer carries on


# --- close ----------------------------------------------------------------------------------


def test_close_finishes_every_queued_job(make_kit, tmp_path):
    first = make_kit()
    db = first.db()
    first.table(db, "dog")
    futures = [
        db._writer.submit(first.job(WriteOp("insert", "dog", records=[{"id": i}])))
        for i in range(200)
    ]
    first.close()
    assert all(f.done() for f in futures)
    assert [f.result()[0].written for f in futures] == [[i] for i in range(200)]
    again = make_kit()
    db = again.storage.get("dev")
    assert set(again.docs(db, "dog")) == set(range(200))
    assert len([entry for entry in again.log(db) if entry[3]]) == 200  # and their log entries


def test_a_closed_writer_refuses_jobs_with_storage_error(tmp_path):
    conn = connect(tmp_path / "w.sqlite", synchronous="OFF")
    writer = Writer(conn, Catalog("w"), lambda entries: None, "w")
    assert writer.submit(Sql("SELECT 1")).result(WAIT) == "SELECT 1"
    writer.close()
    writer.close()  # closing twice is harmless
    with pytest.raises(StorageError, match="closing"):
        writer.submit(Sql("SELECT 1")).result(WAIT)
    conn.close()


def test_a_closed_database_refuses_writes_with_storage_error(kit, db):
    kit.table(db, "dog")
    db.close()
    with pytest.raises(StorageError):
        kit.insert(db, "dog", {"id": 1})
