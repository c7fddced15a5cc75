"""Cursor arithmetic: what to apply, what to send, when a snapshot must replace the log."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.cursors import after_snapshot, served_from_log, should_apply, stream_wants

ORIGINS = st.sampled_from(["a", "b", "c"])
CURSORS = st.dictionaries(ORIGINS, st.integers(min_value=0, max_value=50))


def test_only_versions_after_the_cursor_apply():
    assert should_apply({}, "a", 1)
    assert should_apply({"a": 4}, "a", 5)
    assert not should_apply({"a": 4}, "a", 4)
    assert not should_apply({"a": 4}, "a", 3)
    assert should_apply({"a": 4}, "b", 1)


def test_the_log_serves_cursors_at_or_above_every_wanted_floor():
    floors = {"a": 5, "b": 9}
    assert served_from_log({"a": 5, "b": 9}, ["a", "b"], floors)
    assert not served_from_log({"a": 4, "b": 9}, ["a", "b"], floors)
    assert served_from_log({"a": 4}, ["c"], floors)  # only the wanted origins matter
    assert not served_from_log({}, ["b"], floors)  # no cursor means from the beginning
    assert served_from_log({}, ["a", "c"], {})


def test_a_snapshot_moves_cursors_up_to_its_frontier_and_never_down():
    assert after_snapshot({"a": 7, "b": 1}, {"a": 3, "b": 4, "c": 2}) == {"a": 7, "b": 4, "c": 2}


def test_after_snapshot_leaves_its_inputs_alone():
    cursors, frontier = {"a": 1}, {"a": 2}
    after_snapshot(cursors, frontier)
    assert cursors == {"a": 1} and frontier == {"a": 2}


def test_a_stream_sends_only_wanted_origins_after_what_it_sent():
    origins = frozenset({"a", "b"})
    assert stream_wants(origins, {"a": 3}, "a", 4)
    assert not stream_wants(origins, {"a": 3}, "a", 3)
    assert stream_wants(origins, {}, "b", 1)
    assert not stream_wants(origins, {}, "c", 100)


@settings(max_examples=200, deadline=None)
@given(cursors=CURSORS, frontier=CURSORS)
def test_after_snapshot_is_the_pointwise_maximum(cursors, frontier):
    merged = after_snapshot(cursors, frontier)
    for origin in set(cursors) | set(frontier):  # a missing origin means version 0
        assert merged.get(origin, 0) == max(cursors.get(origin, 0), frontier.get(origin, 0))
    assert after_snapshot(merged, frontier) == merged  # idempotent


@settings(max_examples=200, deadline=None)
@given(cursors=CURSORS, floors=CURSORS, origins=st.sets(ORIGINS))
def test_after_merging_a_snapshot_at_or_above_the_floors_the_log_serves(cursors, floors, origins):
    frontier = {o: floors.get(o, 0) + 1 for o in origins}
    assert served_from_log(after_snapshot(cursors, frontier), origins, floors)
