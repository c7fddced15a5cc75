"""schema.graphql: tables read through graphql-core, and one error per kind of fault."""

from __future__ import annotations

import logging

import pytest

from agent import schemafile
from agent.schemafile import DeclaredTable, SchemaFileError, parse_schema

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


def error_of(text: str) -> SchemaFileError:
    with pytest.raises(SchemaFileError) as caught:
        parse_schema(text)
    return caught.value


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
    assert by_name.keys() == {"id", "breed", "tags"}


def test_the_two_docstring_examples_are_read():
    lines = [line.strip() for line in schemafile.__doc__.splitlines() if "@table" in line]
    examples = [line for line in lines if line.startswith("type ")]
    assert len(examples) == 2
    local, dog = parse_schema("\n".join(examples))
    assert local == DeclaredTable(
        "data",
        "LocalTableForNode",
        "id",
        False,
        [
            {"name": "id", "type": "ID", "indexed": True},
            {"name": "name", "type": "String", "indexed": False},
        ],
    )
    assert dog == DeclaredTable(
        "dev",
        "dog",
        "id",
        True,
        [
            {"name": "id", "type": "ID", "indexed": True},
            {"name": "breed", "type": "String", "indexed": True},
        ],
    )


def test_types_without_table_are_ignored():
    assert parse_schema("type X { a: Int }") == []


def test_a_commented_out_type_creates_nothing():
    text = "# type Cat @table { id: ID @primaryKey }\ntype Dog @table { id: ID @primaryKey }\n"
    assert [t.table for t in parse_schema(text)] == ["Dog"]
    assert parse_schema("# type Cat @table { id: ID @primaryKey }\n") == []
    assert parse_schema("") == []


def test_comment_inside_a_type_and_descriptions_are_not_fields():
    text = '''
"""A dog."""
type Dog @table {
  id: ID @primaryKey
  # owner: String @indexed
  "the breed" breed: String
}
'''
    (dog,) = parse_schema(text)
    assert [a["name"] for a in dog.attributes] == ["id", "breed"]


def test_nested_types_other_tables_and_harperdb_directives_are_accepted(caplog):
    text = """
type Brand @table @export(name: "brands") { id: ID @primaryKey }
enum Size { SMALL LARGE }
type Toy { name: String }
type Dog @table(expiration: 3600) @sealed {
  id: Long @primaryKey
  size: Size
  toys: [Toy]
  brandId: ID @indexed
  brand: Brand @relationship(from: brandId)
  owners: [Person] @relationship(to: "dogId")
  created: Long @createdTime
  photo: Blob
}
type Person @table { id: ID @primaryKey  dogId: ID @indexed }
"""
    with caplog.at_level(logging.WARNING, logger="agent.schemafile"):
        tables = parse_schema(text)
    dog = {t.table: t for t in tables}["Dog"]
    types = {a["name"]: a["type"] for a in dog.attributes}
    # relationships are resolved, not stored: they are not attributes
    assert types == {
        "id": "Long",
        "size": "Any",
        "toys": "Any",
        "brandId": "ID",
        "created": "Long",
        "photo": "Bytes",
    }
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for feature in ("@table(expiration)", "@sealed", "@relationship", "@createdTime"):
        assert feature in logged
    assert "line 5" in logged and "@export" not in logged
    assert len(caplog.records) == 4  # once per feature, not once per use


# --- one test per kind of fault: the message names the line and the reason ---


def test_missing_closing_brace_names_the_open_brace():
    err = error_of("type Dog @table {\n  id: ID @primaryKey\n  name: String\n")
    assert str(err).startswith("line 4, column 1: syntax error: Expected Name, found <EOF>")
    assert "the '{' on line 1 is never closed" in str(err)


def test_missing_brace_before_the_next_type():
    text = "type Dog @table {\n  id: ID @primaryKey\n\ntype Cat @table {\n  id: ID @primaryKey\n}\n"
    err = error_of(text)
    assert str(err).startswith("line 4, column 6: syntax error: Expected ':', found Name 'Cat'")
    assert "the '{' on line 1 is never closed" in str(err)


def test_stray_closing_brace():
    err = error_of("type Dog @table { id: ID @primaryKey }\n}\n")
    assert str(err) == "line 2, column 1: syntax error: Unexpected '}'"


def test_unknown_directive_suggests_the_right_one():
    err = error_of("\ntype Dog @tabel {\n  id: ID @primaryKey\n}")
    assert str(err) == "line 2, column 10: unknown directive @tabel; did you mean @table?"


def test_unknown_field_directive():
    err = error_of("type Dog @table {\n  id: ID @primarykey\n}")
    assert err.errors == [
        (1, 1, "type Dog has no field marked @primaryKey"),
        (2, 10, "unknown directive @primarykey; did you mean @primaryKey?"),
    ]


def test_unknown_argument_suggests_the_right_one():
    err = error_of("type Dog @table(replicat: false) {\n  id: ID @primaryKey\n}")
    assert str(err) == "line 1, column 17: @table has no argument replicat; did you mean replicate?"


def test_argument_of_a_directive_without_arguments():
    err = error_of("type Dog @table {\n  id: ID @primaryKey(auto: true)\n}")
    assert str(err) == "line 2, column 22: @primaryKey takes no arguments"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("database: 5", "@table(database:) must be a string, not 5"),
        ("database: dev", "@table(database:) must be a string, not dev"),
        ("table: null", "@table(table:) must be a string, not null"),
        ('replicate: "no"', '@table(replicate:) must be true or false, not "no"'),
        ("expiration: 1.5", "@table(expiration:) must be a whole number, not 1.5"),
    ],
)
def test_argument_of_the_wrong_kind(args: str, reason: str):
    err = error_of(f"\n\ntype Dog @table({args}) {{ id: ID @primaryKey }}")
    assert str(err).startswith("line 3, column ")
    assert str(err).endswith(reason)


def test_argument_given_twice():
    err = error_of('type Dog @table(table: "a", table: "b") { id: ID @primaryKey }')
    assert "line 1, column " in str(err) and "@table(table:) is given 2 times" in str(err)


def test_directive_in_the_wrong_place():
    err = error_of("type Dog @primaryKey @table {\n  id: ID @table\n}")
    assert err.errors == [
        (1, 1, "type Dog has no field marked @primaryKey"),
        (1, 10, "@primaryKey belongs on a field, not on a type"),
        (2, 10, "@table belongs on a type, not on a field"),
    ]
    err = error_of("enum Size @table { SMALL }")
    assert str(err) == "line 1, column 11: @table belongs on a type, not on an enum"


def test_a_table_without_a_primary_key_names_its_line():
    err = error_of("\n\ntype Cat @table { name: String }")
    assert str(err) == "line 3, column 1: type Cat has no field marked @primaryKey"


def test_a_table_with_two_primary_keys():
    err = error_of("type Cat @table {\n  id: ID @primaryKey\n  code: String @primaryKey\n}")
    assert str(err) == "line 3, column 3: type Cat marks 2 fields @primaryKey (id, code)"


def test_a_list_primary_key():
    err = error_of("type Cat @table {\n  ids: [ID] @primaryKey\n}")
    assert str(err) == "line 2, column 3: primary key ids cannot be a list"


def test_unknown_field_type_suggests_the_right_one():
    err = error_of("type Cat @table {\n  id: ID @primaryKey\n  name: Strin!\n}")
    assert str(err) == "line 3, column 9: unknown type Strin (field Cat.name); did you mean String?"


def test_unknown_type_in_a_nested_type():
    err = error_of("type Toy { colour: Colour }")
    assert str(err) == "line 1, column 20: unknown type Colour (field Toy.colour)"


def test_one_table_declared_twice():
    first = "type Dog @table { id: ID @primaryKey }"
    text = f'{first}\n\ntype H @table(table: "Dog") {{ id: ID @primaryKey }}'
    err = error_of(text)
    assert str(err) == "line 3, column 1: table data.Dog is already declared on line 1"


def test_same_table_name_in_two_databases_is_fine():
    text = (
        "type Dog @table { id: ID @primaryKey }\n"
        'type Hound @table(database: "dev", table: "Dog") { id: ID @primaryKey }'
    )
    assert [(t.database, t.table) for t in parse_schema(text)] == [("data", "Dog"), ("dev", "Dog")]


@pytest.mark.parametrize(
    ("args", "kind", "name"),
    [
        ('database: "my db"', "database", "my db"),
        ('database: ""', "database", ""),
        ('table: "dog.toys"', "table", "dog.toys"),
        (f'table: "{"t" * 65}"', "table", "t" * 65),
    ],
)
def test_bad_database_or_table_name(args: str, kind: str, name: str):
    err = error_of(f"type Dog\n  @table({args}) {{ id: ID @primaryKey }}")
    assert str(err) == (
        f"line 2, column 3: {kind} name {name!r} is invalid: use 1-64 letters, digits, '_' or '-'"
    )


def test_a_query_is_not_a_schema():
    err = error_of("type Dog @table { id: ID @primaryKey }\nquery { dogs { id } }")
    assert (
        str(err) == "line 2, column 1: only type definitions belong in schema.graphql, not queries"
    )


def test_type_extensions_are_refused():
    err = error_of("type Dog @table { id: ID @primaryKey }\nextend type Dog { name: String }")
    assert str(err) == "line 2, column 1: extend type Dog is not supported: put it in type Dog"


def test_every_fault_is_listed_in_line_order():
    text = "type Dog @tabel { id: ID @primaryKey name: Strin }\ntype Cat @table { x: Int }"
    err = error_of(text)
    assert [line for line, _, _ in err.errors] == [1, 1, 2]
    assert str(err).splitlines() == [
        "3 errors:",
        "  line 1, column 10: unknown directive @tabel; did you mean @table?",
        "  line 1, column 44: unknown type Strin (field Dog.name); did you mean String?",
        "  line 2, column 1: type Cat has no field marked @primaryKey",
    ]
