"""Range-digest comparison (agent/core/digests.py) over in-memory tables."""

from __future__ import annotations

import random

import msgpack
import pytest

from agent.core import digests as d


def _table(n: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    return {
        f"k{i}": (f'{{"id":"k{i}","v":{rng.randrange(1000)}}}', 1000 + i, "n0") for i in range(n)
    }


def _rows(table: dict) -> list[tuple]:
    return [(pk, doc, version, origin) for pk, (doc, version, origin) in table.items()]


def _compare(tables: dict[str, dict]) -> tuple[d.Comparison, int]:
    """Run a comparison the way the shell does; return it and the bytes it exchanged."""
    indexes = {node: d.Index(_rows(t)) for node, t in tables.items()}
    comp = d.Comparison(sorted(indexes))
    sent = 0
    while not comp.done:
        request = comp.digest_request()
        if request:
            answers = {n: [list(ix.digest(p)) for p in request] for n, ix in indexes.items()}
            sent += len(indexes) * len(msgpack.packb(request))
            sent += sum(len(msgpack.packb(a)) for a in answers.values())
            comp.digests(answers)
        request = comp.leaf_request()
        if request:
            answers = {n: [ix.leaf(p) for p in request] for n, ix in indexes.items()}
            sent += len(indexes) * len(msgpack.packb(request))
            sent += sum(len(msgpack.packb(a)) for a in answers.values())
            comp.leaves(answers)
    return comp, sent


def _plant(table: dict, k: int, seed: int) -> tuple[dict, set]:
    """Return a copy of `table` with k differences of three kinds, and their keys."""
    rng = random.Random(seed)
    other = dict(table)
    keys = rng.sample(sorted(table), k)
    for i, key in enumerate(keys):
        doc, version, origin = table[key]
        if i % 3 == 0:
            del other[key]  # missing on one node
        elif i % 3 == 1:
            other[key] = (doc.replace("}", ',"x":1}'), version + 1, "n1")  # a newer write
        else:
            other[key] = (None, version + 1, "n1")  # deleted there
    return other, set(keys)


BIG = 100_000


@pytest.fixture(scope="module")
def big() -> dict:
    return _table(BIG)


def test_equal_tables_exchange_one_digest_per_node(big) -> None:
    comp, sent = _compare({"a": big, "b": dict(big), "c": dict(big)})
    assert comp.divergent == {}
    assert comp.rounds == 1 and comp.ranges_compared == 1
    assert sent < 120  # the root's (count, digest) from three nodes, and the request


@pytest.mark.parametrize("k", [1, 10, 100])
def test_planted_differences_are_found_exactly_with_bytes_growing_with_k(big, k) -> None:
    other, planted = _plant(big, k, seed=k)
    comp, sent = _compare({"a": big, "b": other})
    assert set(comp.divergent) == planted
    # each difference costs a path of 16-way digests down to a leaf of at most LEAF records
    depth = 4  # log16(100_000 / 16) rounded up
    assert sent < k * (depth * 16 * 24 + 2 * d.LEAF * 40) + 200, sent
    assert sent < 6_000_000 // 100 * k  # far below sending the table (~6 MB)


def test_bytes_grow_with_log_n_not_n() -> None:
    small = _table(10_000, seed=2)
    large = _table(BIG, seed=2)
    _, sent_small = _compare({"a": small, "b": _plant(small, 10, seed=5)[0]})
    _, sent_large = _compare({"a": large, "b": _plant(large, 10, seed=5)[0]})
    assert sent_large < 2 * sent_small, (sent_small, sent_large)  # 10x the rows


def test_divergence_names_each_node_view_and_the_winner() -> None:
    a = {"x": ('{"id":"x"}', 5, "n0"), "y": ('{"id":"y"}', 5, "n0")}
    b = {"x": ('{"id":"x","n":2}', 7, "n1"), "y": ('{"id":"y"}', 5, "n0")}
    c = {"y": ('{"id":"y"}', 5, "n0")}
    comp, _ = _compare({"a": a, "b": b, "c": c})
    assert set(comp.divergent) == {"x"}
    div = comp.divergent["x"]
    assert div.nodes["c"] is None and div.nodes["b"][:2] == (7, "n1")
    assert div.winner() == (7, "n1")
    assert div.behind() == ["a", "c"]


def test_a_tombstone_differs_from_a_live_row_and_from_absence() -> None:
    live = {"x": ('{"id":"x"}', 5, "n0")}
    dead = {"x": (None, 5, "n0")}
    comp, _ = _compare({"a": live, "b": dead, "c": {}})
    assert comp.divergent["x"].nodes == {
        "a": (5, "n0", d.doc_hash('{"id":"x"}')),
        "b": (5, "n0", "-"),
        "c": None,
    }


def test_same_version_different_content_is_found() -> None:
    a = {i: (f'{{"id":{i}}}', 9, "n0") for i in range(500)}
    b = dict(a)
    b[7] = ('{"id":7,"tampered":true}', 9, "n0")
    comp, _ = _compare({"a": a, "b": b})
    assert set(comp.divergent) == {7}


def test_int_and_string_keys_are_different_records() -> None:
    comp, _ = _compare({"a": {1: ("{}", 1, "n")}, "b": {"1": ("{}", 1, "n")}})
    assert set(comp.divergent) == {1, "1"}


def test_prefixes_partition_the_key_space() -> None:
    lo, hi = d.bounds(d.ROOT)
    assert (lo, hi) == (0, 1 << 64)
    kids = [d.bounds(p) for p in d.children("a")]
    assert kids[0][0] == d.bounds("a")[0] and kids[-1][1] == d.bounds("a")[1]
    assert all(x[1] == y[0] for x, y in zip(kids, kids[1:], strict=False))
    kh = d.key_hash("some key")
    assert d.bounds(d.prefix_of(kh, 3))[0] <= kh < d.bounds(d.prefix_of(kh, 3))[1]


@pytest.mark.parametrize("bad", ["g", "0" * 17, "1x"])
def test_bad_prefixes_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        d.bounds(bad)


def test_answers_of_the_wrong_length_are_refused() -> None:
    comp = d.Comparison(["a", "b"])
    with pytest.raises(ValueError, match="node b answered 0 of 1"):
        comp.digests({"a": [[0, 0]], "b": []})
