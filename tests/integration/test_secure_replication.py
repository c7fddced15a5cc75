"""Secure replication on real agents: mutual TLS, cross-signed certificates, admission.

Clusters join over wss with verify_tls false and credentials; the peer signs a CSR and from
then on links verify both ways. Everything an attacker on the same network could try is
refused at the upgrade (or the TLS handshake) and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest
import trustme
import websockets
from harness import Agent, free_port, meshed, next_host, search_ids, wait_for

from agent.certs import authority

SUBPROTOCOL = "harperctl-replication-v1"


def secure_agent(root: Path, name: str, extra: dict | None = None) -> Agent:
    host = next_host()
    port = free_port(host)
    replication = {"securePort": port, "hostname": name, "url": f"wss://{host}:{port}"}
    replication.update((extra or {}).pop("replication", {}))
    agent = Agent(root, host, {"replication": replication, **(extra or {})})
    agent.secure_port = port
    agent.wss_url = f"wss://{host}:{port}"
    return agent


def join_secure(node: Agent, hub: Agent) -> dict:
    return node.op(
        {
            "operation": "add_node",
            "url": hub.wss_url,
            "verify_tls": False,
            "authorization": {"username": "admin", "password": node.password},
        }
    )


def certificates(node: Agent) -> dict[str, dict]:
    return {r["name"]: r for r in node.op({"operation": "list_certificates"})}


def make_table(node: Agent) -> None:
    node.op({"operation": "create_table", "database": "dev", "table": "dog", "primary_key": "id"})


def dogs(node: Agent) -> list:
    return search_ids(node, "dev", "dog", list(range(100)))


def ca_of(node: Agent, name: str):
    """The CA certificate and key of `node` (read from its root, as a thief of it could)."""
    rows = certificates(node)
    ca = authority.parse_certificates(rows[authority.ca_name(name)]["certificate"])[0]
    key = authority.load_key((node.root / "keys" / "privateKey.pem").read_bytes())
    return ca, key


def client_context(certificate=None, key=None) -> ssl.SSLContext:
    """A TLS client that does not check the server, presenting `certificate` if given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if certificate is not None:
        folder = Path(__import__("tempfile").mkdtemp())
        (folder / "c.pem").write_text(authority.pem(certificate))
        (folder / "k.pem").write_bytes(authority.key_pem(key))
        context.load_cert_chain(folder / "c.pem", folder / "k.pem")
    return context


def upgrade(url: str, context=None, headers=None, local: str | None = None) -> tuple:
    """Try a replication upgrade; return ("open", None) or ("refused", status/error text)."""

    async def attempt():
        kwargs = {"ssl": context} if url.startswith("wss") else {}
        if local:
            kwargs["local_addr"] = (local, 0)
        try:
            async with websockets.connect(
                url,
                subprotocols=[SUBPROTOCOL],
                additional_headers=headers or {},
                open_timeout=5,
                proxy=None,
                **kwargs,
            ):
                return "open", None
        except websockets.exceptions.InvalidStatus as exc:
            body = exc.response.body.decode(errors="replace") if exc.response.body else ""
            return "refused", (exc.response.status_code, body)
        except (OSError, ssl.SSLError, websockets.exceptions.InvalidHandshake) as exc:
            return "refused", (None, str(exc))

    return asyncio.run(attempt())


@pytest.fixture
def wss_pair(tmp_path):
    a = secure_agent(tmp_path / "a", "node-a").start()
    b = secure_agent(tmp_path / "b", "node-b").start()
    try:
        join_secure(b, a)
        wait_for(lambda: meshed([a, b]), 30, 0.1, "a wss mesh")
        yield a, b
    finally:
        a.kill()
        b.kill()


def test_three_nodes_join_over_wss_with_cross_signed_certificates(tmp_path):
    nodes = [secure_agent(tmp_path / f"n{i}", f"node{i}").start() for i in range(3)]
    try:
        for node in nodes[1:]:
            answer = join_secure(node, nodes[0])
            assert answer["message"].startswith("Successfully added"), answer
        wait_for(lambda: meshed(nodes), 30, 0.1, "a wss mesh of three")
        make_table(nodes[0])
        wait_for(lambda: nodes[2].op({"operation": "describe_all"}).get("dev"), 15, what="dev")
        nodes[2].op(
            {"operation": "insert", "database": "dev", "table": "dog", "records": [{"id": 1}]}
        )
        for node in nodes:
            wait_for(lambda node=node: len(dogs(node)) == 1, 15, what="the write everywhere")
        for node in nodes:
            status = node.op({"operation": "cluster_status"})
            for connection in status["connections"]:
                security = connection["security"]
                assert security["mode"] == "mtls" and security["transport"] == "wss", security
                assert security["peer"] == connection["name"]
        # the joiners now hold a certificate node0's CA signed, and every node every CA
        rows = certificates(nodes[1])
        signed = rows["node1-signed-by-node0"]
        assert not signed["is_self_signed"] and signed["private_key_name"] == "privateKey.pem"
        assert "PRIVATE" not in json.dumps(rows)
        for node in nodes:
            names = set(certificates(node))
            assert {authority.ca_name(f"node{i}") for i in range(3)} <= names
        # the join's credentials were used for the exchange only
        for node in nodes:
            for row in node.node_rows():
                assert "authorization" not in row
            assert not (node.root / "keys" / "retained-authorization.json").exists()
    finally:
        for node in nodes:
            node.kill()


def test_what_a_stranger_presents_on_wss_is_refused_and_changes_nothing(wss_pair):
    a, b = wss_pair
    make_table(a)
    wait_for(lambda: b.op({"operation": "describe_all"}).get("dev"), 10, what="the table on b")
    rows_before = a.node_rows()
    ca, ca_key = ca_of(a, "node-a")
    # a certificate from a CA nobody trusts: the TLS handshake fails
    stranger = trustme.CA()
    leaf = stranger.issue_cert("node-b")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    leaf.configure_cert(context)
    state, detail = upgrade(a.wss_url, context)
    assert state == "refused" and detail[0] is None, detail
    # a trusted CA's certificate for a name that is no node: 403 with the reason
    intruder_key = authority.new_key()
    intruder = authority.make_node_certificate(intruder_key, "intruder", [], ca, ca_key)
    state, detail = upgrade(a.wss_url, client_context(intruder, intruder_key))
    assert state == "refused" and detail[0] == 403, detail
    assert "names no node" in json.loads(detail[1])["error"]
    # no certificate at all: 401 with the reason, never a 101
    state, detail = upgrade(a.wss_url, client_context())
    assert state == "refused" and detail[0] == 401, detail
    assert "credentials" in json.loads(detail[1])["error"]
    # plain ws on the TLS port
    state, detail = upgrade(f"ws://{a.host}:{a.secure_port}")
    assert state == "refused", detail
    # a certificate for node-b that a's CA signed is admitted ... until its serial is revoked
    twin_key = authority.new_key()
    twin = authority.make_node_certificate(twin_key, "node-b", [], ca, ca_key)
    assert upgrade(a.wss_url, client_context(twin, twin_key))[0] == "open"
    a.op(
        {
            "operation": "update_node",
            "hostname": "node-b",
            "url": b.wss_url,
            "revoked_certificates": [authority.serial(twin)],
        }
    )
    state, detail = upgrade(a.wss_url, client_context(twin, twin_key))
    assert state == "refused" and detail[0] == 403 and "revoked" in detail[1], detail
    # b's own certificate is not revoked: the cluster still replicates
    a.op({"operation": "insert", "database": "dev", "table": "dog", "records": [{"id": 7}]})
    wait_for(lambda: len(dogs(b)) == 1, 15, what="replication after the refusals")
    assert [r["name"] for r in a.node_rows()] == [r["name"] for r in rows_before]
    assert len(dogs(a)) == 1


def test_plain_ws_admits_no_one_by_address(tmp_path):
    a, b = Agent(tmp_path / "a").start(), Agent(tmp_path / "b").start()
    try:
        b.join(a)
        wait_for(lambda: meshed([a, b]), 30, 0.1, "a ws mesh")
        status = a.op({"operation": "cluster_status"})
        assert status["connections"][0]["security"]["mode"] == "signed"
        # a process at b's address, no credentials and no proof
        state, detail = upgrade(a.ws_url, local=b.host)
        assert state == "refused" and detail[0] == 401, detail
        # ... or a proof signed by a key of its own (a CA a does not trust)
        key = authority.new_key()
        own_ca = authority.make_ca(key, "mallory")
        leaf = authority.make_node_certificate(key, b.host, [b.host], own_ca, key)
        from agent.certs import proof

        forged = proof.make(key, authority.pem(leaf), b.host, a.host, proof.new_nonce(), 0)
        state, detail = upgrade(a.ws_url, headers={proof.HEADER: forged}, local=b.host)
        assert state == "refused" and detail[0] == 401, detail
        assert a.node_rows() and {r["name"] for r in a.node_rows()} == {a.host, b.host}
    finally:
        a.kill()
        b.kill()


def test_operator_certificates_replicate_without_any_csr(tmp_path):
    ca = trustme.CA()
    hosts = [next_host(), next_host()]
    ports = [free_port(h) for h in hosts]
    nodes = []
    for i, (host, port) in enumerate(zip(hosts, ports, strict=True)):
        leaf = ca.issue_cert(f"op{i}", host)
        folder = tmp_path / f"certs{i}"
        folder.mkdir()
        leaf.private_key_pem.write_to_path(str(folder / "key.pem"))
        leaf.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
        ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        other = 1 - i
        config = {
            "tls": {
                "certificate": str(folder / "cert.pem"),
                "privateKey": str(folder / "key.pem"),
                "certificateAuthority": str(folder / "ca.pem"),
            },
            "replication": {
                "hostname": f"op{i}",
                "securePort": port,
                "url": f"wss://{host}:{port}",
                "routes": [f"wss://{hosts[other]}:{ports[other]}"],
                "enableRootCAs": False,
            },
        }
        nodes.append(Agent(tmp_path / f"n{i}", host, config))
    for node in nodes:
        node.start()
    try:
        wait_for(lambda: meshed(nodes), 30, 0.1, "a mesh from operator certificates")
        make_table(nodes[0])
        wait_for(lambda: nodes[1].op({"operation": "describe_all"}).get("dev"), 15, what="dev")
        nodes[1].op(
            {"operation": "insert", "database": "dev", "table": "dog", "records": [{"id": 3}]}
        )
        wait_for(lambda: len(dogs(nodes[0])) == 1, 15, what="the write on op0")
        for node in nodes:
            names = set(certificates(node))
            assert not any("signed-by" in n for n in names), names
            status = node.op({"operation": "cluster_status"})
            assert status["connections"][0]["security"]["mode"] == "mtls"
            key_file = (
                node.root
                / "keys"
                / f"{node.op({'operation': 'cluster_status'})['node_name']}-tls.pem"
            )
            assert key_file.stat().st_mode & 0o777 == 0o600
    finally:
        for node in nodes:
            node.kill()


def test_a_configured_certificate_for_another_host_fails_start(tmp_path):
    ca = trustme.CA()
    leaf = ca.issue_cert("somebody-else")
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    node = Agent(
        tmp_path / "n",
        config={
            "tls": {
                "certificate": str(tmp_path / "cert.pem"),
                "privateKey": str(tmp_path / "key.pem"),
            },
            "replication": {"hostname": "me"},
        },
    )
    with pytest.raises(AssertionError) as failed:
        node.start()
    assert "exited with 2" in str(failed.value)
    assert "not this node's replication.hostname 'me'" in str(failed.value)
    assert node.proc.returncode == 2


def test_a_ca_added_or_removed_counts_for_the_next_connection(wss_pair):
    a, _b = wss_pair
    outsider = trustme.CA()
    leaf = outsider.issue_cert("node-b")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    leaf.configure_cert(context)
    assert upgrade(a.wss_url, context)[0] == "refused"
    answer = a.op(
        {
            "operation": "add_certificate",
            "name": "outsider",
            "certificate": outsider.cert_pem.bytes().decode(),
            "is_authority": True,
        }
    )
    assert answer == {"message": "Successfully added certificate: outsider"}
    wait_for(lambda: upgrade(a.wss_url, context)[0] == "open", 10, what="the new CA trusted")
    assert a.op({"operation": "remove_certificate", "name": "outsider"}) == {
        "message": "Successfully removed outsider"
    }
    wait_for(lambda: upgrade(a.wss_url, context)[0] == "refused", 10, what="the CA forgotten")


def test_certificate_operations_keep_keys_private(tmp_path):
    a = Agent(tmp_path / "a").start()
    try:
        ca = trustme.CA()
        leaf = ca.issue_cert(a.host)
        key_pem = leaf.private_key_pem.bytes().decode()
        answer = a.op(
            {
                "operation": "add_certificate",
                "name": "mine",
                "certificate": leaf.cert_chain_pems[0].bytes().decode(),
                "private_key": key_pem,
                "is_authority": False,
                "hosts": [a.host],
            }
        )
        assert answer["message"] == "Successfully added certificate: mine"
        rows = certificates(a)
        assert rows["mine"]["private_key_name"] == "mine.pem" and "PRIVATE" not in json.dumps(rows)
        key_file = a.root / "keys" / "mine.pem"
        assert key_file.read_text() == key_pem and key_file.stat().st_mode & 0o777 == 0o600
        # refused with a reason, the key never echoed
        for body, words in [
            ({"certificate": "garbage", "is_authority": True}, "'certificate'"),
            ({"certificate": leaf.cert_chain_pems[0].bytes().decode()}, "is_authority"),
            (
                {
                    "certificate": leaf.cert_chain_pems[0].bytes().decode(),
                    "is_authority": False,
                    "private_key": authority.key_pem(authority.new_key()).decode(),
                },
                "not the key",
            ),
            (
                {"certificate": ca.cert_pem.bytes().decode(), "is_authority": False, "name": "x"},
                "private_key",
            ),
        ]:
            status, error = a.request({"operation": "add_certificate", **body})
            assert status == 400 and words in error["error"], (body, error)
            assert "PRIVATE" not in error["error"]
        status, error = a.request({"operation": "remove_certificate", "name": "nope"})
        assert status == 404
        a.op({"operation": "remove_certificate", "name": "mine"})
        assert not key_file.exists() and "mine" not in certificates(a)
        # a CSR from this node's own key, signed by its own CA
        csr = a.op({"operation": "create_csr"})
        assert csr["csr"].startswith("-----BEGIN CERTIFICATE REQUEST")
        signed = a.op({"operation": "sign_certificate", "csr": csr["csr"]})
        leaf_cert = authority.parse_certificates(signed["certificate"])[0]
        ca_cert = authority.parse_certificates(signed["signingCA"])[0]
        assert authority.issued_by(leaf_cert, ca_cert) and a.host in authority.names(leaf_cert)
        status, error = a.request({"operation": "sign_certificate", "csr": "nope"})
        assert status == 400 and "csr" in error["error"]
    finally:
        a.kill()


def test_no_password_or_private_key_outside_keys(wss_pair, tmp_path):
    a, b = wss_pair
    for node in (a, b):
        node.stop()
    needles = [a.password.encode(), b"PRIVATE KEY"]
    for root in (a.root, b.root):
        for path in root.rglob("*"):
            if not path.is_file() or "keys" in path.relative_to(root).parts:
                continue
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, f"{needle!r} found in {path}"
    for path in (a.root / "keys").iterdir():
        if b"PRIVATE KEY" in path.read_bytes():
            assert path.stat().st_mode & 0o777 == 0o600, path


def test_wss_on_the_operations_https_port(tmp_path):
    """With operationsApi.network.securePort, replication upgrades there over mutual TLS."""
    nodes = []
    for name in ("https-a", "https-b"):
        host = next_host()
        port = free_port(host)
        node = Agent(
            tmp_path / name,
            host,
            {
                "operationsApi": {"network": {"securePort": port}},
                "replication": {"hostname": name, "url": f"wss://{host}:{port}"},
            },
        )
        node.wss_url = f"wss://{host}:{port}"
        nodes.append(node.start())
    a, b = nodes
    try:
        join_secure(b, a)
        wait_for(lambda: meshed([a, b]), 30, 0.1, "a mesh over the HTTPS port")
        for node, peer in ((a, "https-b"), (b, "https-a")):
            security = node.op({"operation": "cluster_status"})["connections"][0]["security"]
            assert security["mode"] == "mtls" and security["peer"] == peer, security
        # the HTTPS port answers with a certificate that verifies against the node's CA
        import requests

        ca_file = tmp_path / "ca.pem"
        ca_file.write_text(certificates(a)[authority.ca_name("https-a")]["certificate"])
        https = a.wss_url.replace("wss://", "https://")
        assert requests.get(f"{https}/health", verify=str(ca_file)).json()["status"] == "ok"
    finally:
        a.kill()
        b.kill()


def test_add_node_over_wss_refusals_change_nothing(tmp_path):
    a = secure_agent(tmp_path / "a", "node-a").start()
    b = secure_agent(tmp_path / "b", "node-b").start()
    try:
        # verify_tls left on: b does not trust a's certificate yet
        body = {
            "operation": "add_node",
            "url": a.wss_url,
            "authorization": {"username": "admin", "password": b.password},
        }
        status, answer = b.request(body)
        assert status == 400 and "certificate verify failed" in answer["error"], answer
        # wrong credentials
        body.update(verify_tls=False, authorization={"username": "admin", "password": "wrong"})
        status, answer = b.request(body)
        assert status == 400 and "refused the credentials" in answer["error"], answer
        # a bad verify_tls
        status, answer = b.request({**body, "verify_tls": "no"})
        assert status == 400 and "verify_tls" in answer["error"]
        for node in (a, b):
            assert node.node_rows() == []
            assert not any("signed-by" in name for name in certificates(node))
    finally:
        a.kill()
        b.kill()
