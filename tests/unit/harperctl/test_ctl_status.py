"""harperctl status / wait --synced / nodes: the cluster-wide view, pure parts and the CLI.

The CLI tests answer each node's requests by URL (the nodes are asked concurrently), through
the same `client.new_transport` seam as the other harperctl tests.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from rich.console import Console
from status_samples import (
    COPYING,
    DOWN,
    HARPERDB_STATUS,
    HEALTHY,
    LAGGING,
    LONG_ERROR,
    NAMES,
    NOW,
    ops_url,
    rows,
    socket,
    status,
)

from harperctl import client, render_cluster, topology
from harperctl.commands import status as status_cmd
from harperctl.errors import ConnectionFailed
from harperctl.topology import NodeView


def nodes_of(answers: dict[str, dict | None], asked: str = "a") -> list[NodeView]:
    """The NodeViews of a round in which node `asked` was asked first."""
    views = []
    for name in NAMES:
        answer = answers.get(name)
        error = None if answer else "cannot connect: Connection refused"
        views.append(NodeView(name, ops_url(name), answer, error, this=name == asked))
    return views


def cluster_of(answers: dict[str, dict | None]) -> topology.Cluster:
    return topology.build(nodes_of(answers))


# --- the model ----------------------------------------------------------------------------


def test_known_nodes_come_from_hdb_nodes_and_the_connections() -> None:
    found = topology.known_nodes(HEALTHY["a"], rows()[:2], "http://a:9925")
    assert [(n.name, n.url, n.this, n.answered) for n in found] == [
        ("a", "http://a:9925", True, True),
        ("b", "http://b:9925", False, False),
        ("c", "http://c:9925", False, False),  # from a's connections: derived from ws://c:9925
    ]


@pytest.mark.parametrize(
    ("row", "https", "url"),
    [
        ({"operations_url": "https://n:9926", "url": "ws://n:9925"}, False, "https://n:9926"),
        ({"url": "ws://n:9925"}, False, "http://n:9925"),
        ({"url": "wss://n:9933/"}, False, "https://n:9933"),
        ({"url": "ws://n:9925"}, True, "https://n:9925"),
        ({"url": "n"}, False, None),
        ({}, False, None),
    ],
)
def test_operations_url(row: dict, https: bool, url: str | None) -> None:
    assert topology.operations_url(row, https) == url


def test_a_healthy_cluster_is_in_sync() -> None:
    cluster = cluster_of(HEALTHY)
    assert len(cluster.links) == 12 and not cluster.notes
    assert all(link.state == "connected" and not link.notes for link in cluster.links)
    assert topology.not_synced(cluster) == []
    summary = topology.summarize(cluster)
    assert (summary.nodes_up, summary.nodes, summary.links_up, summary.links) == (3, 3, 12, 12)
    assert summary.worst_lag is None and summary.divergent is None


def test_a_frozen_node_that_others_still_see_up_is_a_disagreement() -> None:
    cluster = cluster_of({**HEALTHY, "c": None})  # SIGSTOPped: its peers' links look fine
    notes = [(link.node, link.peer, link.notes) for link in cluster.links if link.notes]
    assert notes and all(peer == "c" for _, peer, _ in notes)
    assert notes[0][2] == ["a sees it up, but c does not answer"]
    reasons = topology.not_synced(cluster)
    assert reasons[0] == "c does not answer: cannot connect: Connection refused"


def test_the_two_ends_of_a_link_disagreeing_is_noted() -> None:
    answers = {**HEALTHY, "b": status("b", {"a": [{"database": "dev", "connected": False}]})}
    cluster = cluster_of(answers)
    a_from_b = next(
        link for link in cluster.links if (link.node, link.peer, link.database) == ("a", "b", "dev")
    )
    assert a_from_b.notes == ["a sees it up, b sees its link back down"]
    system = next(
        link
        for link in cluster.links
        if (link.node, link.peer, link.database) == ("a", "b", "system")
    )
    assert system.notes == ["b has no link with a for system"]


def test_lag_copies_and_uneven_origins_are_not_in_sync() -> None:
    lagging = cluster_of(LAGGING)
    summary = topology.summarize(lagging)
    assert summary.behind_records == 20028
    assert (summary.worst_lag.node, summary.worst_lag.peer) == ("b", "a")
    assert topology.not_synced(lagging) == ["b <- a dev: 20028 records behind"]
    assert "c <- a dev: copying" in topology.not_synced(cluster_of(COPYING))
    uneven = {**HEALTHY, "b": status("b")}
    uneven["b"]["origins"]["dev"][1].update(applied=7, peersHold=10)  # origin c on b
    reasons = topology.not_synced(cluster_of(uneven))
    assert "b: c on dev applied to 7, a peer holds 10" in reasons
    assert any(r.startswith("dev: origin 99 applied unevenly (a 10, b 7)") for r in reasons)


def test_unserved_origins_and_warnings_become_notes() -> None:
    answers = {**HEALTHY, "a": status("a", warnings=["replication.port admits by address"])}
    answers["a"]["origins"]["dev"][0].update(unserved=True, applied=3, peersHold=9)
    cluster = cluster_of(answers)
    assert cluster.notes == [
        "a: replication.port admits by address",
        "a: no link brings b's writes on dev (applied up to 3, peers hold 9)",
    ]
    assert "a: no link brings b on dev" in topology.not_synced(cluster)


def test_verify_results_reach_the_summary() -> None:
    answers = {
        **HEALTHY,
        "b": status("b", verify={"at": NOW - 30, "agreed": False, "divergent": 4}),
    }
    summary = topology.summarize(cluster_of(answers))
    assert (summary.divergent, summary.verify_at) == (4, NOW - 30)
    parts = render_cluster.summary_parts(summary, NOW)
    assert parts[-1] == "verify 30.0s ago: 4 keys apart"


# --- drawing ------------------------------------------------------------------------------


def draw(answers: dict[str, dict | None], width: int) -> str:
    con = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=True)
    render_cluster.print_cluster(con, cluster_of(answers), NOW)
    return con.file.getvalue()


def link_rows(out: str) -> list[list[str]]:
    """The cells of every links-table row (a row starts with a node name and a peer)."""
    found = []
    for line in out.splitlines():
        cells = line.split()
        if len(cells) >= 4 and cells[0] in NAMES and cells[1] in NAMES:
            found.append(cells)
    return found


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("name", ["healthy", "lagging", "copying", "down"])
def test_every_link_is_one_unwrapped_row_at_80_and_200_columns(name: str, width: int) -> None:
    answers = {"healthy": HEALTHY, "lagging": LAGGING, "copying": COPYING, "down": DOWN}[name]
    out = draw(answers, width)
    assert all(len(line) <= width for line in out.splitlines()), out
    assert len(link_rows(out)) == len(cluster_of(answers).links)
    assert "databa" not in out.replace("database", "")  # no header split over lines
    assert (
        " ".join(out.split())
        .rsplit("nodes ", 1)[1]
        .startswith(f"{topology.summarize(cluster_of(answers)).nodes_up}/")
    )


def test_narrow_terminals_lose_columns_from_the_right_not_cells() -> None:
    wide, narrow = draw(LAGGING, 200), draw(LAGGING, 80)
    assert "offset ms" in wide and "security" in wide and "signed (ws)" in wide
    assert "offset ms" not in narrow and "behind" in narrow
    row = next(r for r in link_rows(narrow) if r[:3] == ["b", "a", "dev"])
    assert row[:7] == ["b", "a", "dev", "connected", "20,028", "/", "12.5s"]


def test_a_copy_shows_a_bar_percent_and_time_left() -> None:
    out = draw(COPYING, 120)
    row = next(r for r in link_rows(out) if r[:3] == ["c", "a", "dev"])
    assert row[3] == "copying" and "████░░░░░░" in row and "42%" in row and "3.4s" in row


def test_a_down_node_errors_in_full_and_the_summary() -> None:
    out = draw(DOWN, 80)
    text = " ".join(out.split())
    assert "c does not answer: cannot connect: Connection refused" in text
    assert f"b <- c (dev, system): last error: {LONG_ERROR}" in text  # wrapped, never cut
    assert re.search(r"a\s+c\s+dev\s+down 42\.0s", out)
    assert "nodes 2/3 up · links 4/8 up" in text
    # a down link shows no latency, lag or backlog that would make it look healthy
    row = next(r for r in link_rows(out) if r[:3] == ["a", "c", "dev"])
    assert row[5:] == ["-", "-", "-"]


def test_pipes_get_tagged_tab_separated_lines() -> None:
    con = Console(width=40, file=io.StringIO(), color_system=None, force_terminal=False)
    render_cluster.print_cluster(con, cluster_of(DOWN), NOW)
    lines = con.file.getvalue().splitlines()
    assert lines[0] == "#node\t" + "\t".join(render_cluster.NODE_FIELDS)
    assert lines[1].split("\t") == ["node", "a", "yes", "http://a:9925", "yes", ""]
    link = next(line for line in lines if line.startswith("link\tb\tc\tdev\t"))
    fields = link.split("\t")
    assert len(fields) == len(render_cluster.LINK_FIELDS) + 1
    assert fields[4] == "disconnected" and fields[12] == LONG_ERROR  # whole, at 40 columns
    assert lines[-1].startswith("summary\tnodes 2/3 up")


def test_tsv_cells_escape_tabs_newlines_and_backslashes() -> None:
    assert render_cluster.tsv_cell("a\tb\nc\\d") == "a\\tb\\nc\\\\d"
    assert render_cluster.tsv_cell(None) == "" and render_cluster.tsv_cell(0.5) == "0.5"


# --- the commands, against nodes answered by URL ------------------------------------------


class Nodes:
    """A transport answering each node's requests by URL: cluster_status, hdb_nodes, health."""

    def __init__(self, answers: dict[str, dict | None]) -> None:
        self.answers = dict(answers)
        self.asked: list[tuple[str, str]] = []

    def request(self, method, url, headers, body, timeout, verify):
        name = url.split("//")[1].split(":")[0]
        operation = json.loads(body)["operation"] if body else "health"
        self.asked.append((name, operation))
        answer = self.answers.get(name)
        if answer is None:
            raise ConnectionFailed(f"cannot connect to {ops_url(name)}/: Connection refused")
        if operation == "search_by_value":
            payload: Any = rows()
        elif operation == "health":
            payload = {"status": "ok"}
        else:
            payload = answer
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    def close(self) -> None:
        pass


@pytest.fixture
def nodes(monkeypatch: pytest.MonkeyPatch, piped: None) -> Nodes:
    """Nodes a, b and c answering by URL; stdout a pipe (tagged TSV unless -o says)."""
    transport = Nodes(HEALTHY)
    monkeypatch.setattr(client, "new_transport", lambda: transport)
    monkeypatch.setattr(status_cmd, "now", lambda: NOW)
    return transport


def test_status_asks_every_node(run: Any, nodes: Nodes) -> None:
    outcome = run("--url", "http://a:9925", "status")
    assert outcome.code == 0, outcome.stderr
    assert sorted(set(nodes.asked)) == [
        ("a", "cluster_status"),
        ("a", "search_by_value"),
        ("b", "cluster_status"),
        ("c", "cluster_status"),
    ]
    lines = outcome.stdout.splitlines()
    assert sum(line.startswith("link\t") for line in lines) == 12
    assert (
        lines[-1] == "summary\tnodes 3/3 up · links 12/12 up · 0 records behind · verify: not run"
    )


def test_status_json_has_every_nodes_exact_answer(run: Any, nodes: Nodes) -> None:
    nodes.answers["c"] = None
    answer = json.loads(run("--url", "http://a:9925", "--json", "status").stdout)
    assert answer["type"] == "cluster-wide-status" and answer["synced"] is False
    by_name = {node["name"]: node for node in answer["nodes"]}
    assert by_name["a"]["status"] == HEALTHY["a"] and by_name["a"]["this"] is True
    assert by_name["c"]["status"] is None and "Connection refused" in by_name["c"]["error"]
    assert answer["summary"]["nodes_up"] == 2 and len(answer["links"]) == 8


def test_status_node_asks_one_node_by_name_or_url(run: Any, nodes: Nodes) -> None:
    outcome = run("--url", "http://a:9925", "--json", "status", "--node", "b")
    assert json.loads(outcome.stdout) == HEALTHY["b"]
    assert nodes.asked == [("a", "search_by_value"), ("b", "cluster_status")]
    nodes.asked.clear()
    outcome = run("status", "--node", "http://c:9925")
    assert nodes.asked == [("c", "cluster_status")]
    assert sum(line.startswith("link\tc\t") for line in outcome.stdout.splitlines()) == 4
    outcome = run("--url", "http://a:9925", "status", "--node", "zed")
    assert outcome.code == 2 and "no node named 'zed' (known: a, b, c)" in outcome.stderr
    assert run("status", "--node", "b", "--all").code == 2


class Clock:
    """Moves only when slept on; interrupts after `naps` sleeps."""

    def __init__(self, naps: int) -> None:
        self.time, self.naps, self.slept = NOW, naps, []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if len(self.slept) >= self.naps:
            raise KeyboardInterrupt
        self.time += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, nodes: Nodes) -> Clock:
    fake = Clock(naps=3)
    monkeypatch.setattr(status_cmd, "now", fake.now)
    monkeypatch.setattr(status_cmd, "sleep", fake.sleep)
    return fake


def test_watch_survives_nodes_going_away_and_coming_back(
    run: Any, nodes: Nodes, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rounds = iter([{**HEALTHY, "c": None}, {**HEALTHY, "a": None}, HEALTHY])

    def next_round(seconds: float) -> None:
        nodes.answers = next(rounds, HEALTHY)
        Clock.sleep(clock, seconds)

    monkeypatch.setattr(status_cmd, "sleep", next_round)
    nodes.answers = {**HEALTHY}
    outcome = run("--url", "http://a:9925", "status", "--watch", "--interval", "1")
    assert outcome.code == 130
    summaries = [line for line in outcome.stdout.splitlines() if line.startswith("summary")]
    assert [s.split("\t")[1].split(" ·")[0] for s in summaries] == [
        "nodes 3/3 up",
        "nodes 2/3 up",  # c went away
        "nodes 2/3 up",  # a, the node asked, went away: the others are still asked
    ]
    assert "a\tyes\thttp://a:9925\tno\tcannot connect" in outcome.stdout


def test_watch_on_a_terminal_redraws_in_place_with_the_time() -> None:
    con = Console(width=100, file=io.StringIO(), color_system=None, force_terminal=True)
    with render_cluster.watch_cluster(con, 2.0) as show:
        show(cluster_of(HEALTHY), NOW, None)
        show(cluster_of(DOWN), NOW + 2, "cannot connect (retrying)")
    out = con.file.getvalue()
    assert "\x1b[" in out  # cursor movement: redrawn in place
    last = out.rsplit("refreshed ", 1)[1]
    assert "every 2s · Ctrl-C to stop · cannot connect (retrying)" in last.splitlines()[0]
    assert last.splitlines()[1].startswith("nodes 2/3 up")


def test_wait_synced_returns_at_once_when_in_sync(run: Any, nodes: Nodes, clock: Clock) -> None:
    outcome = run("--url", "http://a:9925", "wait", "--synced")
    assert outcome.code == 0 and outcome.stdout == "in sync after 0.0s\n" and clock.slept == []
    outcome = run("--url", "http://a:9925", "wait", "--synced", "--json")
    assert json.loads(outcome.stdout) == {"synced": True, "waited_seconds": 0.0, "reasons": []}


def test_wait_synced_waits_for_catch_up(
    run: Any, nodes: Nodes, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes.answers = dict(LAGGING)

    def caught_up(seconds: float) -> None:
        Clock.sleep(clock, seconds)
        nodes.answers = dict(HEALTHY)

    monkeypatch.setattr(status_cmd, "sleep", caught_up)
    outcome = run("--url", "http://a:9925", "wait", "--synced", "--interval", "0.5")
    assert outcome.code == 0 and clock.slept == [0.5]
    assert "waiting for sync (0s): b <- a dev: 20028 records behind" in outcome.stderr


def test_wait_synced_times_out_with_the_reasons(run: Any, nodes: Nodes, clock: Clock) -> None:
    clock.naps = 100
    nodes.answers = {**HEALTHY, "c": None}
    outcome = run("--url", "http://a:9925", "--json", "wait", "--synced", "--timeout", "3")
    assert outcome.code == 1
    assert sum(clock.slept) == pytest.approx(3.0)
    answer = json.loads(outcome.stdout)
    assert answer["synced"] is False and answer["waited_seconds"] == 3.0
    assert answer["reasons"][0].startswith("c does not answer")
    assert "not in sync after 3s:\n  c does not answer" in outcome.stderr
    assert run("wait").code == 2


def test_nodes_marks_this_node_and_which_answer(run: Any, nodes: Nodes) -> None:
    nodes.answers["c"] = None
    out = run("--url", "http://a:9925", "nodes").stdout.splitlines()
    assert out[1].split("\t")[:5] == ["node", "a", "yes", "http://a:9925", "yes"]
    assert out[3].split("\t")[:5] == ["node", "c", "", "http://c:9925", "no"]
    raw = run("--url", "http://a:9925", "--json", "nodes").stdout
    assert json.loads(raw) == rows()


def test_harperdb_itself_draws_with_dashes_for_what_it_does_not_say() -> None:
    con = Console(width=100, file=io.StringIO(), color_system=None, force_terminal=True)
    one = topology.build([NodeView("server-one", "https://server-one:9925", HARPERDB_STATUS)])
    render_cluster.print_cluster(con, one, NOW)
    out = con.file.getvalue()
    assert re.search(r"server-one\s+server-two\s+data\s+connected\s+-\s+-\s+0\.48", out)
    assert re.search(r"server-one\s+server-two\s+system\s+copying", out)
    assert "nodes 1/1 up · links 2/2 up · 0 records behind" in " ".join(out.split())


def test_behind_is_shown_per_origin_when_several_are_behind() -> None:
    behind = [
        {"origin": "a", "records": 20028, "seconds": 12.5},
        {"origin": "c", "records": 7, "seconds": 0.25},
        {"origin": "d", "records": 0, "seconds": 0.0},
    ]
    answers = {
        **HEALTHY,
        "b": status("b", {"a": [socket("dev", recordsBehind=20035, behind=behind)]}),
    }
    out = draw(answers, 120)
    assert "b <- a dev: behind a 20,028 (12.5s), c 7 (0.2s)" in out
    row = next(r for r in link_rows(out) if r[:3] == ["b", "a", "dev"])
    assert row[4:7] == ["20,035", "/", "12.5s"]


def test_status_output_modes(run: Any, nodes: Nodes) -> None:
    items = [
        json.loads(line)
        for line in run("--url", "http://a:9925", "status", "-o", "jsonl").stdout.splitlines()
    ]
    kinds = [item["kind"] for item in items]
    assert kinds.count("node") == 3 and kinds.count("link") == 12 and kinds[-1] == "summary"
    assert items[-1]["synced"] is True and "status" not in items[0]
    table = run("--url", "http://a:9925", "status", "-o", "table").stdout
    assert "links (node <- from)" in table and "\t" not in table
    assert run("--url", "http://a:9925", "status", "--json", "-o", "tsv").code == 2
