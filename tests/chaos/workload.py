"""The writers: two threads per node, each talking only to its own node, under a rate cap.

Every write goes into a shared `Ledger` with its outcome, so the checker can tell what clients
were promised. Writers never retry: a retried write would blur what was acknowledged. They skip
their node while the fault runner has marked it down, and use short timeouts so a paused node
costs a few seconds of "unknown" outcomes rather than a blocked thread.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
from check import Write

DATABASE = "chaos"
HOT_IDS = tuple(f"hot-{k}" for k in range(8))
MIX = (("insert", 45), ("upsert", 20), ("delete", 15), ("transaction", 20))


@dataclass
class Target:
    """A node as writers see it: where to post, and whether it is up right now."""

    name: str
    url: str
    password: str
    up: threading.Event = field(default_factory=threading.Event)


class Pacer:
    """Hand out evenly spaced send times so all threads of a node stay under `rate` per second."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next)
            self.next = slot + self.interval
        time.sleep(max(0.0, slot - now))


class Ledger:
    """Every write of the run, and the pool of acknowledged inserts deletes pick from."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.writes: list[Write] = []
        self.pool: list[str] = []
        self.lock = threading.Lock()

    def record(self, write: Write) -> None:
        with self.lock:
            self.writes.append(write)

    def acked_insert(self, id_: str) -> None:
        with self.lock:
            self.pool.append(id_)

    def take_for_delete(self, rng: random.Random) -> str | None:
        """Remove and return a random acknowledged insert, so each id is deleted once."""
        with self.lock:
            if not self.pool:
                return None
            index = rng.randrange(len(self.pool))
            self.pool[index], self.pool[-1] = self.pool[-1], self.pool[index]
            return self.pool.pop()

    def dump(self, path: Path) -> None:
        """Write every write as a JSON line, for reading a failing run after the fact."""
        with self.lock, path.open("w") as fh:
            for w in self.writes:
                fh.write(json.dumps(asdict(w)) + "\n")

    def outcomes(self) -> dict[str, int]:
        with self.lock:
            counts: dict[str, int] = {}
            for w in self.writes:
                counts[w.outcome] = counts.get(w.outcome, 0) + 1
            return counts


class Writer(threading.Thread):
    """One client thread: picks a write, sends it to its node, records the outcome."""

    def __init__(
        self,
        target: Target,
        index: int,
        ledger: Ledger,
        pacer: Pacer,
        stop: threading.Event,
        seed: int,
        timeout: float,
    ) -> None:
        super().__init__(name=f"writer-{target.name}-{index}", daemon=True)
        self.target, self.index, self.ledger, self.pacer = target, index, ledger, pacer
        self.stop_event, self.timeout = stop, timeout
        self.rng = random.Random(f"{seed}/{target.name}/{index}")
        self.session = requests.Session()
        self.session.auth = ("admin", target.password)
        self.serial = 0

    def run(self) -> None:
        kinds, weights = zip(*MIX, strict=True)
        while not self.stop_event.is_set():
            if not self.target.up.wait(0.05):
                continue
            self.pacer.wait()
            if self.stop_event.is_set() or not self.target.up.is_set():
                continue
            write, body = self.build(self.rng.choices(kinds, weights)[0])
            if body is not None:
                self.send(write, body)

    def fresh_id(self) -> str:
        self.serial += 1
        return f"{self.target.name}-{self.index}-{self.serial}"

    def build(self, kind: str) -> tuple[Write, dict | None]:
        """Return the ledger entry and the operation body for one write of `kind`."""
        token = uuid.uuid4().hex[:16]
        at = time.monotonic() - self.ledger.started
        if kind == "delete":
            victim = self.ledger.take_for_delete(self.rng)
            if victim is None:
                kind = "insert"
            else:
                body = _op("delete", "items", ids=[victim])
                return Write("delete", "items", victim, token, self.target.name, at), body
        if kind == "insert":
            id_ = self.fresh_id()
            record = {"id": id_, "token": token, "writer": self.name}
            body = _op("insert", "items", records=[record])
            return Write("insert", "items", id_, token, self.target.name, at), body
        if kind == "upsert":
            id_ = self.rng.choice(HOT_IDS)
            body = _op("upsert", "hot", records=[{"id": id_, "token": token}])
            return Write("upsert", "hot", id_, token, self.target.name, at), body
        id_ = self.fresh_id()
        record = {"id": id_, "token": token}
        parts = [_op("insert", t, records=[record]) for t in ("pair_a", "pair_b")]
        body = {"operation": "transaction", "database": DATABASE, "operations": parts}
        return Write("transaction", "pair_a+pair_b", id_, token, self.target.name, at), body

    def send(self, write: Write, body: dict) -> None:
        try:
            resp = self.session.post(self.target.url + "/", json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            write.outcome, write.detail = "unknown", type(exc).__name__
        else:
            write.outcome, write.detail = classify(write, resp.status_code, _json(resp))
        self.ledger.record(write)
        if write.kind == "insert" and write.outcome == "acked":
            self.ledger.acked_insert(write.id)


def _op(operation: str, table: str, **fields: Any) -> dict:
    return {"operation": operation, "database": DATABASE, "table": table, **fields}


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text[:200]


def classify(write: Write, status: int, answer: Any) -> tuple[str, str]:
    """Turn an HTTP answer into (outcome, detail); a 200 that wrote nothing is "skipped"."""
    if status >= 500:
        return "unknown", f"HTTP {status}: {answer}"[:200]
    if status != 200:
        return "refused", f"HTTP {status}: {answer}"[:200]
    if write.kind == "insert" and write.id not in answer.get("inserted_hashes", []):
        return "skipped", str(answer)[:200]
    if write.kind == "delete" and write.id not in answer.get("deleted_hashes", []):
        return "skipped", str(answer)[:200]
    if write.kind == "transaction":
        written = [r.get("inserted_hashes", []) for r in answer.get("results", [])]
        if len(written) != 2 or not all(write.id in w for w in written):
            return "skipped", str(answer)[:200]
    return "acked", ""


class Workload:
    """All writers of the run; more join when a node joins mid-run."""

    def __init__(self, seed: int, rate: float, threads: int = 2, timeout: float = 5.0) -> None:
        self.seed, self.rate, self.threads, self.timeout = seed, rate, threads, timeout
        self.ledger = Ledger(time.monotonic())
        self.stop_event = threading.Event()
        self.writers: list[Writer] = []

    def add(self, target: Target) -> None:
        """Start this node's writer threads, sharing one pacer (the per-node rate cap)."""
        pacer = Pacer(self.rate)
        for index in range(self.threads):
            writer = Writer(
                target, index, self.ledger, pacer, self.stop_event, self.seed, self.timeout
            )
            self.writers.append(writer)
            writer.start()

    def stop(self) -> None:
        """Stop every writer and wait for its last request to finish (bounded by the timeout)."""
        self.stop_event.set()
        for writer in self.writers:
            writer.join(self.timeout + 5)
