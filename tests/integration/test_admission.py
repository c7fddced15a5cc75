"""Who may speak as whom: admitted nodes speak only as themselves, on every kind of link.

A client here proves itself with a real member's key (as a stolen or buggy member would) and
then names another node; an address-only peer claims a name that is not its own. Each is
refused with a reason and changes nothing.
"""

from __future__ import annotations

import asyncio

import websockets
from harness import Agent, free_port, meshed, wait_for

from agent.certs import proof
from agent.certs.material import Material
from agent.core import messages as m

SUBPROTOCOL = "harperctl-replication-v1"


def material_of(node: Agent, name: str) -> Material:
    """The certificate material of a member, read from its root (keys and certificate rows)."""
    material = Material(node.root, name, [node.host], False)
    rows = node.op({"operation": "list_certificates"})
    material.refresh(rows, [r["certificate"] for r in rows if r["is_authority"]])
    return material


def exchange(url: str, headers: dict, frame: bytes, local: str | None = None):
    """Upgrade, send one frame, return the answer frame or (close code, reason)."""

    async def run():
        kwargs = {"local_addr": (local, 0)} if local else {}
        async with websockets.connect(
            url, subprotocols=[SUBPROTOCOL], additional_headers=headers, proxy=None, **kwargs
        ) as ws:
            await ws.send(frame)
            try:
                async with asyncio.timeout(5):
                    return m.parse(await ws.recv())
            except websockets.exceptions.ConnectionClosed as exc:
                return (exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else "")

    return asyncio.run(run())


def test_a_member_may_only_speak_as_itself(tmp_path):
    a, b = Agent(tmp_path / "a").start(), Agent(tmp_path / "b").start()
    try:
        b.join(a)
        wait_for(lambda: meshed([a, b]), 30, 0.1, "a mesh")
        rows = a.node_rows()
        stolen = material_of(b, b.host)

        def proved() -> dict:
            return {proof.HEADER: stolen.make_proof(a.host)[0]}

        body = {"operation": "add_node_back", "hostname": "evil", "url": "ws://127.0.0.254:9"}
        answer = exchange(a.ws_url, proved(), m.serialize(m.OpRequest(1, body)))
        assert isinstance(answer, m.OpResult) and answer.status == 403, answer
        assert "admitted as" in answer.body["error"]
        body = {"operation": "remove_node_back", "hostname": "someone-else"}
        answer = exchange(a.ws_url, proved(), m.serialize(m.OpRequest(1, body)))
        assert answer.status == 403, answer
        hello = m.Hello("evil", "dev", {}, "x" * 16)
        code, reason = exchange(a.ws_url, proved(), m.serialize(hello))
        assert code == 1008 and "Hello says evil" in reason
        # the same proof twice is a replay
        header = proved()
        exchange(a.ws_url, header, m.serialize(m.OpRequest(1, {"operation": "origin_heads"})))
        try:
            exchange(a.ws_url, header, m.serialize(m.OpRequest(1, {"operation": "origin_heads"})))
            raise AssertionError("a replayed proof was admitted")
        except websockets.exceptions.InvalidStatus as exc:
            assert exc.response.status_code == 401 and b"replay" in exc.response.body
        assert a.node_rows() == rows
    finally:
        a.kill()
        b.kill()


def test_address_only_admission_warns_and_never_lends_another_name(tmp_path):
    hosts = [Agent(tmp_path / f"n{i}") for i in range(2)]
    ports = [free_port(n.host) for n in hosts]
    nodes = []
    for i, node in enumerate(hosts):
        other = 1 - i
        nodes.append(
            Agent(
                tmp_path / f"n{i}",
                node.host,
                {
                    "replication": {
                        "port": ports[i],
                        "routes": [f"ws://{hosts[other].host}:{ports[other]}"],
                    }
                },
            ).start()
        )
    a, b = nodes
    try:
        wait_for(lambda: meshed(nodes), 30, 0.1, "an address-only mesh")
        status = a.op({"operation": "cluster_status"})
        assert any("by address alone" in w for w in status["warnings"]), status["warnings"]
        assert status["connections"][0]["security"]["mode"] == "address"
        assert "admits peers by address alone" in (a.root / "log" / "hdb.log").read_text()
        # from b's address, Hello as a (this node's own name): refused
        url = f"ws://{a.host}:{ports[0]}"
        hello = m.Hello(a.host, "system", {}, "x" * 16)
        code, reason = exchange(url, {}, m.serialize(hello), local=b.host)
        assert code == 1008 and "Hello says" in reason, (code, reason)
    finally:
        a.kill()
        b.kill()


def test_retained_credentials_are_forgotten_with_the_node(tmp_path):
    a, b = Agent(tmp_path / "a").start(), Agent(tmp_path / "b").start()
    try:
        a.join(b, retain_authorization=True)
        kept = a.root / "keys" / "retained-authorization.json"
        assert kept.stat().st_mode & 0o777 == 0o600 and b.host in kept.read_text()
        wait_for(lambda: meshed([a, b]), 30, 0.1, "a mesh")
        a.op({"operation": "remove_node", "hostname": b.host})
        assert b.host not in kept.read_text() and "Basic" not in kept.read_text()
    finally:
        a.kill()
        b.kill()
