"""harperctl status / wait --synced / nodes against three real agents, one frozen then killed.

harperctl runs as a subprocess with stdout a pipe, as a script would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from harness import PASSWORD, Cluster, count
from support import make_table

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("ctl-trio"), 3).start().join()
    make_table(cluster[0], "dev", "dog")
    yield cluster
    cluster.kill_all()


def ctl(agent, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARPERCTL_USER": "admin", "HARPERCTL_PASSWORD": PASSWORD}
    return subprocess.run(
        [sys.executable, "-m", "harperctl", "--url", agent.url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def tagged(out: str, kind: str) -> list[list[str]]:
    return [line.split("\t")[1:] for line in out.splitlines() if line.startswith(kind + "\t")]


def test_a_healthy_cluster_from_any_node(trio) -> None:
    assert ctl(trio[0], "wait", "--synced", "--timeout", "30").returncode == 0
    for asked in trio:
        done = ctl(asked, "status")
        assert done.returncode == 0, done.stderr
        nodes = tagged(done.stdout, "node")
        assert sorted(n[0] for n in nodes) == sorted(a.host for a in trio)
        assert [n[0] for n in nodes if n[1] == "yes"] == [asked.host]  # `this`
        assert all(n[3] == "yes" for n in nodes)
        links = tagged(done.stdout, "link")
        assert len(links) == 12 and all(link[3] == "connected" for link in links)
        assert tagged(done.stdout, "summary")[0][0].startswith("nodes 3/3 up · links 12/12 up")
    answer = json.loads(ctl(trio[1], "--json", "status").stdout)
    assert answer["synced"] is True and len(answer["nodes"]) == 3
    assert all(node["status"]["type"] == "cluster-status" for node in answer["nodes"])


def test_a_frozen_node_is_shown_and_waited_for(trio) -> None:
    frozen = trio[2]
    frozen.pause()
    try:
        records = [{"id": i, "name": f"dog{i}"} for i in range(2000)]
        trio[0].op({"operation": "insert", "database": "dev", "table": "dog", "records": records})
        done = ctl(trio[0], "status")
        assert done.returncode == 0, done.stderr
        answers = {n[0]: n[3] for n in tagged(done.stdout, "node")}
        assert answers[frozen.host] == "no"
        notes = [link[12] for link in tagged(done.stdout, "link") if link[1] == frozen.host]
        assert any(f"{frozen.host} does not answer" in note for note in notes)
        waited = ctl(trio[0], "wait", "--synced", "--timeout", "2")
        assert waited.returncode == 1
        assert f"{frozen.host} does not answer" in waited.stderr
    finally:
        frozen.resume()
    waited = ctl(trio[0], "--json", "wait", "--synced", "--timeout", "60")
    assert waited.returncode == 0, waited.stderr + waited.stdout
    assert json.loads(waited.stdout)["synced"] is True
    assert count(frozen, "dev", "dog") == 2000


def test_a_killed_node_is_down_everywhere_and_nodes_says_so(trio) -> None:
    gone = trio[2]
    gone.kill()
    done = ctl(trio[1], "status")
    links = tagged(done.stdout, "link")
    down = [link for link in links if link[1] == gone.host]
    assert down and all(link[3] == "disconnected" for link in down)
    assert all(link[4] == "" for link in down)  # no stale "0 behind" on a down link
    nodes = tagged(ctl(trio[1], "nodes").stdout, "node")
    assert {n[0]: n[3] for n in nodes} == {
        trio[0].host: "yes",
        trio[1].host: "yes",
        gone.host: "no",
    }
    gone.start()
    assert ctl(trio[1], "wait", "--synced", "--timeout", "60").returncode == 0
