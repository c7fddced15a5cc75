"""What one HTTP client can cost a node: body before credentials, timeouts, the connection cap,
and the JSON shape of errors raised inside the HTTP layer."""

from __future__ import annotations

import base64
import json
import socket
import time

import pytest
from harness import Agent, Cluster, wait_for
from support import post

TIMEOUT = 1.0  # operationsApi.network.timeout and keepAliveTimeout in these tests


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    node = Agent(
        tmp_path_factory.mktemp("limits"),
        config={"operationsApi": {"network": {"timeout": "1s", "keepAliveTimeout": "1s"}}},
    )
    node.start()
    yield node
    node.kill()


def connect(agent: Agent) -> socket.socket:
    sock = socket.create_connection((agent.host, agent.port), timeout=10)
    return sock


def read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Read until the server closes the connection (fails if it does not within `timeout`)."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def closed_within(agent: Agent, sent: bytes, limit: float) -> tuple[float, bytes]:
    sock = connect(agent)
    start = time.monotonic()
    sock.sendall(sent)
    data = read_all(sock, limit + 5)
    sock.close()
    return time.monotonic() - start, data


def json_of(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body), head.lower()


def peak_rss(agent: Agent) -> int:
    with open(f"/proc/{agent.proc.pid}/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))


# -- credentials before the body ----------------------------------------------------------------

BIG = 15 << 20


def _big_post(agent: Agent, auth_header: bytes | None) -> bytes:
    body = b'{"operation":"insert","records":[{"pad":"' + b"x" * BIG + b'"}]}'
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if auth_header:
        head += b"Authorization: " + auth_header + b"\r\n"
    sock = connect(agent)
    sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body))
    try:
        sock.sendall(body)
    except OSError:
        pass  # the server may stop reading once it answered
    sock.settimeout(15)
    answer = sock.recv(4096)
    sock.close()
    return answer


@pytest.mark.parametrize(
    "header, words",
    [
        (None, b"Must login"),
        (b"Basic " + base64.b64encode(b"admin:wrong"), b"Login failed"),
        (b"Bearer not.a.token", b"invalid token"),
    ],
)
def test_a_big_body_without_good_credentials_is_never_read(agent, header, words):
    before = peak_rss(agent)
    answer = _big_post(agent, header)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert words in answer
    grown = peak_rss(agent) - before
    print(f"peak RSS grew {grown >> 20} MB for a {BIG >> 20} MB unauthenticated body")
    assert grown < 40 << 20  # scrypt itself takes 16 MiB; reading the body took ~470 MB


def test_small_unauthenticated_operations_still_work(agent):
    body = {"operation": "create_authentication_tokens", "username": "admin"}
    body["password"] = agent.password
    resp = post(agent, body, auth=None)
    assert resp.status_code == 200 and "refresh_token" in resp.json()


def test_an_authenticated_body_over_the_unauthenticated_limit_is_read(agent):
    records = [{"id": n, "pad": "y" * 1000} for n in range(200)]  # ~200 KB
    agent.op({"operation": "create_table", "database": "lim", "table": "t", "primary_key": "id"})
    answer = agent.op({"operation": "insert", "database": "lim", "table": "t", "records": records})
    assert len(answer["inserted_hashes"]) == 200


# -- timeouts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent",
    [b"", b"POST / HT", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty"],
    ids=["idle", "partial-request-line", "partial-headers"],
)
def test_idle_and_partial_requests_are_closed_after_the_timeout(agent, sent):
    took, data = closed_within(agent, sent, TIMEOUT)
    assert TIMEOUT * 0.5 <= took <= TIMEOUT + 3, took
    assert data == b""


def test_a_trickled_request_line_does_not_extend_the_wait(agent):
    sock = connect(agent)
    start = time.monotonic()
    with pytest.raises(OSError):  # reset or broken pipe once the server closed
        for byte in b"POST / HTTP/1.1\r\nHost: x\r\n" * 10:
            sock.sendall(bytes([byte]))
            time.sleep(0.1)
            if time.monotonic() - start > TIMEOUT + 5:
                break
        raise AssertionError("the trickle was never cut off")
    assert time.monotonic() - start <= TIMEOUT + 3
    sock.close()


def test_a_stalled_body_is_answered_408_and_closed(agent):
    auth = base64.b64encode(f"admin:{agent.password}".encode())
    head = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Basic " + auth + b"\r\nContent-Length: 100\r\n\r\n"
    )
    took, data = closed_within(agent, head + b'{"operation": ', TIMEOUT)
    status, body, headers = json_of(data)
    assert status == 408 and "operationsApi.network.timeout" in body["error"]
    assert b"application/json" in headers
    assert took <= TIMEOUT + 3


def test_a_kept_alive_connection_serves_again_then_closes_when_idle(agent):
    auth = base64.b64encode(f"admin:{agent.password}".encode())
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth + b"\r\n\r\n"
    sock = connect(agent)
    for _ in range(2):
        sock.sendall(request)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(TIMEOUT * 0.3)
    start = time.monotonic()
    assert read_all(sock, TIMEOUT + 5) == b""
    assert time.monotonic() - start <= TIMEOUT + 3
    sock.close()


def test_a_client_leaving_mid_body_is_logged_briefly(agent):
    auth = base64.b64encode(f"admin:{agent.password}".encode())
    for _ in range(5):
        sock = connect(agent)
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth + b"\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"operation": "describe_all", "x": "'
        )
        time.sleep(0.05)
        sock.close()
    agent.op({"operation": "describe_all"})
    log = (agent.root / "log" / "hdb.log").read_text(errors="replace")
    assert "operation failed unexpectedly" not in log
    assert "Traceback" not in log


# -- errors raised inside the HTTP layer are JSON ------------------------------------------------


@pytest.mark.parametrize(
    "raw, status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    ],
    ids=["malformed-request-line", "long-header", "long-request-line", "bad-content-length"],
)
def test_http_layer_errors_are_json(agent, raw, status):
    _, data = closed_within(agent, raw, 5)
    got, body, headers = json_of(data)
    assert got == status, data[:300]
    assert b"content-type: application/json" in headers
    assert set(body) == {"error"} and body["error"]


def test_a_websocket_upgrade_without_a_key_is_json(agent):
    auth = base64.b64encode(f"admin:{agent.password}".encode())
    raw = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nAuthorization: Basic " + auth + b"\r\n\r\n"
    )
    sock = connect(agent)
    sock.sendall(raw)
    sock.settimeout(10)
    data = sock.recv(65536)
    sock.close()
    status, body, headers = json_of(data)
    assert status == 400 and b"application/json" in headers and "error" in body


def test_a_wrong_password_on_the_upgrade_is_401_json(agent):
    auth = base64.b64encode(b"admin:wrong")
    raw = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Authorization: Basic " + auth + b"\r\n\r\n"
    )
    sock = connect(agent)
    sock.sendall(raw)
    sock.settimeout(10)
    data = sock.recv(65536)
    sock.close()
    status, body, _ = json_of(data)
    assert status == 401 and body == {"error": "Login failed"}


# -- the connection cap --------------------------------------------------------------------------


def test_connections_over_the_cap_are_refused_and_health_gets_through_below(tmp_path):
    node = Agent(tmp_path / "cap", config={"operationsApi": {"network": {"maxConnections": 8}}})
    node.start()
    try:
        node.session.close()  # the harness session's kept-alive connection would count
        held = [connect(node) for _ in range(8)]
        time.sleep(0.2)
        took, data = closed_within(node, b"", 2)
        status, body, _ = json_of(data)
        assert status == 503 and "maxConnections" in body["error"] and took < 2
        for sock in held[:2]:
            sock.close()
        wait_for(lambda: node.session.get(node.url + "/health", timeout=2).ok, 5)
        for sock in held[2:]:
            sock.close()
    finally:
        node.kill()


# -- replication links are not cut by the timeouts ---------------------------------------------


def test_upgraded_replication_links_outlive_the_timeouts(tmp_path):
    network = {"operationsApi": {"network": {"timeout": "1s", "keepAliveTimeout": "1s"}}}
    cluster = Cluster(tmp_path, 2, config={**network, "replication": {"pingInterval": "30s"}})
    cluster.start()
    try:
        cluster.join()
        a, b = cluster[0], cluster[1]
        table = {"database": "dev", "table": "t"}
        a.op({"operation": "create_table", **table, "primary_key": "id"})
        wait_for(lambda: b.request({"operation": "describe_table", **table})[0] == 200)
        time.sleep(3 * TIMEOUT)  # several timeouts with no replication traffic
        before = {c["name"]: c for c in a.op({"operation": "cluster_status"})["connections"]}
        a.op({"operation": "insert", **table, "records": [{"id": 1}]})
        wait_for(lambda: b.op({"operation": "search_by_id", **table, "ids": [1]}), 5)
        after = {c["name"]: c for c in a.op({"operation": "cluster_status"})["connections"]}
        assert before.keys() == after.keys()
    finally:
        cluster.kill_all()
