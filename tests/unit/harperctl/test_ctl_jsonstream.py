"""The incremental decoder of a top-level JSON array: any split of the bytes, same items."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harperctl.jsonstream import ArrayItems, NotAnArray

scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def decode(pieces: list[bytes]) -> list[Any]:
    """Feed `pieces` one by one and return every item, checking the end."""
    decoder = ArrayItems()
    items = [item for piece in pieces for item in decoder.feed(piece)]
    items += decoder.close()
    assert decoder.done
    return items


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Cut `data` at the positions `cuts` (clamped to its length)."""
    points = sorted({min(cut, len(data)) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(
    items=st.lists(values, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    indent=st.sampled_from([None, 1]),
)
def test_any_split_gives_the_items_json_loads_gives(
    items: list[Any], cuts: list[int], indent: int | None
) -> None:
    data = json.dumps(items, indent=indent, ensure_ascii=False).encode()
    assert decode(split(data, cuts)) == json.loads(data)


def test_items_come_out_as_soon_as_they_are_complete() -> None:
    decoder = ArrayItems()
    assert decoder.feed(b' [ {"id": 1}, {"id"') == [{"id": 1}]
    assert decoder.feed(b': 2}, {"id": 3}') == [{"id": 2}]
    assert decoder.feed(b"]") == [{"id": 3}]
    assert decoder.done and decoder.close() == []


def test_a_number_at_the_end_of_a_piece_waits_for_the_next() -> None:
    decoder = ArrayItems()
    assert decoder.feed(b"[12") == []
    assert decoder.feed(b"34, tr") == [1234]
    assert decoder.feed(b"ue]\n") == [True]


def test_a_character_split_between_pieces() -> None:
    data = json.dumps([{"name": "Pénélope 🐕"}], ensure_ascii=False).encode()
    cut = data.index("🐕".encode()) + 2
    assert decode([data[:cut], data[cut:]]) == [{"name": "Pénélope 🐕"}]


def test_empty_array_and_white_space() -> None:
    assert decode([b" \n[", b" ] \n"]) == []


@pytest.mark.parametrize(
    ("pieces", "message"),
    [
        ([b'{"message": "ok"}'], "expected '['"),
        ([b"[1, 2"], "ends before its closing"),
        ([b"[1] [2]"], "text after the array"),
        ([b"[1 2]"], "expected ',' or ']'"),
        ([b"[1,]"], "invalid JSON"),
        ([b"[\xff]"], "not UTF-8"),
        ([b""], "ends before"),
    ],
)
def test_what_is_not_an_array_is_refused(pieces: list[bytes], message: str) -> None:
    with pytest.raises(NotAnArray) as caught:
        decode(pieces)
    assert message in str(caught.value)
