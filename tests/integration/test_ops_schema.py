"""create/drop/describe of databases, tables and attributes against a real agent."""

from __future__ import annotations

from support import error_of, make_table


def test_create_database_then_describe_it_empty(shared_agent, db):
    answer = shared_agent.op({"operation": "create_database", "database": db})
    assert answer == {"message": f"database '{db}' successfully created"}
    assert shared_agent.op({"operation": "describe_database", "database": db}) == {}
    assert shared_agent.op({"operation": "describe_all"})[db] == {}


def test_create_database_twice_is_400(shared_agent, db):
    shared_agent.op({"operation": "create_database", "database": db})
    error_of(shared_agent, {"operation": "create_database", "database": db}, 400, db, "exists")


def test_create_schema_alias_and_schema_field(shared_agent, db):
    shared_agent.op({"operation": "create_schema", "schema": db})
    assert shared_agent.op({"operation": "describe_schema", "schema": db}) == {}


def test_create_table_creates_its_database(shared_agent, db):
    answer = shared_agent.op(
        {"operation": "create_table", "database": db, "table": "dog", "primary_key": "id"}
    )
    assert answer == {"message": f"table '{db}.dog' successfully created."}
    assert list(shared_agent.op({"operation": "describe_database", "database": db})) == ["dog"]


def test_create_table_hash_attribute_alias(shared_agent, db):
    shared_agent.op(
        {"operation": "create_table", "schema": db, "table": "cat", "hash_attribute": "name"}
    )
    described = shared_agent.op({"operation": "describe_table", "schema": db, "table": "cat"})
    assert described["hash_attribute"] == "name"


def test_create_table_without_database_uses_data(shared_agent, db):
    table = db  # unique, and a valid table name too
    shared_agent.op({"operation": "create_table", "table": table, "primary_key": "id"})
    described = shared_agent.op({"operation": "describe_table", "database": "data", "table": table})
    assert described["schema"] == "data"
    assert described["name"] == table


def test_create_table_twice_is_400(shared_agent, db):
    make_table(shared_agent, db, "dog")
    body = {"operation": "create_table", "database": db, "table": "dog", "primary_key": "id"}
    error_of(shared_agent, body, 400, f"'{db}.dog'", "already exists")


def test_describe_table_shape(shared_agent, db):
    make_table(
        shared_agent,
        db,
        "dog",
        records=[{"id": 1, "name": "Rex", "age": 3}, {"id": 2, "name": "Fido"}],
    )
    described = shared_agent.op({"operation": "describe_table", "database": db, "table": "dog"})
    for key in (
        "schema",
        "name",
        "hash_attribute",
        "audit",
        "schema_defined",
        "attributes",
        "db_size",
        "sources",
        "record_count",
        "last_updated_record",
    ):
        assert key in described, key
    assert described["schema"] == db
    assert described["name"] == "dog"
    assert described["hash_attribute"] == "id"
    assert described["record_count"] == 2
    assert described["schema_defined"] is False
    assert isinstance(described["last_updated_record"], float)
    assert described["db_size"] > 0
    names = [a["attribute"] for a in described["attributes"]]
    assert names[0] == "id"
    assert set(names) == {"id", "name", "age", "__createdtime__", "__updatedtime__"}
    assert described["attributes"][0].get("is_primary_key") is True


def test_create_table_with_declared_attributes(shared_agent, db):
    body = {
        "operation": "create_table",
        "database": db,
        "table": "typed",
        "primary_key": "id",
        "attributes": [
            {"name": "id", "type": "ID"},
            {"name": "age", "type": "Int", "indexed": True},
        ],
    }
    shared_agent.op(body)
    described = shared_agent.op({"operation": "describe_table", "database": db, "table": "typed"})
    assert described["schema_defined"] is True
    by_name = {a["attribute"]: a for a in described["attributes"]}
    assert by_name["age"]["type"] == "Int"
    assert by_name["age"]["indexed"] is True


def test_create_table_with_bad_attribute_type_is_400(shared_agent, db):
    body = {
        "operation": "create_table",
        "database": db,
        "table": "t",
        "primary_key": "id",
        "attributes": [{"name": "age", "type": "Nope"}],
    }
    error_of(shared_agent, body, 400, "attributes[0].type", "Nope")


def test_create_attribute(shared_agent, db):
    make_table(shared_agent, db, "dog")
    body = {"operation": "create_attribute", "database": db, "table": "dog", "attribute": "weight"}
    assert shared_agent.op(body) == {
        "message": f"attribute '{db}.dog.weight' successfully created."
    }
    described = shared_agent.op({"operation": "describe_table", "database": db, "table": "dog"})
    assert "weight" in [a["attribute"] for a in described["attributes"]]
    error_of(shared_agent, body, 400, "weight", "already exists")


def test_describe_all_lists_tables_but_not_system(shared_agent, db):
    make_table(shared_agent, db, "a")
    make_table(shared_agent, db, "b", records=[{"id": "x"}])
    everything = shared_agent.op({"operation": "describe_all"})
    assert "system" not in everything
    assert sorted(everything[db]) == ["a", "b"]
    assert everything[db]["b"]["record_count"] == 1
    assert everything[db]["a"]["record_count"] == 0


def test_describe_database_system(shared_agent):
    tables = shared_agent.op({"operation": "describe_database", "database": "system"})
    assert {"hdb_user", "hdb_role", "hdb_nodes"} <= set(tables)


def test_drop_table(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": 1}])
    make_table(shared_agent, db, "cat")
    answer = shared_agent.op({"operation": "drop_table", "database": db, "table": "dog"})
    assert answer == {"message": f"successfully deleted table '{db}.dog'"}
    error_of(
        shared_agent,
        {"operation": "describe_table", "database": db, "table": "dog"},
        404,
        f"Table '{db}.dog' does not exist",
    )
    assert list(shared_agent.op({"operation": "describe_database", "database": db})) == ["cat"]
    # A table of the same name starts empty.
    make_table(shared_agent, db, "dog")
    found = shared_agent.op(
        {"operation": "search_by_id", "database": db, "table": "dog", "ids": [1]}
    )
    assert found == []


def test_drop_database(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": 1}])
    answer = shared_agent.op({"operation": "drop_database", "database": db})
    assert answer == {"message": f"successfully deleted '{db}'"}
    error_of(shared_agent, {"operation": "describe_database", "database": db}, 404, db)
    assert db not in shared_agent.op({"operation": "describe_all"})
    error_of(shared_agent, {"operation": "drop_database", "database": db}, 404, db)
    # Re-created, it is empty.
    make_table(shared_agent, db, "dog")
    found = shared_agent.op(
        {"operation": "search_by_id", "database": db, "table": "dog", "ids": [1]}
    )
    assert found == []


def test_system_database_cannot_be_dropped(shared_agent):
    error_of(shared_agent, {"operation": "drop_database", "database": "system"}, 400, "system")
    assert "hdb_user" in shared_agent.op({"operation": "describe_database", "database": "system"})


def test_invalid_names_are_400(shared_agent, db):
    error_of(
        shared_agent,
        {"operation": "create_database", "database": "bad name"},
        400,
        "database name",
        "bad name",
    )
    body = {"operation": "create_table", "database": db, "table": "no/slash", "primary_key": "id"}
    error_of(shared_agent, body, 400, "table name", "no/slash")
    body = {"operation": "create_table", "database": db, "table": "t", "primary_key": ""}
    error_of(shared_agent, body, 400, "attribute name")


def test_missing_table_and_database_are_404(shared_agent, db):
    make_table(shared_agent, db, "dog")
    for operation in ("describe_table", "drop_table"):
        error_of(
            shared_agent,
            {"operation": operation, "database": db, "table": "nosuch"},
            404,
            f"Table '{db}.nosuch' does not exist",
        )
        error_of(
            shared_agent,
            {"operation": operation, "database": f"{db}_x", "table": "dog"},
            404,
            f"database '{db}_x' does not exist",
        )
    body = {"operation": "create_attribute", "database": db, "table": "nosuch", "attribute": "a"}
    error_of(shared_agent, body, 404, f"Table '{db}.nosuch' does not exist")
    error_of(
        shared_agent,
        {"operation": "describe_database", "database": f"{db}_x"},
        404,
        f"database '{db}_x' does not exist",
    )


def test_system_tables_cannot_be_dropped(shared_agent):
    for table in ("hdb_user", "hdb_role", "hdb_nodes"):
        body = {"operation": "drop_table", "database": "system", "table": table}
        error_of(shared_agent, body, 400, table, "cannot be dropped")
    # Logging in still works, so the users table is still there.
    assert "hdb_user" in shared_agent.op({"operation": "describe_database", "database": "system"})
    assert shared_agent.op({"operation": "user_info"})["username"] == "admin"


def test_create_attribute_with_bad_type_is_400(shared_agent, db):
    make_table(shared_agent, db, "dog")
    body = {
        "operation": "create_attribute",
        "database": db,
        "table": "dog",
        "attribute": "a",
        "type": "Nope",
    }
    error_of(shared_agent, body, 400, "'type'", "Nope")
    body["type"] = "Int"
    shared_agent.op(body)
