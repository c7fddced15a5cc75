"""Peer input: whatever bytes or msgpack a peer sends, only RemoteProtocolError escapes, and
nothing storage could not hold (or could hold but not read back) gets through."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.core import messages as m
from agent.core.changes import ATTRIBUTE, CREATE_TABLE, DELETE, DROP_TABLE, PUT, Write
from agent.core.errors import INVALID_PAYLOAD, PROTOCOL_ERROR, RemoteProtocolError
from agent.core.subscription import Subscriber
from agent.core.validate import (
    check_document,
    check_table_definition,
    valid_attribute,
    valid_key,
    valid_name,
)

AT = 1_700_000_000_000.0
VERSION = 111_411_200_000_000_000  # an ordinary clock version (2023 << 16)

# --- Fuzzing: random bytes and random msgpack structures --------------------------------------

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),  # NaN and infinities included
    st.text(max_size=12),
    st.binary(max_size=12),
)
STRUCTURES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(
            st.one_of(st.text(max_size=6), st.integers(-(2**63), 2**64 - 1)), inner, max_size=4
        )
    ),
    max_leaves=12,
)
# frames that start like ours: a known message type, then fields of any shape and number
FRAMES = st.builds(
    lambda code, fields: [code, *fields],
    st.sampled_from(sorted(m.MESSAGES)),
    st.lists(STRUCTURES, max_size=10),
)
WRITES = st.lists(
    st.one_of(
        st.lists(STRUCTURES, min_size=4, max_size=4),
        st.tuples(
            st.one_of(st.just("t"), st.text(max_size=4), STRUCTURES),
            st.sampled_from([PUT, DELETE, ATTRIBUTE, CREATE_TABLE, DROP_TABLE, 0, 99, True]),
            STRUCTURES,
            st.one_of(STRUCTURES, st.just('{"a":1}'), st.just("[1]"), st.just('"s"')),
        ).map(list),
        STRUCTURES,
    ),
    max_size=6,
)


def _pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _only_remote_errors(call, *args) -> None:
    try:
        call(*args)
    except RemoteProtocolError as exc:
        assert str(exc), "a refusal must say why"
        assert exc.code in (PROTOCOL_ERROR, INVALID_PAYLOAD)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_parse_of_random_bytes_raises_only_remote_protocol_error(data):
    _only_remote_errors(m.parse, data)
    _only_remote_errors(m.parse, bytes([m.PROTOCOL_VERSION]) + data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(FRAMES, STRUCTURES))
def test_parse_of_random_msgpack_raises_only_remote_protocol_error(raw):
    _only_remote_errors(m.parse, bytes([m.PROTOCOL_VERSION]) + _pack(raw))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_decode_changes_of_random_bytes_raises_only_remote_protocol_error(data):
    _only_remote_errors(m.decode_changes, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(WRITES, STRUCTURES))
def test_decode_changes_of_random_msgpack_raises_only_remote_protocol_error(raw):
    _only_remote_errors(m.decode_changes, _pack(raw))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.lists(STRUCTURES, min_size=4, max_size=4), STRUCTURES), max_size=5))
def test_check_rows_of_random_rows_raises_only_remote_protocol_error(rows):
    _only_remote_errors(m.check_rows, rows)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STRUCTURES, max_size=4))
def test_a_subscriber_fed_random_schema_raises_only_remote_protocol_error(tables):
    sub = _streaming_subscriber()
    _only_remote_errors(sub.receive, m.Schema(tables), 0.0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FRAMES)
def test_a_machine_fed_any_parsed_frame_raises_only_remote_protocol_error(raw):
    """What parse lets through never makes the machines raise anything else."""
    try:
        msg = m.parse(bytes([m.PROTOCOL_VERSION]) + _pack(raw))
    except RemoteProtocolError:
        return
    _only_remote_errors(_streaming_subscriber().receive, msg, 0.0)


def _streaming_subscriber() -> Subscriber:
    sub = Subscriber("a", "data", "b")
    sub.start(0.0, {}, "a-id")
    sub.receive(m.Welcome("b", "data", [], "b-id", {}, {}, None), 0.0)
    sub.subscribe({}, ["b-id"], None)
    sub.receive(m.Schema([]), 0.0)
    return sub


# --- Specific refusals --------------------------------------------------------------------------


def body(*writes) -> bytes:
    return m.encode_changes([list(w) for w in writes])


def refused(data: bytes, match: str, code: int = INVALID_PAYLOAD) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError, match=match) as caught:
        m.decode_changes(data)
    assert caught.value.code == code
    return caught.value


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ("[1, 2]", "JSON list, not an object"),
        ('"a string"', "JSON str, not an object"),
        ("42", "JSON int, not an object"),
        ("null", "JSON NoneType, not an object"),
        ("{not json", "not valid JSON"),
        ({"id": 1}, "not JSON text"),  # a msgpack map instead of the record's text
        (b'{"id": 1}', "not JSON text"),
        ('{"": 1}', "empty attribute name"),
        ('{"a\\u0000b": 1}', "attribute name with a NUL"),
    ],
)
def test_a_put_whose_record_is_not_a_json_object_with_good_names_is_refused(doc, match):
    refused(body(("t", PUT, 1, doc)), match)


def test_a_nul_inside_a_value_is_data_not_a_name():
    assert m.decode_changes(body(("t", PUT, 1, '{"a": "x\\u0000y"}')))[0].key == 1


@pytest.mark.parametrize(
    "table", ["", "bad name", "a/b", "x" * 65, "-lead", "a\x00", 7, None, ["t"], True]
)
def test_a_write_to_a_bad_table_name_is_refused(table):
    refused(body((table, PUT, 1, "{}")), "invalid table name")


@pytest.mark.parametrize("key", [True, False, None, 2**63, 2**64 - 1, "", "k" * 1025, [1]])
def test_a_put_or_delete_with_a_bad_primary_key_is_refused(key):
    refused(body(("t", PUT, key, "{}")), "bad primary key")
    refused(body(("t", DELETE, key, None)), "malformed delete")


def test_float_nan_key_is_refused():
    refused(body(("t", PUT, float("nan"), "{}")), "bad primary key")


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (("t", DELETE, 1, "{}"), "malformed delete"),
        (("t", ATTRIBUTE, "", None), "attribute of t with a bad name"),
        (("t", ATTRIBUTE, "a\x00", None), "attribute of t with a bad name"),
        (("t", ATTRIBUTE, 5, None), "attribute of t with a bad name"),
        (("t", ATTRIBUTE, "a", {"type": 5}), "malformed attribute"),
        (("t", ATTRIBUTE, "a", {"indexed": "yes"}), "malformed attribute"),
        (("t", ATTRIBUTE, "a", [1]), "malformed attribute"),
        (("t", CREATE_TABLE, None, ["not", "a", "dict"]), "table definition"),
        (("t", CREATE_TABLE, None, {"name": "u"}), "malformed create_table"),
        (("t", CREATE_TABLE, "k", {"name": "t"}), "malformed create_table"),
        (("t", CREATE_TABLE, None, {"name": "t", "primary_key": ""}), "bad primary key"),
        (("t", CREATE_TABLE, None, {"name": "t", "attributes": [{"name": ""}]}), "attribute"),
        (("t", CREATE_TABLE, None, {"name": "t", "attributes": [5]}), "attribute"),
        (("t", CREATE_TABLE, None, {"name": "t", "version": -1}), "version or origin"),
        (("t", DROP_TABLE, None, {"x": 1}), "malformed drop_table"),
        (("t", 99, None, None), "unknown write kind"),
        (("t", True, None, None), "unknown write kind"),  # True == PUT == 1 in Python
    ],
)
def test_malformed_writes_are_refused(write, match):
    refused(body(write), match)


def test_a_malformed_change_set_shape_is_a_payload_error():
    refused(b"\xc1", "undecodable change set")
    refused(_pack({"a": 1}), "not a list")
    refused(_pack([["t", PUT, 1]]), "malformed write")
    refused(_pack([("t", PUT, 1, "{}", 5)]), "malformed write")


def test_nothing_of_a_change_set_is_returned_when_one_write_is_bad():
    with pytest.raises(RemoteProtocolError):
        m.decode_changes(body(("t", PUT, 1, '{"id":1}'), ("t", PUT, 2, "[2]")))


# --- Txn and other frames: versions, sequences, booleans posing as integers ---------------------


def txn(**fields) -> m.Txn:
    values = dict(
        seq=7, prev=6, origin="b", origin_id="b-id", oseq=3, version=VERSION, records=1, at=AT
    )
    values["body"] = body(("t", PUT, 1, '{"id":1}'))
    values.update(fields)
    return m.Txn(**values)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"version": 0}, "version"),  # no transaction is stamped 0
        ({"version": -1}, "version"),
        ({"version": 2**64 - 1}, "version"),
        ({"version": 1 << 63}, "version"),
        ({"version": True}, "version"),
        ({"version": 5.0}, "version"),
        ({"oseq": 0}, "oseq"),  # sequences start at 1
        ({"oseq": True}, "oseq"),
        ({"seq": 0}, "seq"),
        ({"seq": False}, "seq"),
        ({"prev": -1}, "prev"),
        ({"records": -1}, "records"),
        ({"records": True}, "records"),
        ({"at": float("nan")}, "at"),
        ({"at": float("inf")}, "at"),
        ({"body": "text"}, "body"),
    ],
)
def test_a_txn_with_fields_out_of_range_is_a_protocol_error(fields, name):
    with pytest.raises(RemoteProtocolError, match=rf"Txn\.{name} is malformed") as caught:
        m.parse(m.serialize(txn(**fields)))
    assert caught.value.code == PROTOCOL_ERROR


@pytest.mark.parametrize(
    "msg",
    [
        m.Hello(5, "data", {}, "a-id"),
        m.Hello("", "data", {}, "a-id"),
        m.Hello("a", "bad db", {}, "a-id"),
        m.Hello("a", "data", [], "a-id"),
        m.Hello("a", "data", {"tables": "t"}, "a-id"),
        m.Hello("a", "data", {"tables": [["t"]]}, "a-id"),
        m.Welcome("b", "data", ["bad name"], "b-id", {}, {}, None),
        m.Welcome("b", "data", [], "b-id", {}, {}, [5]),
        m.Subscribe({}, [], "full", 0, {}),
        m.Subscribe({}, [], {"mode": "resume", "after": [1]}, 0, {}),
        m.Subscribe({}, [], {"mode": "resume", "copied": "x"}, 0, {}),
        m.Subscribe({}, [], {"mode": "resume", "table": "a b"}, 0, {}),
        m.Subscribe({}, [], {"mode": "resume", "frontier": {"o": -1}}, 0, {}),
        m.CopyChunk("bad name", [], None, None, True),
        m.CopyChunk("t", [], [1], None, True),
        m.Ack(True, 1),
        m.Ping(float("nan")),
    ],
)
def test_frames_with_wrong_field_types_are_protocol_errors(msg):
    with pytest.raises(RemoteProtocolError, match="is malformed") as caught:
        m.parse(m.serialize(msg))
    assert caught.value.code == PROTOCOL_ERROR


def test_a_frame_with_an_unhashable_message_type_is_refused():
    with pytest.raises(RemoteProtocolError, match="unknown message"):
        m.parse(bytes([m.PROTOCOL_VERSION]) + _pack([[8], 1]))


def test_a_subscriber_refuses_a_bad_txn_before_the_shell_sees_it():
    sub = _streaming_subscriber()
    with pytest.raises(RemoteProtocolError, match="JSON list") as caught:
        sub.receive(txn(seq=1, prev=0, body=body(("t", PUT, 1, "[1]"))), 0.0)
    assert caught.value.code == INVALID_PAYLOAD
    # a good one is handed over decoded
    (event,) = sub.receive(txn(seq=1, prev=0), 0.0)
    assert event.kind == "txn" and event.writes == [Write("t", PUT, 1, '{"id":1}')]


@pytest.mark.parametrize(
    "spec",
    [
        ["t"],
        {"name": "bad name"},
        {"name": "t", "primary_key": "a\x00"},
        {"name": "t", "primary_key": "k" * 251},
        {"name": "t", "replicate": "yes"},
        {"name": "t", "attributes": {"a": 1}},
        {"name": "t", "attributes": [{"name": "a", "type": 1}]},
    ],
)
def test_a_subscriber_refuses_a_schema_storage_could_not_take(spec):
    sub = Subscriber("a", "data", "b")
    sub.start(0.0, {}, "a-id")
    sub.receive(m.Welcome("b", "data", [], "b-id", {}, {}, None), 0.0)
    sub.subscribe({}, ["b-id"], None)
    with pytest.raises(RemoteProtocolError) as caught:
        sub.receive(m.Schema([{"name": "ok", "primary_key": "id"}, spec]), 0.0)
    assert caught.value.code == INVALID_PAYLOAD


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ([1, "[1]", 5, "b"], "JSON list"),
        ([1, '"s"', 5, "b"], "JSON str"),
        ([1, '{"": 1}', 5, "b"], "empty attribute name"),
        ([1, "{}", True, "b"], "out-of-range version"),
        ([1, "{}", 2**64 - 1, "b"], "out-of-range version"),
        ([False, "{}", 5, "b"], "bad primary key"),
    ],
)
def test_copy_rows_are_held_to_the_same_rules(row, match):
    with pytest.raises(RemoteProtocolError, match=match):
        m.check_rows([row])


# --- The rules, shared with the local write path -------------------------------------------------


def test_the_rules():
    assert valid_name("dog") and valid_name("a-b_1") and valid_name("x" * 64)
    assert not valid_name("x" * 65) and not valid_name("") and not valid_name("a.b")
    assert valid_attribute("a b.c") and valid_attribute("x" * 1000)
    assert not valid_attribute("") and not valid_attribute("a\x00") and not valid_attribute(1)
    assert valid_key(0) and valid_key(-(2**63)) and valid_key(1.5) and valid_key("k")
    assert not valid_key(True) and not valid_key(2**63) and not valid_key(float("inf"))
    check_document('{"id": 1, "nested": {"": "inner names are data"}}')
    check_table_definition({"name": "t"})
    check_table_definition(
        {
            "name": "t",
            "primary_key": "id",
            "replicate": True,
            "schema_defined": False,
            "version": VERSION,
            "origin": "b",
            "attributes": [{"name": "id", "type": None, "indexed": True}],
        }
    )
