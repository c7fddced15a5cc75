"""replication.copyTimeout: a running copy is judged by its progress, not by the stall rule."""

from __future__ import annotations

from agent.core import messages as m
from agent.core.subscription import COPYING, STREAMING, Subscriber, Timing

T0 = 1_700_000_000.0
TIMING = Timing(ping_interval=5.0, ping_timeout=30.0, stall_timeout=10.0, copy_timeout=100.0)
ROW = [1, "{}", 5, "b"]


def wire(msg: m.Message) -> m.Message:
    """Send a message through the codec, as a real link would."""
    return m.parse(m.serialize(msg))


def copying() -> Subscriber:
    """A subscriber whose peer `b` started a copy at T0, after reporting work pending."""
    sub = Subscriber("a", "data", "b", TIMING)
    sub.start(T0, None, "a-id")
    sub.receive(wire(m.Welcome("b", "data", [], "b-id", {"b-id": 4}, {"b-id": 40})), T0)
    sub.subscribe({}, ["b-id"], {"mode": "full"})
    sub.receive(wire(m.Schema([])), T0)
    sub.receive(wire(m.Progress(9, 5, None, 0, {})), T0)  # 5 pending: the stall rule would run
    sub.receive(wire(m.CopyStart({"b-id": 5}, 3, "full", 0, 0)), T0)
    assert sub.state == COPYING
    return sub


def alive(sub: Subscriber, now: float) -> None:
    """Keep the link answering pings, so only the copy's own progress is judged."""
    sub.receive(wire(m.Pong(0, 0)), now)


def test_the_default_is_the_setting_default():
    assert Timing().copy_timeout == 300.0


def test_a_copy_without_progress_for_copy_timeout_ends_the_link():
    sub = copying()
    alive(sub, T0 + 99)
    assert sub.tick(T0 + 100) == []  # far past stall_timeout: the stall rule does not apply
    alive(sub, T0 + 100)
    (event,) = sub.tick(T0 + 100.5)
    assert event.kind == "dead"
    assert event.reason == "copy stalled: no copy progress for 100.5s (replication.copyTimeout)"


def test_each_chunk_restarts_the_clock():
    sub = copying()
    alive(sub, T0 + 90)
    sub.receive(wire(m.CopyChunk("t", [ROW], None, 1, False)), T0 + 90)
    alive(sub, T0 + 180)
    assert sub.tick(T0 + 190) == []
    alive(sub, T0 + 190)
    assert sub.tick(T0 + 190.5)[0].kind == "dead"


def test_a_chunk_applied_late_restarts_the_clock():
    """The silence was this node's slow apply, not the peer's: the peer gets a full timeout."""
    sub = copying()
    sub.receive(wire(m.CopyChunk("t", [ROW], None, 1, False)), T0 + 1)
    alive(sub, T0 + 150)
    sub.applied(0, 1, T0 + 150)
    alive(sub, T0 + 250)
    assert sub.tick(T0 + 250) == []
    alive(sub, T0 + 250)
    assert sub.tick(T0 + 250.5)[0].kind == "dead"


def test_after_the_copy_the_stall_rule_is_back():
    sub = copying()
    sub.receive(wire(m.Progress(9, 0, None, 0, {})), T0 + 1)  # a publisher copying: 0 pending
    sub.receive(wire(m.CopyChunk("t", [ROW], None, 1, True)), T0 + 1)
    sub.applied(0, 1, T0 + 1)
    sub.receive(wire(m.CopyEnd({"b-id": 5}, 1, {"b-id": 5})), T0 + 2)
    assert sub.state == STREAMING
    sub.receive(wire(m.Progress(9, 5, None, 0, {})), T0 + 3)
    alive(sub, T0 + 13)
    assert sub.tick(T0 + 13) == []
    (event,) = sub.tick(T0 + 13.5)
    assert "5 records pending" in event.reason


def test_a_silent_peer_is_still_dead_after_ping_timeout_during_a_copy():
    sub = copying()
    (event,) = sub.tick(T0 + 30.5)
    assert event.reason == "nothing received for 30.5s"
