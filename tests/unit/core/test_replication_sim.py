"""Replication through faults: the real core machines in a deterministic simulated cluster.

Each test builds a `Sim` (tests/unit/core/sim.py), drives writes and faults in virtual time,
heals, runs until quiet and checks the cluster against the oracle: every committed write
folded by the conflict rule, identical on every node, tombstones and cursors included.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core import messages as m
from agent.core.changes import Write
from agent.core.conflict import supersedes, winner
from agent.core.cursors import APPLY, DUPLICATE, GAP, after_snapshot
from agent.core.messages import encode_changes

sys.path.insert(0, str(Path(__file__).parent))

from sim import CHAOS, Faults, Sim, SimStore, SimStuck, delete, put  # noqa: E402

TABLES = ("t1", "t2", "t3")
SIM_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


# --- Checks ----------------------------------------------------------------------------------


def assert_converged(sim: Sim) -> None:
    """Every node holds the oracle's rows and cursors; nothing was applied twice."""
    assert sim.divergence() is None, sim.divergence()
    rows, cursors = sim.up_nodes()[0].store.state()
    expected_rows, expected_cursors = sim.expected()
    assert cursors == expected_cursors
    assert rows == {t: r for t, r in expected_rows.items() if r}
    for node in sim.up_nodes():
        twice = [key for key, n in node.store.applies.items() if n > 1]
        assert not twice, f"{node.name} applied {twice} more than once"


def watch_atomicity(sim: Sim) -> list[list[tuple[str, str]]]:
    """Check after every delivered frame that no tagged transaction shows half-applied.

    A node whose rows are mid-copy (or fed by a copy pass newer than its cursors) is
    exempt: a snapshot merged chunk by chunk is not atomic, which is the documented cost of
    a streamed copy.
    """
    tagged: list[list[tuple[str, str]]] = []

    def check(sim: Sim, node) -> None:
        if node.store.settling():
            return
        for keys in tagged:
            seen = sum(node.store.get(t, k) is not None for t, k in keys)
            assert seen in (0, len(keys)), f"t={sim.time} {node.name} sees {seen}/{len(keys)}"

    sim.checks.append(check)
    return tagged


def tagged_write(sim: Sim, node: str, tagged: list) -> None:
    """Write fresh keys to every table in one transaction, watched for atomicity."""
    keys = [(table, f"tag-{len(tagged)}") for table in TABLES]
    tagged.append(keys)
    sim.write(node, [put(t, k, {"tag": len(tagged)}) for t, k in keys])


# --- Random schedules ------------------------------------------------------------------------

WRITES = st.lists(
    st.tuples(st.sampled_from(TABLES), st.integers(0, 5), st.none() | st.integers(0, 99)),
    min_size=1,
    max_size=3,
)
WRITE = st.tuples(st.just("write"), st.integers(0, 4), WRITES)
ACTIONS = st.lists(
    st.one_of(
        WRITE,
        WRITE,
        WRITE,
        st.tuples(st.just("tagged"), st.integers(0, 4)),
        st.tuples(
            st.just("partition"), st.integers(0, 4), st.integers(0, 3), st.integers(200, 6000)
        ),
        st.tuples(st.just("crash"), st.integers(0, 4), st.integers(100, 3000)),
        st.tuples(st.just("prune"), st.integers(0, 4), st.integers(0, 3000)),
        st.tuples(st.just("wait"), st.integers(1, 1500)),
    ),
    min_size=20,
    max_size=50,
)


def run_schedule(sim: Sim, actions: list[tuple], tagged: list) -> None:
    """Play a schedule with random faults on, then heal everything and wait for quiet."""
    names = sorted(sim.nodes)
    for action in actions:
        kind, node = action[0], names[action[1] % len(names)] if len(action) > 1 else None
        if kind == "wait":
            sim.run_for(action[1])
        elif not sim.nodes[node].up:
            continue
        elif kind == "write":
            writes = [
                delete(t, k) if v is None else put(t, k, {"v": v, "by": node})
                for t, k, v in action[2]
            ]
            sim.write(node, writes)
        elif kind == "tagged":
            tagged_write(sim, node, tagged)
        elif kind == "partition":
            other = names[(action[1] + 1 + action[2] % (len(names) - 1)) % len(names)]
            sim.partition(node, other)
            sim.schedule(action[3], sim.heal, node, other)
        elif kind == "crash":
            sim.crash(node)
            sim.schedule(action[2], sim.restart, node)
        elif kind == "prune":
            sim.prune(node, sim.nodes[node].now_ms() - action[2])
    sim.run_for(500)
    sim.heal_all()
    sim.run_until_quiet()


@pytest.mark.parametrize("size", [3, 5])
@SIM_SETTINGS
@given(seed=st.integers(0, 2**32 - 1), actions=ACTIONS)
def test_a_full_mesh_converges_through_random_faults(size, seed, actions):
    sim = Sim([f"n{i}" for i in range(size)], seed=seed, faults=dataclasses.replace(CHAOS))
    tagged = watch_atomicity(sim)
    run_schedule(sim, actions, tagged)
    assert_converged(sim)


def test_the_schedule_replays_exactly_from_its_seed():
    actions = [("write", 0, [("t1", 1, 5)]), ("crash", 1, 900), ("wait", 400)]
    actions += [("partition", 0, 0, 2000), ("write", 2, [("t2", 2, None)]), ("wait", 3000)]
    runs = []
    for _ in range(2):
        sim = Sim(["n0", "n1", "n2"], seed=7, faults=dataclasses.replace(CHAOS))
        run_schedule(sim, actions, watch_atomicity(sim))
        runs.append((sim.fingerprint(), sim.plans))
    assert runs[0] == runs[1]


def test_run_until_quiet_fails_loudly_when_the_cluster_cannot_settle():
    sim = Sim(["a", "b"], faults=Faults(drop=1.0))
    with pytest.raises(SimStuck, match="a has not synced"):
        sim.run_until_quiet(max_steps=2000)


# --- Conflicts -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_reordered_frames_reset_the_link_and_duplicates_are_dropped(seed):
    sim = Sim(["a", "b", "c"], seed=seed, window=20, faults=Faults(reorder=0.3, duplicate=0.3))
    sim.run_until_quiet()
    for i in range(40):
        sim.write("abc"[i % 2], [put("t1", i % 6, {"v": i}), put("t2", i % 4, {"v": i})])
        sim.run_for(sim.rng.randint(0, 20))
    sim.heal_all()
    sim.run_until_quiet()
    assert_converged(sim)
    assert sim.net.injected["reorder"] > 0 and sim.net.injected["duplicate"] > 0
    gaps = [link for link, why in sim.closed if why.startswith("protocol error")]
    assert gaps, "a swap must be caught as a gap"
    assert all(link.reordered for link in gaps), "a duplicate alone must never reset a link"


@pytest.mark.parametrize("seed", range(6))
def test_concurrent_writes_to_one_key_converge_to_the_supersedes_winner(seed):
    sim = Sim(["a", "b", "c", "d"], seed=seed, skew_ms=400)
    sim.run_until_quiet()
    sim.write("a", [put("t1", "k", {"v": "before"})])
    sim.run_until_quiet()
    for name in sim.nodes:
        sim.isolate(name)
    stamps = []
    for name in sorted(sim.nodes):
        w = delete("t1", "k") if name == "c" else put("t1", "k", {"v": name})
        stamps.append((sim.write(name, [w]), name))
        sim.run_for(sim.rng.randint(0, 5))
    sim.heal_all()
    sim.run_until_quiet()
    assert_converged(sim)
    version, origin = max(stamps, key=lambda s: [supersedes(*s, *o) for o in stamps].count(True))
    for node in sim.nodes.values():
        assert node.store.get("t1", "k")[1:] == (version, origin)


def test_equal_versions_are_won_by_the_greater_origin_name_everywhere():
    sim = Sim(["a", "b", "c"], skew_ms=0)
    for name in sim.nodes:
        sim.isolate(name)
    stamps = [(sim.write(n, [put("t1", "k", {"v": n})]), n) for n in ("b", "c", "a")]
    assert len({v for v, _ in stamps}) == 1, "same instant, same clock: a true tie"
    sim.heal_all()
    sim.run_until_quiet()
    assert_converged(sim)
    for node in sim.nodes.values():
        assert node.store.get("t1", "k") == ('{"v": "c"}', stamps[0][0], "c")


# --- Relay -----------------------------------------------------------------------------------


def test_writes_relay_through_a_third_node_and_go_direct_again_after_healing():
    sim = Sim(["a", "b", "c"], seed=11)
    tagged = watch_atomicity(sim)
    sim.run_until_quiet()
    sim.partition("a", "c")
    sim.run_until(lambda: "a" not in sim.nodes["c"].out and "c" not in sim.nodes["a"].out)
    sim.run_until_quiet()
    assert sim.resets["subscriber declared dead"] + sim.resets["publisher declared dead"] >= 1
    assert sim.nodes["c"].out["b"].origins == {"a", "b"}
    assert sim.nodes["a"].out["b"].origins == {"b", "c"}
    relayed = [sim.write("a", [put("t1", i, {"v": i})]) for i in range(5)]
    tagged_write(sim, "a", tagged)
    sim.write("c", [put("t2", "from-c", {"v": 1})])
    sim.run_until_quiet()
    assert_converged(sim)
    assert all(sim.nodes["c"].store.sources[("a", v)] == "b" for v in relayed)

    sim.heal("a", "c")
    sim.run_until_quiet()
    assert sim.nodes["c"].out["b"].origins == {"b"}
    assert sim.nodes["c"].out["a"].origins == {"a"}
    direct = [sim.write("a", [put("t1", i, {"v": -i})]) for i in range(5)]
    sim.run_until_quiet()
    assert_converged(sim)
    assert all(sim.nodes["c"].store.sources[("a", v)] == "a" for v in direct)


def test_relay_survives_flapping_links_without_duplicate_applies():
    sim = Sim(["a", "b", "c"], seed=5, faults=Faults(reorder=0.05, duplicate=0.05))
    tagged = watch_atomicity(sim)
    sim.run_until_quiet()
    for round_ in range(6):
        sim.partition("a", "c") if round_ % 2 == 0 else sim.heal("a", "c")
        for i in range(4):
            sim.write("a", [put("t1", i, {"r": round_})])
            tagged_write(sim, "c", tagged)
            sim.run_for(sim.rng.randint(50, 1500))
    sim.heal_all()
    sim.run_until_quiet()
    assert_converged(sim)


def test_an_origin_reachable_only_through_a_second_hop_still_reaches_everyone():
    """b borrows a from c and c borrows a from b; only d, which nobody asks, has a's writes."""
    sim = Sim(["a", "b", "c", "d"], seed=3)
    sim.run_until_quiet()
    sim.partition("a", "b")
    sim.partition("a", "c")
    sim.run_until_quiet()
    sim.write("a", [put("t1", "k", {"v": 1})])
    sim.run_until_quiet()
    assert sim.nodes["b"].store.get("t1", "k") is not None


# --- Initial sync ----------------------------------------------------------------------------


def populated(seed: int, **kwargs) -> Sim:
    sim = Sim(["a", "b", "c"], seed=seed, **kwargs)
    sim.run_until_quiet()
    for i in range(30):
        name = "abc"[i % 3]
        sim.write(name, [put(TABLES[i % 3], i, {"v": i}), put("t1", f"k{i % 7}", {"by": name})])
    sim.write("b", [delete("t1", "k3")])
    sim.run_until_quiet()
    return sim


def same_data(sim: Sim, a: str, b: str) -> bool:
    return sim.nodes[a].store.state() == sim.nodes[b].store.state()


def test_a_new_node_copies_everything_then_streams():
    sim = populated(seed=2, chunk_rows=2)
    sim.prune("a")  # the copy must not depend on old log entries
    tagged = watch_atomicity(sim)
    written = []

    def write_mid_copy(node, peer, table, rows):
        # Once the copy is past t1, a transaction touching every table must arrive whole:
        # the copy streams a snapshot, and the stream brings the rest after it.
        if node == "d" and table != "t1" and len(written) < 2:
            written.append(peer)
            sim.schedule(0, tagged_write, sim, peer, tagged)

    sim.on("chunk", write_mid_copy)
    sim.add_node("d")
    sim.run_until(lambda: sim.nodes["d"].store.synced)
    assert written, "the copy should have been under way while the cluster wrote"
    tagged_write(sim, "a", tagged)
    sim.write("b", [delete("t2", 1)])
    sim.run_until_quiet()
    assert_converged(sim)
    copies = [p for p in sim.plans if p[2] == "d" and p[3]]
    assert [p[3] for p in copies] == ["full"]
    assert sim.nodes["d"].store.get("t1", "k3")[0] is None  # the tombstone came too


def test_a_copy_interrupted_by_a_crash_resumes_from_the_stored_frontier():
    sim = populated(seed=4, window=4, chunk_rows=3)
    chunks, ends = [], []
    sim.on("chunk", lambda **e: chunks.append(e) if e["node"] == "d" else None)
    sim.on("copy_end", lambda **e: ends.append(e) if e["node"] == "d" else None)
    sim.add_node("d")
    sim.run_until(lambda: len(chunks) >= 4)
    source = chunks[0]["peer"]
    stored = dict(sim.nodes["d"].store.copies[source].frontier)
    sim.crash("d")
    # While d is down, rows it already copied and rows it has not yet reached both change.
    sim.write(source, [put("t1", 0, {"v": "changed"}), put("t3", 29, {"v": "changed"})])
    other = next(n for n in "abc" if n != source)
    sim.write(other, [delete("t1", "k0"), put("t1", "new", {"v": 1})])
    sim.run_for(400)
    before = dict(sim.nodes["d"].store.cursors)
    for name in "abc":  # d comes back able to reach only the peer it was copying from
        if name != source:
            sim.partition("d", name)
    sim.restart("d")
    sim.run_until(lambda: sim.nodes["d"].store.synced)
    sim.run_until_quiet()
    # Before anything re-subscribes: the resumed copy and the stream after it alone must
    # have brought d level with its source, including the rows it copied before the crash.
    assert same_data(sim, "d", source)
    sim.heal_all()
    sim.run_until_quiet()
    assert_converged(sim)
    assert [p[3] for p in sim.plans if p[2] == "d" and p[3]] == ["full", "resume"]
    (end,) = ends
    assert end["peer"] == source and end["stored"] == stored
    assert end["cursors"] == after_snapshot(before, stored)
    assert end["cursors"][source] < sim.nodes[source].store.cursors[source]


def test_a_local_write_after_a_crash_mid_copy_is_newer_than_the_copied_row():
    """A partial copy leaves rows newer than every cursor; after a restart the clock must
    still stamp past them, or the local write (put_local overwrites) loses everywhere else."""
    sim = Sim(["a", "b"], seed=1, skew_ms=0, window=2, chunk_rows=1)
    sim.nodes["a"].skew_ms = 2000  # a's wall clock runs 2 s ahead
    for i in range(6):
        sim.write("a", [put("t1", i, {"v": "a"})])
    sim.run_until_quiet()
    chunks = []
    sim.on("chunk", lambda **e: chunks.append(e) if e["node"] == "d" else None)
    sim.add_node("d")
    sim.partition("d", "b")
    sim.run_until(lambda: len(chunks) >= 2)
    sim.crash("d")
    sim.restart("d")
    sim.write("d", [put("t1", 0, {"v": "d"})])
    sim.heal_all()
    sim.run_until_quiet()
    assert_converged(sim)


def test_a_node_that_crashes_before_any_copy_starts_copies_afresh():
    sim = populated(seed=6)
    sim.add_node("d")
    sim.crash("d")
    sim.run_for(1000)
    sim.restart("d")
    sim.run_until_quiet()
    assert_converged(sim)


# --- Beyond retention ------------------------------------------------------------------------


def test_a_subscriber_behind_a_pruned_log_gets_a_merge_that_keeps_its_own_rows():
    sim = populated(seed=8)
    sim.isolate("c")
    sim.write("a", [delete("t1", "k1"), put("t2", "a-only", {"v": 1})])
    sim.write("b", [put("t3", 5, {"v": "b"})])
    sim.write("c", [put("t2", "c-only", {"v": "mine"}), put("t1", "k2", {"v": "c"})])
    sim.run_until_quiet()
    sim.prune("a")
    sim.prune("b")
    sim.write("a", [put("t1", "after-prune", {"v": 2})])
    kept = []
    sim.on("copy_end", lambda **e: kept.append(sim.nodes["c"].store.get("t2", "c-only")))
    sim.heal_all()
    sim.run_until_quiet()
    assert_converged(sim)
    merges = [p for p in sim.plans if p[2] == "c" and p[3] == "merge"]
    assert merges and {p[1] for p in merges} <= {"a", "b"}
    assert kept and all(row is not None and row[2] == "c" for row in kept)
    for node in sim.nodes.values():
        assert node.store.get("t2", "c-only")[0] == '{"v": "mine"}'
        assert node.store.get("t1", "k1")[0] is None  # a's newer tombstone won on c too


def test_pruning_past_a_stalled_stream_forces_a_merge_instead_of_a_silent_gap():
    """The publisher shell must re-check its floors while streaming, not only on Subscribe."""
    sim = Sim(["a", "b", "c"], seed=9, window=3)
    sim.run_until_quiet()
    sim.partition("a", "c")  # short: the link stays up, frames wait, the window fills
    for i in range(8):
        sim.write("a", [put("t1", i, {"v": i})])
    sim.prune("a")
    sim.prune("b")
    for i in range(8, 10):
        sim.write("a", [put("t1", i, {"v": i})])
    sim.heal("a", "c")
    sim.run_until_quiet()
    assert_converged(sim)
    assert sim.resets["publisher"] >= 1
    assert any(p[2] == "c" and p[3] == "merge" for p in sim.plans)


# --- One change stream, any order ------------------------------------------------------------

ORIGINS = ("a", "b", "c")
TXN = st.lists(
    st.tuples(st.sampled_from(("t1", "t2")), st.integers(0, 3), st.booleans()),
    min_size=1,
    max_size=3,
    unique_by=lambda w: w[:2],
)


@st.composite
def change_stream(draw) -> list[tuple[str, int, list[Write]]]:
    """Each origin's transactions in its own version order; versions may tie across origins."""
    txns = []
    for origin in ORIGINS:
        version = 0
        for spec in draw(st.lists(TXN, max_size=6)):
            version += draw(st.integers(1, 3))
            writes = [
                put(t, k, {"o": origin, "v": version}) if keep else delete(t, k)
                for t, k, keep in spec
            ]
            txns.append((origin, version, writes))
    return txns


@st.composite
def delivery(draw, txns: list) -> list[int]:
    """Interleave the origins freely, keep each origin's order, then repeat some deliveries."""
    pattern = draw(st.permutations([origin for origin, _, _ in txns]))
    queues = {o: [i for i, t in enumerate(txns) if t[0] == o] for o in ORIGINS}
    order = [queues[o].pop(0) for o in pattern]
    for _ in range(draw(st.integers(0, len(order)))):
        at = draw(st.integers(0, len(order) - 1))
        order.insert(draw(st.integers(at + 1, len(order))), order[at])  # after the original
    return order


def fold(txns: list) -> dict:
    rows: dict = {}
    for origin, version, writes in txns:
        for w in writes:
            current = rows.get((w.table, w.key))
            if current is None or winner((version, origin), current[1:]) == (version, origin):
                rows[(w.table, w.key)] = (w.value, version, origin)
    return rows


def txn_frames(txns: list) -> list[m.Txn]:
    """Each transaction as a Txn frame: an origin numbers its own 1, 2, 3, ..."""
    frames, numbers = [], {}
    for origin, version, writes in txns:
        numbers[origin] = numbers.get(origin, 0) + 1
        body = encode_changes(writes)
        frames.append(m.Txn(0, 0, origin, origin, numbers[origin], version, len(writes), 0, body))
    return frames


def check_applied_once_in_order(store: SimStore, txns: list) -> None:
    got = {(t, k): row for t, rows in store.rows.items() for k, row in rows.items()}
    assert got == fold(txns)
    assert got == fold(list(reversed(txns)))  # the rule itself does not care about order
    assert store.cursors == {o: sum(1 for x, _, _ in txns if x == o) for o, _, _ in txns}
    assert set(store.applies.values()) <= {1}
    for origin in ORIGINS:  # every origin's transactions logged once each, in its order
        logged = [(e.oseq, e.version) for e in store.log if e.origin_id == origin]
        frames = txn_frames(txns)
        assert logged == [(f.oseq, f.version) for f in frames if f.origin_id == origin]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_any_interleaving_and_duplication_of_a_change_stream_converges(data):
    txns = data.draw(change_stream())
    order = data.draw(delivery(txns)) if txns else []
    frames = txn_frames(txns)
    store = SimStore("z")
    decisions = [store.apply_txn(frames[i], frames[i].origin) for i in order]
    assert GAP not in decisions  # each origin's order kept: never a hole
    assert decisions.count(APPLY) == len(txns)
    check_applied_once_in_order(store, txns)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_any_order_at_all_converges_once_refused_gaps_are_sent_again(data):
    """Origins' own orders broken too: what arrives early is refused (GAP) and applies only
    when it comes again after what it follows, as a resubscribe from the cursors brings it."""
    txns = data.draw(change_stream())
    frames = txn_frames(txns)
    pending = data.draw(st.permutations(list(range(len(frames)))))
    pending += data.draw(st.lists(st.sampled_from(pending), max_size=5)) if pending else []
    store = SimStore("z")
    rounds = 0
    while pending:
        rounds += 1
        assert rounds <= len(frames) + 1, "no progress"
        refused = [i for i in pending if store.apply_txn(frames[i], "peer") == GAP]
        pending = refused
    check_applied_once_in_order(store, txns)


def test_a_later_sequence_arriving_first_is_refused_and_applies_after_the_missing_one():
    """Why an origin's transactions apply only in its order: a cursor past a hole would
    never let the missing transaction in."""
    store = SimStore("z")
    first, second = txn_frames([("a", 1, [put("t1", 1, {"v": 1})]), ("a", 2, [put("t1", 2, {})])])
    assert store.apply_txn(second, "a") == GAP
    assert store.get("t1", 2) is None and store.cursors == {} and store.log == []
    assert store.apply_txn(first, "a") == APPLY
    assert store.apply_txn(first, "a") == DUPLICATE
    assert store.apply_txn(second, "a") == APPLY
    assert store.get("t1", 1) is not None and store.get("t1", 2) is not None
    assert store.cursors == {"a": 2}


def test_a_store_that_accepted_gaps_would_lose_the_missing_transaction(monkeypatch):
    """The check of the check: with protocol 1's rule the hole is silently skipped."""
    monkeypatch.setattr(SimStore, "accept_gaps", True)
    store = SimStore("z")
    first, second = txn_frames([("a", 1, [put("t1", 1, {"v": 1})]), ("a", 2, [put("t1", 2, {})])])
    assert store.apply_txn(second, "a") == APPLY
    assert store.apply_txn(first, "a") == DUPLICATE
    assert store.get("t1", 1) is None


# --- Gaps ------------------------------------------------------------------------------------


def vanish_nth(sim: Sim, sub: str, pub: str, origin: str, n: int) -> list[int]:
    """Make the n-th Txn of `origin` sent from `pub` to `sub` vanish; return its oseq once
    it has."""
    seen: list[int] = []
    gone: list[int] = []

    def pick(link, msg) -> bool:
        if (link.sub, link.pub, msg.origin_id) != (sub, pub, origin) or gone:
            return False
        seen.append(msg.oseq)
        if len(seen) == n:
            gone.append(msg.oseq)
            return True
        return False

    sim.net.vanishing = pick
    return gone


def gap_scenario(seed: int) -> tuple[Sim, list[int], list[int]]:
    """a writes six transactions to distinct keys; the third one's apply on b vanishes."""
    sim = Sim(["a", "b", "c"], seed=seed)
    sim.run_until_quiet()
    gone = vanish_nth(sim, "b", "a", "a", 3)
    versions = []
    for i in range(6):
        versions.append(sim.write("a", [put("t1", f"a{i}", {"v": i})]))
        sim.run_for(sim.rng.randint(0, 40))
    sim.run_until_quiet()
    return sim, versions, gone


@pytest.mark.parametrize("seed", range(4))
def test_a_vanished_transaction_is_caught_by_its_origins_sequence_and_fetched_again(seed):
    sim, versions, gone = gap_scenario(seed)
    assert gone, "the third Txn from a to b should have vanished"
    assert sim.resets["gap"] >= 1, "the next one of a must be refused as a gap"
    assert_converged(sim)
    b = sim.nodes["b"].store
    assert b.applies[("a", versions[gone[0] - 1])] == 1  # applied once, when it came again
    assert [e.oseq for e in b.log if e.origin_id == "a"] == list(range(1, 7))  # in order


@pytest.mark.parametrize("seed", range(2))
def test_without_the_sequence_check_the_same_vanished_transaction_is_lost(seed, monkeypatch):
    """The check of the gap test: a store applying past the hole (as protocol 1's version
    cursors did) ends quiet but without the write, and the test above would fail."""
    monkeypatch.setattr(SimStore, "accept_gaps", True)
    sim, versions, gone = gap_scenario(seed)
    assert gone and sim.resets["gap"] == 0
    assert sim.divergence() is not None or sim.nodes["b"].store.get("t1", "a2") is None
    with pytest.raises(AssertionError):
        assert_converged(sim)


@pytest.mark.parametrize("seed", range(4))
def test_vanishing_applies_under_chaos_still_converge_once_every_origin_writes_again(seed):
    """A hole shows when its origin's next transaction arrives (or a new Subscribe starts
    from the cursors): a final write from every node closes any hole left by the faults."""
    faults = dataclasses.replace(CHAOS, vanish=0.08)
    sim = Sim(["n0", "n1", "n2", "n3"], seed=seed, faults=faults)
    tagged = watch_atomicity(sim)
    sim.run_until_quiet()
    for i in range(60):
        name = f"n{i % 4}"
        if i % 7 == 0:
            tagged_write(sim, name, tagged)
        else:
            sim.write(name, [put(TABLES[i % 3], i % 9, {"v": i}), put("t1", f"k{i}", {"v": i})])
        sim.run_for(sim.rng.randint(0, 60))
    sim.heal_all()
    sim.run_until_quiet()
    for name in sorted(sim.nodes):
        sim.write(name, [put("t3", f"last-{name}", {"v": 1})])
    sim.run_until_quiet()
    assert sim.net.injected["vanish"] > 0
    assert sim.resets["gap"] > 0
    assert_converged(sim)
