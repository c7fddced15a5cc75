"""Cluster commands: add/set/update/remove-node, nodes, status (--watch), routes."""

from __future__ import annotations

import base64
import copy
import io
import json
import re
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from rich.console import Console

from harperctl import render
from harperctl.commands import cluster

NOW = parsedate_to_datetime("Tue, 01 Dec 2026 10:14:10 GMT").timestamp()
ADDED = {"message": "Successfully added 'ws://server-two:9925' to cluster"}

DEV_SOCKET = {
    "database": "dev",
    "connected": True,
    "latency": 0.328,
    "thread_id": 0,
    "nodes": ["127.0.0.12"],
    "lastCommitConfirmed": None,
    "lastReceivedRemoteTime": "Tue, 01 Dec 2026 10:14:05 GMT",
    "lastReceivedLocalTime": "Tue, 01 Dec 2026 10:14:06 GMT",
    "lastReceivedVersion": 1796120045844.0,
    "sendingMessage": None,
    "backPressurePercent": 0.0,
    "lastReceivedStatus": "Waiting",
    "recordsBehind": 0,
    "lagSeconds": 0.0,
    "clockOffsetMs": -0.029,
    "recordsReceived": 3,
    "copy": {
        "state": "done",
        "reason": "full",
        "copied": 2,
        "total": 2,
        "percent": 100.0,
        "records_per_second": 1709.5,
        "eta_seconds": 0.0,
    },
    "lastConnectionError": {
        "reason": "ws://127.0.0.12:9925 refused the connection: HTTP 401 ...",
        "time": "Tue, 01 Dec 2026 10:14:03 GMT",
    },
}
COPYING_SOCKET = {
    "database": "big",
    "connected": True,
    "latency": 12.5,
    "lastReceivedStatus": "Copying",
    "lastReceivedLocalTime": "Tue, 01 Dec 2026 09:14:06 GMT",
    "recordsBehind": 5800,
    "lagSeconds": 75.3,
    "clockOffsetMs": 1234.5,
    "copy": {
        "state": "copying",
        "reason": "full",
        "copied": 4200,
        "total": 10000,
        "percent": 42.0,
        "records_per_second": 1400.0,
        "eta_seconds": 3.4,
    },
}
DOWN_SOCKET = {
    "database": "system",
    "connected": False,
    "latency": None,
    "lastReceivedLocalTime": None,
    "recordsBehind": None,
    "lagSeconds": None,
    "clockOffsetMs": None,
    "copy": None,
    "lastConnectionError": {
        "reason": "ws://127.0.0.12:9925 could not connect: [Errno 111] Connection refused",
        "time": "Tue, 01 Dec 2026 10:14:09 GMT",
    },
}
STATUS = {
    "type": "cluster-status",
    "node_name": "127.0.0.11",
    "url": "ws://127.0.0.11:9925",
    "is_enabled": True,
    "connections": [
        {
            "name": "127.0.0.12",
            "url": "ws://127.0.0.12:9925",
            "replicates": True,
            "database_sockets": [DEV_SOCKET, COPYING_SOCKET, DOWN_SOCKET],
        }
    ],
}
# What HarperDB itself answers: none of our extra fields, an error with a code.
HARPERDB_STATUS = {
    "type": "cluster-status",
    "node_name": "server-one",
    "is_enabled": True,
    "connections": [
        {
            "name": "server-two",
            "url": "wss://server-two:9933",
            "replicates": True,
            "replicateByDefault": True,
            "database_sockets": [
                {
                    "database": "data",
                    "connected": True,
                    "latency": 0.48,
                    "thread_id": 1,
                    "nodes": ["server-two"],
                    "lastCommitConfirmed": "Tue, 01 Dec 2026 10:14:01 GMT",
                    "lastReceivedRemoteTime": "Tue, 01 Dec 2026 10:13:00 GMT",
                    "lastReceivedLocalTime": "Tue, 01 Dec 2026 10:13:10 GMT",
                    "lastReceivedVersion": 1796119990000.5,
                    "backPressurePercent": 0,
                    "lastReceivedStatus": "Waiting",
                },
                {
                    "database": "system",
                    "connected": True,
                    "lastReceivedStatus": "Copying",
                    "lastConnectionError": {"code": "ECONNRESET", "time": "x"},
                },
            ],
        },
        {"name": "server-three", "url": "wss://server-three:9933", "replicates": False},
    ],
}
NODES = [
    {"name": "127.0.0.12", "url": "ws://127.0.0.12:9925", "replicates": True, "shard": 2},
    {
        "name": "127.0.0.11",
        "url": "ws://127.0.0.11:9925",
        "replicates": {"sendsTo": [{"target": "b", "database": "dev"}], "receivesFrom": []},
        "subscriptions": [
            {"database": "dev", "table": "dog", "subscribe": True, "publish": False},
            {"database": "ops", "subscribe": True, "publish": True},
        ],
    },
]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def console(width: int = 140, **kwargs: Any) -> Console:
    return Console(width=width, file=io.StringIO(), color_system=None, **kwargs)


def text(con: Console) -> str:
    return con.file.getvalue()  # type: ignore[attr-defined]


def cells(output: str, first: str) -> list[str]:
    """Return the cells of the status row starting with `first` (cells are 2+ spaces apart)."""
    for line in output.splitlines():
        found = re.split(r"\s{2,}", line.strip())
        if found[0] == first:
            return found
    raise AssertionError(f"no row {first!r} in\n{output}")


# --- add-node, set-node, update-node ----------------------------------------------------


def test_add_node_sends_the_own_credentials_to_the_peer(run: Any, fake: Any) -> None:
    fake.reply(ADDED)
    outcome = run("add-node", "server-two", "--user", "admin", "--password", "pw")
    assert outcome.code == 0, outcome.stderr
    assert fake.bodies == [
        {
            "operation": "add_node",
            "hostname": "server-two",
            "authorization": {"username": "admin", "password": "pw"},
            "verify_tls": True,
        }
    ]
    assert fake.sent[0].headers["Authorization"] == basic("admin", "pw")
    assert outcome.stdout == ADDED["message"] + "\n"


def test_add_node_global_credentials_before_the_command(run: Any, fake: Any) -> None:
    fake.reply(ADDED)
    env = {"HARPERCTL_PASSWORD": "envpw"}
    assert run("-u", "admin", "add-node", "server-two", env=env).code == 0
    assert fake.last["authorization"] == {"username": "admin", "password": "envpw"}
    assert fake.sent[0].headers["Authorization"] == basic("admin", "envpw")


def test_add_node_asks_once_for_the_shared_password(run: Any, fake: Any, on_terminal: None) -> None:
    fake.reply(ADDED)
    outcome = run("add-node", "server-two", "-u", "admin", input="s3cret\n")
    assert outcome.code == 0 and outcome.stderr.count("Password for admin") == 1
    assert fake.last["authorization"] == {"username": "admin", "password": "s3cret"}


def test_add_node_every_option(run: Any, fake: Any) -> None:
    fake.reply(ADDED)
    outcome = run(
        "-u",
        "admin",
        "-p",
        "pw",
        "add-node",
        "wss://10.0.0.2:9933",
        "--user-peer",
        "peer",
        "--password-peer",
        "ppw",
        "--no-verify-tls",
        "--start-time",
        "2026-01-01T00:00:00Z",
        "--subscription",
        "dev.dog:sub",
        "--subscription",
        "dev.cat:pub",
        "--subscription",
        "ops",
        "--subscription",
        "logs:both",
        "--retain-authorization",
    )
    assert outcome.code == 0, outcome.stderr
    assert fake.last == {
        "operation": "add_node",
        "url": "wss://10.0.0.2:9933",
        "authorization": {"username": "peer", "password": "ppw"},
        "verify_tls": False,
        "start_time": "2026-01-01T00:00:00Z",
        "subscriptions": [
            {"database": "dev", "table": "dog", "subscribe": True, "publish": False},
            {"database": "dev", "table": "cat", "subscribe": False, "publish": True},
            {"database": "ops", "subscribe": True, "publish": True},
            {"database": "logs", "subscribe": True, "publish": True},
        ],
        "retain_authorization": True,
    }
    assert fake.sent[0].headers["Authorization"] == basic("admin", "pw")


def test_add_node_host_with_url_peer_auth_and_epoch_start(run: Any, fake: Any) -> None:
    fake.reply(ADDED)
    args = ("add-node", "server-two", "--url", "ws://10.0.0.2:9925", "--peer-auth", "Bearer t")
    assert run("--token", "jwt", *args, "--start-time", "1767225600000").code == 0
    assert fake.last == {
        "operation": "add_node",
        "hostname": "server-two",
        "url": "ws://10.0.0.2:9925",
        "authorization": "Bearer t",
        "verify_tls": True,
        "start_time": 1767225600000,
    }


def test_add_node_with_only_a_token_sends_no_peer_credentials(run: Any, fake: Any) -> None:
    fake.reply(ADDED)
    assert run("--token", "jwt", "add-node", "server-two").code == 0
    assert fake.last == {"operation": "add_node", "hostname": "server-two", "verify_tls": True}


def test_add_node_peer_password_is_asked_on_a_terminal(
    run: Any, fake: Any, on_terminal: None
) -> None:
    fake.reply(ADDED)
    outcome = run("--token", "jwt", "add-node", "server-two", "--user-peer", "p", input="x\n")
    assert outcome.code == 0 and "Password for p on the peer" in outcome.stderr
    assert fake.last["authorization"] == {"username": "p", "password": "x"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--peer-auth", "Basic x", "--user-peer", "p"], "not both"),
        (["--password-peer", "x"], "--password-peer needs --user-peer"),
        (["--user-peer", "p"], "no password for peer user 'p'"),
        (["--subscription", "dev:sideways"], "DB[.TABLE][:sub|:pub|:both]"),
        (["--subscription", ":sub"], "DB[.TABLE][:sub|:pub|:both]"),
    ],
)
def test_add_node_usage_errors(run: Any, fake: Any, args: list[str], message: str) -> None:
    outcome = run("--token", "jwt", "add-node", "server-two", *args)
    assert outcome.code == 2 and message in outcome.stderr and fake.sent == []


def test_add_node_url_twice_is_a_usage_error(run: Any, fake: Any) -> None:
    outcome = run("add-node", "ws://a:9925", "--url", "ws://b:9925")
    assert outcome.code == 2 and "already a URL" in outcome.stderr and fake.sent == []


@pytest.mark.parametrize(
    ("command", "operation"), [("set-node", "set_node"), ("update-node", "update_node")]
)
def test_set_and_update_node(run: Any, fake: Any, command: str, operation: str) -> None:
    fake.reply({"message": "Successfully updated 'ws://server-two:9925'"})
    outcome = run(command, "server-two", "-u", "admin", "-p", "pw", "--subscription", "dev")
    assert outcome.code == 0, outcome.stderr
    assert fake.last == {
        "operation": operation,
        "hostname": "server-two",
        "authorization": {"username": "admin", "password": "pw"},
        "verify_tls": True,
        "subscriptions": [{"database": "dev", "subscribe": True, "publish": True}],
    }
    assert outcome.stdout == "Successfully updated 'ws://server-two:9925'\n"


def test_agent_refusal_exits_1(run: Any, fake: Any) -> None:
    fake.reply({"error": "could not reach wss://server-two:9933: refused"}, status=400)
    outcome = run("--token", "jwt", "add-node", "server-two")
    assert outcome.code == 1
    assert outcome.stderr == "harperctl: could not reach wss://server-two:9933: refused\n"


# --- remove-node ------------------------------------------------------------------------


def test_remove_node_with_yes(run: Any, fake: Any) -> None:
    fake.reply({"message": "Successfully removed 'server-two' from cluster"})
    outcome = run("remove-node", "server-two", "--yes")
    assert fake.bodies == [{"operation": "remove_node", "hostname": "server-two"}]
    assert outcome.stdout == "Successfully removed 'server-two' from cluster\n"


def test_remove_node_refuses_without_yes_off_a_terminal(run: Any, fake: Any) -> None:
    outcome = run("remove-node", "server-two", input="y\n")
    assert outcome.code == 2 and fake.sent == []
    assert "refusing to remove node 'server-two' from the cluster without --yes" in outcome.stderr


def test_remove_node_asks_on_a_terminal(run: Any, fake: Any, on_terminal: None) -> None:
    assert run("remove-node", "server-two", input="n\n").code == 1 and fake.sent == []
    fake.reply({"message": "Successfully removed 'server-two' from cluster"})
    outcome = run("remove-node", "server-two", input="y\n")
    assert outcome.code == 0 and "Really remove node 'server-two'" in outcome.stderr
    assert fake.last == {"operation": "remove_node", "hostname": "server-two"}


# --- nodes ------------------------------------------------------------------------------


def test_nodes(run: Any, fake: Any) -> None:
    fake.reply(NODES)
    outcome = run("nodes")
    assert fake.last == {
        "operation": "search_by_value",
        "database": "system",
        "table": "hdb_nodes",
        "attribute": "name",
        "value": "*",
        "get_attributes": ["*"],
    }
    out = outcome.stdout
    lines = [line for line in out.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in lines] == ["127.0.0.11", "127.0.0.12"]
    assert "│ sendsTo: b/dev; receivesFrom: - │ dev.dog:sub, ops:both │" in lines[0]
    assert "│ ws://127.0.0.12:9925 │ yes " in lines[1] and lines[1].endswith("│     2 │")
    assert "2 nodes" in out
    fake.reply(NODES)
    assert run("--json", "nodes").stdout == json.dumps(NODES, indent=2) + "\n"
    fake.reply([])
    assert run("nodes").stdout == "no nodes\n"


# --- status -----------------------------------------------------------------------------


def test_status_human(run: Any, fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "now", lambda: NOW)
    fake.reply(STATUS)
    outcome = run("status")
    assert outcome.code == 0, outcome.stderr
    assert fake.bodies == [{"operation": "cluster_status"}]
    lines = outcome.stdout.splitlines()
    assert lines[0] == "node 127.0.0.11  url ws://127.0.0.11:9925"
    assert lines[1].rstrip() == "peer 127.0.0.12  ws://127.0.0.12:9925  security -"
    out = outcome.stdout
    assert cells(out, "dev")[:8] == [
        "dev",
        "connected",
        "0.33",
        "0.0s",
        "0",
        "100% 2/2",
        "-0.03",
        "4s ago",
    ]
    assert cells(out, "big") == [
        "big",
        "copying",
        "12.5",
        "1m15s",
        "5,800",
        "42% 4,200/10,000 eta 3s",
        "1,234",
        "1h ago",
    ]
    down = cells(out, "system")
    assert down[:7] == ["system", "disconnected", "-", "-", "-", "-", "-"]
    assert down[7] == "-" and down[8].startswith("could not connect")


def render_status(status: Any, width: int = 140) -> str:
    con = console(width)
    render.print_cluster_status(con, status, NOW)
    return text(con)


def test_status_columns_and_short_errors() -> None:
    out = render_status(STATUS)
    header = " ".join(line.strip() for line in out.splitlines()[2:4])
    for name in ("database", "state", "latency", "ms", "lag", "behind", "copy", "clock"):
        assert name in header
    assert "offset ms" in header and "received" in header and "last error" in header
    # a link that is up again hides its past error; the peer's URL is dropped from its own
    # errors; long ones are cut
    assert len(cells(out, "dev")) == 8  # no ninth cell: the error is not shown
    assert cells(out, "system")[8] == "could not connect: [Errno 111] Connecti…"


def test_status_fits_a_narrow_console() -> None:
    out = render_status(STATUS, width=100)
    assert all(len(line) <= 100 for line in out.splitlines())
    assert "eta 3s" in out and "4,200/10,000" in out and "disconnected" in out
    words = " ".join(out.split())
    assert "HTTP 401" not in words and "could not connect" in words


def test_status_of_harperdb_itself() -> None:
    out = render_status(HARPERDB_STATUS)
    assert out.splitlines()[0] == "node server-one"
    assert cells(out, "data") == ["data", "connected", "0.48", "-", "-", "-", "-", "1m ago"]
    assert cells(out, "system") == ["system", "copying", "-", "-", "-", "-", "-", "-", "ECONNRESET"]
    assert "peer server-three  wss://server-three:9933  security -  (not replicating)" in out
    assert "no database sockets" in out


def test_status_without_connections_or_odd_answers() -> None:
    assert render_status({"node_name": "a", "is_enabled": False, "connections": []}) == (
        "node a\nno peer connections\n"
    )
    assert render_status({}) == "node ?\nno peer connections\n"
    assert render_status(["not", "a", "status"]).startswith("[")


def test_status_json_is_exactly_the_answer(run: Any, fake: Any) -> None:
    fake.reply(STATUS)
    outcome = run("--json", "cluster-status")
    assert outcome.stdout == json.dumps(STATUS, indent=2) + "\n"
    assert fake.bodies == [{"operation": "cluster_status"}]


class FakeClock:
    """A clock that moves only when slept on, and interrupts after `naps` sleeps."""

    def __init__(self, naps: int, start: float = NOW) -> None:
        self.time = start
        self.naps = naps
        self.slept: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if len(self.slept) >= self.naps:
            raise KeyboardInterrupt
        self.time += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake_clock = FakeClock(naps=3)
    monkeypatch.setattr(cluster, "now", fake_clock.now)
    monkeypatch.setattr(cluster, "sleep", fake_clock.sleep)
    return fake_clock


def test_watch_json_prints_one_document_per_line(run: Any, fake: Any, clock: FakeClock) -> None:
    answers = []
    for number in range(3):
        answer = copy.deepcopy(STATUS)
        answer["connections"][0]["database_sockets"][0]["recordsReceived"] = number
        answers.append(answer)
        fake.reply(answer)
    outcome = run("--json", "status", "--watch", "--interval", "0.5")
    assert outcome.code == 130 and outcome.stderr.strip() == "harperctl: interrupted"
    assert outcome.stdout.splitlines() == [json.dumps(answer) for answer in answers]
    assert fake.bodies == [{"operation": "cluster_status"}] * 3
    assert clock.slept == [0.5, 0.5, 0.5]


def test_watch_redraws_until_interrupted(run: Any, fake: Any, clock: FakeClock) -> None:
    for _ in range(3):
        fake.reply(STATUS)
    outcome = run("status", "--watch")
    assert outcome.code == 130 and clock.slept == [2.0, 2.0, 2.0]
    frames = outcome.stdout.split("node 127.0.0.11  url ws://127.0.0.11:9925\n")[1:]
    assert len(frames) == 3
    # "last received" follows the fake clock: 4s, then 6s, then 8s ago
    assert [cells(frame, "dev")[7] for frame in frames] == ["4s ago", "6s ago", "8s ago"]


def test_watch_keeps_going_when_the_agent_stops_answering(
    run: Any, fake: Any, clock: FakeClock
) -> None:
    fake.reply(STATUS)
    fake.fail(ConnectionRefusedError(111, "Connection refused"))
    fake.reply(STATUS)
    outcome = run("status", "-w")
    assert outcome.code == 130 and len(fake.sent) == 3
    assert outcome.stdout.count("peer 127.0.0.12") == 3
    assert "cannot connect to http://127.0.0.1:9925: Connection refused (retrying)" in (
        outcome.stdout
    )
    clock.slept.clear()
    fake.reply(STATUS)
    fake.fail(ConnectionRefusedError(111, "Connection refused"))
    fake.reply(STATUS)
    outcome = run("--json", "status", "-w")
    assert outcome.code == 130 and len(outcome.stdout.splitlines()) == 2
    assert "Connection refused (retrying)" in outcome.stderr


def test_watch_fails_when_the_first_poll_fails(run: Any, fake: Any, clock: FakeClock) -> None:
    fake.fail(ConnectionRefusedError(111, "Connection refused"))
    outcome = run("status", "--watch")
    assert outcome.code == 3 and clock.slept == []
    fake.reply({"error": "forbidden"}, status=403)
    assert run("--json", "status", "--watch").code == 1


def test_interval_needs_watch(run: Any, fake: Any) -> None:
    outcome = run("status", "--interval", "1")
    assert outcome.code == 2 and "--interval needs --watch" in outcome.stderr
    assert run("status", "--watch", "--interval", "0").code == 2 and fake.sent == []


def test_watch_on_a_terminal_draws_in_place() -> None:
    con = console(100, force_terminal=True)
    with render.watch_cluster_status(con, "every 2s; Ctrl-C to stop") as show:
        show(STATUS, NOW, None)
        show(HARPERDB_STATUS, NOW, "cannot connect (retrying)")
    out = text(con)
    assert "\x1b[" in out  # cursor movement: redrawn in place
    last_frame = out.rsplit("node ", 1)[1]
    assert last_frame.startswith("server-one") and "cannot connect (retrying)" in last_frame
    assert "every 2s; Ctrl-C to stop" in last_frame


# --- render helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("socket", "state"),
    [
        ({"connected": True}, "connected"),
        ({"connected": False, "copy": {"state": "copying"}}, "disconnected"),
        ({"connected": True, "copy": {"state": "copying"}}, "copying"),
        ({"connected": True, "lastReceivedStatus": "Copying"}, "copying"),
        ({}, "unknown"),
    ],
)
def test_socket_state(socket: dict, state: str) -> None:
    assert render.socket_state(socket) == state


@pytest.mark.parametrize(
    ("progress", "shown"),
    [
        (None, "-"),
        (
            {"state": "copying", "copied": 4200, "total": 10000, "eta_seconds": 125},
            "42% 4,200/10,000 eta 2m05s",
        ),
        ({"state": "copying", "copied": 0, "total": 10, "eta_seconds": None}, "0% 0/10 eta ?"),
        ({"state": "done", "copied": 2, "total": 2, "percent": 100.0}, "100% 2/2"),
        ({"state": "failed", "copied": 1}, "1 failed"),
    ],
)
def test_copy_progress(progress: Any, shown: str) -> None:
    assert render.copy_progress(progress) == shown


def test_relative_time() -> None:
    assert render.relative_time(None, NOW) == "-"
    assert render.relative_time("Tue, 01 Dec 2026 10:14:10 GMT", NOW) == "0s ago"
    assert render.relative_time("2026-12-01T10:10:10Z", NOW) == "4m ago"
    assert render.relative_time((NOW - 3 * 86400) * 1000, NOW) == "3d ago"
    assert render.relative_time("Tue, 01 Dec 2026 10:15:00 GMT", NOW) == "0s ago"  # skew
    assert render.relative_time("yesterday", NOW) == "yesterday"


# --- routes -----------------------------------------------------------------------------


def test_routes_list(run: Any, fake: Any) -> None:
    routes = ["wss://server-two:9933", {"hostname": "server-three", "port": 9933}]
    fake.reply(routes)
    out = run("routes", "list").stdout
    assert fake.last == {"operation": "cluster_get_routes"}
    assert "│ wss://server-two:9933 │" in out and "│ server-three:9933     │" in out
    fake.reply(routes)
    assert run("--json", "routes", "list").stdout == json.dumps(routes, indent=2) + "\n"
    fake.reply([])
    assert run("routes", "list").stdout == "no routes\n"


def test_routes_add_and_delete(run: Any, fake: Any) -> None:
    fake.reply(
        {
            "message": "cluster routes successfully set",
            "set": [{"hostname": "b", "port": 9933}, "123"],
            "skipped": ["wss://a:9933"],
        }
    )
    outcome = run("routes", "add", "wss://a:9933", '{"hostname": "b", "port": 9933}', "123")
    assert fake.last == {
        "operation": "cluster_set_routes",
        "routes": ["wss://a:9933", {"hostname": "b", "port": 9933}, "123"],
    }
    assert outcome.stdout == (
        "cluster routes successfully set\nset: b:9933, 123\nskipped: wss://a:9933\n"
    )
    answer = {"message": "cluster routes successfully deleted", "deleted": ["x:1"], "skipped": []}
    fake.reply(answer)
    outcome = run("--json", "routes", "delete", "x:1", "[1]")
    assert fake.last == {"operation": "cluster_delete_routes", "routes": ["x:1", "[1]"]}
    assert outcome.stdout == json.dumps(answer, indent=2) + "\n"


def test_routes_need_a_route(run: Any, fake: Any) -> None:
    assert run("routes", "add").code == 2 and run("routes", "delete").code == 2
    assert fake.sent == []


def test_status_names_unserved_origins_and_the_last_verify() -> None:
    status = {
        **STATUS,
        "origins": {
            "dev": [
                {"origin": "server-3", "applied": 40, "peersHold": 52, "unserved": True},
                {"origin": "server-2", "applied": 9, "peersHold": 9, "unserved": False},
            ]
        },
        "verify": {"at": NOW - 30, "agreed": False, "divergent": 4},
    }
    out = render_status(status)
    assert "dev: no link brings server-3's writes (applied up to 40, peers hold 52)" in out
    assert "server-2's" not in out
    assert "last verify 30s ago: 4 keys differed" in out
    agreed = render_status({**STATUS, "verify": {"at": NOW - 5, "agreed": True, "divergent": 0}})
    assert "last verify 5s ago: every node agreed" in agreed


# --- link security and the agent's warnings ------------------------------------------------


def secured(security: Any, name: str = "127.0.0.12") -> dict[str, Any]:
    url = f"ws://{name}:9925"
    return {**STATUS["connections"][0], "name": name, "url": url, "security": security}


MTLS = {
    "mode": "mtls",
    "transport": "wss",
    "peer": "n2",
    "ca": "HarperDB-Certificate-Authority-n2",
}


@pytest.mark.parametrize(
    ("security", "shown", "style"),
    [
        (MTLS, "mTLS n2 · CA HarperDB-Certificate-Authority-n2", "green"),
        ({"mode": "mtls", "transport": "wss", "peer": None, "ca": None}, "mTLS", "green"),
        ({"mode": "signed", "transport": "ws", "peer": None, "ca": None}, "signed (ws)", ""),
        ({"mode": "credentials", "transport": "wss"}, "credentials (wss)", ""),
        ({"mode": "credentials", "transport": "ws"}, "credentials (ws)", "yellow"),
        ({"mode": "address", "transport": "ws", "peer": None, "ca": None}, "address only", "red"),
        ({"mode": "quantum"}, "quantum", ""),
        (None, "-", ""),
        ({}, "-", ""),
    ],
)
def test_link_security(security: Any, shown: str, style: str) -> None:
    text = render.link_security({"security": security})
    assert (text.plain, str(text.style)) == (shown, style)
    assert render.link_security({}).plain == "-"


def test_status_shows_each_links_security_and_the_warnings(run: Any, fake: Any) -> None:
    address = {"mode": "address", "transport": "ws", "peer": None, "ca": None}
    status = {
        **STATUS,
        "connections": [
            secured(MTLS),
            secured(address, "127.0.0.13"),
            {"name": "127.0.0.14", "url": "ws://127.0.0.14:9925", "security": None},
        ],
        "warnings": [
            "replication.port 9930 admits peers by address only",
            "certificate n1 expires in 3 days",
        ],
    }
    fake.reply(status)
    outcome = run("status")
    assert outcome.code == 0
    lines = [line.rstrip() for line in outcome.stdout.splitlines()]
    assert (
        "peer 127.0.0.12  ws://127.0.0.12:9925  security mTLS n2 · CA "
        "HarperDB-Certificate-Authority-n2" in lines
    )
    assert "peer 127.0.0.13  ws://127.0.0.13:9925  security address only" in lines
    assert "peer 127.0.0.14  ws://127.0.0.14:9925  security -" in lines
    tail = lines[lines.index("no database sockets") + 1 :]
    assert tail[:3] == [
        "",
        "warning: replication.port 9930 admits peers by address only",
        "warning: certificate n1 expires in 3 days",
    ]


def test_status_colours_address_only_and_warnings() -> None:
    con = Console(width=140, file=io.StringIO(), color_system="standard", force_terminal=True)
    status = {
        **STATUS,
        "connections": [secured({"mode": "address", "transport": "ws"})],
        "warnings": ["replication.port 9930 admits peers by address only"],
    }
    render.print_cluster_status(con, status, NOW)
    out = text(con)
    assert "\x1b[31maddress only" in out
    assert "\x1b[33mwarning: replication.port 9930" in out


def test_status_without_security_or_warnings_shows_dashes() -> None:
    out = render_status(STATUS)
    assert "security -" in out and "warning" not in out
    odd = render_status({**STATUS, "warnings": None})
    assert "warning" not in odd
    assert "warning: w" in render_status({**STATUS, "warnings": ["w", 3, None]})


def test_status_json_keeps_security_and_warnings(run: Any, fake: Any) -> None:
    status = {**STATUS, "connections": [secured(MTLS)], "warnings": ["w"]}
    fake.reply(status)
    assert run("--json", "status").stdout == json.dumps(status, indent=2, ensure_ascii=False) + "\n"
