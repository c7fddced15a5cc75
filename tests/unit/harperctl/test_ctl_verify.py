"""harperctl verify: one cluster_verify per table, a table per database, exit 1 on
divergence, --json in the operation's shape, progress from cluster_status on a terminal."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from harperctl import client, terminal

DESCRIBE = {"dev": {"dog": {"replicate": True}, "local": {"replicate": False}}, "system": {}}


def _answer(divergent: list, repaired: int | None = None) -> dict:
    out = {
        "agreed": not divergent,
        "divergent": len(divergent),
        "nodes": ["a", "b"],
        "skipped": [],
        "databases": {
            "dev": {
                "dog": {
                    "nodes": ["a", "b"],
                    "skipped": {},
                    "divergent": divergent,
                    "ranges_compared": 17,
                    "rounds": 2,
                    "seconds": 0.5,
                }
            }
        },
        "bytes": 1234,
        "seconds": 0.6,
    }
    if repaired is not None:
        out["repaired"] = repaired
    return out


KEY = {
    "key": 7,
    "nodes": {"a": {"version": 9, "origin": "a", "doc": "abc"}, "b": None},
    "winner": {"version": 9, "origin": "a", "deleted": False},
}


class Agent:
    """Answer by operation; cluster_verify takes `delay` seconds (thread-safe)."""

    def __init__(self, verify: dict, delay: float = 0.0) -> None:
        self.verify, self.delay = verify, delay
        self.ops: list[dict] = []
        self.lock = threading.Lock()

    def request(self, method, url, headers, body, timeout, verify):
        op = json.loads(body)
        with self.lock:
            self.ops.append(op)
        if op["operation"] == "describe_all":
            answer: Any = DESCRIBE
        elif op["operation"] == "cluster_status":
            answer = {"verifying": {"phase": "indexing", "nodes": ["a", "b"]}}
        else:
            time.sleep(self.delay)
            answer = self.verify
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def close(self) -> None:
        pass


@pytest.fixture
def agent(monkeypatch):
    holder: dict[str, Agent] = {}

    def use(verify: dict, delay: float = 0.0) -> Agent:
        holder["agent"] = Agent(verify, delay)
        monkeypatch.setattr(client, "new_transport", lambda: holder["agent"])
        return holder["agent"]

    return use


def test_agreeing_exits_0_and_asks_per_replicated_table(agent, run) -> None:
    fake = agent(_answer([]))
    out = run("--url", "http://h:9925", "verify")
    assert out.code == 0, out.stderr
    verifies = [op for op in fake.ops if op["operation"] == "cluster_verify"]
    assert verifies == [{"operation": "cluster_verify", "database": "dev", "table": "dog"}]
    assert "every node agrees" in out.stdout


def test_divergence_exits_1_with_each_node_view(agent, run) -> None:
    agent(_answer([KEY]))
    out = run("--url", "http://h:9925", "verify", "dev.dog")
    assert out.code == 1
    assert "absent" in out.stdout and "v9 a" in out.stdout
    assert "1 keys differ between nodes" in out.stderr


def test_json_repair_is_the_operation_shape(agent, run) -> None:
    fake = agent(_answer([], repaired=3))
    out = run("--url", "http://h:9925", "--json", "verify", "-d", "dev", "-t", "dog", "--repair")
    assert out.code == 0
    answer = json.loads(out.stdout)
    assert answer["agreed"] is True and answer["repaired"] == 3
    assert fake.ops[-1]["repair"] is True


def test_usage_errors(agent, run) -> None:
    agent(_answer([]))
    assert run("--url", "http://h:9925", "verify", "--table", "dog").code == 2
    assert run("--url", "http://h:9925", "verify", "dev.dog", "--database", "dev").code == 2


def test_on_a_terminal_progress_is_polled_from_cluster_status(agent, run, monkeypatch) -> None:
    monkeypatch.setattr(terminal, "stderr_is_terminal", lambda: True)
    fake = agent(_answer([]), delay=1.3)
    out = run("--url", "http://h:9925", "verify", "dev.dog")
    assert out.code == 0, out.stderr
    polls = [op for op in fake.ops if op["operation"] == "cluster_status"]
    assert len(polls) >= 2  # every half second while the verify ran
