"""Cursor arithmetic over gap-free per-origin sequences: apply, send, snapshot, roll-back."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.cursors import (
    APPLY,
    DUPLICATE,
    GAP,
    after_snapshot,
    classify,
    offer,
    rolled_back,
    scope_of,
    scoped,
    served_from_log,
)

ORIGINS = st.sampled_from(["a", "b", "c"])
CURSORS = st.dictionaries(ORIGINS, st.integers(min_value=0, max_value=50))


def test_only_the_next_sequence_applies():
    assert classify(0, 1) == APPLY
    assert classify(4, 5) == APPLY
    assert classify(4, 4) == DUPLICATE
    assert classify(4, 1) == DUPLICATE
    assert classify(4, 6) == GAP
    assert classify(0, 2) == GAP  # the first one never arrived


def test_a_publisher_offers_only_wanted_origins_and_never_past_a_hole():
    origins = frozenset({"a", "b"})
    assert offer(origins, {"a": 3}, "a", 4) == APPLY
    assert offer(origins, {"a": 3}, "a", 3) == DUPLICATE  # sent already (or the peer has it)
    assert offer(origins, {"a": 3}, "a", 5) == GAP  # 4 is not in this log
    assert offer(origins, {}, "b", 1) == APPLY
    assert offer(origins, {}, "b", 2) == GAP
    assert offer(origins, {}, "c", 1) == DUPLICATE  # never asked for: skipped, not a gap
    assert offer(origins, {}, "c", 100) == DUPLICATE


def test_a_peer_holding_more_of_my_own_writes_means_i_went_back_in_time():
    # rolled_back(own cursor, version of my own entry at the peer's number, peer's cursor
    # for my origin, the version of that entry at the peer)
    assert rolled_back(3, None, 5, 900)
    assert not rolled_back(5, 500, 5, 500)  # level, and the same transaction
    assert not rolled_back(5, 200, 2, 200)  # the peer is just behind
    assert not rolled_back(0, None, 0, 0)  # nothing written anywhere


def test_a_peer_holding_another_transaction_under_my_number_means_i_went_back_in_time():
    """Restored, then written again: my 3 is not the 3 the peer holds."""
    assert rolled_back(3, 310, 3, 300)
    assert rolled_back(5, 310, 3, 300)
    assert not rolled_back(5, None, 3, 300)  # not in my log any more (pruned): cannot tell


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


@settings(max_examples=200, deadline=None)
@given(cursors=CURSORS, frontier=CURSORS)
def test_after_snapshot_is_the_pointwise_maximum(cursors, frontier):
    merged = after_snapshot(cursors, frontier)
    for origin in set(cursors) | set(frontier):  # a missing origin means sequence 0
        assert merged.get(origin, 0) == max(cursors.get(origin, 0), frontier.get(origin, 0))
    assert after_snapshot(merged, frontier) == merged  # idempotent


@settings(max_examples=200, deadline=None)
@given(cursors=CURSORS, floors=CURSORS, origins=st.sets(ORIGINS))
def test_after_merging_a_snapshot_at_or_above_the_floors_the_log_serves(cursors, floors, origins):
    frontier = {o: floors.get(o, 0) + 1 for o in origins}
    assert served_from_log(after_snapshot(cursors, frontier), origins, floors)


@st.composite
def deliveries(draw) -> tuple[int, list[int]]:
    """A sequence 1..n delivered in any order, with duplicates, each at least once."""
    n = draw(st.integers(0, 12))
    extra = draw(st.lists(st.integers(1, max(n, 1)), max_size=2 * n))
    order = draw(st.permutations(list(range(1, n + 1)) + (extra if n else [])))
    return n, order


@settings(max_examples=300, deadline=None)
@given(deliveries())
def test_applying_only_by_classify_yields_each_sequence_once_in_order(case):
    """Any delivery order with duplicates: what applies is exactly 1..n, once, in order,
    provided the sender re-offers what was refused as a gap (the link resubscribes)."""
    n, order = case
    cursor, applied = 0, []
    pending = list(order)
    while pending:
        refused = []
        for oseq in pending:
            decision = classify(cursor, oseq)
            if decision == APPLY:
                applied.append(oseq)
                cursor = oseq
            elif decision == GAP:
                refused.append(oseq)  # not applied: it must come again
        assert len(refused) < len(pending) or not refused, "no progress"
        pending = refused
    assert applied == list(range(1, n + 1))
    assert cursor == n


@settings(max_examples=300, deadline=None)
@given(deliveries())
def test_a_single_pass_never_applies_out_of_order_or_twice(case):
    """Without any re-send, what applies is a prefix 1..k: never a hole, never twice."""
    n, order = case
    cursor, applied = 0, []
    for oseq in order:
        if classify(cursor, oseq) == APPLY:
            applied.append(oseq)
            cursor = oseq
    assert applied == list(range(1, len(applied) + 1))
    assert all(oseq > len(applied) for oseq in order if oseq not in applied)


def test_a_filtered_stream_keys_its_cursors_apart_from_the_origins_own():
    assert scoped("b-id", None) == "b-id"
    assert scoped("b-id", scope_of(["dog", "cat", "dog"])) == "b-id@cat,dog"
    assert scope_of(None) is None
    assert scope_of(["b", "a"]) == scope_of(["a", "b"]) == "a,b"
