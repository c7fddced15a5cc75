"""Row SQL: live lookups, local puts, scans, and last-write-wins apply held to the core rule."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.core import messages as m
from agent.core.conflict import supersedes
from agent.storage import catalog as cat
from agent.storage import rows
from agent.storage.sqlite import connect

_tables = itertools.count()


def new_table(conn) -> str:
    name = f"t{next(_tables)}"
    cat.persist_table(conn, cat.table_from_definition("dev", {"name": name}, 0.0))
    return name


@pytest.fixture
def conn(tmp_path):
    c = connect(tmp_path / "rows.sqlite", synchronous="OFF")
    c.executescript(cat.DDL)
    yield c
    c.close()


@pytest.fixture(scope="module")
def shared_conn(tmp_path_factory):
    c = connect(tmp_path_factory.mktemp("rows") / "rows.sqlite", synchronous="OFF")
    c.executescript(cat.DDL)
    yield c
    c.close()


def stored(conn, table) -> dict:
    return {r[0]: r[1:] for r in conn.execute(f"SELECT * FROM {cat.row_table(table)}")}


def test_chunks_cover_every_item_in_order():
    items = list(range(1203))
    parts = list(rows.chunks(items, 500))
    assert [len(p) for p in parts] == [500, 500, 203]
    assert [x for p in parts for x in p] == items
    assert list(rows.chunks([])) == []


def test_live_lookups_ignore_tombstones_and_missing_keys(conn):
    t = new_table(conn)
    rows.put_local(conn, t, [(1, '{"id":1}', 5, "a"), ("k", None, 6, "a"), (2.5, "{}", 7, "a")])
    assert rows.live_keys(conn, t, [1, "k", 2.5, "missing"]) == {1, 2.5}
    assert rows.live_docs(conn, t, [1, "k", 9]) == {1: '{"id":1}'}
    assert rows.count_live(conn, t) == 2
    assert rows.get_row(conn, t, "k") == (None, 6, "a")
    assert rows.get_row(conn, t, "nope") is None


def test_live_lookups_span_more_keys_than_one_chunk(conn):
    t = new_table(conn)
    rows.put_local(conn, t, [(i, "{}", 1, "a") for i in range(rows.CHUNK * 2 + 7)])
    asked = list(range(-10, rows.CHUNK * 3))
    assert rows.live_keys(conn, t, asked) == set(range(rows.CHUNK * 2 + 7))
    assert len(rows.live_docs(conn, t, asked)) == rows.CHUNK * 2 + 7


def test_strings_and_numbers_are_different_keys(conn):
    t = new_table(conn)
    rows.put_local(conn, t, [(1, '"int"', 1, "a"), ("1", '"str"', 1, "a")])
    assert rows.live_docs(conn, t, [1, "1"]) == {1: '"int"', "1": '"str"'}


def test_put_local_overwrites_whatever_is_stored(conn):
    t = new_table(conn)
    rows.put_local(conn, t, [(1, "{}", 100, "z")])
    rows.put_local(conn, t, [(1, '{"v":2}', 3, "a")])
    assert rows.get_row(conn, t, 1) == ('{"v":2}', 3, "a")


def test_apply_lww_counts_the_rows_that_won(conn):
    t = new_table(conn)
    assert rows.apply_lww(conn, t, [(1, "{}", 5, "b"), (2, "{}", 5, "b")]) == 2
    batch = [(1, '"old"', 4, "z"), (1, '"tie-lower"', 5, "a"), (1, '"same"', 5, "b")]
    assert rows.apply_lww(conn, t, batch) == 0
    assert rows.apply_lww(conn, t, [(1, '"tie-higher"', 5, "c"), (2, None, 6, "a")]) == 2
    assert stored(conn, t) == {1: ('"tie-higher"', 5, "c"), 2: (None, 6, "a")}


def test_an_older_put_does_not_revive_a_tombstone(conn):
    t = new_table(conn)
    rows.apply_lww(conn, t, [(1, None, 10, "a")])
    rows.apply_lww(conn, t, [(1, "{}", 9, "z")])
    assert rows.get_row(conn, t, 1) == (None, 10, "a")


def test_last_updated_and_tombstone_pruning(conn):
    t = new_table(conn)
    assert rows.last_updated(conn, t) is None
    rows.put_local(conn, t, [(1, None, 5, "a"), (2, None, 9, "a"), (3, "{}", 1, "a")])
    assert rows.last_updated(conn, t) == 9
    assert rows.prune_tombstones(conn, t, 9) == (1, 5)  # how many, and the newest pruned
    assert set(stored(conn, t)) == {2, 3}
    assert rows.prune_tombstones(conn, t, 9) == (0, 0)  # none left below 9
    assert rows.prune_tombstones(conn, t, 10) == (1, 9)
    assert set(stored(conn, t)) == {3}  # a live row is never pruned, however old


def chunk(rows_: list, after, last, done: bool) -> m.CopyChunk:
    return m.CopyChunk("t", [list(r) for r in rows_], after, last, done)


def test_forget_absent_deletes_old_live_rows_of_the_range_the_chunk_lacks(conn):
    t = new_table(conn)
    rows.put_local(
        conn,
        t,
        [
            (1, "{}", 5, "b"),  # before the range: kept
            (2, "{}", 5, "b"),  # in the range, absent, old: its delete was forgotten
            (3, "{}", 5, "b"),  # in the range and in the chunk: kept
            (4, "{}", 50, "b"),  # absent but newer than the horizon: kept
            (5, None, 5, "b"),  # a tombstone: nothing to forget
            (6, "{}", 5, "b"),  # past the range of a chunk that is not the last: kept
        ],
    )
    gone = rows.forget_absent(conn, t, chunk([(3, "{}", 5, "b")], 1, 5, False), 10, ("me", 0))
    assert gone == 1
    assert sorted(stored(conn, t)) == [1, 3, 4, 5, 6]


def test_forget_absent_with_the_last_chunk_covers_the_rest_of_the_table(conn):
    t = new_table(conn)
    rows.put_local(conn, t, [(k, "{}", 5, "b") for k in (1, 2, 8, 9)])
    gone = rows.forget_absent(conn, t, chunk([], 1, None, True), 10, ("me", 0))
    assert gone == 3 and sorted(stored(conn, t)) == [1]
    t2 = new_table(conn)
    rows.put_local(conn, t2, [(k, "{}", 5, "b") for k in (1, 2)])
    assert rows.forget_absent(conn, t2, chunk([], None, None, True), 10, ("me", 0)) == 2


def test_forget_absent_keeps_my_own_writes_the_publisher_has_not_received(conn):
    t = new_table(conn)
    rows.put_local(conn, t, [(1, "{}", 3, "me"), (2, "{}", 7, "me"), (3, "{}", 7, "other")])
    # the publisher holds my writes up to version 5: my write at 7 is simply not there yet
    gone = rows.forget_absent(conn, t, chunk([], None, None, True), 10, ("me", 5))
    assert gone == 2 and sorted(stored(conn, t)) == [2]


def test_scan_pages_in_key_order_with_a_version_floor(conn):
    t = new_table(conn)
    rows.put_local(conn, t, [(k, "{}", k, "a") for k in (5, 1, 4, 2, 3)])
    first = rows.scan(conn, t, None, 2)
    assert [r[0] for r in first] == [1, 2]
    assert [r[0] for r in rows.scan(conn, t, first[-1][0], 2)] == [3, 4]
    assert [r[0] for r in rows.scan(conn, t, None, 10, min_version=4)] == [4, 5]
    assert rows.scan(conn, t, 5, 10) == []


KEYS = st.sampled_from([1, 2, 3, "1", "a"])
ORIGINS = st.sampled_from(["a", "b", "node-1", "node-10", "é"])
DOCS = st.one_of(st.none(), st.integers(0, 5).map(lambda n: f'{{"n":{n}}}'))
WRITES = st.tuples(KEYS, DOCS, st.integers(0, 6), ORIGINS)


def fold(writes) -> dict:
    """Apply writes in order with the core's conflict rule."""
    table: dict = {}
    for key, doc, version, origin in writes:
        current = table.get(key)
        if current is None or supersedes(version, origin, current[1], current[2]):
            table[key] = (doc, version, origin)
    return table


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(WRITES, max_size=40), st.randoms(use_true_random=False))
def test_apply_lww_agrees_with_the_conflict_rule(shared_conn, writes, rnd):
    rnd.shuffle(writes)
    t = new_table(shared_conn)
    wins = 0
    start = 0
    while start < len(writes):  # several statements of random size, as batches arrive
        size = rnd.randint(1, 5)
        wins += rows.apply_lww(shared_conn, t, writes[start : start + size])
        start += size
    expected = fold(writes)
    assert stored(shared_conn, t) == expected
    changes = sum(1 for i, w in enumerate(writes) if fold(writes[: i + 1]) != fold(writes[:i]))
    assert wins == changes


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(WRITES, max_size=30, unique_by=lambda w: (w[0], w[2], w[3])), st.data())
def test_apply_lww_converges_whatever_the_order_and_duplication(shared_conn, writes, data):
    # one document per (key, version, origin): the same write may arrive twice, never differ
    extra = data.draw(st.lists(st.sampled_from(writes), max_size=10)) if writes else []
    stream = data.draw(st.permutations(writes + extra))
    t = new_table(shared_conn)
    for write in stream:
        rows.apply_lww(shared_conn, t, [write])
    newest: dict = {}
    for key, doc, version, origin in writes:
        if key not in newest or (version, origin) > newest[key][1:]:
            newest[key] = (doc, version, origin)
    assert stored(shared_conn, t) == newest
