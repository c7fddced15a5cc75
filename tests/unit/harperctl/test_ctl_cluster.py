"""Cluster membership commands: add/set/update/remove-node, routes (status: test_ctl_status)."""

from __future__ import annotations

import base64
import io
import json
import re
from typing import Any

import pytest
from rich.console import Console

ADDED = {"message": "Successfully added 'ws://server-two:9925' to cluster"}

# What HarperDB itself answers: none of our extra fields, an error with a code.


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
    args = (
        "add-node",
        "server-two",
        "--peer-url",
        "ws://10.0.0.2:9925",
        "--peer-auth",
        "Bearer t",
    )
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
    outcome = run("add-node", "ws://a:9925", "--peer-url", "ws://b:9925")
    assert outcome.code == 2 and "already a URL" in outcome.stderr and fake.sent == []


def test_options_after_add_node_mean_what_they_mean_before_it(run: Any, fake: Any) -> None:
    fake.reply(ADDED)
    outcome = run("add-node", "server-two", "--url", "http://n1:9925", "-u", "admin", "-p", "pw")
    assert outcome.code == 0, outcome.stderr
    assert fake.sent[0].url == "http://n1:9925/"
    assert fake.last["authorization"] == {"username": "admin", "password": "pw"}
    outcome = run("add-node", "server-two", "--url", "wss://server-two:9933")
    assert outcome.code == 2 and "give the peer's replication URL as --peer-url" in outcome.stderr


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
