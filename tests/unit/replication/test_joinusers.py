"""Whose users and roles win a join: digests, the decision, the plan, and the wire checks."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from agent import jsonx
from agent.errors import ClientError
from agent.replication import joinusers as j
from agent.storage.store import Storage
from agent.storage.system import SYSTEM, USERS
from agent.storage.writes import LocalTransaction, WriteOp

NONCE = "0123456789abcdef"
D1, D2 = "a" * 64, "b" * 64


def test_digest_ignores_timestamps_and_depends_on_content_and_nonce():
    row = {"username": "ann", "password": "scrypt$x", "__updatedtime__": 1}
    same = {**row, "__updatedtime__": 2, "__createdtime__": 5}
    assert j.row_digest(row, NONCE) == j.row_digest(same, NONCE)
    assert j.row_digest(row, NONCE) != j.row_digest({**row, "password": "scrypt$y"}, NONCE)
    assert j.row_digest(row, NONCE) != j.row_digest(row, NONCE[::-1])
    assert "scrypt" not in j.row_digest(row, NONCE)


def test_digests_mark_tombstones_as_none():
    assert j.digests({"gone": None}, NONCE) == {"gone": None}


@pytest.mark.parametrize(
    ("caller", "callee", "expected"),
    [(False, False, True), (False, True, True), (True, False, False), (True, True, True)],
)
def test_the_side_with_peers_wins_else_the_callee(caller, callee, expected):
    assert j.callee_wins(caller, callee) is expected


def test_plan_replaces_differing_rows_and_keeps_each_sides_others():
    winner = {"admin": D1, "same": D1, "only_w": D1, "dropped_w": None, "both_dropped": None}
    loser = {"admin": D2, "same": D1, "only_l": D2, "dropped_w": D2, "both_dropped": None}
    won, lost = j.plan(winner, loser)
    assert won.rewrite == ["admin"] and won.replaced == ["admin"]
    assert lost.rewrite == ["dropped_w"] and lost.replaced == []
    won, lost = j.plan({"x": D1}, {"x": None})
    assert won.rewrite == ["x"] and won.replaced == [] and lost.rewrite == []


def offer(**changes):
    base = {"nonce": NONCE, "has_peers": False, "top": 5, "users": {"admin": D1}, "roles": {}}
    return {**base, **changes}


def test_parse_offer_accepts_a_good_one():
    parsed = j.parse_offer(offer(roles={"r": None}))
    assert parsed.tables == {"users": {"admin": D1}, "roles": {"r": None}}
    assert (parsed.nonce, parsed.has_peers, parsed.top) == (NONCE, False, 5)


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        ("nope", "'join'"),
        (offer(nonce="short"), "nonce"),
        (offer(nonce=None), "nonce"),
        (offer(has_peers="yes"), "has_peers"),
        (offer(top=-1), "top"),
        (offer(top=True), "top"),
        (offer(top=2**63), "top"),
        (offer(users=[]), "join.users"),
        (offer(users={"admin": "not-hex"}), "join.users"),
        (offer(users={"": D1}), "join.users"),
        (offer(roles=None), "join.roles"),
    ],
)
def test_parse_offer_refuses_bad_input_with_a_clear_error(raw, word):
    with pytest.raises(ClientError) as caught:
        j.parse_offer(raw)
    assert word in caught.value.message and "add_node_back" in caught.value.message


def test_verdict_round_trips_and_bad_verdicts_are_refused():
    names = {"users": ["admin"], "roles": []}
    verdict = j.Verdict(True, 7, names, {"users": [], "roles": ["r"]})
    assert j.parse_verdict(jsonx.loads(jsonx.dumps_str(verdict.wire()))) == verdict
    for bad in (None, {}, {**verdict.wire(), "replaced": {"users": []}}):
        with pytest.raises(ClientError):
            j.parse_verdict(bad)
    with pytest.raises(ClientError):
        j.parse_verdict({**verdict.wire(), "rewrite": {"users": [3], "roles": []}})


@pytest.fixture
def storage(tmp_path):
    store = Storage(tmp_path / "db", "node-a")
    store.open()
    yield store
    store.close()


def replicator(storage, max_ahead_ms: float = 0.0) -> SimpleNamespace:
    """What rewrite and guard_clock use of a Replicator."""
    return SimpleNamespace(storage=storage, node="node-a", max_clock_ahead_ms=max_ahead_ms)


def put(storage, *rows):
    op = WriteOp("insert", USERS, records=list(rows))
    storage.get(SYSTEM).write_sync(LocalTransaction([op], storage.clock, "node-a"))


def test_rewrite_gives_the_same_content_a_version_above_the_others(storage):
    put(storage, {"username": "ann", "password": "p1"}, {"username": "bob", "password": "p2"})
    before = asyncio.run(j.read_rows(storage))
    far = before.top + (1000 << 16)
    names = {"users": ["ann", "nobody"], "roles": []}
    asyncio.run(j.rewrite(replicator(storage), names, far, "peer"))
    after = asyncio.run(j.read_rows(storage))
    assert after.top > far
    ann, old = after.tables["users"]["ann"], before.tables["users"]["ann"]
    assert j.row_digest(ann, NONCE) == j.row_digest(old, NONCE)
    assert after.tables["users"]["bob"] == before.tables["users"]["bob"]
    assert "nobody" not in after.tables["users"]


def test_offer_holds_digests_never_rows(storage):
    put(storage, {"username": "ann", "password": "scrypt$secret"})
    sent = j.offer(asyncio.run(j.read_rows(storage)), NONCE, True)
    assert "scrypt" not in jsonx.dumps_str(sent)
    assert j.parse_offer(sent).tables["users"]["ann"] is not None


def test_rewrite_refuses_to_out_version_rows_far_ahead_only_when_it_has_to(storage):
    from agent.core.clock import version_for_time

    put(storage, {"username": "ann", "password": "p1"})
    node = replicator(storage, max_ahead_ms=5000.0)
    far = version_for_time(storage.clock.now_ms() + 60_000)
    nothing = {"users": [], "roles": []}
    asyncio.run(j.rewrite(node, nothing, far, "peer"))  # nothing to write: no refusal
    with pytest.raises(ClientError) as caught:
        asyncio.run(j.rewrite(node, {"users": ["ann"], "roles": []}, far, "peer"))
    assert "maxClockSkew" in caught.value.message and "peer" in caught.value.message
    assert storage.clock.last < far  # the clock did not adopt it
    near = version_for_time(storage.clock.now_ms() + 1000)
    asyncio.run(j.rewrite(node, {"users": ["ann"], "roles": []}, near, "peer"))
    assert asyncio.run(j.read_rows(storage)).top > near
