"""Local transactions and schema jobs: write semantics, results, atomicity and the log."""

from __future__ import annotations

import math
import uuid
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent import jsonx
from agent.core.changes import ATTRIBUTE, CREATE_TABLE, DELETE, DROP_TABLE, PUT, Write
from agent.errors import ClientError, NotFound
from agent.storage import catalog as cat
from agent.storage import rows
from agent.storage.catalog import CREATED, UPDATED, Attribute
from agent.storage.conditions import Compare
from agent.storage.sqlite import connect
from agent.storage.writes import (
    CreateAttribute,
    CreateTable,
    DropTable,
    Prune,
    WriteOp,
    check_key,
    tombstone_horizon,
)


def data_writes(entry) -> list[Write]:
    return [w for w in entry[4] if w.kind in (PUT, DELETE)]


# --- insert ---------------------------------------------------------------------------------


def test_insert_stores_records_with_key_and_times(kit, db):
    kit.wall.now = 1_700_000_000.5
    kit.table(db, "dog")
    result = kit.insert(db, "dog", {"id": 1, "name": "Penny"}, {"id": "two", "name": "Kato"})
    assert (result.kind, result.table, result.written, result.skipped) == (
        "insert",
        "dog",
        [1, "two"],
        [],
    )
    docs = kit.docs(db, "dog")
    assert docs[1] == {
        "id": 1,
        "name": "Penny",
        CREATED: 1_700_000_000_500.0,
        UPDATED: 1_700_000_000_500.0,
    }
    assert docs["two"]["name"] == "Kato"


def test_insert_skips_existing_keys_and_keeps_them_unchanged(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1, "name": "Penny"})
    result = kit.insert(db, "dog", {"id": 1, "name": "Other"}, {"id": 2, "name": "Kato"})
    assert result.written == [2]
    assert result.skipped == [1]
    assert kit.docs(db, "dog")[1]["name"] == "Penny"


def test_insert_skips_a_duplicate_within_the_same_batch(kit, db):
    kit.table(db, "dog")
    result = kit.insert(db, "dog", {"id": 1, "name": "first"}, {"id": 1, "name": "second"})
    assert result.written == [1]
    assert result.skipped == [1]
    assert kit.docs(db, "dog")[1]["name"] == "first"


def test_insert_over_a_tombstone_brings_the_record_back(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1, "name": "old"})
    kit.txn(db, WriteOp("delete", "dog", ids=[1]))
    result = kit.insert(db, "dog", {"id": 1, "name": "new"})
    assert result.written == [1]
    assert kit.docs(db, "dog")[1]["name"] == "new"


@pytest.mark.parametrize("record", [{"name": "no key"}, {"id": None, "name": "null key"}])
@pytest.mark.parametrize("kind", ["insert", "upsert"])
def test_a_missing_primary_key_is_generated_as_a_uuid(kit, db, kind, record):
    kit.table(db, "dog")
    [result] = kit.txn(db, WriteOp(kind, "dog", records=[record]))
    [key] = result.written
    assert str(uuid.UUID(key)) == key
    assert kit.docs(db, "dog")[key]["id"] == key


def test_generated_keys_are_distinct(kit, db):
    kit.table(db, "dog")
    result = kit.insert(db, "dog", *[{"n": i} for i in range(20)])
    assert len(set(result.written)) == 20


# --- update and upsert ----------------------------------------------------------------------


def test_update_merges_into_the_existing_record_and_skips_missing_ids(kit, db):
    wall = kit.wall
    wall.now = 1000.0
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1, "name": "Penny", "age": 3})
    wall.now = 2000.0
    [result] = kit.txn(db, WriteOp("update", "dog", records=[{"id": 1, "age": 4}, {"id": 9}]))
    assert result.written == [1]
    assert result.skipped == [9]
    docs = kit.docs(db, "dog")
    assert docs[1] == {"id": 1, "name": "Penny", "age": 4, CREATED: 1e6, UPDATED: 2e6}
    assert 9 not in kit.rows(db, "dog")


def test_update_does_not_revive_a_deleted_record(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1})
    kit.txn(db, WriteOp("delete", "dog", ids=[1]))
    [result] = kit.txn(db, WriteOp("update", "dog", records=[{"id": 1, "x": 1}]))
    assert result.skipped == [1]
    assert kit.docs(db, "dog") == {}


def test_update_without_the_primary_key_is_refused(kit, db):
    kit.table(db, "dog")
    with pytest.raises(ClientError, match="record 0 is missing primary key 'id'"):
        kit.txn(db, WriteOp("update", "dog", records=[{"name": "x"}]))


def test_upsert_inserts_new_records_and_merges_existing_ones(kit, db):
    wall = kit.wall
    wall.now = 1000.0
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1, "name": "Penny", "age": 3})
    wall.now = 3000.0
    records = [{"id": 1, "age": 5, CREATED: 1.0}, {"id": 2, "name": "Kato"}]
    [result] = kit.txn(db, WriteOp("upsert", "dog", records=records))
    assert result.written == [1, 2]
    assert result.skipped == []
    docs = kit.docs(db, "dog")
    # the merge keeps the stored creation time, whatever the record says
    assert docs[1] == {"id": 1, "name": "Penny", "age": 5, CREATED: 1e6, UPDATED: 3e6}
    assert docs[2] == {"id": 2, "name": "Kato", CREATED: 3e6, UPDATED: 3e6}


def test_upsert_duplicates_in_one_batch_merge_in_order(kit, db):
    kit.table(db, "dog")
    kit.txn(db, WriteOp("upsert", "dog", records=[{"id": 1, "a": 1}, {"id": 1, "b": 2}]))
    doc = kit.docs(db, "dog")[1]
    assert (doc["a"], doc["b"]) == (1, 2)


# --- delete ---------------------------------------------------------------------------------


def test_delete_leaves_a_tombstone_with_the_transaction_version(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1}, {"id": 2})
    [result] = kit.txn(db, WriteOp("delete", "dog", ids=[1, 7]))
    assert (result.written, result.skipped) == ([1], [7])
    doc, version, origin = kit.row(db, "dog", 1)
    assert doc is None
    assert origin == kit.origin
    assert version == kit.log(db)[-1][1]
    assert set(kit.docs(db, "dog")) == {2}
    assert kit.row(db, "dog", 7) is None  # nothing stored for a key that never existed


def test_deleting_a_deleted_record_is_skipped_and_logs_nothing(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1})
    kit.txn(db, WriteOp("delete", "dog", ids=[1]))
    before = kit.log(db)
    [result] = kit.txn(db, WriteOp("delete", "dog", ids=[1]))
    assert (result.written, result.skipped) == ([], [1])
    assert kit.log(db) == before


def test_a_key_deleted_twice_in_one_request_is_deleted_once(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1})
    [result] = kit.txn(db, WriteOp("delete", "dog", ids=[1, 1]))
    assert result.written == [1]
    assert [w.key for w in data_writes(kit.log(db)[-1])] == [1]


# --- refusals -------------------------------------------------------------------------------

BAD_KEYS = [True, False, {"a": 1}, [1], math.inf, -math.inf, math.nan, "", "x" * 1025, 2**63]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
@pytest.mark.parametrize("kind", ["insert", "update", "upsert"])
def test_bad_key_types_are_refused_naming_the_key(kit, db, kind, key):
    kit.table(db, "dog", pk="dog_id")
    before = kit.log(db)
    with pytest.raises(ClientError, match="'dog_id'"):
        kit.txn(db, WriteOp(kind, "dog", records=[{"dog_id": 1}, {"dog_id": key}]))
    assert kit.rows(db, "dog") == {}
    assert kit.log(db) == before


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_bad_ids_to_delete_are_refused_naming_the_key(kit, db, key):
    kit.table(db, "dog", pk="dog_id")
    kit.insert(db, "dog", {"dog_id": 1})
    with pytest.raises(ClientError, match="'dog_id'"):
        kit.txn(db, WriteOp("delete", "dog", ids=[1, key]))
    assert set(kit.docs(db, "dog")) == {1}


@pytest.mark.parametrize("key", [0, -5, 2**63 - 1, -(2**63), 1.5, "a", "ü" * 1024])
def test_good_keys_are_accepted(key):
    assert check_key(key, "id") == key


@pytest.mark.parametrize("record", [1, "text", None, [{"id": 1}]], ids=repr)
def test_a_record_that_is_not_an_object_is_refused(kit, db, record):
    kit.table(db, "dog")
    with pytest.raises(ClientError, match="record 1 must be an object"):
        kit.insert(db, "dog", {"id": 1}, record)
    assert kit.rows(db, "dog") == {}


@pytest.mark.parametrize("name", ["", "a\x00b"], ids=repr)
def test_an_attribute_name_peers_would_refuse_is_refused_here_too(kit, db, name):
    """Peers refuse empty and NUL attribute names (agent/core/validate.py): accepting one
    locally would leave a log entry no peer ever applies."""
    kit.table(db, "dog")
    with pytest.raises(ClientError, match="is empty or holds a NUL: not an attribute name"):
        kit.insert(db, "dog", {"id": 1}, {"id": 2, name: 1})
    assert kit.rows(db, "dog") == {}


def test_writing_to_a_missing_table_is_not_found(kit, db):
    with pytest.raises(NotFound, match="Table 'dev.nope' does not exist"):
        kit.insert(db, "nope", {"id": 1})


# --- atomic transactions --------------------------------------------------------------------

FAILING_OPS = {
    "missing table": WriteOp("insert", "missing", records=[{"id": 1}]),
    "bad key": WriteOp("upsert", "cat", records=[{"id": True}]),
    "not an object": WriteOp("insert", "cat", records=[7]),
    "update without key": WriteOp("update", "dog", records=[{"name": "x"}]),
}


@pytest.mark.parametrize("failing", FAILING_OPS.values(), ids=FAILING_OPS.keys())
def test_a_failing_op_undoes_every_earlier_op_of_the_transaction(kit, db, failing):
    kit.table(db, "dog")
    kit.table(db, "cat")
    kit.insert(db, "dog", {"id": 1, "name": "Penny"})
    rows_before = (kit.rows(db, "dog"), kit.rows(db, "cat"))
    log_before, cursors_before = kit.log(db), kit.cursors(db)
    attributes_before = dict(db.catalog.require("cat").attributes)
    ops = [
        WriteOp("insert", "dog", records=[{"id": 2, "fresh_attribute": 1}]),
        WriteOp("update", "dog", records=[{"id": 1, "name": "changed"}]),
        WriteOp("insert", "cat", records=[{"id": "c", "whiskers": True}]),
        WriteOp("delete", "dog", ids=[1]),
        failing,
    ]
    with pytest.raises(ClientError):
        kit.txn(db, *ops)
    assert (kit.rows(db, "dog"), kit.rows(db, "cat")) == rows_before
    assert kit.log(db) == log_before
    assert kit.cursors(db) == cursors_before
    assert db.catalog.require("cat").attributes == attributes_before
    assert "fresh_attribute" not in db.catalog.require("dog").attributes
    stored = kit.read(db, lambda c: c.execute("SELECT tbl, name FROM _attributes").fetchall())
    assert ("dog", "fresh_attribute") not in stored


def test_a_transaction_across_two_tables_is_one_log_entry(kit, db):
    kit.table(db, "dog")
    kit.table(db, "cat")
    kit.insert(db, "dog", {"id": 9})
    before = len(kit.log(db))
    results = kit.txn(
        db,
        WriteOp("insert", "dog", records=[{"id": 1, "name": "Penny"}]),
        WriteOp("upsert", "cat", records=[{"id": "c", "name": "Tom"}]),
        WriteOp("delete", "dog", ids=[9]),
    )
    assert [r.written for r in results] == [[1], ["c"], [9]]
    log = kit.log(db)
    assert len(log) == before + 1
    seq, version, origin, records, writes = log[-1]
    assert origin == kit.origin
    assert records == 3
    assert [(w.table, w.kind, w.key) for w in data_writes(log[-1])] == [
        ("dog", PUT, 1),
        ("cat", PUT, "c"),
        ("dog", DELETE, 9),
    ]
    assert jsonx.loads(writes[[w.key for w in writes].index(1)].value) == kit.docs(db, "dog")[1]
    # every row the transaction wrote carries its version
    assert {kit.row(db, "dog", 1)[1], kit.row(db, "cat", "c")[1], kit.row(db, "dog", 9)[1]} == {
        version
    }


def test_new_attributes_are_logged_once_before_the_records(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1, "color": "red"})
    kit.insert(db, "dog", {"id": 2, "color": "blue", "size": 3})
    first, second = kit.log(db)[-2:]
    assert [(w.kind, w.key) for w in first[4]] == [(ATTRIBUTE, "color"), (PUT, 1)]
    assert [(w.kind, w.key) for w in second[4]] == [(ATTRIBUTE, "size"), (PUT, 2)]
    assert {"color", "size"} <= set(db.catalog.require("dog").attributes)


def test_writes_to_the_same_record_in_one_transaction_log_only_the_last(kit, db):
    kit.table(db, "dog")
    kit.txn(
        db,
        WriteOp("insert", "dog", records=[{"id": 1, "a": 1}, {"id": 2}]),
        WriteOp("update", "dog", records=[{"id": 1, "a": 2}]),
        WriteOp("delete", "dog", ids=[2]),
    )
    writes = data_writes(kit.log(db)[-1])
    assert [(w.kind, w.key) for w in writes] == [(PUT, 1), (DELETE, 2)]
    assert jsonx.loads(writes[0].value)["a"] == 2
    assert kit.log(db)[-1][3] == 2


def test_a_transaction_that_changes_nothing_logs_nothing(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1})
    before = kit.log(db)
    kit.txn(
        db,
        WriteOp("insert", "dog", records=[{"id": 1}]),
        WriteOp("update", "dog", records=[{"id": 2}]),
        WriteOp("delete", "dog", ids=[3]),
    )
    assert kit.log(db) == before


def test_tables_that_do_not_replicate_write_rows_but_no_log_entries(kit, db):
    kit.table(db, "local", replicate=False)
    kit.table(db, "shared")
    before = kit.log(db)
    kit.insert(db, "local", {"id": 1, "secret": "x"})
    kit.txn(db, WriteOp("delete", "local", ids=[1]))
    kit.insert(db, "local", {"id": 2})
    assert kit.log(db) == before
    assert set(kit.docs(db, "local")) == {2}
    kit.txn(
        db,
        WriteOp("insert", "local", records=[{"id": 3}]),
        WriteOp("insert", "shared", records=[{"id": 4}]),
    )
    [entry] = kit.log(db)[len(before) :]
    assert {w.table for w in entry[4]} == {"shared"}
    assert set(kit.docs(db, "local")) == {2, 3}


def test_each_transaction_takes_the_next_local_sequence_and_moves_the_cursor(kit, db):
    kit.table(db, "dog")  # sequence 1: the create_table
    seen = []
    for i in range(5):
        kit.insert(db, "dog", {"id": i})
        version = kit.log(db)[-1][1]
        assert kit.log_ids(db)[-1] == (db.origin_id, i + 2)
        assert kit.cursor(db) == (i + 2, version)
        seen.append(version)
    assert seen == sorted(set(seen))
    assert kit.cursors(db) == {db.origin_id: 6}  # keyed by origin id, not the node name


def test_log_versions_increase_with_the_sequence(kit, db):
    kit.table(db, "dog")
    for i in range(10):
        kit.insert(db, "dog", {"id": i})
    log = kit.log(db)
    assert [e[0] for e in log] == sorted(e[0] for e in log)
    assert [e[1] for e in log] == sorted({e[1] for e in log})


# --- conditional update and delete (SQL) ----------------------------------------------------


def test_conditional_update_and_delete_resolve_inside_the_transaction(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1, "age": 3}, {"id": 2, "age": 9}, {"id": 3, "age": 12})
    old = Compare("age", "greater_than", 5)
    [result] = kit.txn(db, WriteOp("update", "dog", where=old, assign={"senior": True}))
    assert result.written == [2, 3]
    assert {k for k, d in kit.docs(db, "dog").items() if d.get("senior")} == {2, 3}
    [result] = kit.txn(db, WriteOp("delete", "dog", where=Compare("id", "equals", 3)))
    assert result.written == [3]
    [result] = kit.txn(db, WriteOp("delete", "dog", where=True))
    assert sorted(result.written) == [1, 2]
    assert kit.docs(db, "dog") == {}


# --- schema jobs ----------------------------------------------------------------------------


def test_create_table_is_logged_for_peers(kit, db):
    info = kit.table(db, "dog", pk="name")
    [*_, (_, version, origin, records, writes)] = kit.log(db)
    assert (origin, records) == (kit.origin, 0)
    assert writes == [Write("dog", CREATE_TABLE, None, info.definition())]
    assert kit.log_ids(db)[-1] == (db.origin_id, 1)
    assert kit.cursor(db) == (1, version)
    assert info.created > 0


def test_a_table_that_does_not_replicate_is_created_without_a_log_entry(kit, db):
    before = kit.log(db)
    kit.table(db, "local", replicate=False)
    assert kit.log(db) == before
    assert db.catalog.require("local").replicate is False


def test_creating_an_existing_table_is_refused_unless_exists_ok(kit, db):
    first = kit.table(db, "dog")
    again = cat.table_from_definition("dev", {"name": "dog"}, 0.0)
    with pytest.raises(ClientError, match="Table 'dev.dog' already exists"):
        db.write_sync(CreateTable(again, kit.storage.clock, kit.origin))
    assert db.write_sync(CreateTable(again, kit.storage.clock, kit.origin, exists_ok=True)) is first


def test_drop_table_removes_rows_and_is_logged_only_when_replicated(kit, db):
    kit.table(db, "dog")
    kit.table(db, "cat")
    kit.insert(db, "dog", {"id": 1})
    kit.drop(db, "dog")
    assert kit.log(db)[-1][4] == [Write("dog", DROP_TABLE, None, None)]
    assert db.catalog.get("dog") is None
    before = kit.log(db)
    db.write_sync(DropTable("cat", kit.storage.clock, kit.origin, replicated=False))
    assert kit.log(db) == before
    assert db.catalog.names() == []
    tables = kit.read(db, lambda c: c.execute("SELECT name FROM sqlite_master").fetchall())
    assert ("r_dog",) not in tables and ("r_cat",) not in tables
    with pytest.raises(NotFound):
        kit.drop(db, "dog")


def test_create_attribute_adds_and_logs_it_and_refuses_a_duplicate(kit, db):
    kit.table(db, "dog")
    attr = Attribute("weight", "Float", True)
    db.write_sync(CreateAttribute("dog", attr, kit.storage.clock, kit.origin))
    assert db.catalog.require("dog").attributes["weight"] == replace(attr, declared=True)
    assert kit.log(db)[-1][4] == [
        Write("dog", ATTRIBUTE, "weight", {"type": "Float", "indexed": True, "declared": True})
    ]
    with pytest.raises(ClientError, match="attribute 'weight' already exists in 'dev.dog'"):
        db.write_sync(CreateAttribute("dog", attr, kit.storage.clock, kit.origin))


# --- the log reproduces the table -----------------------------------------------------------

KEYS = st.sampled_from([1, 2, 3, "a", "b"])
RECORDS = st.fixed_dictionaries({"id": KEYS}, optional={"x": st.integers(0, 3), "y": st.text()})
OPS = st.one_of(
    st.builds(
        WriteOp,
        st.sampled_from(["insert", "update", "upsert"]),
        st.just("T"),
        records=st.lists(RECORDS, max_size=4),
    ),
    st.builds(WriteOp, st.just("delete"), st.just("T"), ids=st.lists(KEYS, max_size=3)),
)
TRANSACTIONS = st.lists(st.lists(OPS, min_size=1, max_size=3), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    conn = connect(tmp_path_factory.mktemp("replica") / "replica.sqlite", synchronous="OFF")
    conn.executescript(cat.DDL)
    yield conn
    conn.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(TRANSACTIONS, st.randoms(use_true_random=False))
def test_replaying_the_log_in_any_order_reproduces_the_table(
    module_kit, replica, transactions, rnd
):
    db = module_kit.db("replay")
    table = module_kit.table(db).name
    for ops in transactions:
        module_kit.txn(db, *[WriteOp(op.kind, table, op.records, op.ids) for op in ops])
    stream = [
        (w.key, w.value, version, origin)
        for _, version, origin, _, writes in module_kit.log(db)
        for w in writes
        if w.table == table and w.kind in (PUT, DELETE)
    ]
    stream += rnd.sample(stream, k=len(stream) // 2)  # duplicates are harmless
    rnd.shuffle(stream)
    info = cat.table_from_definition("replay", {"name": table}, 0.0)
    cat.persist_table(replica, info)
    for start in range(0, len(stream), 3):
        rows.apply_lww(replica, table, stream[start : start + 3])
    mirrored = {r[0]: r[1:] for r in replica.execute(f"SELECT * FROM {cat.row_table(table)}")}
    assert mirrored == module_kit.rows(db, table)
    module_kit.drop(db, table)


# --- local sequences ------------------------------------------------------------------------


def test_local_sequences_stay_contiguous_when_a_job_of_the_batch_fails(kit, db, held_batch):
    kit.table(db, "dog")
    jobs = [
        kit.job(WriteOp("insert", "dog", records=[{"id": 1}])),
        kit.job(WriteOp("insert", "dog", records=[{"id": 2}]), WriteOp("insert", "nope", [{}])),
        kit.job(WriteOp("insert", "dog", records=[{"id": 3}])),
    ]
    ok, failed, later = held_batch(db, jobs)
    ok.result(10)
    with pytest.raises(NotFound):
        failed.result(10)
    later.result(10)
    assert set(kit.docs(db, "dog")) == {1, 3}
    # 1 is the create_table; the failed job took no number, so 3 follows 2
    assert kit.log_ids(db) == [(db.origin_id, n) for n in (1, 2, 3)]
    assert kit.cursor(db)[0] == 3


def test_a_transaction_on_a_local_table_takes_no_sequence_but_its_version_is_kept(kit, db):
    kit.table(db, "dog")
    kit.table(db, "local", replicate=False)
    before = kit.cursor(db)
    kit.insert(db, "local", {"id": 1})
    assert kit.cursor(db) == before and kit.log_ids(db) == [(db.origin_id, 1)]
    version = kit.row(db, "local", 1)[1]
    stored = kit.read(db, lambda c: c.execute("SELECT value FROM _meta WHERE key='hlc'").fetchone())
    assert stored is not None and stored[0] >= version  # the clock restarts past it
    kit.insert(db, "dog", {"id": 1})
    assert kit.log_ids(db)[-1] == (db.origin_id, 2)


def test_a_new_files_origin_id_is_the_node_id(kit, db):
    assert kit.storage.node_id and db.origin_id == kit.storage.node_id
    stored = kit.read(db, lambda c: c.execute("SELECT value FROM _meta WHERE key='origin_id'"))
    assert stored is not None


# --- prune ----------------------------------------------------------------------------------

DAY_MS = 86_400_000.0


def test_prune_keeps_tombstones_newer_than_their_own_retention(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", *({"id": i} for i in range(4)))
    kit.txn(db, WriteOp("delete", "dog", ids=[0]))  # day 0
    old = kit.row(db, "dog", 0)[1]
    kit.wall.now += 5 * 86_400
    kit.txn(db, WriteOp("delete", "dog", ids=[1]))  # day 5
    kit.wall.now += 5 * 86_400
    now = kit.storage.clock.now_ms()  # day 10: log retention 1 day, tombstones 7 days
    entries, tombstones = db.write_sync(Prune(now - DAY_MS, now - 7 * DAY_MS))
    assert entries == 4  # create_table, insert and the two deletes
    assert kit.log(db) == []  # the whole log is older than a day
    assert tombstones == 1
    assert 0 not in kit.rows(db, "dog") and kit.rows(db, "dog")[1][0] is None
    assert kit.read(db, tombstone_horizon) == old + 1  # newest pruned tombstone, plus one
    assert set(kit.docs(db, "dog")) == {2, 3}  # live rows are never pruned


def test_prune_without_a_tombstone_retention_prunes_them_with_the_log(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1})
    kit.txn(db, WriteOp("delete", "dog", ids=[1]))
    kit.wall.now += 10
    assert db.write_sync(Prune(kit.storage.clock.now_ms()))[1] == 1
    assert kit.rows(db, "dog") == {}


def test_the_tombstone_horizon_is_zero_until_one_is_pruned_and_never_goes_down(kit, db):
    kit.table(db, "dog")
    assert kit.read(db, tombstone_horizon) == 0
    kit.insert(db, "dog", {"id": 1}, {"id": 2})
    kit.txn(db, WriteOp("delete", "dog", ids=[1]))
    kit.wall.now += 86_400
    kit.txn(db, WriteOp("delete", "dog", ids=[2]))
    newest = kit.row(db, "dog", 2)[1]
    kit.wall.now += 86_400
    now = kit.storage.clock.now_ms()
    db.write_sync(Prune(now, now - 0.5 * DAY_MS))
    assert kit.read(db, tombstone_horizon) == newest + 1
    db.write_sync(Prune(now, now - 3 * DAY_MS))  # nothing that old: the horizon stays
    assert kit.read(db, tombstone_horizon) == newest + 1


def test_the_tombstone_cutoff_is_never_later_than_the_logs(kit, db):
    """A tombstone still needed by the log's readers is kept whatever retention says."""
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1})
    kit.txn(db, WriteOp("delete", "dog", ids=[1]))
    kit.wall.now += 86_400
    now = kit.storage.clock.now_ms()
    assert db.write_sync(Prune(now - 2 * DAY_MS, now)) == (0, 0)
    assert kit.rows(db, "dog")[1][0] is None
