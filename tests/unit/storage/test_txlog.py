"""The transaction log, cursors and floors of one database file."""

from __future__ import annotations

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


def fill(conn, entries) -> list[int]:
    """Append (version, origin, at, records, body) entries; return their sequence numbers."""
    return [txlog.append(conn, *entry) for entry in entries]


ENTRIES = [
    (10, "a", 1000.0, 2, b"one"),
    (11, "b", 1500.0, 1, b"two!"),
    (12, "a", 2000.0, 3, b"three"),
    (13, "b", 2500.0, 0, b"4"),
    (14, "a", 3000.0, 5, b"five5"),
]


def test_an_empty_log(conn):
    assert txlog.head(conn) == 0
    assert txlog.read_after(conn, 0, 10, 1 << 20) == []
    assert txlog.records_after(conn, 0) == (0, 0)
    assert txlog.first_seq_after(conn, "a", 0) is None
    assert txlog.cursors(conn) == {} == txlog.floors(conn)
    assert txlog.start_seq(conn, {}, ["a"]) == 0


def test_append_numbers_entries_in_order(conn):
    seqs = fill(conn, ENTRIES)
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert txlog.head(conn) == seqs[-1]
    assert [row[1:] for row in txlog.iter_all(conn)] == [
        (v, o, n, body) for v, o, _, n, body in ENTRIES
    ]


def test_read_after_returns_whole_entries_after_a_sequence(conn):
    seqs = fill(conn, ENTRIES)
    read = txlog.read_after(conn, seqs[1], 10, 1 << 20)
    assert read == [
        Committed(s, v, o, n, body, frozenset(), at)
        for s, (v, o, at, n, body) in zip(seqs[2:], ENTRIES[2:], strict=True)
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


def test_first_seq_after_finds_an_origins_next_transaction(conn):
    seqs = fill(conn, ENTRIES)
    assert txlog.first_seq_after(conn, "a", 0) == seqs[0]
    assert txlog.first_seq_after(conn, "a", 10) == seqs[2]
    assert txlog.first_seq_after(conn, "b", 11) == seqs[3]
    assert txlog.first_seq_after(conn, "a", 14) is None
    assert txlog.first_seq_after(conn, "nobody", 0) is None


def test_start_seq_is_just_before_the_first_entry_any_origin_needs(conn):
    seqs = fill(conn, ENTRIES)
    assert txlog.start_seq(conn, {"a": 12, "b": 11}, ["a", "b"]) == seqs[3] - 1
    assert txlog.start_seq(conn, {"a": 0}, ["a"]) == seqs[0] - 1
    assert txlog.start_seq(conn, {"a": 14, "b": 13}, ["a", "b"]) == txlog.head(conn)


def test_prune_deletes_old_entries_and_raises_floors_to_the_max_pruned_version(conn):
    seqs = fill(conn, ENTRIES)
    assert txlog.prune(conn, 2500.0) == 3
    assert txlog.floors(conn) == {"a": 12, "b": 11}
    assert [row[0] for row in txlog.iter_all(conn)] == seqs[3:]
    assert txlog.prune(conn, 100.0) == 0  # nothing that old: floors stay
    assert txlog.floors(conn) == {"a": 12, "b": 11}
    assert txlog.prune(conn, 10_000.0) == 2
    assert txlog.floors(conn) == {"a": 14, "b": 13}
    assert txlog.head(conn) == 0


def test_prune_keeps_a_higher_floor(conn):
    txlog.raise_floor(conn, "a", 99)
    fill(conn, ENTRIES)
    txlog.prune(conn, 10_000.0)
    assert txlog.floors(conn) == {"a": 99, "b": 13}


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


def test_cursors_and_floors_never_move_backwards(conn):
    txlog.advance_cursor(conn, "a", 5)
    txlog.advance_cursor(conn, "a", 3)
    txlog.advance_cursor(conn, "b", 1)
    txlog.advance_cursor(conn, "a", 8)
    assert txlog.cursors(conn) == {"a": 8, "b": 1}
    txlog.raise_floor(conn, "a", 7)
    txlog.raise_floor(conn, "a", 2)
    assert txlog.floors(conn) == {"a": 7}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 2**62)), max_size=30))
def test_a_cursor_is_the_maximum_version_ever_advanced_to(conn, moves):
    conn.execute("DELETE FROM _cursors")
    for origin, version in moves:
        txlog.advance_cursor(conn, origin, version)
    expected: dict[str, int] = {}
    for origin, version in moves:
        expected[origin] = max(expected.get(origin, version), version)
    assert txlog.cursors(conn) == expected
