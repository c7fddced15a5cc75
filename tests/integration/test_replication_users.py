"""Users and roles across a join: whose rows win, and that every change works for logins at once.

A join never changes a password silently: where both sides hold a user (admin, always) with
different rows, the side that already has peers wins, and between two standalone nodes the node
named in add_node wins. Each side's other users are kept. The newcomer's admin row is always
created last here, so plain last-write-wins would pick it: these tests fail if nothing else
decides.
"""

from __future__ import annotations

import pytest
from harness import FAST_REPLICATION, Agent, meshed, wait_for

CLUSTER_PW = "cluster-pw"
NEWCOMER_PW = "newcomer-pw"


def start(tmp_path, name: str, password: str) -> Agent:
    return Agent(tmp_path / name, config=FAST_REPLICATION, password=password).start()


def login_status(agent: Agent, username: str, password: str) -> int:
    status, _ = agent.request({"operation": "user_info"}, auth=(username, password))
    return status


def token_status(agent: Agent, username: str, password: str) -> int:
    """Log in with create_authentication_tokens, then call user_info with the bearer token."""
    status, body = agent.request(
        {"operation": "create_authentication_tokens", "username": username, "password": password},
        auth=None,
    )
    if status != 200:
        return status
    header = {"Authorization": f"Bearer {body['operation_token']}"}
    status, _ = agent.request({"operation": "user_info"}, auth=None, headers=header)
    return status


def logs_in(agent: Agent, username: str, password: str) -> bool:
    return login_status(agent, username, password) == 200


def refused(agent: Agent, username: str, password: str) -> bool:
    return login_status(agent, username, password) == 401


def wait_password(nodes: list[Agent], username: str, good: str, bad: str | None) -> None:
    """Wait until every node accepts `good` for `username` and refuses `bad`."""
    for node in nodes:
        wait_for(
            lambda node=node: (
                logs_in(node, username, good) and (bad is None or refused(node, username, bad))
            ),
            15,
            what=f"{node.host} to take {username}'s password {good!r} and refuse {bad!r}",
        )


def wait_meshed(nodes: list[Agent]) -> None:
    """Wait until every node streams every database from every other node."""
    wait_for(lambda: meshed(nodes), 20, 0.1, "a full mesh")


def restart(nodes: list[Agent]) -> None:
    for node in nodes:
        node.stop()
    for node in nodes:
        node.start(wait=False)
    for node in nodes:
        node.wait_ready()


def add_user(agent: Agent, username: str, password: str, role: str = "super_user") -> None:
    agent.op(
        {
            "operation": "add_user",
            "username": username,
            "password": password,
            "role": role,
            "active": True,
        }
    )


def add_role(agent: Agent, name: str, permission: dict) -> None:
    agent.op({"operation": "add_role", "role": name, "permission": permission})


def role_of(agent: Agent, name: str) -> dict | None:
    roles = agent.op({"operation": "list_roles"})
    return next((r for r in roles if r["id"] == name), None)


def log_text(agent: Agent) -> str:
    path = agent.root / "log" / "hdb.log"
    return path.read_text(errors="replace") if path.exists() else ""


def replaced_lines(agent: Agent) -> list[str]:
    return [line for line in log_text(agent).splitlines() if "replac" in line]


@pytest.fixture
def nodes():
    started: list[Agent] = []
    yield started
    for node in started:
        node.kill()


def test_join_of_two_standalone_nodes_keeps_the_named_nodes_admin(tmp_path, nodes):
    named = start(tmp_path, "named", CLUSTER_PW)
    caller = start(tmp_path, "caller", NEWCOMER_PW)  # its admin row is the newer one
    nodes += [named, caller]
    answer = caller.join(named)
    assert answer["replaced_users"] == ["admin"], answer
    assert "password" not in str(answer)
    caller.password = CLUSTER_PW
    wait_meshed(nodes)
    wait_password(nodes, "admin", CLUSTER_PW, NEWCOMER_PW)
    restart(nodes)
    wait_password(nodes, "admin", CLUSTER_PW, NEWCOMER_PW)
    assert any("admin" in line for line in replaced_lines(caller)), "add_node logs no user"
    for node in nodes:
        assert "scrypt$" not in log_text(node), f"a password hash in {node.host}'s log"


@pytest.mark.parametrize("direction", ["newcomer_calls", "member_calls"])
def test_newcomer_adopts_the_clusters_admin_either_way(tmp_path, nodes, direction):
    first = start(tmp_path, "first", CLUSTER_PW)
    second = start(tmp_path, "second", CLUSTER_PW)
    nodes += [first, second]
    second.join(first)
    wait_meshed(nodes)
    wait_password(nodes, "admin", CLUSTER_PW, None)
    newcomer = start(tmp_path, "newcomer", NEWCOMER_PW)  # the newest admin row of all
    nodes.append(newcomer)
    if direction == "newcomer_calls":
        answer = newcomer.join(first)
    else:
        answer = first.join(newcomer)
    assert answer["replaced_users"] == ["admin"], answer
    newcomer.password = CLUSTER_PW
    wait_meshed(nodes)
    wait_password(nodes, "admin", CLUSTER_PW, NEWCOMER_PW)
    restart(nodes)
    wait_meshed(nodes)
    wait_password(nodes, "admin", CLUSTER_PW, NEWCOMER_PW)


def test_each_sides_other_users_and_roles_are_kept_and_log_in_at_once(tmp_path, nodes):
    named = start(tmp_path, "named", CLUSTER_PW)
    caller = start(tmp_path, "caller", NEWCOMER_PW)
    nodes += [named, caller]
    add_role(caller, "reader", {"super_user": False})
    add_user(caller, "ann", "ann-pw", role="reader")
    add_user(named, "bob", "bob-pw")
    add_role(named, "shared", {"super_user": False, "dev": {"tables": {}}})
    add_role(caller, "shared", {"super_user": False})
    answer = caller.join(named)
    assert answer["replaced_users"] == ["admin"], answer
    assert answer["replaced_roles"] == ["shared"], answer
    caller.password = CLUSTER_PW
    for node in nodes:
        for username, password in (("ann", "ann-pw"), ("bob", "bob-pw")):
            wait_for(
                lambda node=node, u=username, p=password: logs_in(node, u, p),
                15,
                what=f"{username} able to log in on {node.host}",
            )
            assert token_status(node, username, password) == 200
        wait_for(lambda node=node: role_of(node, "reader"), 10, what="role reader")
        wait_for(
            lambda node=node: (role_of(node, "shared") or {}).get("permission", {}).get("dev"),
            10,
            what=f"the named node's role 'shared' on {node.host}",
        )


def test_user_changes_after_the_join_take_effect_for_logins_at_once(tmp_path, nodes):
    named = start(tmp_path, "named", CLUSTER_PW)
    caller = start(tmp_path, "caller", NEWCOMER_PW)
    nodes += [named, caller]
    caller.join(named)
    caller.password = CLUSTER_PW
    wait_meshed(nodes)
    add_user(caller, "carl", "first-pw")
    wait_for(lambda: logs_in(named, "carl", "first-pw"), 5, what="carl on the named node")
    assert token_status(named, "carl", "first-pw") == 200
    caller.op({"operation": "alter_user", "username": "carl", "password": "second-pw"})
    wait_for(
        lambda: logs_in(named, "carl", "second-pw") and refused(named, "carl", "first-pw"),
        5,
        what="carl's new password on the named node",
    )
    assert token_status(named, "carl", "first-pw") == 401
    caller.op({"operation": "drop_user", "username": "carl"})
    wait_for(lambda: refused(named, "carl", "second-pw"), 5, what="carl dropped on the named node")
    assert token_status(named, "carl", "second-pw") == 401
