"""Which connected peer serves each origin: direct when possible, else exactly one relay."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.relay import assign_origins

NAMES = st.sampled_from(["a", "b", "c", "d", "e", "node-1", "node-10", "node-2"])


def test_every_connected_peer_serves_its_own_origin():
    assert assign_origins("a", ["a", "b", "c"], ["b", "c"]) == {"b": {"b"}, "c": {"c"}}


def test_an_origin_whose_link_is_down_is_borrowed_from_the_next_peer_after_it():
    assert assign_origins("a", ["a", "b", "c", "d"], ["b", "d"]) == {"b": {"b"}, "d": {"d", "c"}}


def test_the_search_for_a_relay_wraps_around():
    assert assign_origins("a", ["a", "b", "c", "z"], ["b", "c"]) == {"b": {"b", "z"}, "c": {"c"}}


def test_a_node_never_asks_for_itself_even_if_listed_as_connected():
    assert assign_origins("a", ["a", "b"], ["a", "b"]) == {"b": {"b"}}


def test_nothing_is_asked_for_when_nothing_is_connected():
    assert assign_origins("a", ["a", "b", "c"], []) == {}


def test_a_connected_peer_not_yet_known_as_an_origin_still_serves_itself():
    assert assign_origins("a", ["a"], ["b"]) == {"b": {"b"}}


def test_the_borrowed_origin_goes_back_when_its_link_returns():
    down = assign_origins("b", ["a", "b", "c"], ["c"])
    back = assign_origins("b", ["a", "b", "c"], ["a", "c"])
    assert down == {"c": {"c", "a"}}
    assert back == {"a": {"a"}, "c": {"c"}}


@settings(max_examples=200, deadline=None)
@given(me=NAMES, origins=st.sets(NAMES), connected=st.sets(NAMES))
def test_each_origin_is_asked_of_exactly_one_link_and_never_our_own(me, origins, connected):
    plan = assign_origins(me, origins, connected)
    live = set(connected) - {me}
    assert set(plan) == live
    asked = [o for wanted in plan.values() for o in wanted]
    assert len(asked) == len(set(asked)), "an origin asked of two links would be duplicated"
    assert me not in asked
    if live:
        assert set(asked) == (set(origins) | live) - {me}
    for peer in live:
        assert peer in plan[peer]


@settings(max_examples=100, deadline=None)
@given(me=NAMES, origins=st.lists(NAMES), connected=st.lists(NAMES))
def test_the_choice_does_not_depend_on_input_order(me, origins, connected):
    plan = assign_origins(me, origins, connected)
    assert plan == assign_origins(me, list(reversed(origins)), list(reversed(connected)))


def test_a_borrowed_origin_goes_to_a_peer_that_reaches_it():
    # b sees c and d; only d still receives a directly, so a is borrowed from d, not c
    reach = {"c": {"c", "b"}, "d": {"d", "a", "b"}}
    assert assign_origins("b", ["a", "b", "c", "d"], ["c", "d"], reach) == {
        "c": {"c"},
        "d": {"d", "a"},
    }


def test_without_any_peer_reaching_it_the_old_rule_applies():
    reach = {"c": {"c"}, "d": {"d"}}
    assert assign_origins("b", ["a", "b", "c", "d"], ["c", "d"], reach) == {
        "c": {"c", "a"},
        "d": {"d"},
    }
