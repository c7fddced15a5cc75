"""A hostile peer against a real agent: every bad frame closes the link with a code and a
reason, is logged once as a warning naming the peer, stores nothing, and the agent serves on.

The fake peer (tests/fakepeer.py) plays a subscriber on the operations port (admitted by a
super user's credentials) and a publisher the agent dials through replication.routes (the
insecure replication.port mode, admitted by address).
"""

from __future__ import annotations

import base64
import json

import msgpack
import pytest
from fakepeer import FakePublisher, subscriber_frames, txn_frame
from harness import FAST_REPLICATION, PASSWORD, Agent, free_port, wait_for

from agent.core import messages as m
from agent.core.changes import PUT

# loopback addresses no other test uses (the harness counts up from 127.0.0.22)
SUBSCRIBER_TARGET = "127.0.0.60"
FAKE_PUBLISHER = "127.0.0.61"
PUBLISHER_TARGET = "127.0.0.62"
BASIC = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
DB, TABLE = "hostile", "t"


def _log(agent: Agent) -> str:
    return "\n".join(p.read_text(errors="replace") for p in agent.root.rglob("*.log"))


def _serves(agent: Agent) -> None:
    assert agent.session.get(f"{agent.url}/health", timeout=5).status_code == 200
    status, rows = agent.request(
        {"operation": "search_by_value", "database": DB, "table": TABLE, "attribute": "id"}
        | {"value": "*"}
    )
    assert status == 200, rows


def _make_table(agent: Agent) -> None:
    agent.op({"operation": "create_database", "database": DB})
    agent.op({"operation": "create_table", "database": DB, "table": TABLE, "primary_key": "id"})


# --- The agent as publisher: a fake subscriber on the operations port ---------------------------


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    config = {"replication": {"maxPayload": "1mb"}}
    agent = Agent(tmp_path_factory.mktemp("target"), host=SUBSCRIBER_TARGET, config=config)
    agent.start()
    _make_table(agent)
    yield agent
    agent.kill()


def _frame(*fields) -> bytes:
    return bytes([m.PROTOCOL_VERSION]) + msgpack.packb(list(fields), use_bin_type=True)


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        (bytes([9]) + msgpack.packb([11, 1.0]), 1002, "unsupported protocol version 9"),
        (bytes([m.PROTOCOL_VERSION]) + b"\xc1\xc1\xc1", 1002, "undecodable frame"),
        (_frame(1, 5, "dev", {}, "x-id"), 1002, "Hello.node is malformed"),
        (_frame(1, "x", ["dev"], {}, "x-id"), 1002, "Hello.database is malformed"),
        (_frame(1, "x", "dev", {"tables": 3}, "x-id"), 1002, "Hello.caps is malformed"),
        (_frame(1, "x", "dev", {}), 1002, "Hello needs 4 fields"),
        (_frame([1], "x"), 1002, "unknown message"),
    ],
)
def test_a_malformed_frame_closes_with_a_protocol_error(target, frame, code, reason):
    ws_url = target.ws_url + "/"
    closed = subscriber_frames(ws_url, BASIC, [frame])
    assert (closed.code, reason in closed.reason) == (code, True), closed
    _serves(target)
    wait_for(lambda: reason in _log(target), 5, what="the refusal in the log")
    lines = [line for line in _log(target).splitlines() if reason in line]
    assert len(lines) == 1, lines  # once, and as a warning naming the peer (user and address)
    assert "[warn]" in lines[0] and "from admin (127." in lines[0], lines[0]
    assert "Traceback" not in _log(target)


def test_a_frame_over_max_payload_is_refused_from_its_header(target):
    before = target.rss()
    for size in (2 << 20, 64 << 20):  # 2 MB, then 64 MB: neither is buffered whole
        closed = subscriber_frames(target.ws_url + "/", BASIC, [bytes([3]) + bytes(size)])
        assert closed.code == 1009, closed
        assert "replication.maxPayload" in closed.reason, closed
        _serves(target)
    assert target.rss() - before < 32 << 20, "the oversized frame was buffered"
    assert "[warn]" in _log(target) and "refused a frame" in _log(target)
    assert "Traceback" not in _log(target)


# --- The agent as subscriber: it dials a fake publisher --------------------------------------


def _dialled_agent(tmp_path, fake: FakePublisher) -> Agent:
    replication = dict(FAST_REPLICATION["replication"])
    replication.update(
        {"port": free_port(PUBLISHER_TARGET), "routes": [fake.url], "retryInterval": "300ms"}
    )
    agent = Agent(tmp_path / "dialled", host=PUBLISHER_TARGET, config={"replication": replication})
    return agent


def _body(*writes) -> bytes:
    return m.encode_changes([list(w) for w in writes])


def _rows(agent: Agent) -> list:
    return agent.op(
        {"operation": "search_by_value", "database": DB, "table": TABLE, "attribute": "id"}
        | {"value": "*", "get_attributes": ["*"]}
    )


BAD_TXNS = {
    "list": (txn_frame(_body((TABLE, PUT, 1, "[1, 2]"))), 1007, "JSON list, not an object"),
    "string": (txn_frame(_body((TABLE, PUT, 1, '"text"'))), 1007, "JSON str, not an object"),
    "map": (txn_frame(_body((TABLE, PUT, 1, {"id": 1}))), 1007, "record is not JSON text"),
    "nul_name": (
        txn_frame(_body((TABLE, PUT, 1, '{"id": 1, "a\\u0000b": 2}'))),
        1007,
        "attribute name with a NUL",
    ),
    "empty_name": (txn_frame(_body((TABLE, PUT, 1, '{"": 2}'))), 1007, "empty attribute name"),
    "table_name": (txn_frame(_body(("no such/table", PUT, 1, "{}"))), 1007, "invalid table name"),
    "version_zero": (txn_frame(_body((TABLE, PUT, 1, "{}")), version=0), 1002, "Txn.version"),
    "version_2_64": (
        _frame(8, 1, 0, "fake", "fake-id", 1, 2**64 - 1, 1, 1.0, _body((TABLE, PUT, 1, "{}"))),
        1002,
        "Txn.version is malformed",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TXNS))
def test_a_bad_txn_from_a_publisher_is_refused_and_nothing_stored(tmp_path, case):
    frame, code, reason = BAD_TXNS[case]
    fake = FakePublisher(FAKE_PUBLISHER, DB, frames=[frame]).start()
    agent = _dialled_agent(tmp_path, fake)
    try:
        agent.start()
        _make_table(agent)
        wait_for(lambda: fake.closes_for(DB), 20, what="the agent to close the fake's link")
        closed = fake.closes_for(DB)[0]
        assert closed.code == code and reason in closed.reason, closed
        # nothing stored: no record, no new attribute, no cursor of the fake's origin
        assert _rows(agent) == []
        table = agent.op({"operation": "describe_table", "database": DB, "table": TABLE})
        names = {a["attribute"] for a in table["attributes"]}
        assert names == {"id", "__createdtime__", "__updatedtime__"}, names
        _serves(agent)
        status = json.dumps(agent.op({"operation": "cluster_status"}))
        assert reason in status, status  # lastConnectionError says why
        log = _log(agent)
        assert "[warn]" in log and "fake" in log and reason in log
        assert "Traceback" not in log
    finally:
        agent.kill()
        fake.stop()


def test_a_good_txn_from_the_fake_publisher_is_stored(tmp_path):
    """The control: the fake speaks the protocol well enough that a good record lands."""
    frame = txn_frame(_body((TABLE, PUT, 1, '{"id": 1, "name": "ok"}')))
    fake = FakePublisher(FAKE_PUBLISHER, DB, frames=[frame]).start()
    agent = _dialled_agent(tmp_path, fake)
    try:
        agent.start()
        _make_table(agent)
        wait_for(lambda: _rows(agent), 20, what="the fake's record")
        assert [r["id"] for r in _rows(agent)] == [1]
        assert not fake.closes_for(DB)
        assert "[warn] [agent.replication.link]" not in _log(agent)
    finally:
        agent.kill()
        fake.stop()
