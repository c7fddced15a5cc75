from __future__ import annotations

import pytest

from agent.schemafile import SchemaFileError, parse_schema

SEED = """
# tables of this node
type LocalTableForNode @table(replicate: false) { id: ID! @primaryKey  name: String! }

type Dog @table(database: "dev", table: "dog") {
  id: ID! @primaryKey
  breed: String @indexed
  tags: [String]
}

type NotATable { x: Int }
"""


def test_tables_with_their_options_are_read():
    local, dog = parse_schema(SEED)
    assert (local.database, local.table, local.primary_key, local.replicate) == (
        "data",
        "LocalTableForNode",
        "id",
        False,
    )
    assert (dog.database, dog.table, dog.replicate) == ("dev", "dog", True)
    by_name = {a["name"]: a for a in dog.attributes}
    assert by_name["breed"] == {"name": "breed", "type": "String", "indexed": True}
    assert by_name["tags"]["type"] == "String"
    assert by_name["id"]["indexed"] is True


def test_a_table_without_a_primary_key_names_its_line():
    with pytest.raises(SchemaFileError, match="line 3: type Cat has no field marked @primaryKey"):
        parse_schema("\n\ntype Cat @table { name: String }")


def test_types_without_table_are_ignored():
    assert parse_schema("type X { a: Int }") == []
