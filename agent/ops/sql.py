"""Parse the SQL subset of the `sql` operation into statements the storage layer can run.

    SELECT [DISTINCT] columns FROM db.table [[AS] alias] [WHERE condition]
        [GROUP BY attribute, ...] [HAVING condition]
        [ORDER BY attribute|aggregate|alias [ASC|DESC], ...] [LIMIT n] [OFFSET m]
    INSERT INTO db.table (a, b) VALUES (1, 'x'), (2, 'y')
    UPDATE db.table SET a = 1, b = 'x' [WHERE condition]
    DELETE FROM db.table [WHERE condition]

Pure: a hand-written tokenizer and a recursive-descent parser, no I/O. WHERE becomes the
condition tree of `agent.storage.conditions`, built with its `compare()` so that
search_by_conditions and SQL share one validation. A select with GROUP BY or an aggregate
(COUNT, SUM, AVG, MIN, MAX) is grouped: its plain columns must be grouped ones, and HAVING and
ORDER BY may name aggregates and select-list aliases; `Select.grouping()` is what storage runs.
Whatever else SQL has (JOIN, subqueries, other functions, several statements...) is refused
with a `SqlError` that names it and the 1-based character position where parsing stopped.
Numbers must reach SQLite unchanged: an integer outside 64 bits is refused, not made a float.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

from agent.jsonx import INT64_MAX
from agent.ops.sql_conditions import ConditionGrammar
from agent.ops.sql_cursor import RESERVED, ends_item, is_symbol, keyword, unsupported
from agent.ops.sql_lexer import SqlError, Token, syntax_error, tokenize
from agent.storage.conditions import (
    AGGREGATES,
    Aggregate,
    Condition,
    Grouping,
    Measure,
    Term,
)

MAX_SQL_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Column:
    """One item of a select list: `*` when name and aggregate are both None."""

    name: str | None
    alias: str | None = None
    aggregate: str | None = None

    @property
    def output_name(self) -> str:
        """Return the key this column has in result rows, as HarperDB names it."""
        if self.alias is not None:
            return self.alias
        if self.aggregate is not None:
            return f"{self.aggregate}({self.name or '*'})"
        return self.name or "*"

    @property
    def term(self) -> Term:
        """Return what the column computes: an Aggregate, or the attribute it reads."""
        if self.aggregate is not None:
            return Aggregate(self.aggregate, self.name)
        return self.name or "*"


@dataclass(frozen=True)
class OrderBy:
    """One sort: by an attribute, or by an aggregate (`aggregate` names the function, and
    `attribute` is its argument, None for COUNT(*))."""

    attribute: str | None
    descending: bool = False
    aggregate: str | None = None

    @property
    def term(self) -> Term:
        if self.aggregate is not None:
            return Aggregate(self.aggregate, self.attribute)
        return self.attribute or ""


@dataclass(frozen=True)
class Select:
    database: str
    table: str
    columns: tuple[Column, ...]
    where: Condition | None = None
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None
    offset: int | None = None
    distinct: bool = False
    group_by: tuple[str, ...] = ()
    # Its Compare leaves test grouped attributes; its Measure leaves test aggregates.
    having: Condition | Measure | None = None

    @property
    def grouped(self) -> bool:
        """Tell whether the select returns one row per group rather than per record."""
        return bool(self.group_by) or any(c.aggregate for c in self.columns)

    def grouping(self) -> Grouping:
        """Return the aggregate query storage runs for a grouped select (see query.grouped)."""
        order = tuple((o.term, o.descending) for o in self.order_by)
        outputs = tuple(c.term for c in self.columns)
        return Grouping(self.group_by, outputs, self.having, order, self.distinct)


@dataclass(frozen=True)
class Insert:
    database: str
    table: str
    records: tuple[dict, ...]


@dataclass(frozen=True)
class Update:
    database: str
    table: str
    assignments: dict[str, Any]
    where: Condition | None = None


@dataclass(frozen=True)
class Delete:
    database: str
    table: str
    where: Condition | None = None


Statement = Union[Select, Insert, Update, Delete]


def parse(sql: str) -> Statement:
    """Parse one SQL statement into a Select, Insert, Update or Delete."""
    _check_size(sql)
    return _Parser(tokenize(sql)).statement()


def _check_size(sql: object) -> None:
    if not isinstance(sql, str):
        raise SqlError(f"sql must be a string, got {type(sql).__name__}")
    # surrogatepass: JSON can carry lone surrogates, which must not turn into a 500.
    if len(sql) > MAX_SQL_BYTES or len(sql.encode("utf-8", "surrogatepass")) > MAX_SQL_BYTES:
        raise SqlError(f"sql is longer than {MAX_SQL_BYTES} bytes")
    if not sql.strip():
        raise SqlError("sql is empty")


# --- parser --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pending:
    """A select-list column whose qualifier is checked once FROM has been read."""

    column: Column
    qualifier: tuple[str, ...]
    position: int


def _not_grouped(name: str, position: int) -> SqlError:
    message = f"column '{name}' must appear in GROUP BY or be used in an aggregate function"
    return unsupported(position, message)


class _Parser(ConditionGrammar):
    """Recursive descent over a token list; one instance parses one statement.

    Statements, names and the select list are read here; conditions by ConditionGrammar.
    """

    def __init__(self, tokens: list[Token]) -> None:
        super().__init__(tokens)
        # Qualifiers that name the statement's table (table, db.table, the FROM alias).
        self.qualifiers: set[tuple[str, ...]] = set()
        # The select list's aliases, which HAVING and ORDER BY may name.
        self.aliases: dict[str, Column] = {}
        # The grouped attributes of a grouped select (None: not grouped); HAVING and ORDER
        # BY read aggregates and check plain columns against it while it is set.
        self.groups: tuple[str, ...] | None = None
        self.in_having = False

    # -- statements

    def statement(self) -> Statement:
        """Parse the whole token list as one statement with an optional trailing ';'."""
        readers: dict[str, Callable[[], Statement]] = {
            "SELECT": self.select,
            "INSERT": self.insert,
            "UPDATE": self.update,
            "DELETE": self.delete,
        }
        reader = readers.get(keyword(self.token) or "")
        if reader is None:
            self.fail("SELECT, INSERT, UPDATE or DELETE")
        self.advance()
        statement = reader()
        self.finish()
        return statement

    def finish(self) -> None:
        if self.accept_symbol(";") and self.token.kind != "end":
            raise unsupported(self.token.position, "multiple statements are not supported")
        if self.token.kind != "end":
            self.fail("end of statement")

    def select(self) -> Select:
        distinct = self.accept_keyword("DISTINCT")
        pending = self.comma_list(self.select_item)
        self.expect_keyword("FROM")
        database, table = self.table_name()
        self.set_scope(database, table, self.alias())
        if self.at_symbol(","):
            raise unsupported(self.token.position, "selecting from several tables is not supported")
        for item in pending:
            self.check_qualifier(item.qualifier, item.position)
        columns = tuple(item.column for item in pending)
        self.aliases = {c.alias: c for c in columns if c.alias is not None}
        where = self.where()
        group_by = self.group_by(pending)
        having, order_by = self.having(), self.order_by()
        limit, offset = self.limit_offset()
        return Select(
            database, table, columns, where, order_by, limit, offset, distinct, group_by, having
        )

    def insert(self) -> Insert:
        self.expect_keyword("INTO")
        database, table = self.table_name()
        self.set_scope(database, table, None)
        columns = self.insert_columns()
        self.expect_keyword("VALUES")
        rows = self.comma_list(lambda: self.row(columns))
        return Insert(database, table, tuple(rows))

    def update(self) -> Update:
        database, table = self.table_name()
        self.set_scope(database, table, None)
        self.expect_keyword("SET")
        assignments: dict[str, Any] = {}
        for name, value, position in self.comma_list(self.assignment):
            if name in assignments:
                raise syntax_error(position, f"column '{name}' is set twice")
            assignments[name] = value
        return Update(database, table, assignments, self.where())

    def delete(self) -> Delete:
        self.expect_keyword("FROM")
        database, table = self.table_name()
        self.set_scope(database, table, None)
        return Delete(database, table, self.where())

    # -- names

    def at_name(self) -> bool:
        token = self.token
        return token.kind == "name" or (token.kind == "word" and keyword(token) not in RESERVED)

    def identifier(self, expected: str) -> str:
        if not self.at_name():
            self.fail(expected)
        return self.advance().value

    def table_name(self) -> tuple[str, str]:
        """Read `database.table`; HarperDB needs the database named."""
        start = self.token
        if self.at_symbol("("):
            raise unsupported(start.position, "subqueries are not supported")
        database = self.identifier("a table name as database.table")
        if not self.accept_symbol("."):
            detail = f"table '{database}' must be qualified with its database, as database.table"
            raise syntax_error(start.position, detail)
        return database, self.identifier("a table name after '.'")

    def alias(self) -> str | None:
        """Read an optional `[AS] alias`; a bare one only where a clause or list could follow."""
        if self.accept_keyword("AS"):
            return self.identifier("an alias after AS")
        # Without AS, `SELECT a FORM d.t` must not take FORM for an alias of a.
        if self.at_name() and ends_item(self.peek()):
            return self.identifier("an alias")
        return None

    def set_scope(self, database: str, table: str, alias: str | None) -> None:
        self.qualifiers = {(table,), (database, table)}
        if alias is not None:
            self.qualifiers.add((alias,))

    def check_qualifier(self, qualifier: tuple[str, ...], position: int) -> None:
        if qualifier and qualifier not in self.qualifiers:
            name = ".".join(qualifier)
            raise syntax_error(position, f"'{name}' does not name the table this statement reads")

    def dotted(self) -> tuple[str, tuple[str, ...]]:
        """Read `[db.][table.]column`, stopping before a `.*`; return column and qualifier."""
        position = self.token.position
        parts = [self.identifier("a column name")]
        while self.at_symbol(".") and not is_symbol(self.peek(), "*"):
            self.advance()
            parts.append(self.identifier("a column name after '.'"))
        if len(parts) > 3:
            raise syntax_error(position, f"too many qualifiers in {'.'.join(parts)}")
        return parts[-1], tuple(parts[:-1])

    def column(self) -> str:
        """Read a column reference in the statement's scope; return the bare name."""
        return self.column_ref()[0]

    def column_ref(self) -> tuple[str, bool]:
        """Read a column reference; return the bare name and whether it was qualified."""
        position = self.token.position
        self.reject_function()
        name, qualifier = self.dotted()
        self.check_qualifier(qualifier, position)
        return name, bool(qualifier)

    def at_function(self) -> bool:
        token = self.token
        if token.kind != "word" or keyword(token) in RESERVED:
            return False
        return is_symbol(self.peek(), "(")

    def reject_function(self) -> None:
        """Refuse a function call where only a column may be, naming the function."""
        if not self.at_function():
            return
        name, position = self.token.value.upper(), self.token.position
        if name in AGGREGATES:
            message = (
                f"{name}() is supported only in the select list, "
                "and in HAVING or ORDER BY of a grouped select"
            )
            raise unsupported(position, message)
        raise unsupported(position, f"function {name}() is not supported")

    def at_column(self) -> bool:
        self.reject_function()
        return self.at_name()

    # -- select list

    def select_item(self) -> _Pending:
        position = self.token.position
        if self.accept_symbol("*"):
            return _Pending(Column(None), (), position)
        if self.at_function():
            return self.aggregate()
        name, qualifier = self.dotted()
        if self.accept_symbol("."):  # table.*
            self.expect_symbol("*")
            return _Pending(Column(None), (*qualifier, name), position)
        return _Pending(Column(name, self.alias()), qualifier, position)

    def aggregate(self) -> _Pending:
        """Read COUNT(*), COUNT(x), SUM(x), AVG(x), MIN(x) or MAX(x) with an optional alias."""
        position = self.token.position
        function, name, qualifier = self.aggregate_call()
        return _Pending(Column(name, self.alias(), function), qualifier, position)

    def aggregate_call(self) -> tuple[str, str | None, tuple[str, ...]]:
        """Read an aggregate call; return its function, argument (None for *) and qualifier."""
        position = self.token.position
        function = self.advance().value.upper()
        if function not in AGGREGATES:
            raise unsupported(position, f"function {function}() is not supported")
        self.expect_symbol("(")
        if self.at_keyword("DISTINCT"):
            raise unsupported(self.token.position, f"{function}(DISTINCT ...) is not supported")
        star = self.token
        name: str | None = None
        qualifier: tuple[str, ...] = ()
        if not self.accept_symbol("*"):
            name, qualifier = self.dotted()
        elif function != "COUNT":
            raise syntax_error(star.position, f"{function}(*) needs a column, not *")
        self.expect_symbol(")")
        return function, name, qualifier

    # -- grouping

    def group_by(self, pending: list[_Pending]) -> tuple[str, ...]:
        """Read GROUP BY; if the select is grouped, check that its plain columns are grouped."""
        position = self.token.position
        keys: tuple[str, ...] = ()
        if self.accept_keyword("GROUP"):
            self.expect_keyword("BY")
            keys = tuple(dict.fromkeys(self.comma_list(self.group_item)))
        if not keys and not any(item.column.aggregate for item in pending):
            return keys
        for item in pending:
            column = item.column
            if column.name is None and column.aggregate is None:
                if keys:
                    message = "GROUP BY is not supported with SELECT *; name the columns"
                    raise unsupported(position, message)
                message = "SELECT * cannot be mixed with aggregates; name the columns"
                raise unsupported(item.position, message)
            if column.aggregate is None and column.name not in keys:
                raise _not_grouped(column.name, item.position)
        self.groups = keys
        return keys

    def group_item(self) -> str:
        """Read a grouped column: an attribute, or the alias of a plain select column."""
        position = self.token.position
        name, qualified = self.column_ref()
        column = None if qualified else self.aliases.get(name)
        if column is None:
            return name
        if column.aggregate is not None:
            raise unsupported(position, f"GROUP BY cannot use the aggregate '{name}'")
        return column.name or name

    def having(self) -> Condition | Measure | None:
        position = self.token.position
        if not self.accept_keyword("HAVING"):
            return None
        if self.groups is None:
            message = "HAVING is not supported without GROUP BY or an aggregate"
            raise unsupported(position, message)
        self.in_having = True
        condition = self.disjunction()
        self.in_having = False
        return condition

    def at_subject(self) -> bool:
        """Tell whether a test's subject follows: a column, or an aggregate when grouped."""
        if self.groups is not None and self.at_function():
            return True
        return self.at_column()

    def subject(self) -> Term:
        """Read what a test or sort is about: a column, or in a grouped select an aggregate,
        a grouped column or a select-list alias."""
        position = self.token.position
        if self.groups is None:
            return self.alias_or_column()
        if self.at_function():
            function, name, qualifier = self.aggregate_call()
            self.check_qualifier(qualifier, position)
            return Aggregate(function, name)
        term = self.alias_or_column()
        if isinstance(term, str) and term not in self.groups:
            raise _not_grouped(term, position)
        return term

    def alias_or_column(self) -> Term:
        name, qualified = self.column_ref()
        column = None if qualified else self.aliases.get(name)
        return name if column is None else column.term  # a qualified name is always a column

    # -- clauses

    def where(self) -> Condition | None:
        return self.disjunction() if self.accept_keyword("WHERE") else None

    def order_by(self) -> tuple[OrderBy, ...]:
        if not self.accept_keyword("ORDER"):
            return ()
        self.expect_keyword("BY")
        return tuple(self.comma_list(self.order_item))

    def order_item(self) -> OrderBy:
        term = self.subject()
        descending = self.accept_keyword("DESC")
        if not descending:
            self.accept_keyword("ASC")
        if isinstance(term, Aggregate):
            return OrderBy(term.attribute, descending, term.function)
        return OrderBy(term, descending)

    def limit_offset(self) -> tuple[int | None, int | None]:
        limit = self.whole_number("LIMIT")
        if limit is not None and self.at_symbol(","):
            message = "LIMIT m, n is not supported; write LIMIT n OFFSET m"
            raise unsupported(self.token.position, message)
        return limit, self.whole_number("OFFSET")

    def whole_number(self, keyword: str) -> int | None:
        if not self.accept_keyword(keyword):
            return None
        token = self.token
        if token.kind != "number" or not isinstance(token.value, int):
            self.fail(f"a whole number after {keyword}")
        if token.value > INT64_MAX:
            detail = f"{keyword} must be a whole number from 0 to {INT64_MAX}"
            raise syntax_error(token.position, detail)
        self.advance()
        return token.value

    def insert_columns(self) -> list[str]:
        if not self.at_symbol("("):
            self.fail("'(' and the list of columns")
        self.advance()
        names: list[str] = []
        for position, name in self.comma_list(lambda: (self.token.position, self.column())):
            if name in names:
                raise syntax_error(position, f"column '{name}' is named twice")
            names.append(name)
        self.expect_symbol(")")
        return names

    def row(self, columns: list[str]) -> dict[str, Any]:
        position = self.token.position
        self.expect_symbol("(")
        values = self.comma_list(self.literal)
        self.expect_symbol(")")
        if len(values) != len(columns):
            given = f"{len(values)} value{'' if len(values) == 1 else 's'}"
            raise syntax_error(position, f"{given} given for {len(columns)} columns")
        return dict(zip(columns, values, strict=True))

    def assignment(self) -> tuple[str, Any, int]:
        position = self.token.position
        name = self.column()
        self.expect_symbol("=")
        if self.at_column():
            message = "SET from another column is not supported; give a value"
            raise unsupported(self.token.position, message)
        return name, self.literal(), position
