"""The link protocol machines, driven message by message (every frame through the codec)."""

from __future__ import annotations

import pytest

from agent.core import messages as m
from agent.core.cursors import APPLY, DUPLICATE, GAP
from agent.core.errors import LocalProtocolError, RemoteProtocolError
from agent.core.subscription import (
    CLOSED,
    COPYING,
    STREAMING,
    SUBSCRIBED,
    Publisher,
    Subscriber,
    Timing,
)

T0 = 1_700_000_000.0  # epoch seconds, as the shells pass them
TIMING = Timing(ping_interval=5.0, ping_timeout=30.0, stall_timeout=10.0)


def wire(msg: m.Message) -> m.Message:
    """Send a message through the codec, as a real link would."""
    return m.parse(m.serialize(msg))


def deliver(source, target, now: float = T0) -> list:
    """Move everything `source` queued into `target`; return the events it produced."""
    events = []
    for msg in source.take():
        events += target.receive(wire(msg), now)
    return events


def txn(seq: int, prev: int, version: int = 0, records: int = 1, origin: str = "b") -> m.Txn:
    """A Txn frame at log position `seq`; its origin sequence is `seq` too."""
    return m.Txn(
        seq, prev, origin, f"{origin}-id", seq, version or seq, records, T0 * 1000, b"\x90"
    )


def connected(window: int = 20000) -> tuple[Subscriber, Publisher]:
    """A subscriber `a` and a publisher `b` past Hello/Welcome."""
    sub = Subscriber("a", "data", "b", TIMING)
    pub = Publisher("b", ["data"], TIMING, window)
    sub.start(T0, None, "a-id")
    assert [e.kind for e in deliver(sub, pub)] == ["hello"]
    # the shell answers Hello
    pub.outbox.append(m.Welcome("b", "data", [], "b-id", {"b-id": 4, "a-id": 2}, {"b-id": 40}))
    assert [e.kind for e in deliver(pub, sub)] == ["welcome"]
    return sub, pub


def streaming(window: int = 20000, cursors: dict | None = None) -> tuple[Subscriber, Publisher]:
    """A link past Subscribe/Schema with a plan that streams origin `b` (id b-id)."""
    sub, pub = connected(window)
    sub.subscribe(cursors or {}, ["b-id"], None)
    (event,) = deliver(sub, pub)
    pub.plan_subscription(event.message, {}, False)
    pub.outbox.append(m.Schema([]))
    assert [e.kind for e in deliver(pub, sub)] == ["schema"]
    return sub, pub


def send_txn(pub: Publisher, seq: int, records: int = 1, oseq: int = 0) -> None:
    """Queue log entry `seq` of origin b (its origin sequence `oseq`, else `seq`)."""
    pub.outbox.append(pub.txn(seq, "b", "b-id", oseq or seq, seq, records, T0 * 1000, b"\x90"))


# --- Handshake -------------------------------------------------------------------------------


def test_handshake_names_both_ends():
    sub, pub = connected()
    assert (sub.peer, pub.peer, pub.database) == ("b", "a", "data")
    assert pub.stats.connected_at == T0


def test_handshake_exchanges_origin_ids_and_what_the_peer_holds():
    sub, pub = connected()
    assert (sub.peer_origin, pub.peer_origin) == ("b-id", "a-id")
    assert sub.peer_cursors == {"b-id": 4, "a-id": 2}


def test_hello_carries_the_origin_id_given_to_start():
    sub = Subscriber("a", "data", "b", TIMING)
    sub.start(T0, {"tables": ["t"]}, "a-id")
    (hello,) = sub.take()
    assert wire(hello) == m.Hello("a", "data", {"tables": ["t"]}, "a-id")


def test_publisher_refuses_a_database_it_does_not_replicate():
    sub = Subscriber("a", "other", "b", TIMING)
    pub = Publisher("b", ["data"], TIMING)
    sub.start(T0)
    (event,) = deliver(sub, pub)
    assert event.kind == "refused"
    (close,) = pub.take()
    assert isinstance(close, m.Close) and close.retry is False
    assert sub.receive(wire(close), T0)[0].kind == "closed"
    assert sub.state == CLOSED
    with pytest.raises(RemoteProtocolError, match="before Hello"):
        pub.receive(wire(m.Ack(1, 1)), T0)


def test_a_peer_with_another_name_is_refused():
    sub = Subscriber("a", "data", "b", TIMING)
    sub.start(T0)
    with pytest.raises(RemoteProtocolError, match="name mismatch"):
        sub.receive(wire(m.Welcome("c", "data", [], "c-id", {}, {})), T0)


def test_any_name_is_accepted_when_none_is_expected():
    sub = Subscriber("a", "data", None, TIMING)
    sub.start(T0)
    sub.receive(wire(m.Welcome("c", "data", [], "c-id", {}, {})), T0)
    assert sub.peer == "c"


@pytest.mark.parametrize(
    ("welcome", "error"),
    [
        (m.Welcome("a", "data", [], "a-id", {}, {}), "itself"),
        (m.Welcome("b", "other", [], "b-id", {}, {}), "database"),
    ],
)
def test_subscriber_refuses_itself_and_the_wrong_database(welcome, error):
    sub = Subscriber("a", "data", "b", TIMING)
    sub.start(T0)
    with pytest.raises(RemoteProtocolError, match=error):
        sub.receive(wire(welcome), T0)


def test_publisher_refuses_a_connection_from_itself():
    pub = Publisher("b", ["data"], TIMING)
    with pytest.raises(RemoteProtocolError, match="itself"):
        pub.receive(wire(m.Hello("b", "data", {}, "b-id")), T0)


def test_second_hello_and_second_welcome_are_protocol_errors():
    sub, pub = connected()
    with pytest.raises(RemoteProtocolError, match="second Hello"):
        pub.receive(wire(m.Hello("a", "data", {}, "a-id")), T0)
    with pytest.raises(RemoteProtocolError, match="second Welcome"):
        sub.receive(wire(m.Welcome("b", "data", [], "b-id", {}, {})), T0)


def test_subscribe_before_welcome_is_our_bug():
    sub = Subscriber("a", "data", "b", TIMING)
    sub.start(T0)
    with pytest.raises(LocalProtocolError):
        sub.subscribe({}, ["b"], None)


def test_stream_messages_before_subscribe_are_protocol_errors():
    sub, _ = connected()
    with pytest.raises(RemoteProtocolError, match="before Subscribe"):
        sub.receive(wire(m.Schema([])), T0)
    with pytest.raises(RemoteProtocolError, match="unexpected"):
        sub.receive(wire(m.Hello("b", "data", {}, "b-id")), T0)


# --- Streaming -------------------------------------------------------------------------------


def test_txns_chain_by_prev_and_reach_the_shell():
    sub, pub = streaming()
    send_txn(pub, 4)
    send_txn(pub, 9)
    events = deliver(pub, sub)
    assert [(e.kind, e.message.seq, e.message.prev) for e in events] == [
        ("txn", 4, 0),
        ("txn", 9, 4),
    ]
    assert sub.stats.last_version == 9


def test_a_gap_in_the_stream_is_a_protocol_error():
    sub, _ = streaming()
    sub.receive(wire(txn(4, 0)), T0)
    with pytest.raises(RemoteProtocolError, match="gap"):
        sub.receive(wire(txn(9, 7)), T0)


def test_a_reordered_pair_is_caught_as_a_gap():
    sub, pub = streaming()
    send_txn(pub, 4)
    send_txn(pub, 9)
    first, second = pub.take()
    with pytest.raises(RemoteProtocolError, match="gap"):
        sub.receive(wire(second), T0)
    assert first.prev == 0


def test_duplicates_are_ignored_and_not_acked_twice():
    sub, _ = streaming()
    assert sub.receive(wire(txn(4, 0)), T0)[0].kind == "txn"
    sub.applied(4, 1, T0)
    assert sub.receive(wire(txn(4, 0)), T0) == []
    assert [type(x) for x in sub.take()] == [m.Ack]


def test_txn_during_a_copy_is_a_protocol_error():
    sub, _ = streaming()
    sub.receive(wire(m.CopyStart({}, 0, "merge", 0, 0)), T0)
    with pytest.raises(RemoteProtocolError, match="before the stream"):
        sub.receive(wire(txn(1, 0)), T0)


def test_stale_txns_after_a_resubscribe_are_ignored_until_the_next_schema():
    sub, pub = streaming()
    send_txn(pub, 1)
    send_txn(pub, 2)
    stale = pub.take()
    sub.subscribe({"b-id": 0}, ["b-id", "c-id"], None)
    assert sub.state == SUBSCRIBED
    assert [sub.receive(wire(x), T0) for x in stale] == [[], []]
    assert sub.receive(wire(m.Schema([])), T0)[0].kind == "schema"
    # The new stream starts afresh: prev 0 again.
    assert sub.receive(wire(txn(1, 0)), T0)[0].kind == "txn"


def test_stale_frames_give_their_window_back():
    """Frames dropped after a re-Subscribe must not leak the publisher's window."""
    sub, pub = streaming(window=4)
    send_txn(pub, 1, records=2)
    pub.outbox.append(m.CopyChunk("t", [[1, None, 1, "b"]], None, 1, False))
    pub.chunk_sent(1)
    stale = pub.take()
    sub.subscribe({}, ["b"], None)
    for msg in stale:
        sub.receive(wire(msg), T0)
    deliver(sub, pub)  # the Subscribe and the Acks
    assert pub.sent_records == pub.acked_records == 3
    assert pub.window_open()


def test_acks_open_the_window():
    sub, pub = streaming(window=3)
    for seq in (1, 2, 3):
        send_txn(pub, seq)
    assert not pub.window_open()
    assert pub.backpressure() == 100.0
    events = deliver(pub, sub)
    sub.applied(events[0].message.seq, 1, T0)
    assert [e.kind for e in deliver(sub, pub)] == ["ack"]
    assert (pub.acked_records, pub.acked_seq) == (1, 1)
    assert pub.window_open()
    assert pub.backpressure() == pytest.approx(66.7)


def test_a_transaction_without_records_still_takes_and_returns_one_unit():
    """A schema-only Txn (records=0) counts 1 on both ends, or the window leaks."""
    sub, pub = streaming(window=2)
    send_txn(pub, 1, records=0)
    send_txn(pub, 2, records=0)
    assert not pub.window_open()
    for event in deliver(pub, sub):
        sub.applied(event.message.seq, event.message.records, T0)
    deliver(sub, pub)
    assert pub.window_open() and pub.sent_records == pub.acked_records == 2
    assert sub.stats.records == 0 and sub.stats.transactions == 2


def test_copy_chunks_are_acked_by_rows():
    sub, pub = streaming(window=10)
    pub.outbox.append(m.CopyStart({"b-id": 5}, 3, "merge", 0, 0))
    pub.outbox.append(m.CopyChunk("t", [[1, "{}", 5, "b"], [2, None, 4, "b"]], None, 2, True))
    pub.chunk_sent(2)
    pub.outbox.append(m.CopyEnd({"b-id": 5}, 2, {"b-id": 5}))
    kinds = []
    for msg in pub.take():
        for event in sub.receive(wire(msg), T0):
            kinds.append((event.kind, sub.state))
            if event.kind == "chunk":
                sub.applied(0, len(event.message.rows), T0)
    assert kinds == [("copy_start", COPYING), ("chunk", COPYING), ("copy_end", STREAMING)]
    assert sub.state == STREAMING
    assert (sub.stats.copy_total, sub.stats.copy_reason) == (3, "merge")
    deliver(sub, pub)
    assert pub.acked_records == 2 and pub.acked_seq == 0


def test_a_copy_chunk_with_a_malformed_row_is_a_protocol_error_before_the_shell_sees_it():
    sub, _ = streaming()
    sub.receive(wire(m.CopyStart({}, 2, "full", 0, 0)), T0)
    bad = m.CopyChunk("t", [[1, "{}", 5, "b"], [2, "{}", 2**63, "b"]], None, 2, True)
    with pytest.raises(RemoteProtocolError, match="out-of-range version"):
        sub.receive(wire(bad), T0)
    assert sub.stats.last_data_at is None


def test_subscribe_sends_cursors_origins_and_the_versions_of_the_cursors():
    sub, _ = connected()
    sub.subscribe({"b-id": 4}, ["c-id", "b-id"], None, 0, {"b-id": 77})
    (msg,) = sub.take()
    assert wire(msg) == m.Subscribe({"b-id": 4}, ["b-id", "c-id"], None, 0, {"b-id": 77})
    sub.subscribe({}, ["b-id"], None)
    assert sub.take()[0].versions == {}  # none given: an empty map, never None on the wire


@pytest.mark.parametrize("msg", [m.CopyChunk("t", [], None, None, True), m.CopyEnd({}, 0, {})])
def test_copy_frames_outside_a_copy_are_protocol_errors(msg):
    sub, _ = streaming()
    with pytest.raises(RemoteProtocolError, match="outside a copy"):
        sub.receive(wire(msg), T0)


def test_close_ends_the_link():
    sub, _ = streaming()
    (event,) = sub.receive(wire(m.Close("bye", True)), T0)
    assert (event.kind, event.reason, sub.state) == ("closed", "bye", CLOSED)
    assert sub.tick(T0 + 1000) == []


# --- Liveness --------------------------------------------------------------------------------


def test_ping_pong_measures_latency_and_clock_offset():
    sub, pub = streaming()
    sub.tick(T0)
    (ping,) = sub.take()
    # The peer's clock runs 5 s ahead; the ping takes 40 ms each way.
    pub.receive(wire(ping), T0 + 5.040)
    sub.receive(wire(pub.take()[0]), T0 + 0.080)
    assert sub.stats.latency_ms == pytest.approx(80.0)
    assert sub.stats.clock_offset_ms == pytest.approx(5000.0)


def test_pings_follow_the_interval():
    sub, _ = streaming()
    sub.tick(T0)
    sub.tick(T0 + 4.9)
    sub.tick(T0 + 5.0)
    assert [type(x) for x in sub.take()] == [m.Ping, m.Ping]


def test_subscriber_declares_a_silent_link_dead_after_ping_timeout():
    sub, _ = streaming()
    assert sub.tick(T0 + 30.0) == []
    (event,) = sub.tick(T0 + 30.5)
    assert event.kind == "dead" and "nothing received" in event.reason


def test_any_message_keeps_the_link_alive():
    sub, _ = streaming()
    sub.receive(wire(m.Ping(T0 * 1000)), T0 + 25)
    assert sub.tick(T0 + 50) == []


def test_pending_records_with_no_data_past_stall_timeout_are_a_stall():
    sub, _ = streaming()
    sub.receive(wire(m.Progress(9, 5, T0 * 1000, 0, {})), T0)
    sub.receive(wire(m.Pong(0, 0)), T0 + 10)  # pings alone do not count as progress
    assert sub.tick(T0 + 10) == []
    (event,) = sub.tick(T0 + 10.5)
    assert event.kind == "dead" and "5 records pending" in event.reason


def test_data_restarts_the_stall_clock():
    sub, _ = streaming()
    sub.receive(wire(m.Progress(9, 5, None, 0, {})), T0)
    sub.receive(wire(txn(1, 0)), T0 + 8)
    assert sub.tick(T0 + 17) == []
    assert sub.tick(T0 + 18.5)[0].kind == "dead"


def test_an_idle_link_never_stalls():
    sub, _ = streaming()
    sub.receive(wire(m.Progress(9, 0, None, 0, {})), T0)
    sub.receive(wire(m.Pong(0, 0)), T0 + 25)
    assert sub.tick(T0 + 50) == []


def test_work_reported_after_a_long_idle_gets_the_full_stall_timeout():
    """The stall clock starts when the peer first reports work, not at the last data."""
    sub, _ = streaming()
    sub.receive(wire(m.Progress(9, 0, None, 0, {})), T0)
    sub.receive(wire(m.Progress(10, 5, None, 0, {})), T0 + 100)
    assert sub.tick(T0 + 100.5) == []
    assert sub.tick(T0 + 110.5)[0].kind == "dead"


def test_lag_is_the_age_of_the_oldest_pending_transaction_on_the_peer_clock():
    sub, _ = streaming()
    assert sub.lag_seconds(T0) == 0.0
    sub.stats.clock_offset_ms = 2000.0
    sub.receive(wire(m.Progress(9, 3, (T0 - 4) * 1000, 0, {})), T0)
    assert sub.lag_seconds(T0) == pytest.approx(6.0)


def test_publisher_declares_a_silent_subscriber_dead():
    _, pub = streaming()
    assert pub.tick(T0 + 30.0) == []
    assert pub.tick(T0 + 30.5)[0].kind == "dead"


def test_publisher_reaps_a_connection_that_never_says_hello():
    pub = Publisher("b", ["data"], TIMING)
    assert pub.tick(T0) == []
    assert pub.tick(T0 + 30.5)[0].kind == "dead"


# --- Plans -----------------------------------------------------------------------------------


def plan(
    cursors: dict,
    origins: list[str],
    copy: dict | None,
    floors: dict,
    resume_ok=False,
    versions: dict | None = None,
    horizon: int = 0,
):
    pub = Publisher("b", ["data"], TIMING)
    msg = m.Subscribe(cursors, origins, copy, 0, versions or {})
    return pub, pub.plan_subscription(msg, floors, resume_ok, horizon)


def test_cursors_at_or_above_the_floors_stream_from_the_log():
    _, p = plan({"b": 5, "c": 7}, ["b", "c"], None, {"b": 5, "c": 2})
    assert p.copy is None and p.horizon == 0
    assert (p.sent, p.origins, p.resume) == ({"b": 5, "c": 7}, frozenset({"b", "c"}), None)


def test_a_cursor_below_a_wanted_origins_floor_needs_a_merge():
    _, p = plan({"b": 5, "c": 1}, ["b", "c"], None, {"c": 2})
    assert p.copy == "merge"


def test_a_floor_on_an_origin_not_asked_for_does_not_matter():
    _, p = plan({"b": 5}, ["b"], None, {"c": 99})
    assert p.copy is None


def test_a_merge_for_a_subscriber_behind_the_tombstone_horizon_carries_the_horizon():
    # c is behind the floor, and the last c version it applied is older than the horizon
    _, p = plan({"b": 5, "c": 1}, ["b", "c"], None, {"c": 2}, versions={"c": 99}, horizon=100)
    assert (p.copy, p.horizon) == ("merge", 100)


def test_a_merge_for_a_subscriber_past_the_horizon_carries_none():
    _, p = plan({"c": 1}, ["c"], None, {"c": 2}, versions={"c": 100}, horizon=100)
    assert (p.copy, p.horizon) == ("merge", 0)


def test_only_origins_behind_the_floor_are_held_to_the_horizon():
    # b's version is old, but b streams from the log (at its floor): no delete of b is lost
    cursors, floors, versions = {"b": 5, "c": 1}, {"b": 5, "c": 2}, {"b": 1, "c": 500}
    _, p = plan(cursors, ["b", "c"], None, floors, versions=versions, horizon=100)
    assert (p.copy, p.horizon) == ("merge", 0)


def test_an_origin_never_applied_counts_as_version_zero_behind_any_horizon():
    _, p = plan({}, ["c"], None, {"c": 2}, horizon=100)
    assert (p.copy, p.horizon) == ("merge", 100)


def test_no_merge_no_horizon_and_no_horizon_no_horizon():
    _, p = plan({"c": 2}, ["c"], None, {"c": 2}, versions={}, horizon=100)
    assert (p.copy, p.horizon) == (None, 0)  # streams from the log: every tombstone follows
    _, p = plan({"c": 1}, ["c"], None, {"c": 2}, versions={}, horizon=0)
    assert (p.copy, p.horizon) == ("merge", 0)


def test_an_unsynced_subscriber_gets_the_full_copy_it_asks_for():
    _, p = plan({}, ["b"], {"mode": "full"}, {})
    assert p.copy == "full"


def test_resume_only_when_the_publisher_can():
    request = {"mode": "resume", "frontier": {"b": 3}, "table": "t", "after": 9, "copied": 4}
    _, p = plan({}, ["b"], request, {}, resume_ok=True)
    assert (p.copy, p.resume) == ("resume", request)
    _, p = plan({}, ["b"], request, {}, resume_ok=False)
    assert (p.copy, p.resume) == ("full", None)


def test_an_unknown_copy_mode_is_a_protocol_error():
    with pytest.raises(RemoteProtocolError, match="copy mode"):
        plan({}, ["b"], {"mode": "everything"}, {})


def test_the_plan_decides_what_is_sent_and_advances_with_it():
    pub, p = plan({"b": 5}, ["b", "c"], None, {})
    assert not pub.wants("b", 5) and pub.wants("b", 6) and pub.wants("c", 1)
    assert not pub.wants("a", 100)  # never asked for
    assert (pub.offer("b", 4), pub.offer("b", 6), pub.offer("b", 7)) == (DUPLICATE, APPLY, GAP)
    assert pub.offer("a", 1) == DUPLICATE  # skipped, not a reason to end the stream
    msg = pub.txn(3, "b-name", "b", 6, 8_000, 1, T0, b"")
    assert (msg.origin, msg.origin_id, msg.oseq, msg.version) == ("b-name", "b", 6, 8_000)
    assert not pub.wants("b", 6) and pub.wants("b", 7)
    assert p.sent == {"b": 6}  # per origin id: the last sequence sent, not a version


def test_without_a_plan_nothing_is_offered():
    pub = Publisher("b", ["data"], TIMING)
    assert pub.offer("b", 1) == GAP and not pub.wants("b", 1)


def test_a_new_subscribe_restarts_the_stream_chain():
    sub, pub = streaming()
    send_txn(pub, 7)
    deliver(pub, sub)
    sub.subscribe({}, ["b-id"], None)
    (event,) = deliver(sub, pub)
    pub.plan_subscription(event.message, {}, False)
    assert pub.txn(8, "b", "b-id", 1, 8, 1, T0, b"").prev == 0


def test_reach_is_recorded_and_reported_only_when_it_changes():
    sub = Subscriber("me", "dev", None)
    sub.start(0.0)
    sub.receive(m.Welcome("peer", "dev", [], "peer-id", {}, {}), 0.0)
    first = sub.receive(m.Reach(["peer", "x"]), 0.1)
    assert [e.kind for e in first] == ["reach"] and sub.stats.reach == {"peer", "x"}
    assert sub.receive(m.Reach(["x", "peer"]), 0.2) == []
    assert m.parse(m.serialize(m.Reach(["a"]))) == m.Reach(["a"])
