"""Wire frames: every message round-trips, and `parse` refuses what storage could not hold."""

from __future__ import annotations

import pytest

from agent.core import messages as m
from agent.core.clock import MAX_VERSION
from agent.core.errors import RemoteProtocolError

AT = 1_700_000_000_000.0


def txn(**fields) -> m.Txn:
    values = dict(
        seq=7, prev=6, origin="b", origin_id="b-id", oseq=3, version=5, records=1, at=AT, body=b""
    )
    values.update(fields)
    return m.Txn(**values)


def test_the_protocol_is_version_3():
    assert m.PROTOCOL_VERSION == 3
    assert m.serialize(m.Ping(1.0))[0] == 3


@pytest.mark.parametrize(
    "msg",
    [
        m.Hello("a", "data", {"tables": None}, "a-id"),
        m.Welcome("b", "data", ["data"], "b-id", {"b-id": 4, "c-id": 2}, {"b-id": 9, "c-id": 1}),
        m.Subscribe({"b-id": 4}, ["b-id"], None, 0, {"b-id": 9}),
        m.CopyStart({"b-id": 4}, 10, "merge", 0, 123),
        m.CopyChunk("t", [[1, "{}", 5, "b"]], None, 1, False),
        m.CopyChunk("t", [], 1, None, True),
        m.CopyEnd({"b-id": 4}, 10, {"b-id": 99}),
        txn(),
        txn(version=MAX_VERSION, oseq=(1 << 63) - 1),
    ],
)
def test_messages_round_trip(msg):
    assert m.parse(m.serialize(msg)) == msg


def test_a_frame_of_the_old_protocol_is_refused():
    frame = bytes([1]) + m.serialize(m.Ping(1.0))[1:]
    with pytest.raises(RemoteProtocolError, match="protocol version 1"):
        m.parse(frame)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"version": 1 << 63}, "version"),  # one past what SQLite's INTEGER holds
        ({"version": -1}, "version"),
        ({"version": True}, "version"),
        ({"oseq": -1}, "oseq"),
        ({"oseq": 1 << 63}, "oseq"),
        ({"oseq": "3"}, "oseq"),
        ({"origin_id": 5}, "origin_id"),
    ],
)
def test_a_txn_with_an_out_of_range_version_or_sequence_is_refused(fields, name):
    with pytest.raises(RemoteProtocolError, match=rf"Txn\.{name} is malformed"):
        m.parse(m.serialize(txn(**fields)))


@pytest.mark.parametrize(
    "msg",
    [
        m.Subscribe({"b": -1}, ["b"], None, 0, {}),
        m.Subscribe({"b": 1}, ["b"], None, 0, {"b": 1 << 63}),
        m.Subscribe({"b": 1}, ["b"], None, -5, {}),
        m.Welcome("b", "data", [], "b", {"b": -2}, {}),
        m.Welcome("b", "data", [], "b", {}, {"b": -2}),
        m.CopyStart({}, 0, "merge", 0, 1 << 63),
        m.CopyEnd({"b": -1}, 0, {}),
        m.CopyEnd({"b": 1}, 0, {"b": -1}),
    ],
)
def test_cursor_and_version_maps_out_of_range_are_refused(msg):
    with pytest.raises(RemoteProtocolError, match="malformed"):
        m.parse(m.serialize(msg))


def test_well_formed_copy_rows_pass():
    m.check_rows([[1, "{}", 5, "b"], ["k", None, MAX_VERSION, "c"], [1.5, "{}", 0, ""]])
    m.check_rows([])


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ([1, "{}", 5], "malformed copy row"),
        ((1, "{}", 5, "b"), "malformed copy row"),
        ([True, "{}", 5, "b"], "bad primary key"),
        ([None, "{}", 5, "b"], "bad primary key"),
        ([[1], "{}", 5, "b"], "bad primary key"),
        ([1, {"a": 1}, 5, "b"], "malformed copy row"),
        ([1, "{}", 5, None], "malformed copy row"),
        ([1, "{}", 1 << 63, "b"], "out-of-range version"),
        ([1, "{}", -1, "b"], "out-of-range version"),
        ([1, "{}", "5", "b"], "out-of-range version"),
    ],
)
def test_malformed_copy_rows_are_refused(row, error):
    with pytest.raises(RemoteProtocolError, match=error):
        m.check_rows([[2, "{}", 1, "a"], row])
