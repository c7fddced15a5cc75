"""Crash a simulated node at the n-th await point of its shell.

An await point is where the shell hands work to the world and waits: every frame a node
sends or receives (memnet.End), every dial, every read it starts, every write it queues, and
every write as it commits, before whoever queued it hears. Those are the places where a
SIGKILL changes what survives; between them the shell only computes.

`CrashPoints(node, at=n)` counts the points of one node from its (re)start and, at the
n-th, kills it there and then (`SimNode.kill`): the task that reached the point is
cancelled with the others, the frame in hand is lost, a write that committed is never
heard of. After the kill every read and write of the node is refused, as nothing runs in a
dead process; the writer still finishes what was already queued (it had committed, or
would have, before the kill reached it).

The count is not replayable to the point: the shell also awaits on timers (pings, the
reconcile loop) that run on the wall clock. Point n is the n-th interaction after the start,
whichever it happens to be; `trace` says what each one was, and a failure report prints it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable

from agent.errors import StorageError

if TYPE_CHECKING:
    from shellsim import SimNode


class CrashPoints:
    """Count one node's await points from its start; kill it at the `at`-th (if given)."""

    def __init__(self, node: SimNode, at: int | None = None) -> None:
        self.node = node
        self.at = at
        self.count = 0
        self.trace: list[str] = []
        self.fired: str | None = None  # "#n what" once the node was killed here
        self.reaper: asyncio.Task | None = None

    def install(self) -> None:
        """Hook the node's network and every database of its open storage."""
        self.node.net.points[self.node.name] = self.hit
        storage = self.node.storage
        for name in storage.names():
            self._wrap(storage.get(name))

    def hit(self, what: str) -> None:
        """One await point; the crash, when it is the chosen one."""
        if self.fired or not self.node.up:
            return
        self.count += 1
        self.trace.append(what)
        if self.count == self.at:
            self.fired = f"#{self.count} {what}"
            self.node.kill()
            self.reaper = asyncio.get_running_loop().create_task(self.node.reap())

    async def dead(self) -> None:
        """Wait until the killed node's tasks are gone and its storage is closed."""
        if self.reaper is not None:
            await self.reaper

    def _alive(self, what: str) -> None:
        """An await point of storage; past a crash, nothing of the node runs any more."""
        self.hit(what)
        if not self.node.up:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # a task of the killed shell: it dies here
            raise StorageError(f"node {self.node.name} crashed")  # a client of the node

    def _wrap(self, db: Any) -> None:
        write, read, submit_async = db.write, db.read, db.submit_async
        name = db.name

        async def write_(job):
            self._alive(f"write {name} {type(job).__name__}")
            result = await write(job)
            self._alive(f"committed {name} {type(job).__name__}")
            return result

        async def read_(fn: Callable, *args):
            self._alive(f"read {name} {getattr(fn, '__name__', fn)}")
            return await read(fn, *args)

        def submit_async_(job):
            self._alive(f"queue {name} {type(job).__name__}")
            future = submit_async(job)
            future.add_done_callback(lambda _: self.hit(f"applied {name}"))
            return future

        db.write, db.read, db.submit_async = write_, read_, submit_async_
