"""The SQL parser: every statement form, every operator, the refusals and the limits."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ClientError
from agent.ops.sql import (
    MAX_SQL_BYTES,
    Column,
    Delete,
    Insert,
    OrderBy,
    Select,
    SqlError,
    Update,
    parse,
)
from agent.ops.sql_cursor import MAX_DEPTH
from agent.storage.conditions import Compare, Condition, Group, Not, compare, matches

STAR = Column(None, None, None)
PROPERTIES = settings(derandomize=True, database=None, deadline=None, max_examples=300)


def where(text: str) -> Condition | None:
    """Parse a WHERE clause on dev.dog and return its tree."""
    statement = parse(f"SELECT * FROM dev.dog WHERE {text}")
    assert isinstance(statement, Select)
    return statement.where


def refused(sql: object) -> SqlError:
    with pytest.raises(SqlError) as caught:
        parse(sql)  # type: ignore[arg-type]
    return caught.value


# --- statement forms ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM dev.dog", Select("dev", "dog", (STAR,))),
        ("select * from dev.dog;", Select("dev", "dog", (STAR,))),
        ("SELECT * FROM dev.dog ;  ", Select("dev", "dog", (STAR,))),
        (
            "SELECT DISTINCT name, age FROM dev.dog",
            Select("dev", "dog", (Column("name"), Column("age")), distinct=True),
        ),
        (
            "SELECT name AS n, age years FROM dev.dog",
            Select("dev", "dog", (Column("name", "n"), Column("age", "years"))),
        ),
        (
            "SELECT * FROM dev.dog WHERE age > 3 ORDER BY name DESC, age ASC, id LIMIT 10 OFFSET 5",
            Select(
                "dev",
                "dog",
                (STAR,),
                Compare("age", "greater_than", 3),
                (OrderBy("name", True), OrderBy("age", False), OrderBy("id", False)),
                10,
                5,
            ),
        ),
        ("SELECT * FROM dev.dog LIMIT 0", Select("dev", "dog", (STAR,), limit=0)),
        ("SELECT * FROM dev.dog OFFSET 7", Select("dev", "dog", (STAR,), offset=7)),
        (
            "INSERT INTO dev.dog (id, name) VALUES (1, 'Penny'), (2, NULL)",
            Insert("dev", "dog", ({"id": 1, "name": "Penny"}, {"id": 2, "name": None})),
        ),
        (
            "insert into dev.dog (id) values (-4);",
            Insert("dev", "dog", ({"id": -4},)),
        ),
        (
            "UPDATE dev.dog SET age = 5, name = 'x', good = TRUE WHERE id = 1",
            Update(
                "dev",
                "dog",
                {"age": 5, "name": "x", "good": True},
                Compare("id", "equals", 1),
            ),
        ),
        ("UPDATE dev.dog SET age = NULL", Update("dev", "dog", {"age": None})),
        (
            "DELETE FROM dev.dog WHERE name = 'Penny'",
            Delete("dev", "dog", Compare("name", "equals", "Penny")),
        ),
        ("DELETE FROM dev.dog", Delete("dev", "dog")),
    ],
)
def test_statement_forms(sql: str, expected: object) -> None:
    assert parse(sql) == expected


@pytest.mark.parametrize(
    ("table_sql", "database", "table"),
    [
        ("dev.dog", "dev", "dog"),
        ("`dev`.`dog`", "dev", "dog"),
        ('"dev"."dog"', "dev", "dog"),
        ("[dev].[dog]", "dev", "dog"),
        ("`my db`.[my table]", "my db", "my table"),
        ('`we``ird`."qu""ote"', "we`ird", 'qu"ote'),
        ('"select"."from"', "select", "from"),
        ("dev.ñandú_2", "dev", "ñandú_2"),
    ],
)
def test_identifier_quoting(table_sql: str, database: str, table: str) -> None:
    assert parse(f"DELETE FROM {table_sql}") == Delete(database, table)


def test_keywords_are_case_insensitive() -> None:
    assert parse("sElEcT dIsTiNcT name FrOm dev.dog wHeRe a = 1 oRdEr By name dEsC lImIt 1") == (
        Select(
            "dev",
            "dog",
            (Column("name"),),
            Compare("a", "equals", 1),
            (OrderBy("name", True),),
            1,
            None,
            True,
        )
    )


def test_names_stay_case_sensitive() -> None:
    assert parse("SELECT Name FROM Dev.Dog") == Select("Dev", "Dog", (Column("Name"),))


# --- columns -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "column", "output_name"),
    [
        ("*", STAR, "*"),
        ("name", Column("name"), "name"),
        ("name AS n", Column("name", "n"), "n"),
        ("COUNT(*)", Column(None, None, "COUNT"), "COUNT(*)"),
        ("count(*)", Column(None, None, "COUNT"), "COUNT(*)"),
        ("COUNT(*) AS total", Column(None, "total", "COUNT"), "total"),
        ("COUNT(id)", Column("id", None, "COUNT"), "COUNT(id)"),
        ("sum(price)", Column("price", None, "SUM"), "SUM(price)"),
        ("AVG(age) a", Column("age", "a", "AVG"), "a"),
        ("MIN(dog.age)", Column("age", None, "MIN"), "MIN(age)"),
        ("MAX(`age`) AS `oldest one`", Column("age", "oldest one", "MAX"), "oldest one"),
        ("dog.*", STAR, "*"),
        ("count", Column("count"), "count"),
    ],
)
def test_select_columns_and_their_output_names(item: str, column: Column, output_name: str) -> None:
    statement = parse(f"SELECT {item} FROM dev.dog")
    assert isinstance(statement, Select)
    assert statement.columns == (column,)
    assert statement.columns[0].output_name == output_name


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT dog.name FROM dev.dog WHERE dog.age > 1 ORDER BY dog.name",
        "SELECT dev.dog.name FROM dev.dog WHERE dev.dog.age > 1 ORDER BY dev.dog.name",
        "SELECT d.name FROM dev.dog d WHERE d.age > 1 ORDER BY d.name",
        "SELECT d.name FROM dev.dog AS d WHERE dog.age > 1 ORDER BY d.name",
        'SELECT `d`.[name] FROM dev.dog AS "d" WHERE d."age" > 1 ORDER BY d.name',
    ],
)
def test_qualifiers_are_stripped(sql: str) -> None:
    assert parse(sql) == Select(
        "dev",
        "dog",
        (Column("name"),),
        Compare("age", "greater_than", 1),
        (OrderBy("name", False),),
    )


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE dev.dog SET dog.age = 1 WHERE dog.id = 2",
        "UPDATE dev.dog SET dev.dog.age = 1 WHERE dev.dog.id = 2",
    ],
)
def test_qualifiers_are_stripped_in_update(sql: str) -> None:
    assert parse(sql) == Update("dev", "dog", {"age": 1}, Compare("id", "equals", 2))


def test_qualifiers_are_stripped_in_insert_columns() -> None:
    assert parse("INSERT INTO dev.dog (dog.id) VALUES (1)") == Insert("dev", "dog", ({"id": 1},))


@pytest.mark.parametrize(
    ("sql", "position"),
    [
        ("SELECT cat.name FROM dev.dog", 8),
        ("SELECT name FROM dev.dog d WHERE cat.age = 1", 34),
        ("SELECT * FROM dev.dog ORDER BY other.dog.name", 32),
        ("DELETE FROM dev.dog WHERE d.id = 1", 27),
    ],
)
def test_unknown_qualifiers_are_refused(sql: str, position: int) -> None:
    error = refused(sql)
    assert "does not name the table this statement reads" in error.message
    assert error.position == position


# --- literals and comparisons ------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'Penny'", "Penny"),
        ("'it''s'", "it's"),
        ("''", ""),
        ("'a\"b'", 'a"b'),
        ("42", 42),
        ("-42", -42),
        ("+42", 42),
        ("- 7", -7),
        ("0", 0),
        ("2.5", 2.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        ("1.5E-2", 0.015),
        ("TRUE", True),
        ("false", False),
        ("NULL", None),
    ],
)
def test_literals(literal: str, value: Any) -> None:
    found = where(f"a = {literal}")
    assert found == Compare("a", "equals", value)
    assert type(found.value) is type(value)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("operator", "comparator"),
    [
        ("=", "equals"),
        ("==", "equals"),
        ("!=", "not_equal"),
        ("<>", "not_equal"),
        ("<", "less_than"),
        ("<=", "less_than_equal"),
        (">", "greater_than"),
        (">=", "greater_than_equal"),
    ],
)
def test_comparison_operators(operator: str, comparator: str) -> None:
    assert where(f"age {operator} 5") == Compare("age", comparator, 5)
    assert where(f"age{operator}5") == Compare("age", comparator, 5)


@pytest.mark.parametrize(
    ("text", "comparator"),
    [
        ("5 = age", "equals"),
        ("5 != age", "not_equal"),
        ("5 < age", "greater_than"),
        ("5 <= age", "greater_than_equal"),
        ("5 > age", "less_than"),
        ("5 >= age", "less_than_equal"),
    ],
)
def test_a_literal_on_the_left_is_flipped(text: str, comparator: str) -> None:
    assert where(text) == Compare("age", comparator, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("age BETWEEN 1 AND 5", Compare("age", "between", (1, 5))),
        ("age between -1.5 and 'z'", Compare("age", "between", (-1.5, "z"))),
        ("age NOT BETWEEN 1 AND 5", Not(Compare("age", "between", (1, 5)))),
        ("id IN (1, 'two', 3.0)", Compare("id", "in", (1, "two", 3.0))),
        ("id IN (7)", Compare("id", "in", (7,))),
        ("id NOT IN (1, 2)", Not(Compare("id", "in", (1, 2)))),
        ("name IS NULL", Compare("name", "is_null")),
        ("name is not null", Compare("name", "is_not_null")),
    ],
)
def test_range_membership_and_null_tests(text: str, expected: Condition) -> None:
    assert where(text) == expected


@pytest.mark.parametrize(
    ("pattern", "comparator", "value"),
    [
        ("abc%", "starts_with", "abc"),
        ("%abc", "ends_with", "abc"),
        ("%abc%", "contains", "abc"),
        ("%it''s%", "contains", "it's"),
        ("abc", "like", "abc"),
        ("a%c", "like", "a%c"),
        ("a_c%", "like", "a_c%"),
        ("%a%c", "like", "%a%c"),
        ("%a_%", "like", "%a_%"),
        ("%", "like", "%"),
        ("%%", "like", "%%"),
        ("%%abc", "like", "%%abc"),
        ("", "like", ""),
    ],
)
def test_like_patterns_map_to_simpler_comparators(
    pattern: str, comparator: str, value: str
) -> None:
    assert where(f"name LIKE '{pattern}'") == Compare("name", comparator, value)
    assert where(f"name NOT LIKE '{pattern}'") == Not(Compare("name", comparator, value))


# --- AND, OR, NOT ------------------------------------------------------------------------

A, B, C, D = (Compare(name, "equals", 1) for name in "abcd")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = 1 AND b = 1", Group("and", (A, B))),
        ("a = 1 OR b = 1", Group("or", (A, B))),
        ("a = 1 AND b = 1 AND c = 1", Group("and", (A, B, C))),
        ("a = 1 OR b = 1 AND c = 1", Group("or", (A, Group("and", (B, C))))),
        ("a = 1 AND b = 1 OR c = 1", Group("or", (Group("and", (A, B)), C))),
        ("(a = 1 OR b = 1) AND c = 1", Group("and", (Group("or", (A, B)), C))),
        ("NOT a = 1 AND b = 1", Group("and", (Not(A), B))),
        ("NOT (a = 1 AND b = 1)", Not(Group("and", (A, B)))),
        ("NOT NOT a = 1", Not(Not(A))),
        ("a = 1 OR NOT b = 1 AND c = 1", Group("or", (A, Group("and", (Not(B), C))))),
        ("(a = 1 AND b = 1) AND (c = 1 AND d = 1)", Group("and", (A, B, C, D))),
        ("a = 1 OR (b = 1 OR (c = 1 OR d = 1))", Group("or", (A, B, C, D))),
        ("((((a = 1))))", A),
        ("a BETWEEN 1 AND 2 AND b = 1", Group("and", (Compare("a", "between", (1, 2)), B))),
    ],
)
def test_precedence_and_flattening(text: str, expected: Condition) -> None:
    assert where(text) == expected


# --- refusals and syntax errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message", "position"),
    [
        (
            "SELECT name FORM dev.dog",
            "SQL syntax error at position 13: expected FROM, found 'FORM'",
            13,
        ),
        (
            "SELECT * FROM dog",
            "SQL syntax error at position 15: table 'dog' must be qualified with its database,"
            " as database.table",
            15,
        ),
        (
            "SELECT * FROM dev.dog WHERE",
            "SQL syntax error at position 28: expected a condition, found end of input",
            28,
        ),
        (
            "SELECT * FROM dev.dog WHERE age >",
            "SQL syntax error at position 34: expected a value, found end of input",
            34,
        ),
        (
            "SELECT * FROM dev.dog WHERE name = 'abc",
            "SQL syntax error at position 36: unterminated string",
            36,
        ),
        (
            "SELECT * FROM dev.dog WHERE name # 1",
            "SQL syntax error at position 34: unexpected character '#'",
            34,
        ),
        (
            "SELECT * FROM dev.dog WHERE (age > 5",
            "SQL syntax error at position 37: expected ')', found end of input",
            37,
        ),
        (
            "SELECT * FROM dev.dog WHERE age NOT > 5",
            "SQL syntax error at position 37: expected BETWEEN, IN or LIKE, found '>'",
            37,
        ),
        (
            "SELECT * FROM dev.dog WHERE name LIKE 5",
            "SQL syntax error at position 39: expected a quoted pattern after LIKE, found '5'",
            39,
        ),
        (
            "SELECT * FROM dev.dog LIMIT -1",
            "SQL syntax error at position 29: expected a whole number after LIMIT, found '-'",
            29,
        ),
        (
            "SELECT * FROM dev.dog LIMIT 1.5",
            "SQL syntax error at position 29: expected a whole number after LIMIT, found '1.5'",
            29,
        ),
        (
            "SELECT * FROM dev.dog WHER a = 1",
            "SQL syntax error at position 23: expected end of statement, found 'WHER'",
            23,
        ),
        (
            "SELECT * FROM dev.dog WHERE a = 1 + 2",
            "SQL syntax error at position 35: expected end of statement, found '+'",
            35,
        ),
        (
            "SELECT * FROM dev.dog WHERE a = - 'x'",
            "SQL syntax error at position 35: expected a number after '-', found string 'x'",
            35,
        ),
        (
            "INSERT INTO dev.dog (id, name) VALUES (1)",
            "SQL syntax error at position 39: 1 value given for 2 columns",
            39,
        ),
        (
            "INSERT INTO dev.dog VALUES (1)",
            "SQL syntax error at position 21: expected '(' and the list of columns, found 'VALUES'",
            21,
        ),
        (
            "INSERT INTO dev.dog (a, a) VALUES (1, 2)",
            "SQL syntax error at position 25: column 'a' is named twice",
            25,
        ),
        (
            "UPDATE dev.dog SET a = 1, a = 2",
            "SQL syntax error at position 27: column 'a' is set twice",
            27,
        ),
        (
            "SELECT SUM(*) FROM dev.dog",
            "SQL syntax error at position 12: SUM(*) needs a column, not *",
            12,
        ),
        ("DELETE dev.dog", "SQL syntax error at position 8: expected FROM, found 'dev'", 8),
        (
            "  ;",
            "SQL syntax error at position 3: expected SELECT, INSERT, UPDATE or DELETE, found ';'",
            3,
        ),
        (
            "SELECT * FROM dev.dog WHERE `` = 1",
            "SQL syntax error at position 29: empty quoted identifier",
            29,
        ),
        (
            "SELECT * FROM dev.dog WHERE a = 1e999",
            "SQL syntax error at position 33: number 1e999 is out of range",
            33,
        ),
        (
            "SELECT a.b.c.d FROM a.b",
            "SQL syntax error at position 8: too many qualifiers in a.b.c.d",
            8,
        ),
    ],
)
def test_syntax_errors_say_what_was_expected_and_where(
    sql: str, message: str, position: int
) -> None:
    error = refused(sql)
    assert error.message == message
    assert error.position == position


@pytest.mark.parametrize(
    ("sql", "message", "position"),
    [
        ("SELECT * FROM dev.dog GROUP BY name", "GROUP BY is not supported", 23),
        ("SELECT * FROM dev.dog WHERE a = 1 HAVING a > 1", "HAVING is not supported", 35),
        ("SELECT * FROM dev.dog d JOIN dev.cat c ON d.id = c.id", "JOIN is not supported", 25),
        ("SELECT * FROM dev.dog LEFT JOIN dev.cat", "JOIN is not supported", 23),
        ("SELECT * FROM dev.dog UNION SELECT * FROM dev.cat", "UNION is not supported", 23),
        (
            "SELECT * FROM dev.dog WHERE id IN (SELECT id FROM dev.cat)",
            "subqueries are not supported",
            36,
        ),
        ("SELECT * FROM (SELECT * FROM dev.dog)", "subqueries are not supported", 15),
        ("SELECT * FROM dev.dog WHERE EXISTS (SELECT 1)", "subqueries are not supported", 29),
        ("SELECT UPPER(name) FROM dev.dog", "function UPPER() is not supported", 8),
        ("SELECT * FROM dev.dog WHERE lower(name) = 'x'", "function LOWER() is not supported", 29),
        (
            "SELECT * FROM dev.dog ORDER BY COUNT(*)",
            "COUNT() is supported only in the select list",
            32,
        ),
        ("SELECT COUNT(DISTINCT name) FROM dev.dog", "COUNT(DISTINCT ...) is not supported", 14),
        ("SELECT * FROM dev.dog WHERE age > weight", "comparing two columns is not supported", 35),
        ("SELECT * FROM dev.dog WHERE 1 = 1", "comparing two values is not supported", 33),
        ("UPDATE dev.dog SET a = a + 1", "SET from another column is not supported", 24),
        ("SELECT * FROM dev.dog; DELETE FROM dev.dog", "multiple statements are not supported", 24),
        ("SELECT * FROM dev.dog, dev.cat", "selecting from several tables is not supported", 22),
        ("SELECT * FROM dev.dog LIMIT 10, 5", "LIMIT m, n is not supported", 31),
        ("CREATE TABLE dev.dog (id INT)", "CREATE is not supported", 1),
        ("drop table dev.dog", "DROP is not supported", 1),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH (common table expressions)", 1),
        ("SELECT CASE WHEN a THEN 1 END FROM d.t", "CASE expressions are not supported", 8),
        ("SELECT * FROM d.t WHERE a LIKE 'x' ESCAPE '!'", "LIKE ... ESCAPE is not supported", 36),
        ("SELECT * FROM d.t ORDER BY a NULLS FIRST", "NULLS FIRST/LAST is not supported", 30),
    ],
)
def test_unsupported_sql_is_named(sql: str, message: str, position: int) -> None:
    error = refused(sql)
    assert error.message.startswith(message)
    assert error.message.endswith(f"(at position {position})")
    assert error.position == position


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("", "sql is empty"),
        ("  \n\t", "sql is empty"),
        (None, "sql must be a string, got NoneType"),
    ],
)
def test_empty_or_non_string_sql_is_refused(sql: object, message: str) -> None:
    assert refused(sql).message == message


@pytest.mark.parametrize("sql", [5, b"SELECT * FROM dev.dog", ["SELECT"], {"sql": "x"}])
def test_non_strings_are_refused(sql: object) -> None:
    assert refused(sql).message.startswith("sql must be a string")


def test_sql_error_is_a_client_error() -> None:
    error = refused("SELECT")
    assert isinstance(error, ClientError)
    assert error.status == 400


# --- limits ------------------------------------------------------------------------------


def _padded(size: int, fill: str = "x") -> str:
    """Return a SELECT whose string literal makes the text `size` UTF-8 bytes long."""
    head, tail = "SELECT * FROM dev.dog WHERE a = '", "'"
    room = size - len(head) - len(tail)
    return head + fill * (room // len(fill.encode())) + tail


def test_sql_of_exactly_the_limit_is_accepted() -> None:
    sql = _padded(MAX_SQL_BYTES)
    assert len(sql.encode()) == MAX_SQL_BYTES
    assert isinstance(parse(sql), Select)


@pytest.mark.parametrize("fill", ["x", "é"])
def test_sql_over_the_limit_is_refused(fill: str) -> None:
    sql = _padded(MAX_SQL_BYTES + 2, fill)
    assert len(sql.encode()) > MAX_SQL_BYTES
    assert "longer than" in refused(sql).message


def test_lone_surrogates_do_not_break_the_size_check() -> None:
    assert where("a = '\ud800'") == Compare("a", "equals", "\ud800")


@pytest.mark.parametrize(("opening", "closing"), [("(", ")"), ("NOT (", ")")])
def test_nesting_up_to_the_limit_is_accepted(opening: str, closing: str) -> None:
    levels = MAX_DEPTH if opening == "(" else MAX_DEPTH // 2
    assert where(opening * levels + "a = 1" + closing * levels) is not None


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_DEPTH + 1) + "a = 1" + ")" * (MAX_DEPTH + 1),
        "NOT " * (MAX_DEPTH + 1) + "a = 1",
        "(" * 100_000,
        "NOT " * 100_000 + "a = 1",
        "NOT (" * 50_000 + "a = 1",
    ],
)
def test_deep_nesting_is_refused_without_recursion_error(text: str) -> None:
    error = refused(f"SELECT * FROM dev.dog WHERE {text}")
    assert f"nested deeper than {MAX_DEPTH} levels" in error.message


def test_sixty_four_nots_are_accepted() -> None:
    assert where("NOT " * MAX_DEPTH + "a = 1") is not None


def test_a_long_flat_chain_is_not_nesting() -> None:
    terms = 20_000
    found = where(" OR ".join(f"a = {n}" for n in range(terms)))
    assert isinstance(found, Group) and len(found.conditions) == terms


@pytest.mark.parametrize("digits", [5000, 10_000])
def test_numbers_too_long_for_int_are_refused(digits: int) -> None:
    assert "is too long" in refused("SELECT * FROM dev.dog WHERE a = " + "9" * digits).message


# --- properties --------------------------------------------------------------------------

ATTRIBUTES = ("a", "b", "c")
OPERATORS = {
    "equals": ("=", "=="),
    "not_equal": ("!=", "<>"),
    "greater_than": (">",),
    "greater_than_equal": (">=",),
    "less_than": ("<",),
    "less_than_equal": ("<=",),
}
FLIPPED = {"=": "=", "==": "==", "!=": "!=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
LIKE_FORMS = {"contains": "%{}%", "starts_with": "{}%", "ends_with": "%{}", "like": "{}"}

attributes = st.sampled_from(ATTRIBUTES)
# A small pool, so that records often hit a condition's value exactly; lower-case text only,
# because LIKE is case-blind while starts_with & co. are not.
WORDS = ("", "a", "b", "ab", "ba", "aab", "a'b", "%", "_")
pool = st.sampled_from((0, 1, 2, -1, 0.5, 1.0, -1.5, True, False, *WORDS))
scalars = st.one_of(
    pool,
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text("ab'", max_size=3),
)
leaves = st.one_of(
    st.builds(compare, attributes, st.sampled_from(list(OPERATORS)), st.none() | scalars),
    st.builds(lambda a, lo, hi: compare(a, "between", (lo, hi)), attributes, scalars, scalars),
    st.builds(
        lambda a, v: compare(a, "in", v), attributes, st.lists(scalars, min_size=1, max_size=3)
    ),
    st.builds(
        compare,
        attributes,
        st.sampled_from(["contains", "starts_with", "ends_with"]),
        st.sampled_from(("a", "b", "ab", "a'")),
    ),
    st.builds(compare, attributes, st.just("like"), st.text("ab'%_", max_size=4)),
    st.builds(compare, attributes, st.sampled_from(["is_null", "is_not_null"]), st.none()),
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(Not, children),
        st.builds(
            Group,
            st.sampled_from(["and", "or"]),
            st.lists(children, min_size=2, max_size=3).map(tuple),
        ),
    ),
    max_leaves=12,
)
records = st.lists(st.dictionaries(attributes, st.none() | pool | scalars), min_size=5, max_size=30)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _column(name: str, draw: st.DrawFn) -> str:
    forms = [name, f"`{name}`", f'"{name}"', f"[{name}]", f"dog.{name}", f"dev.dog.{name}"]
    return draw(st.sampled_from(forms))


def _render_compare(node: Compare, draw: st.DrawFn) -> str:
    column, value = _column(node.attribute, draw), node.value
    if node.comparator in OPERATORS:
        operator = draw(st.sampled_from(OPERATORS[node.comparator]))
        if draw(st.booleans()):
            return f"{_literal(value)} {FLIPPED[operator]} {column}"
        return f"{column} {operator} {_literal(value)}"
    if node.comparator == "between":
        return f"{column} BETWEEN {_literal(value[0])} AND {_literal(value[1])}"
    if node.comparator == "in":
        return f"{column} IN ({', '.join(_literal(v) for v in value)})"
    if node.comparator in LIKE_FORMS:
        return f"{column} LIKE {_literal(LIKE_FORMS[node.comparator].format(value))}"
    return f"{column} {'IS NULL' if node.comparator == 'is_null' else 'IS NOT NULL'}"


def _render(node: Condition, draw: st.DrawFn) -> str:
    if isinstance(node, Group):
        keyword = draw(st.sampled_from([node.operator.upper(), node.operator]))
        return "(" + f" {keyword} ".join(_render(c, draw) for c in node.conditions) + ")"
    if isinstance(node, Not):
        return "NOT " + _render(node.condition, draw)
    return _render_compare(node, draw)


@st.composite
def with_sql(draw: st.DrawFn, conditions: st.SearchStrategy[Condition]) -> tuple[Condition, str]:
    tree = draw(conditions)
    return tree, _render(tree, draw)


# Single leaves too: inside a big tree, one wrong leaf is often masked by its siblings.
@pytest.mark.parametrize("conditions", [leaves, trees], ids=["leaves", "trees"])
@PROPERTIES
@given(data=st.data(), rows=records)
def test_rendered_conditions_parse_back_to_equivalent_trees(
    conditions: st.SearchStrategy[Condition], data: st.DataObject, rows: list[dict]
) -> None:
    tree, text = data.draw(with_sql(conditions))
    parsed = where(text)
    for row in rows:
        assert matches(parsed, row) == matches(tree, row), (text, row)


FRAGMENTS = (
    "SELECT", "INSERT", "INTO", "UPDATE", "SET", "DELETE", "FROM", "WHERE", "dev.dog", "dog",
    "a", "*", "=", "<", ">=", "<>", "(", ")", ",", ".", ";", "-", "1", "2.5", "'x'", "'",
    "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "'a%'", "BETWEEN", "ORDER", "BY", "DESC",
    "LIMIT", "OFFSET", "COUNT", "AS", "VALUES", "GROUP", "JOIN", "`", "[", "TRUE",
)  # fmt: skip


@PROPERTIES
@given(
    st.one_of(st.text(max_size=60), st.lists(st.sampled_from(FRAGMENTS), max_size=25).map(" ".join))
)
def test_any_text_parses_or_raises_sql_error(text: str) -> None:
    try:
        parse(text)
    except SqlError as error:
        assert error.message
        assert error.position is None or 1 <= error.position <= len(text) + 1
