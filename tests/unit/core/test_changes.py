"""Change sets: the writes of one transaction, and their msgpack bodies."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.changes import (
    ATTRIBUTE,
    CREATE_TABLE,
    DATA_KINDS,
    DELETE,
    DROP_TABLE,
    KINDS,
    PUT,
    Write,
    record_count,
)
from agent.core.errors import RemoteProtocolError
from agent.core.messages import decode_changes, encode_changes, load_changes

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
WRITES = st.builds(
    Write,
    table=st.text(min_size=1, max_size=20),
    kind=st.sampled_from(KINDS),
    key=st.one_of(st.none(), st.text(max_size=20), st.integers(-(2**63), 2**63 - 1)),
    value=JSON_VALUES,
)


def test_kinds_are_distinct_and_data_kinds_are_puts_and_deletes():
    assert len(set(KINDS)) == len(KINDS) == 6  # drop_attribute is the sixth
    assert set(DATA_KINDS) == {PUT, DELETE}


def test_record_count_counts_only_puts_and_deletes():
    writes = [
        Write("t", CREATE_TABLE, None, {"name": "t"}),
        Write("t", ATTRIBUTE, "a", {"type": None, "indexed": False}),
        Write("t", PUT, 1, '{"id":1}'),
        Write("t", DELETE, 2, None),
        Write("t", DROP_TABLE, None, None),
    ]
    assert record_count(writes) == 2
    assert record_count([]) == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(WRITES, max_size=10))
def test_encode_then_load_gives_the_same_writes(writes):
    """Our own log is read back as written (load_changes does not check it again)."""
    decoded = load_changes(encode_changes(writes))
    assert decoded == writes
    assert all(isinstance(w, Write) for w in decoded)


def test_a_valid_change_set_decodes_as_written():
    writes = [
        Write("t", CREATE_TABLE, None, {"name": "t", "primary_key": "id", "attributes": []}),
        Write("t", ATTRIBUTE, "a", {"type": None, "indexed": False}),
        Write("t", PUT, 1, '{"id":1,"a":"x"}'),
        Write("t", PUT, "k", '{"id":"k"}'),
        Write("t", DELETE, 2.5, None),
        Write("t", DROP_TABLE, None, None),
    ]
    assert decode_changes(encode_changes(writes)) == writes


def test_encode_accepts_plain_tuples():
    assert decode_changes(encode_changes([("t", PUT, "k", "{}")])) == [Write("t", PUT, "k", "{}")]


@pytest.mark.parametrize(
    "body",
    [
        b"\xc1",  # a byte msgpack never uses
        b"",
        msgpack.packb({"not": "a list"}),
        msgpack.packb([["t", PUT, 1]]),  # three fields
        msgpack.packb([["t", PUT, 1, None, 5]]),  # five fields
        msgpack.packb([["t", 99, 1, None]]),  # unknown kind
        msgpack.packb([[7, PUT, 1, None]]),  # table not a string
        msgpack.packb(["t"]),  # a write that is not a list
    ],
)
def test_malformed_bodies_raise_remote_protocol_error(body):
    with pytest.raises(RemoteProtocolError):
        decode_changes(body)
