"""The checker and the schedule on hand-built inputs: proof that a chaos run can fail."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from check import Write, agree, check
from faults import KINDS, make_schedule
from workload import classify

NODES = ("n0", "n1", "n2")


def row(token: str | None, version: int = 1, origin: str = "n0") -> tuple:
    doc = None if token is None else json.dumps({"token": token})
    return (doc, version, origin)


def same_everywhere(**tables: dict) -> dict:
    """Node contents where every node holds exactly `tables`."""
    full = {"items": {}, "hot": {}, "pair_a": {}, "pair_b": {}, **tables}
    return {node: {t: dict(rows) for t, rows in full.items()} for node in NODES}


def healthy() -> tuple[list[Write], dict]:
    """A small run where everything was kept: one of each write kind, acked."""
    writes = [
        Write("insert", "items", "a", "ta", "n0", 1.0, "acked"),
        Write("insert", "items", "b", "tb", "n1", 1.1, "acked"),
        Write("delete", "items", "b", "td", "n2", 2.0, "acked"),
        Write("upsert", "hot", "hot-1", "h1", "n0", 1.2, "acked"),
        Write("upsert", "hot", "hot-1", "h2", "n1", 1.3, "acked"),
        Write("transaction", "pair_a+pair_b", "p", "tp", "n2", 1.4, "acked"),
    ]
    contents = same_everywhere(
        items={"a": row("ta"), "b": row(None, 2, "n2")},
        hot={"hot-1": row("h2", 3, "n1")},
        pair_a={"p": row("tp", 4, "n2")},
        pair_b={"p": row("tp", 4, "n2")},
    )
    return writes, contents


def failures(writes: list[Write], contents: dict) -> dict[str, int]:
    return {k: v for k, v in check(writes, contents).counts.items() if v}


def test_agreeing_contents_pass():
    writes, contents = healthy()
    assert agree(contents)
    assert failures(writes, contents) == {}


def test_an_acked_insert_missing_on_one_node_is_lost():
    writes, contents = healthy()
    del contents["n1"]["items"]["a"]
    found = check(writes, contents)
    assert found.count("lost") == 1 and found.count("divergent_ids") == 1
    assert "items/a" in found.examples["lost"][0] and "n1: absent" in found.examples["lost"][0]


def test_an_insert_missing_everywhere_is_lost_though_nodes_agree():
    writes, contents = healthy()
    for node in NODES:
        del contents[node]["items"]["a"]
    assert agree(contents)
    assert failures(writes, contents) == {"lost": 1}


def test_a_missing_insert_with_an_unknown_delete_is_not_lost():
    writes, contents = healthy()
    writes.append(Write("delete", "items", "a", "tx", "n1", 3.0, "unknown"))
    for node in NODES:
        contents[node]["items"]["a"] = row(None, 9, "n1")
    assert failures(writes, contents) == {}


def test_an_acked_transaction_missing_a_row_is_lost_and_torn():
    writes, contents = healthy()
    del contents["n2"]["pair_b"]["p"]
    assert failures(writes, contents) == {"lost": 1, "divergent_ids": 1, "torn": 1}


def test_a_row_with_another_version_on_one_node_is_divergent():
    writes, contents = healthy()
    contents["n2"]["items"]["a"] = row("ta", 7)
    found = check(writes, contents)
    assert failures(writes, contents) == {"divergent_ids": 1}
    assert found.examples["divergent_ids"][0].startswith("items/a: n0: token=ta v=1")


def test_a_tombstone_only_some_nodes_hold_is_divergent():
    writes, contents = healthy()
    contents["n0"]["items"]["gone"] = row(None, 5)
    assert failures(writes, contents) == {"divergent_ids": 1}


def test_a_deleted_id_alive_on_a_node_is_an_undone_delete():
    writes, contents = healthy()
    contents["n1"]["items"]["b"] = row("tb")
    found = failures(writes, contents)
    assert found == {"deletes_undone": 1, "divergent_ids": 1}


def test_a_torn_pair_on_every_node_is_torn():
    writes, contents = healthy()
    for node in NODES:
        contents[node]["pair_a"]["q"] = row("tq")
    assert failures(writes, contents) == {"torn": 1}


def test_a_hot_value_nobody_wrote_is_bad():
    writes, contents = healthy()
    for node in NODES:
        contents[node]["hot"]["hot-1"] = row("never-written", 3, "n1")
    assert failures(writes, contents) == {"hot_bad": 1}


def test_hot_values_that_differ_by_node_are_bad_and_divergent():
    writes, contents = healthy()
    contents["n0"]["hot"]["hot-1"] = row("h1", 2, "n0")
    assert failures(writes, contents) == {"hot_bad": 1, "divergent_ids": 1}


@pytest.mark.parametrize(
    ("kind", "status", "answer", "outcome"),
    [
        ("insert", 200, {"inserted_hashes": ["x"], "skipped_hashes": []}, "acked"),
        ("insert", 200, {"inserted_hashes": [], "skipped_hashes": ["x"]}, "skipped"),
        ("delete", 200, {"deleted_hashes": [], "skipped_hashes": ["x"]}, "skipped"),
        ("upsert", 400, {"error": "no"}, "refused"),
        ("upsert", 503, {"error": "busy"}, "unknown"),
    ],
)
def test_answers_are_classified(kind, status, answer, outcome):
    write = Write(kind, "items", "x", "t", "n0", 0.0)
    assert classify(write, status, answer)[0] == outcome


def test_the_schedule_is_the_same_for_a_seed_and_never_overlaps():
    first = make_schedule(5, list(KINDS), 3, 600, 20)
    assert first == make_schedule(5, list(KINDS), 3, 600, 20)
    assert first != make_schedule(6, list(KINDS), 3, 600, 20)
    for before, after in pairwise(first):
        assert after.at >= before.at + before.duration
    assert all(f.at + f.duration <= 600 for f in first)
    assert sum(f.kind == "join" for f in first) <= 2


def test_tombstones_past_the_horizon_are_not_divergence_but_live_rows_still_are():
    from check import TABLES, divergent, without_expired

    def node(items: dict) -> dict:
        return {table: dict(items) if table == "items" else {} for table in TABLES}

    old_tombstone, live = (None, 5, "n0"), ('{"token": "t"}', 5, "n0")
    pruned_here = {"n0": node({"k": old_tombstone}), "n1": node({})}
    assert divergent(pruned_here) and not divergent(without_expired(pruned_here, 10))
    assert divergent(without_expired(pruned_here, 5))  # not older than the horizon: compared
    resurrected = {"n0": node({"k": old_tombstone}), "n1": node({"k": live})}
    assert divergent(without_expired(resurrected, 10))
