"""Storage: the database files of a node, opened, created, dropped and reopened."""

from __future__ import annotations

import os
import re
import sqlite3

import pytest

from agent.core import messages as m
from agent.core.clock import make_version
from agent.errors import ClientError, NotFound, StorageError
from agent.storage import query, txlog
from agent.storage.apply import SnapshotChunk
from agent.storage.store import Storage
from agent.storage.system import SYSTEM, TABLES
from agent.storage.writes import WriteOp


def files(kit, name: str) -> list[str]:
    return sorted(p.name for p in kit.path.iterdir() if p.name.startswith(f"{name}.sqlite"))


def test_open_creates_the_system_database_and_its_tables(kit):
    assert kit.storage.names() == [SYSTEM]
    system = kit.storage.get(SYSTEM)
    assert system.catalog.names() == sorted(TABLES)
    for table, pk in TABLES.items():
        assert system.catalog.require(table).primary_key == pk


def test_reopening_does_not_recreate_the_system_tables(make_kit):
    first = make_kit()
    log = first.log(first.storage.get(SYSTEM))
    first.close()
    again = make_kit()
    assert again.log(again.storage.get(SYSTEM)) == log


def test_create_gives_a_database_file(kit):
    db = kit.storage.create_sync("dev")
    assert kit.storage.names() == ["dev", SYSTEM]
    assert kit.storage.exists("dev")
    assert kit.storage.get("dev") is db
    assert db.path == kit.path / "dev.sqlite"
    assert db.path.exists()


def test_creating_an_existing_database_is_a_client_error_unless_exists_ok(kit):
    db = kit.storage.create_sync("dev")
    with pytest.raises(ClientError, match="database 'dev' already exists"):
        kit.storage.create_sync("dev")
    assert kit.storage.create_sync("dev", exists_ok=True) is db


@pytest.mark.parametrize("name", ["", "has space", "dot.ted", "../escape", "-x", "a" * 65, 7])
def test_invalid_database_names_are_client_errors(kit, name):
    with pytest.raises(ClientError, match="database name"):
        kit.storage.create_sync(name)
    assert kit.storage.names() == [SYSTEM]
    assert not (kit.path.parent / "escape.sqlite").exists()


@pytest.mark.parametrize("name", ["nope", None, 3])
def test_getting_a_missing_database_is_not_found(kit, name):
    with pytest.raises(NotFound, match=f"database '{name}' does not exist"):
        kit.storage.get(name)


def test_drop_deletes_the_files_and_the_name_is_free_again(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1})
    assert files(kit, "dev")  # the file, and its WAL while open
    kit.storage.drop_sync("dev")
    assert files(kit, "dev") == []
    assert not kit.storage.exists("dev")
    with pytest.raises(NotFound):
        kit.storage.get("dev")
    again = kit.storage.create_sync("dev")
    assert again.catalog.names() == []
    assert kit.read(again, txlog.head) == 0  # readers reopened the new file, not the old one
    kit.table(again, "dog")
    assert kit.docs(again, "dog") == {}


def test_the_system_database_cannot_be_dropped(kit):
    with pytest.raises(ClientError, match="system database cannot be dropped"):
        kit.storage.drop_sync(SYSTEM)
    assert kit.storage.exists(SYSTEM)


def test_dropping_a_missing_database_is_not_found(kit):
    with pytest.raises(NotFound):
        kit.storage.drop_sync("nope")


def test_reopen_restores_the_catalog_the_data_and_the_log(make_kit):
    first = make_kit()
    db = first.db()
    first.table(db, "dog", pk="name")
    first.table(db, "local", replicate=False)
    first.insert(db, "dog", {"name": "Penny", "age": 5}, {"name": "Kato", "color": "black"})
    first.txn(db, WriteOp("delete", "dog", ids=["Kato"]))
    first.insert(db, "local", {"id": 1})
    described = {t: db.catalog.require(t).describe_attributes() for t in db.catalog.names()}
    snapshot = (first.rows(db, "dog"), first.rows(db, "local"), first.log(db), first.cursors(db))
    first.close()

    again = make_kit()
    db = again.storage.get("dev")
    assert again.storage.names() == ["dev", SYSTEM]
    assert {t: db.catalog.require(t).describe_attributes() for t in db.catalog.names()} == described
    assert db.catalog.require("dog").primary_key == "name"
    assert db.catalog.require("local").replicate is False
    assert (again.rows(db, "dog"), again.rows(db, "local"), again.log(db), again.cursors(db)) == (
        snapshot
    )


def test_the_clock_after_reopen_is_beyond_every_stored_version(make_kit):
    first = make_kit(now=4_000_000_000.0)  # a node whose clock ran far ahead, then was fixed
    db = first.db()
    first.table(db, "dog")
    for i in range(3):
        first.insert(db, "dog", {"id": i})
    stored = max(v for _, v, _ in first.rows(db, "dog").values())
    assert stored >= make_version(4_000_000_000_000)
    first.close()

    again = make_kit(now=1_000_000_000.0)
    clock = again.storage.clock
    assert clock.last >= stored
    db = again.storage.get("dev")
    again.insert(db, "dog", {"id": "new"})
    assert again.row(db, "dog", "new")[1] > stored


def test_the_clock_after_reopen_is_beyond_versions_merged_from_a_snapshot(make_kit):
    first = make_kit()
    db = first.db()
    first.table(db, "dog")
    ahead = make_version(4_000_000_000_000)  # a peer whose clock runs far ahead
    chunk = m.CopyChunk("dog", [[1, '{"id":1}', ahead, "peer"]], None, 1, False)
    state = {"table": "dog", "after": 1, "copied": 1}
    db.write_sync(SnapshotChunk("dev", chunk, "peer", state, first.storage.clock))
    first.close()  # restarted before the copy completed
    again = make_kit()
    assert again.storage.clock.last >= ahead


def test_databases_share_the_node_clock(kit):
    one, two = kit.db("one"), kit.db("two")
    kit.table(one, "a")
    kit.table(two, "b")
    versions = []
    for db, table in [(one, "a"), (two, "b"), (one, "a"), (two, "b")]:
        kit.insert(db, table, {"id": len(versions)})
        versions.append(kit.log(db)[-1][1])
    assert versions == sorted(set(versions))


def test_listeners_get_the_database_name_and_its_committed_entries(kit, db):
    heard = []
    kit.storage.add_listener(lambda name, entries: heard.append((name, entries)))
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1})
    assert [name for name, _ in heard] == ["dev", "dev"]
    entry = heard[-1][1][0]
    assert (entry.origin, entry.records, entry.tables) == (kit.origin, 1, frozenset({"dog"}))
    assert entry.seq == kit.read(db, txlog.head)
    assert entry.at > 0


async def test_the_async_api_runs_off_the_event_loop(kit):
    db = await kit.storage.create("async_db")
    kit.table(db, "dog")
    [result] = await db.write(kit.job(WriteOp("insert", "dog", records=[{"id": 1}])))
    assert result.written == [1]
    assert await db.read(query.count, "dog", None) == 1
    await kit.storage.drop("async_db")
    assert not kit.storage.exists("async_db")
    assert not os.path.exists(db.path)


FORMAT_1_LOG = """
CREATE TABLE _txlog (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL, origin TEXT NOT NULL,
    at REAL NOT NULL, records INTEGER NOT NULL, body BLOB NOT NULL
);
CREATE TABLE _cursors (origin TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
"""


def test_a_file_of_log_format_1_is_refused_on_open_naming_the_file(tmp_path):
    root = tmp_path / "database"
    root.mkdir()
    old = root / "legacy.sqlite"
    conn = sqlite3.connect(old)
    conn.executescript(FORMAT_1_LOG)
    conn.execute("INSERT INTO _txlog VALUES (1, 5, 'a', 1.0, 1, x'90')")
    conn.commit()
    conn.close()
    storage = Storage(root, "node-a", synchronous="OFF")
    try:
        with pytest.raises(StorageError, match=rf"{re.escape(str(old))} was written by .*format 1"):
            storage.open()
    finally:
        storage.close()  # the system file opened before it
    conn = sqlite3.connect(old)  # left as it was: nothing converted, nothing lost
    assert conn.execute("SELECT count(*) FROM _txlog").fetchone() == (1,)
    assert "oseq" not in {r[1] for r in conn.execute("PRAGMA table_info(_txlog)")}
    conn.close()


def test_the_node_id_lives_in_the_system_file_and_survives_a_restart(make_kit):
    first = make_kit()
    node_id = first.storage.node_id
    dev = first.db("dev")
    assert node_id and dev.origin_id == node_id
    first.close()
    again = make_kit()
    assert again.storage.node_id == node_id
    assert again.storage.get("dev").origin_id == node_id
