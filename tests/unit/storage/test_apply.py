"""Replicated write jobs on a real database file: each continues what was applied, or is refused.

A refused job (StreamGap) must leave no trace at all: not a row, a log entry, a cursor, a
table or a copy-progress mark, so the link can subscribe again from the cursors it has.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent.core import messages as m
from agent.core.changes import CREATE_TABLE, DELETE, PUT, Write
from agent.core.clock import make_version
from agent.errors import StreamGap
from agent.storage import txlog
from agent.storage.apply import (
    COPY_STATE,
    SYNCED,
    CopyBegin,
    CopyComplete,
    RemoteTransaction,
    SnapshotChunk,
    load_meta,
    sync_state,
)

PEER, PEER_ID = "node-b", "b-id"
BASE = make_version(1_700_000_000_000)
WAIT = 10  # seconds a queued job may take


def txn(oseq: int, *writes: Write, origin_id: str = PEER_ID, version: int = 0) -> m.Txn:
    """Origin b's transaction `oseq` (its version grows with it unless given)."""
    body = m.encode_changes(list(writes))
    records = sum(1 for w in writes if w.kind in (PUT, DELETE))
    return m.Txn(100 + oseq, 0, PEER, origin_id, oseq, version or BASE + oseq, records, 1.0, body)


def put(key: Any, table: str = "dog") -> Write:
    return Write(table, PUT, key, f'{{"id": {key!r}}}'.replace("'", '"'))


def remote(kit, db, msg: m.Txn) -> bool:
    return db.write_sync(RemoteTransaction(db.name, msg, kit.storage.clock))


def dump(kit, db) -> dict[str, list]:
    """Every table of the file with every row: what 'no trace' is checked against."""

    def read(conn) -> dict[str, list]:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {n: sorted(map(repr, conn.execute(f'SELECT * FROM "{n}"'))) for n in names}

    return kit.read(db, read)


@pytest.fixture
def dog(kit, db):
    kit.table(db, "dog")
    return db


# --- RemoteTransaction ----------------------------------------------------------------------


def test_the_next_transaction_of_an_origin_applies_and_is_logged_under_its_sequence(kit, dog):
    assert remote(kit, dog, txn(1, put(1)))
    assert kit.docs(dog, "dog") == {1: {"id": 1}}
    assert kit.row(dog, "dog", 1)[1:] == (BASE + 1, PEER)  # stored under the origin's name
    assert kit.cursor(dog, PEER_ID) == (1, BASE + 1)
    assert kit.log_ids(dog)[-1] == (PEER_ID, 1)
    assert kit.log(dog)[-1][1:3] == (BASE + 1, PEER)
    assert remote(kit, dog, txn(2, put(2)))
    assert kit.cursor(dog, PEER_ID) == (2, BASE + 2)


def test_a_duplicate_is_skipped_and_changes_nothing(kit, dog):
    assert remote(kit, dog, txn(1, put(1)))
    assert remote(kit, dog, txn(2, put(2)))
    before = dump(kit, dog)
    assert remote(kit, dog, txn(2, put(2))) is False
    assert remote(kit, dog, txn(1, put("other"))) is False  # older: never re-applied
    assert dump(kit, dog) == before


def test_a_gap_is_refused_and_leaves_no_trace(kit, dog):
    assert remote(kit, dog, txn(1, put(1)))
    before, clock = dump(kit, dog), kit.storage.clock.last
    with pytest.raises(StreamGap, match="transaction 3 of origin node-b .b-id. arrived, but 1"):
        remote(kit, dog, txn(3, put(3), version=make_version(4_000_000_000_000)))
    assert dump(kit, dog) == before
    assert kit.storage.clock.last == clock  # not even the clock saw its version
    assert remote(kit, dog, txn(2, put(2)))  # what was missing applies, then the rest
    assert remote(kit, dog, txn(3, put(3)))
    assert set(kit.docs(dog, "dog")) == {1, 2, 3}


def test_the_first_transaction_of_an_unknown_origin_must_be_its_first(kit, dog):
    with pytest.raises(StreamGap):
        remote(kit, dog, txn(2, put(1), origin_id="new-id"))
    assert kit.cursors(dog).get("new-id") is None


def test_sequences_are_per_origin_id(kit, dog):
    assert remote(kit, dog, txn(1, put(1)))
    assert remote(kit, dog, txn(1, put(2), origin_id="c-id"))
    assert kit.cursors(dog) == {dog.origin_id: 1, PEER_ID: 1, "c-id": 1}


def test_our_own_transactions_coming_back_through_a_relay_are_skipped(kit, dog):
    before = dump(kit, dog)
    assert remote(kit, dog, txn(2, put(1), origin_id=dog.origin_id)) is False
    assert dump(kit, dog) == before


def test_a_gap_in_a_batch_rolls_back_alone(kit, dog, held_batch):
    jobs = [
        RemoteTransaction(dog.name, txn(1, put(1)), kit.storage.clock),
        RemoteTransaction(dog.name, txn(3, put(3)), kit.storage.clock),
        RemoteTransaction(dog.name, txn(2, put(2)), kit.storage.clock),
    ]
    first, gap, second = held_batch(dog, jobs)
    assert first.result(WAIT) is True
    with pytest.raises(StreamGap):
        gap.result(WAIT)
    assert second.result(WAIT) is True
    assert set(kit.docs(dog, "dog")) == {1, 2}
    assert [i for i in kit.log_ids(dog) if i[0] == PEER_ID] == [(PEER_ID, 1), (PEER_ID, 2)]
    assert kit.cursor(dog, PEER_ID)[0] == 2


def test_a_write_to_an_unknown_table_is_refused_and_creates_nothing(kit, dog):
    before = dump(kit, dog)
    with pytest.raises(StreamGap, match="dev.cat, which is not here yet"):
        remote(kit, dog, txn(1, put(1), put(1, table="cat")))
    assert dump(kit, dog) == before  # not the dog row either: the transaction is whole or not
    assert dog.catalog.get("cat") is None
    assert "r_cat" not in before


def test_a_create_table_then_its_writes_in_one_transaction_apply(kit, dog):
    spec = {"name": "cat", "primary_key": "id", "replicate": True}
    assert remote(kit, dog, txn(1, Write("cat", CREATE_TABLE, None, spec), put(7, table="cat")))
    assert dog.catalog.require("cat").primary_key == "id"
    assert kit.docs(dog, "cat") == {7: {"id": 7}}


def test_a_malformed_table_definition_is_refused(kit, dog):
    before = dump(kit, dog)
    with pytest.raises(StreamGap, match="malformed change set .*table definition"):
        remote(kit, dog, txn(1, Write("cat", CREATE_TABLE, None, ["not", "a", "dict"])))
    assert dump(kit, dog) == before


# --- Copies ---------------------------------------------------------------------------------


def chunk(rows: list, after=None, last=None, done=False, table: str = "dog") -> m.CopyChunk:
    last = rows[-1][0] if rows and last is None else last
    return m.CopyChunk(table, [list(r) for r in rows], after, last, done)


def row(key: Any, version: int = BASE + 1, origin: str = PEER) -> list:
    return [key, f'{{"id": {key}}}', version, origin]


def copy_chunk(kit, db, msg: m.CopyChunk, copied: int) -> int:
    state = {"mode": "resume", "frontier": {}, "table": msg.table, "copied": copied}
    return db.write_sync(SnapshotChunk(db.name, msg, PEER, state, kit.storage.clock))


def copy_begin(kit, db, resumed: int = 0) -> None:
    state = {"mode": "resume", "frontier": {PEER_ID: 5}, "copied": resumed}
    db.write_sync(CopyBegin(PEER, state, resumed))


def test_chunks_apply_one_after_the_other_and_progress_is_stored(kit, dog):
    copy_begin(kit, dog)
    assert copy_chunk(kit, dog, chunk([row(1), row(2)]), copied=2) == 2
    assert copy_chunk(kit, dog, chunk([row(3)], after=2, done=True), copied=3) == 1
    assert set(kit.docs(dog, "dog")) == {1, 2, 3}
    assert kit.read(dog, load_meta, COPY_STATE + PEER)["copied"] == 3


def test_a_chunk_that_does_not_follow_the_one_applied_is_refused(kit, dog):
    copy_begin(kit, dog)
    copy_chunk(kit, dog, chunk([row(1), row(2)]), copied=2)
    before = dump(kit, dog)
    with pytest.raises(StreamGap, match="does not follow"):
        # a chunk of two rows went missing: this one claims 6 copied after it
        copy_chunk(kit, dog, chunk([row(5), row(6)], after=4), copied=6)
    with pytest.raises(StreamGap, match="does not follow"):
        copy_chunk(kit, dog, chunk([row(1), row(2)]), copied=2)  # the same chunk again
    assert dump(kit, dog) == before
    assert copy_chunk(kit, dog, chunk([row(3), row(4)], after=2), copied=4) == 2


def test_a_resumed_copy_must_match_the_stored_progress(kit, dog):
    copy_begin(kit, dog)
    copy_chunk(kit, dog, chunk([row(1), row(2)]), copied=2)
    before = dump(kit, dog)
    with pytest.raises(StreamGap, match="does not match stored progress"):
        copy_begin(kit, dog, resumed=5)
    assert dump(kit, dog) == before
    copy_begin(kit, dog, resumed=2)
    assert copy_chunk(kit, dog, chunk([row(3)], after=2, done=True), copied=3) == 1


def test_a_chunk_of_an_unknown_table_is_refused(kit, dog):
    copy_begin(kit, dog)
    before = dump(kit, dog)
    with pytest.raises(StreamGap, match="not here yet"):
        copy_chunk(kit, dog, chunk([row(1)], table="cat"), copied=1)
    assert dump(kit, dog) == before


def complete(kit, db, copied: int, frontier: dict, versions: dict | None = None) -> None:
    end = m.CopyEnd(frontier, copied, versions or {o: BASE + s for o, s in frontier.items()})
    db.write_sync(CopyComplete(PEER, end))


def test_copy_complete_refuses_while_a_chunk_is_missing(kit, dog):
    copy_begin(kit, dog)
    copy_chunk(kit, dog, chunk([row(1), row(2)]), copied=2)
    before = dump(kit, dog)
    with pytest.raises(StreamGap, match="ended before every chunk was applied"):
        complete(kit, dog, copied=3, frontier={PEER_ID: 5})
    assert dump(kit, dog) == before
    assert kit.read(dog, load_meta, SYNCED) is None


def test_copy_complete_moves_cursors_and_floors_to_the_frontier_but_not_our_own(kit, dog):
    assert remote(kit, dog, txn(1, put(1)))
    assert remote(kit, dog, txn(1, put(2), origin_id="c-id"))
    own = kit.cursor(dog)
    copy_begin(kit, dog)
    copy_chunk(kit, dog, chunk([row(3)], done=True), copied=1)
    frontier = {PEER_ID: 5, "c-id": 1, dog.origin_id: 9}
    complete(kit, dog, copied=1, frontier=frontier, versions={PEER_ID: BASE + 50})
    assert kit.cursor(dog, PEER_ID) == (5, BASE + 50)  # the version of that transaction
    assert kit.cursor(dog, "c-id")[0] == 1
    assert kit.cursor(dog) == own  # our own log stays complete for our own writes
    floors = kit.read(dog, txlog.floors)
    assert floors == {PEER_ID: 5}  # a hole only where the snapshot went past what we had
    synced, state, cursors, versions = kit.read(dog, sync_state, PEER)
    assert (synced, state) == (PEER, None)
    assert cursors[PEER_ID] == 5 and versions[PEER_ID] == BASE + 50
    # the stream continues after the frontier: 6 applies, 5 is a duplicate
    assert remote(kit, dog, txn(5, put(50))) is False
    assert remote(kit, dog, txn(6, put(60)))


def test_a_horizon_chunk_forgets_rows_the_peer_deleted_long_ago_but_keeps_mine(kit, dog):
    horizon = BASE + 100
    mine = kit.origin
    remote(kit, dog, txn(1, put(1), put(2), put(3)))  # old rows of b, version BASE + 1
    kit.insert(dog, "dog", {"id": 4})  # my own, newer than anything the peer has of mine
    copy_begin(kit, dog)
    job = SnapshotChunk(
        dog.name,
        chunk([row(1)], done=True),
        PEER,
        {"table": "dog", "copied": 1},
        kit.storage.clock,
    )
    job.horizon, job.keep_mine = horizon, (mine, 0)
    dog.write_sync(job)
    # 2 and 3 are older than the horizon and absent from the peer: their delete was forgotten
    assert set(kit.docs(dog, "dog")) == {1, 4}


def test_a_filtered_stream_moves_a_cursor_of_its_own_and_logs_nothing(kit, dog):
    job = RemoteTransaction(dog.name, txn(1, put(1)), kit.storage.clock, scope="dog")
    log_before = kit.log(dog)
    assert dog.write_sync(job)
    assert kit.docs(dog, "dog") == {1: {"id": 1}}
    assert kit.read(dog, txlog.cursors, "dog") == {PEER_ID: 1}
    assert PEER_ID not in kit.cursors(dog)  # a full stream still starts at b's first
    assert kit.log(dog) == log_before  # part of a transaction: never relayed
    assert remote(kit, dog, txn(1, put(1)))  # the full stream applies it as b's own 1
