"""The catalog: names, table definitions, and changes that publish only after commit."""

from __future__ import annotations

import threading

import pytest

from agent.errors import ClientError, NotFound, StorageError
from agent.storage import catalog as cat
from agent.storage import txlog
from agent.storage.catalog import (
    CREATED,
    UPDATED,
    Attribute,
    Catalog,
    CatalogView,
    Staged,
    TableInfo,
    check_attribute,
    check_name,
    table_from_definition,
)
from agent.storage.sqlite import connect
from agent.storage.writes import CreateTable, WriteOp

WAIT = 10

# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev", "a", "_x", "9lives", "with-dash", "A" * 64])
def test_valid_names(name):
    assert check_name("table", name) == name


@pytest.mark.parametrize("name", ["", "-lead", "sp ace", "dot.ted", "é", "A" * 65, None, 3])
def test_invalid_names_are_client_errors_naming_the_kind(name):
    with pytest.raises(ClientError, match=r"^database name .* is invalid"):
        check_name("database", name)


@pytest.mark.parametrize("name", ["", "x" * 251, None, 5])
def test_invalid_attribute_names(name):
    with pytest.raises(ClientError, match="attribute name"):
        check_attribute(name)


def test_attribute_names_may_hold_any_character():
    assert check_attribute("a b.c'\"é") == "a b.c'\"é"
    assert check_attribute("x" * 250) == "x" * 250


def test_row_tables_are_quoted_and_prefixed():
    assert cat.row_table("dog") == '"r_dog"'


# --- table definitions ----------------------------------------------------------------------


def test_a_definition_gets_its_key_and_time_attributes():
    info = table_from_definition("dev", {"name": "dog"}, 12.5)
    assert (info.database, info.name, info.primary_key, info.created) == ("dev", "dog", "id", 12.5)
    assert (info.replicate, info.schema_defined) == (True, False)
    assert set(info.attributes) == {"id", CREATED, UPDATED}


def test_a_definition_round_trips():
    spec = {
        "name": "dog",
        "primary_key": "name",
        "replicate": False,
        "schema_defined": True,
        "attributes": [{"name": "age", "type": "Int", "indexed": True}],
    }
    info = table_from_definition("dev", spec, 0.0)
    again = table_from_definition("dev", info.definition(), 0.0)
    assert again == info
    assert info.attributes["age"] == Attribute("age", "Int", True, True)  # declared


def test_a_definition_with_a_bad_name_is_refused():
    with pytest.raises(ClientError, match="table name"):
        table_from_definition("dev", {"name": "no spaces"}, 0.0)


def test_describe_attributes_lists_the_key_first_and_the_times_last():
    info = table_from_definition("dev", {"name": "dog", "primary_key": "name"}, 0.0)
    for attr in [Attribute("zeta"), Attribute("age", "Int", True), Attribute("Breed")]:
        info.attributes[attr.name] = attr
    described = info.describe_attributes()
    assert [d["attribute"] for d in described] == [
        "name",
        "Breed",
        "age",
        "zeta",
        CREATED,
        UPDATED,
    ]
    assert described[0] == {"attribute": "name", "is_primary_key": True, "indexed": True}
    assert described[2] == {"attribute": "age", "indexed": True, "type": "Int"}
    assert described[3] == {"attribute": "zeta"}
    assert described[4] == {"attribute": CREATED, "indexed": True}


def test_describe_attributes_always_lists_the_primary_key():
    info = TableInfo("dev", "dog", "id")
    assert info.describe_attributes() == [
        {"attribute": "id", "is_primary_key": True, "indexed": True}
    ]


# --- the catalog in SQLite ------------------------------------------------------------------


@pytest.fixture
def conn(tmp_path):
    c = connect(tmp_path / "cat.sqlite", synchronous="OFF")
    c.executescript(cat.DDL)
    yield c
    c.close()


def test_persisted_tables_load_back(conn):
    dog = table_from_definition("dev", {"name": "dog", "primary_key": "name"}, 5.0)
    cat_ = table_from_definition("dev", {"name": "cat", "replicate": False}, 6.0)
    for info in (dog, cat_):
        cat.persist_table(conn, info)
    cat.persist_attributes(conn, "dog", [Attribute("age", "Int", True)])
    dog.attributes["age"] = Attribute("age", "Int", True)
    catalog = Catalog("dev")
    catalog.load(conn)
    assert catalog.names() == ["cat", "dog"]
    assert catalog.require("dog") == dog
    assert catalog.require("cat") == cat_
    cat.drop_table_sql(conn, "dog")
    catalog.load(conn)
    assert catalog.names() == ["cat"]
    assert conn.execute("SELECT count(*) FROM _attributes WHERE tbl = 'dog'").fetchone() == (0,)


def test_require_names_the_missing_table():
    with pytest.raises(NotFound, match="Table 'dev.nope' does not exist"):
        Catalog("dev").require("nope")
    with pytest.raises(NotFound):
        Catalog("dev").require(None)


def test_a_view_sees_staged_changes_and_the_live_catalog_does_not():
    live = Catalog("dev")
    live.tables["old"] = table_from_definition("dev", {"name": "old"}, 0.0)
    batch = Staged()
    view = CatalogView(live, batch)
    new = table_from_definition("dev", {"name": "new"}, 0.0)
    view.job.created["new"] = new
    view.job.dropped.add("old")
    assert view.add_attributes(new, ["color", "id"]) == [Attribute("color")]
    assert view.get("old") is None
    assert "color" in view.require("new").attributes
    assert "color" not in new.attributes  # the staged attribute is layered, not written in
    assert live.names() == ["old"]
    batch.merge(view.job)
    live.publish(batch)
    assert live.names() == ["new"]
    assert "color" in live.require("new").attributes


def test_staged_merge_lets_a_later_drop_or_create_win():
    batch = Staged()
    created = Staged(created={"t": table_from_definition("dev", {"name": "t"}, 0.0)})
    created.attributes["t"] = [Attribute("a")]
    batch.merge(created)
    batch.merge(Staged(dropped={"t"}))
    assert (batch.created, batch.attributes, batch.dropped) == ({}, {}, {"t"})
    again = table_from_definition("dev", {"name": "t"}, 1.0)
    batch.merge(Staged(created={"t": again}))
    assert batch.created == {"t": again} and batch.dropped == set()


# --- publish after commit, through the writer -----------------------------------------------


class CreateThenWait:
    """Create a table inside the writer's transaction, then pause until the test looks."""

    records = 1

    def __init__(self, info: TableInfo, clock, origin: str) -> None:
        self.create = CreateTable(info, clock, origin)
        self.created = threading.Event()
        self.go_on = threading.Event()

    def run(self, ctx):
        self.create.run(ctx)
        self.created.set()
        assert self.go_on.wait(WAIT)
        return ctx.catalog.require(self.create.info.name)


class CreateThenFail:
    records = 1

    def __init__(self, info: TableInfo, clock, origin: str) -> None:
        self.create = CreateTable(info, clock, origin)

    def run(self, ctx):
        self.create.run(ctx)
        assert ctx.catalog.get(self.create.info.name) is not None
        raise ClientError("changed my mind")


def test_a_created_table_is_invisible_until_its_batch_commits(kit, db):
    info = table_from_definition("dev", {"name": "dog"}, 0.0)
    job = CreateThenWait(info, kit.storage.clock, kit.origin)
    future = db._writer.submit(job)
    assert job.created.wait(WAIT)
    try:
        assert db.catalog.get("dog") is None
        names = kit.read(db, lambda c: [r[0] for r in c.execute("SELECT name FROM _tables")])
        assert "dog" not in names
    finally:
        job.go_on.set()
    assert future.result(WAIT).name == "dog"
    assert db.catalog.get("dog") is info


def test_a_later_job_of_the_same_batch_writes_to_a_table_created_earlier(kit, db):
    info = table_from_definition("dev", {"name": "dog"}, 0.0)
    job = CreateThenWait(info, kit.storage.clock, kit.origin)
    first = db._writer.submit(job)
    assert job.created.wait(WAIT)
    second = db._writer.submit(kit.job(WriteOp("insert", "dog", records=[{"id": 1, "x": 1}])))
    job.go_on.set()
    first.result(WAIT)
    assert second.result(WAIT)[0].written == [1]
    assert "x" in db.catalog.require("dog").attributes


class Pause:
    """A job that waits until the test has looked at the live catalog."""

    records = 0

    def __init__(self) -> None:
        self.running = threading.Event()
        self.go_on = threading.Event()

    def run(self, ctx) -> None:
        self.running.set()
        assert self.go_on.wait(WAIT)


class BreakTransaction:
    """A job that ends the writer's transaction, so its whole batch cannot commit."""

    records = 0

    def run(self, ctx) -> None:
        ctx.conn.execute("ROLLBACK")


def test_a_created_table_stays_unpublished_while_later_jobs_of_its_batch_run(kit, db, held_batch):
    info = table_from_definition("dev", {"name": "dog"}, 0.0)
    pause = Pause()
    futures = held_batch(db, [CreateTable(info, kit.storage.clock, kit.origin), pause])
    assert pause.running.wait(WAIT)
    try:
        assert db.catalog.get("dog") is None
    finally:
        pause.go_on.set()
    [f.result(WAIT) for f in futures]
    assert db.catalog.get("dog") is info


def test_a_batch_that_fails_to_commit_publishes_none_of_its_tables(kit, db, held_batch):
    info = table_from_definition("dev", {"name": "dog"}, 0.0)
    kit.table(db, "cat")
    create = CreateTable(info, kit.storage.clock, kit.origin)
    insert = kit.job(WriteOp("insert", "cat", records=[{"id": 1, "new_attribute": 1}]))
    futures = held_batch(db, [create, insert, BreakTransaction()])
    for future in futures:
        with pytest.raises(StorageError):
            future.result(WAIT)
    assert db.catalog.get("dog") is None
    assert "new_attribute" not in db.catalog.require("cat").attributes


def test_a_rolled_back_create_table_leaves_no_table(kit, db):
    before = kit.log(db)
    info = table_from_definition("dev", {"name": "dog"}, 0.0)
    with pytest.raises(ClientError, match="changed my mind"):
        db.write_sync(CreateThenFail(info, kit.storage.clock, kit.origin))
    assert db.catalog.get("dog") is None
    tables = kit.read(db, lambda c: [r[0] for r in c.execute("SELECT name FROM sqlite_master")])
    assert "r_dog" not in tables
    assert kit.read(db, lambda c: c.execute("SELECT * FROM _tables").fetchall()) == []
    assert kit.log(db) == before
    assert kit.table(db, "dog").name == "dog"  # and the name is free


def test_new_attributes_publish_with_the_commit_and_persist(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1, "color": "red"})
    assert "color" in db.catalog.require("dog").attributes
    stored = kit.read(db, lambda c: c.execute("SELECT tbl, name FROM _attributes").fetchall())
    assert ("dog", "color") in stored


def test_cursor_and_log_are_untouched_by_a_table_that_stays_local(kit, db):
    before = (kit.log(db), kit.read(db, txlog.cursors))
    kit.table(db, "local", replicate=False)
    assert (kit.log(db), kit.read(db, txlog.cursors)) == before
