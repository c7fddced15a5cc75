"""The transaction log, cursors and floors of one database file."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.storage import txlog
from agent.storage.sqlite import connect
from agent.storage.writer import Committed


@pytest.fixture
def conn(tmp_path):
    c = connect(tmp_path / "log.sqlite", synchronous="OFF")
    c.executescript(txlog.DDL)
    yield c
    c.close()


def entry(version, origin, at, records, body, origin_id, oseq) -> Committed:
    return Committed(0, version, origin, records, body, frozenset(), at, origin_id, oseq)


def fill(conn, entries) -> list[int]:
    """Append entries (see ENTRIES); return their log positions."""
    return [txlog.append(conn, entry(*e)) for e in entries]


# (version, origin name, at, records, body, origin id, oseq): each origin numbers its own
ENTRIES = [
    (10, "a", 1000.0, 2, b"one", "A", 1),
    (11, "b", 1500.0, 1, b"two!", "B", 1),
    (12, "a", 2000.0, 3, b"three", "A", 2),
    (13, "b", 2500.0, 0, b"4", "B", 2),
    (14, "a", 3000.0, 5, b"five5", "A", 3),
]


def test_an_empty_log(conn):
    assert txlog.head(conn) == 0
    assert txlog.read_after(conn, 0, 10, 1 << 20) == []
    assert txlog.records_after(conn, 0) == (0, 0)
    assert txlog.first_seq_after(conn, "A", 0) is None
    assert txlog.cursors(conn) == {} == txlog.floors(conn)
    assert txlog.cursor_versions(conn) == {}
    assert txlog.cursor(conn, "A") == (0, 0)
    assert txlog.start_seq(conn, {}, ["A"]) == 0


def test_the_format_is_2():
    assert txlog.FORMAT == 2


def test_append_numbers_entries_in_order_and_keeps_the_origin_sequence(conn):
    seqs = fill(conn, ENTRIES)
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert txlog.head(conn) == seqs[-1]
    assert [row[1:] for row in txlog.iter_all(conn)] == [
        (v, o, n, body, oid, oseq) for v, o, _, n, body, oid, oseq in ENTRIES
    ]


def test_append_ignores_the_entrys_own_seq(conn):
    first = txlog.append(conn, Committed(999, 10, "a", 1, b"x", frozenset(), 1.0, "A", 1))
    assert first != 999 and txlog.head(conn) == first


def test_an_origin_sequence_is_logged_at_most_once(conn):
    fill(conn, ENTRIES[:1])
    with pytest.raises(sqlite3.IntegrityError):
        fill(conn, [(99, "a", 5000.0, 1, b"again", "A", 1)])
    fill(conn, [(99, "a", 5000.0, 1, b"other", "OTHER", 1)])  # another origin's 1 is fine


def test_read_after_returns_whole_entries_after_a_position(conn):
    seqs = fill(conn, ENTRIES)
    read = txlog.read_after(conn, seqs[1], 10, 1 << 20)
    assert read == [
        Committed(s, v, o, n, body, frozenset(), at, oid, oseq)
        for s, (v, o, at, n, body, oid, oseq) in zip(seqs[2:], ENTRIES[2:], strict=True)
    ]
    assert all(isinstance(c.body, bytes) for c in read)


def test_read_after_stops_at_the_limit_or_once_past_the_byte_budget(conn):
    seqs = fill(conn, ENTRIES)
    assert [c.seq for c in txlog.read_after(conn, 0, 2, 1 << 20)] == seqs[:2]
    # "one" (3) + "two!" (4) reaches 7 bytes: the entry that crosses the budget is included
    assert [c.seq for c in txlog.read_after(conn, 0, 10, 7)] == seqs[:2]
    assert [c.seq for c in txlog.read_after(conn, 0, 10, 8)] == seqs[:3]
    # one entry larger than the budget still comes back, so a reader always progresses
    assert [c.seq for c in txlog.read_after(conn, 0, 10, 1)] == seqs[:1]
    assert txlog.read_after(conn, seqs[-1], 10, 1 << 20) == []


def test_records_after_counts_transactions_and_records(conn):
    seqs = fill(conn, ENTRIES)
    assert txlog.records_after(conn, 0) == (5, 11)
    assert txlog.records_after(conn, seqs[2]) == (2, 5)
    assert txlog.records_after(conn, seqs[-1]) == (0, 0)


def test_first_seq_after_finds_an_origins_next_transaction_by_its_sequence(conn):
    seqs = fill(conn, ENTRIES)
    assert txlog.first_seq_after(conn, "A", 0) == seqs[0]
    assert txlog.first_seq_after(conn, "A", 1) == seqs[2]
    assert txlog.first_seq_after(conn, "B", 1) == seqs[3]
    assert txlog.first_seq_after(conn, "A", 3) is None
    assert txlog.first_seq_after(conn, "a", 0) is None  # by origin id, not the node name
    assert txlog.first_seq_after(conn, "nobody", 0) is None


def test_first_seq_after_follows_the_origin_order_not_the_log_order(conn):
    """A relay may log an origin's transactions in another order than their numbers."""
    first, second = fill(conn, [(20, "c", 1.0, 1, b"x", "C", 2), (19, "c", 1.0, 1, b"y", "C", 1)])
    assert txlog.first_seq_after(conn, "C", 0) == second
    assert txlog.first_seq_after(conn, "C", 1) == first


def test_start_seq_is_just_before_the_first_entry_any_origin_needs(conn):
    seqs = fill(conn, ENTRIES)
    assert txlog.start_seq(conn, {"A": 2, "B": 1}, ["A", "B"]) == seqs[3] - 1
    assert txlog.start_seq(conn, {"A": 0}, ["A"]) == seqs[0] - 1
    assert txlog.start_seq(conn, {"A": 3, "B": 2}, ["A", "B"]) == txlog.head(conn)


def test_prune_deletes_old_entries_and_raises_floors_to_the_max_pruned_sequence(conn):
    seqs = fill(conn, ENTRIES)
    assert txlog.prune(conn, 2500.0) == 3
    assert txlog.floors(conn) == {"A": 2, "B": 1}
    assert [row[0] for row in txlog.iter_all(conn)] == seqs[3:]
    assert txlog.prune(conn, 100.0) == 0  # nothing that old: floors stay
    assert txlog.floors(conn) == {"A": 2, "B": 1}
    assert txlog.prune(conn, 10_000.0) == 2
    assert txlog.floors(conn) == {"A": 3, "B": 2}
    assert txlog.head(conn) == 0


def test_prune_keeps_a_higher_floor(conn):
    txlog.raise_floor(conn, "A", 99)
    fill(conn, ENTRIES)
    txlog.prune(conn, 10_000.0)
    assert txlog.floors(conn) == {"A": 99, "B": 2}


def test_sequence_numbers_keep_growing_after_pruning_part_of_the_log(conn):
    seqs = fill(conn, ENTRIES[:3])
    txlog.prune(conn, 1200.0)
    [later] = fill(conn, ENTRIES[3:4])
    assert later > seqs[-1]


def test_sequence_numbers_are_not_reused_after_pruning_the_whole_log(conn):
    seqs = fill(conn, ENTRIES[:3])
    txlog.prune(conn, 10_000.0)
    [later] = fill(conn, ENTRIES[3:4])
    assert later > seqs[-1]  # a reader positioned at seqs[-1] must see the new entry


def test_a_cursor_holds_the_last_sequence_and_its_version(conn):
    txlog.set_cursor(conn, "A", 1, 100)
    txlog.set_cursor(conn, "A", 2, 150)
    txlog.set_cursor(conn, "B", 7, 90)
    assert txlog.cursor(conn, "A") == (2, 150)
    assert txlog.cursors(conn) == {"A": 2, "B": 7}
    assert txlog.cursor_versions(conn) == {"A": 150, "B": 90}


def test_cursors_and_floors_never_move_backwards(conn):
    txlog.set_cursor(conn, "A", 5, 500)
    txlog.set_cursor(conn, "A", 3, 900)  # an older sequence changes nothing, version included
    txlog.set_cursor(conn, "A", 5, 999)  # nor does the same one again
    txlog.set_cursor(conn, "B", 1, 10)
    assert txlog.cursor(conn, "A") == (5, 500)
    txlog.set_cursor(conn, "A", 8, 400)  # the version is that of the last one applied
    assert txlog.cursors(conn) == {"A": 8, "B": 1}
    assert txlog.cursor(conn, "A") == (8, 400)
    txlog.raise_floor(conn, "A", 7)
    txlog.raise_floor(conn, "A", 2)
    assert txlog.floors(conn) == {"A": 7}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(1, 2**62), st.integers(0, 2**62)),
        max_size=30,
    )
)
def test_a_cursor_is_the_furthest_sequence_ever_set(conn, moves):
    conn.execute("DELETE FROM _cursors")
    for origin, seq, version in moves:
        txlog.set_cursor(conn, origin, seq, version)
    expected: dict[str, tuple[int, int]] = {}
    for origin, seq, version in moves:
        current = expected.get(origin)
        if current is None:
            expected[origin] = (seq, version)
        elif seq > current[0]:
            expected[origin] = (seq, version)  # the version of that transaction
    assert {o: txlog.cursor(conn, o) for o in expected} == expected
    assert txlog.cursors(conn) == {o: s for o, (s, _) in expected.items()}
