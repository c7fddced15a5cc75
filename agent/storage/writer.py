"""The single writer of one database file: a thread that group-commits queued jobs.

Jobs queue from any thread; the writer takes every job waiting (up to a batch limit), runs each
inside its own SAVEPOINT of one `BEGIN IMMEDIATE` transaction, commits once, and only then
resolves the jobs' futures and reports the committed log entries. A job that raises is rolled
back to its savepoint alone; the rest of the batch still commits. If the commit itself fails,
every job of the batch fails and nothing of it is applied.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from agent.errors import AgentError, StorageError
from agent.storage.catalog import CatalogView, Staged

log = logging.getLogger(__name__)
BATCH_JOBS = 256
BATCH_RECORDS = 20000


@dataclass
class Committed:
    """A transaction log entry that has just been committed."""

    seq: int
    version: int
    origin: str
    records: int
    body: bytes
    tables: frozenset[str] = frozenset()
    at: float = 0.0  # local commit time, epoch ms
    origin_id: str = ""  # the origin's id and its gap-free sequence (agent/core/cursors.py)
    oseq: int = 0


@dataclass
class JobContext:
    """What a job gets while it runs inside the writer's transaction."""

    conn: sqlite3.Connection
    catalog: CatalogView
    origin_id: str = ""  # the id this node writes this database's transactions under
    entries: list[Committed] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


class Job(Protocol):
    records: int

    def run(self, ctx: JobContext) -> Any: ...


class LoopWaiter:
    """An asyncio future waiting for a job, resolved on its own event loop."""

    __slots__ = ("loop", "future")

    def __init__(self, loop, future) -> None:
        self.loop, self.future = loop, future

    def set_running_or_notify_cancel(self) -> bool:
        return not self.future.cancelled()  # a hint only: the loop checks again on delivery

    def cancelled(self) -> bool:
        return self.future.cancelled()

    def running(self) -> bool:
        return True


class Writer:
    """Own one write connection and run jobs on it, one batch per transaction.

    Callers on the event loop wait on asyncio futures (`submit_async`): all of a batch's
    results, and the loop-side commit listeners, arrive in one `call_soon_threadsafe`, so a
    commit costs one wake-up of the loop however many jobs it carried.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        catalog,
        on_commit: Callable[[list[Committed]], None],
        name: str,
        origin_id: Callable[[], str] = lambda: "",
    ) -> None:
        self._conn = conn
        self._origin_id = origin_id
        self._catalog = catalog
        self._on_commit = on_commit
        # PRAGMA synchronous reads 2 for FULL, 1 for NORMAL
        full = conn.execute("PRAGMA synchronous").fetchone()[0] >= 2
        self.synchronous = "FULL" if full else "NORMAL"
        self._mode = self.synchronous
        self.loop = None  # the event loop that loop_commit runs on, once attached
        self.loop_commit: Callable[[list[Committed]], None] | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"writer-{name}", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> concurrent.futures.Future:
        """Queue a job; the future resolves after its transaction commits."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                future.set_exception(StorageError("the database is closing; write refused"))
                return future
            self._queue.put((job, future))
        return future

    def submit_async(self, job: Job, loop) -> Any:
        """Queue a job for a caller on `loop`; return the asyncio future to await."""
        future = loop.create_future()
        with self._lock:
            if self._closed:
                future.set_exception(StorageError("the database is closing; write refused"))
                return future
            self._queue.put((job, LoopWaiter(loop, future)))
        return future

    def close(self) -> None:
        """Refuse new jobs, finish the queued ones, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()
        self._conn.close()

    def _loop(self) -> None:
        while True:
            batch, stop = self._take()
            if batch:
                self._run_batch(batch)
            if stop:
                return

    def _take(self) -> tuple[list, bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch, records = [first], first[0].records
        while len(batch) < BATCH_JOBS and records < BATCH_RECORDS:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            records += item[0].records
        return batch, False

    def _sync_for(self, batch: list) -> None:
        """Fsync only batches holding a client's write.

        Replicated applies move their cursor in the same transaction, so if the machine
        loses power before the WAL reaches the disk, data and cursor roll back together and
        the peer, which committed them durably, sends them again.
        """
        want = "FULL" if any(getattr(job, "durable", True) for job, _ in batch) else "NORMAL"
        if self.synchronous == "FULL" and want != self._mode:
            self._conn.execute(f"PRAGMA synchronous = {want}")
            self._mode = want

    def _run_batch(self, batch: list) -> None:
        self._sync_for(batch)
        staged = Staged()
        outcomes: list[tuple[concurrent.futures.Future, bool, Any]] = []
        entries: list[Committed] = []
        hooks: list[Callable[[], None]] = []
        # A lone job needs no savepoint: if it fails, the whole transaction rolls back.
        alone = len(batch) == 1
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            for job, future in batch:
                # A job whose caller gave up (a cancelled request) is not run; once running,
                # it can no longer be cancelled, so setting its result below cannot fail.
                if future.set_running_or_notify_cancel():
                    outcomes.append(self._run_job(job, future, staged, entries, hooks, alone))
            if alone and outcomes and not outcomes[0][1]:
                self._conn.execute("ROLLBACK")
                staged, entries, hooks = Staged(), [], []
            else:
                self._conn.execute("COMMIT")
        except Exception as exc:  # the transaction failed as a whole
            self._abort(batch, exc)
            return
        self._catalog.publish(staged)
        self._finish(outcomes, entries, hooks)

    def _run_job(self, job, future, staged: Staged, entries: list, hooks: list, alone: bool):
        ctx = JobContext(self._conn, CatalogView(self._catalog, staged), self._origin_id())
        if not alone:
            self._conn.execute("SAVEPOINT job")
        try:
            result = job.run(ctx)
        except Exception as exc:
            if not alone:
                self._conn.execute("ROLLBACK TO job")
                self._conn.execute("RELEASE job")
            if not isinstance(exc, AgentError):
                log.exception("write job failed")
                exc = StorageError(f"write failed: {exc}")
            return future, False, exc
        if not alone:
            self._conn.execute("RELEASE job")
        staged.merge(ctx.catalog.job)
        entries.extend(ctx.entries)
        hooks.extend(ctx.after_commit)
        return future, True, result

    def _abort(self, batch: list, exc: Exception) -> None:
        log.error("commit failed, batch of %d jobs refused: %s", len(batch), exc)
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        error = exc if isinstance(exc, AgentError) else StorageError(f"commit failed: {exc}")
        for _job, future in batch:
            if future.cancelled():  # nobody is waiting for it
                continue
            if isinstance(future, LoopWaiter):
                future.loop.call_soon_threadsafe(_deliver, None, [(future.future, False, error)])
            elif future.running() or future.set_running_or_notify_cancel():
                future.set_exception(error)

    def _finish(self, outcomes: list, entries: list[Committed], hooks: list) -> None:
        for hook in hooks:
            _safely(hook)
        if entries:
            _safely(lambda: self._on_commit(entries))
        by_loop: dict = {}
        for waiter, ok, value in outcomes:
            if isinstance(waiter, LoopWaiter):
                by_loop.setdefault(waiter.loop, []).append((waiter.future, ok, value))
            elif ok:
                waiter.set_result(value)
            else:
                waiter.set_exception(value)
        home = self.loop
        if entries and home is not None and self.loop_commit is not None:
            by_loop.setdefault(home, [])
        for loop, items in by_loop.items():
            listener = self.loop_commit if loop is home and entries else None
            try:
                loop.call_soon_threadsafe(_deliver, listener and (listener, entries), items)
            except RuntimeError:  # the loop is closed: nobody is left to tell
                pass


def _deliver(listener, items: list) -> None:
    """On the event loop: run the loop-side commit listener, then resolve the waiters."""
    if listener is not None:
        fn, entries = listener
        _safely(lambda: fn(entries))
    for future, ok, value in items:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _safely(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:
        log.exception("commit listener failed")
