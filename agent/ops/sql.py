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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar, Union

from agent.errors import ClientError
from agent.jsonx import INT64_MAX
from agent.ops.sql_lexer import SqlError, Token, syntax_error, tokenize
from agent.storage.conditions import (
    AGGREGATES,
    Aggregate,
    Compare,
    Condition,
    Group,
    Grouping,
    Measure,
    Not,
    Term,
    check_number,
    compare,
    measure,
)

MAX_SQL_BYTES = 1024 * 1024
MAX_DEPTH = 64

T = TypeVar("T")


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


def _unsupported(position: int, message: str) -> SqlError:
    return SqlError(f"{message} (at position {position})", position)


# --- parser --------------------------------------------------------------------------------

# Words that cannot be bare identifiers (quote them to use them as names).
_RESERVED = frozenset(
    "SELECT DISTINCT FROM AS WHERE AND OR NOT IN IS NULL LIKE BETWEEN TRUE FALSE ORDER BY ASC "
    "DESC LIMIT OFFSET INSERT INTO VALUES UPDATE SET DELETE GROUP HAVING UNION INTERSECT EXCEPT "
    "JOIN INNER LEFT RIGHT FULL OUTER CROSS NATURAL ON USING CREATE DROP ALTER TRUNCATE WITH "
    "EXISTS CASE ESCAPE NULLS".split()
)
# What to say when one of these words turns up where something else was expected.
_REFUSALS = {
    **{word: f"{word} is not supported" for word in ("UNION", "INTERSECT", "EXCEPT")},
    **{word: f"{word} is not supported" for word in ("CREATE", "DROP", "ALTER", "TRUNCATE")},
    **dict.fromkeys(
        ("JOIN", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS", "NATURAL"),
        "JOIN is not supported",
    ),
    "SELECT": "subqueries are not supported",
    "EXISTS": "subqueries are not supported",
    "WITH": "WITH (common table expressions) is not supported",
    "CASE": "CASE expressions are not supported",
    "ESCAPE": "LIKE ... ESCAPE is not supported",
    "NULLS": "NULLS FIRST/LAST is not supported",
}
_CONSTANTS = {"TRUE": True, "FALSE": False, "NULL": None}
# The comparison a literal-on-the-left test turns into once its sides are swapped.
_FLIP = {"=": "=", "==": "==", "!=": "!=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True)
class _Pending:
    """A select-list column whose qualifier is checked once FROM has been read."""

    column: Column
    qualifier: tuple[str, ...]
    position: int


def _not_grouped(name: str, position: int) -> SqlError:
    message = f"column '{name}' must appear in GROUP BY or be used in an aggregate function"
    return _unsupported(position, message)


class _Parser:
    """Recursive descent over a token list; one instance parses one statement."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0
        # Qualifiers that name the statement's table (table, db.table, the FROM alias).
        self.qualifiers: set[tuple[str, ...]] = set()
        # The select list's aliases, which HAVING and ORDER BY may name.
        self.aliases: dict[str, Column] = {}
        # The grouped attributes of a grouped select (None: not grouped); HAVING and ORDER
        # BY read aggregates and check plain columns against it while it is set.
        self.groups: tuple[str, ...] | None = None
        self.in_having = False

    # -- token helpers

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def peek(self) -> Token:
        return self.tokens[min(self.index + 1, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.token
        if token.kind != "end":
            self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return _keyword(self.token) in words

    def accept_keyword(self, word: str) -> bool:
        if not self.at_keyword(word):
            return False
        self.index += 1
        return True

    def expect_keyword(self, word: str) -> None:
        if not self.accept_keyword(word):
            self.fail(word)

    def at_symbol(self, *symbols: str) -> bool:
        return self.token.kind == "symbol" and self.token.value in symbols

    def accept_symbol(self, symbol: str) -> bool:
        if not self.at_symbol(symbol):
            return False
        self.index += 1
        return True

    def expect_symbol(self, symbol: str) -> None:
        if not self.accept_symbol(symbol):
            self.fail(f"'{symbol}'")

    def comma_list(self, item: Callable[[], T]) -> list[T]:
        items = [item()]
        while self.accept_symbol(","):
            items.append(item())
        return items

    def fail(self, expected: str) -> NoReturn:
        """Raise for the current token: a refusal if it begins unsupported SQL, else syntax."""
        token = self.token
        refusal = _REFUSALS.get(_keyword(token) or "")
        if refusal:
            raise _unsupported(token.position, refusal)
        raise syntax_error(token.position, f"expected {expected}, found {_describe(token)}")

    @contextmanager
    def nested(self) -> Iterator[None]:
        """Count one level of parentheses or NOT, refusing trees deeper than MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            message = f"conditions nested deeper than {MAX_DEPTH} levels are not supported"
            raise _unsupported(self.token.position, message)
        yield
        self.depth -= 1

    # -- statements

    def statement(self) -> Statement:
        """Parse the whole token list as one statement with an optional trailing ';'."""
        readers: dict[str, Callable[[], Statement]] = {
            "SELECT": self.select,
            "INSERT": self.insert,
            "UPDATE": self.update,
            "DELETE": self.delete,
        }
        reader = readers.get(_keyword(self.token) or "")
        if reader is None:
            self.fail("SELECT, INSERT, UPDATE or DELETE")
        self.advance()
        statement = reader()
        self.finish()
        return statement

    def finish(self) -> None:
        if self.accept_symbol(";") and self.token.kind != "end":
            raise _unsupported(self.token.position, "multiple statements are not supported")
        if self.token.kind != "end":
            self.fail("end of statement")

    def select(self) -> Select:
        distinct = self.accept_keyword("DISTINCT")
        pending = self.comma_list(self.select_item)
        self.expect_keyword("FROM")
        database, table = self.table_name()
        self.set_scope(database, table, self.alias())
        if self.at_symbol(","):
            raise _unsupported(
                self.token.position, "selecting from several tables is not supported"
            )
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
        return token.kind == "name" or (token.kind == "word" and _keyword(token) not in _RESERVED)

    def identifier(self, expected: str) -> str:
        if not self.at_name():
            self.fail(expected)
        return self.advance().value

    def table_name(self) -> tuple[str, str]:
        """Read `database.table`; HarperDB needs the database named."""
        start = self.token
        if self.at_symbol("("):
            raise _unsupported(start.position, "subqueries are not supported")
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
        if self.at_name() and _ends_item(self.peek()):
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
        while self.at_symbol(".") and not _is_symbol(self.peek(), "*"):
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
        if token.kind != "word" or _keyword(token) in _RESERVED:
            return False
        return _is_symbol(self.peek(), "(")

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
            raise _unsupported(position, message)
        raise _unsupported(position, f"function {name}() is not supported")

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
            raise _unsupported(position, f"function {function}() is not supported")
        self.expect_symbol("(")
        if self.at_keyword("DISTINCT"):
            raise _unsupported(self.token.position, f"{function}(DISTINCT ...) is not supported")
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
                    raise _unsupported(position, message)
                message = "SELECT * cannot be mixed with aggregates; name the columns"
                raise _unsupported(item.position, message)
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
            raise _unsupported(position, f"GROUP BY cannot use the aggregate '{name}'")
        return column.name or name

    def having(self) -> Condition | Measure | None:
        position = self.token.position
        if not self.accept_keyword("HAVING"):
            return None
        if self.groups is None:
            message = "HAVING is not supported without GROUP BY or an aggregate"
            raise _unsupported(position, message)
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
            raise _unsupported(self.token.position, message)
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
            raise _unsupported(self.token.position, message)
        return name, self.literal(), position

    # -- conditions

    def disjunction(self) -> Condition:
        return _join("or", self.chain("OR", self.conjunction))

    def conjunction(self) -> Condition:
        return _join("and", self.chain("AND", self.negation))

    def chain(self, keyword: str, item: Callable[[], Condition]) -> list[Condition]:
        items = [item()]
        while self.accept_keyword(keyword):
            items.append(item())
        return items

    def negation(self) -> Condition:
        if not self.accept_keyword("NOT"):
            return self.primary()
        with self.nested():
            return Not(self.negation())

    def primary(self) -> Condition:
        if not self.accept_symbol("("):
            return self.predicate()
        with self.nested():
            inner = self.disjunction()
        self.expect_symbol(")")
        return inner

    def predicate(self) -> Condition:
        position = self.token.position
        if self.at_subject():
            return self.test(self.term(), position)
        value = self.literal("a condition")
        if not self.at_symbol(*_FLIP):
            self.fail("a comparison operator")
        operator = _FLIP[self.advance().value]
        if not self.at_subject():
            message = "comparing two values is not supported; one side must be a column"
            raise _unsupported(self.token.position, message)
        return self.build(self.term(), operator, value, position)

    def term(self) -> Term:
        """Read a test's subject: in HAVING what `subject` reads, in WHERE a column."""
        return self.subject() if self.in_having else self.column()

    def test(self, attribute: Term, position: int) -> Condition:
        """Read the operator after a column and its operand(s)."""
        if self.at_symbol(*_FLIP):
            return self.comparison(attribute, position)
        if self.accept_keyword("IS"):
            comparator = "is_not_null" if self.accept_keyword("NOT") else "is_null"
            self.expect_keyword("NULL")
            return self.build(attribute, comparator, None, position)
        negated = self.accept_keyword("NOT")
        if not self.at_keyword("BETWEEN", "IN", "LIKE"):
            self.fail("BETWEEN, IN or LIKE" if negated else "a comparison operator")
        keyword = _keyword(self.advance())
        reader = {"BETWEEN": self.between, "IN": self.in_list, "LIKE": self.like}[keyword]
        node = reader(attribute, position)
        return Not(node) if negated else node

    def comparison(self, attribute: Term, position: int) -> Compare:
        operator = self.advance().value
        if self.in_having and self.at_function():
            message = "comparing two aggregates is not supported"
            raise _unsupported(self.token.position, message)
        if self.at_column():
            message = "comparing two columns is not supported"
            raise _unsupported(self.token.position, message)
        return self.build(attribute, operator, self.literal(), position)

    def between(self, attribute: Term, position: int) -> Compare:
        low = self.literal()
        self.expect_keyword("AND")
        return self.build(attribute, "between", (low, self.literal()), position)

    def in_list(self, attribute: Term, position: int) -> Compare:
        self.expect_symbol("(")
        values = self.comma_list(self.literal)
        self.expect_symbol(")")
        return self.build(attribute, "in", tuple(values), position)

    def like(self, attribute: Term, position: int) -> Compare:
        token = self.token
        if token.kind != "string":
            self.fail("a quoted pattern after LIKE")
        self.advance()
        comparator, value = _like_comparator(token.value)
        return self.build(attribute, comparator, value, position)

    def build(self, attribute: Term, comparator: str, value: Any, position: int) -> Compare:
        """Make a Compare (a Measure for an aggregate) through the shared validation, pointing
        its errors at the test."""
        try:
            if isinstance(attribute, Aggregate):
                return measure(attribute, comparator, value)  # type: ignore[return-value]
            return compare(attribute, comparator, value)
        except ClientError as error:
            raise syntax_error(position, error.message) from None

    def literal(self, expected: str = "a value") -> Any:
        """Read a string, a number (with an optional sign), TRUE, FALSE or NULL."""
        token = self.token
        if token.kind == "string":
            return self.advance().value
        if token.kind == "number":
            return self.number(self.advance().value, token)
        if self.at_symbol("-", "+"):
            sign = self.advance().value
            if self.token.kind != "number":
                self.fail(f"a number after '{sign}'")
            number = self.advance().value
            return self.number(-number if sign == "-" else number, token)
        if _keyword(token) in _CONSTANTS:
            return _CONSTANTS[_keyword(self.advance())]
        self.fail(expected)

    def number(self, value: int | float, token: Token) -> int | float:
        """Return a number literal's value, refusing one SQLite would not keep exactly."""
        try:
            check_number(value, "a number")
        except ClientError as error:
            raise syntax_error(token.position, error.message) from None
        return value


def _like_comparator(pattern: str) -> tuple[str, str]:
    """Return the simplest comparator and value for a LIKE pattern.

    'abc%', '%abc' and '%abc%' (no other wildcard inside) become starts_with, ends_with and
    contains, which the storage compiler runs without LIKE; anything else stays "like".
    """
    leading, trailing = pattern.startswith("%"), pattern.endswith("%")
    inner = pattern[1 if leading else 0 : len(pattern) - 1 if trailing else len(pattern)]
    if not (leading or trailing) or not inner or "%" in inner or "_" in inner:
        return "like", pattern
    if leading and trailing:
        return "contains", inner
    return ("ends_with" if leading else "starts_with"), inner


def _join(operator: str, parts: list[Condition]) -> Condition:
    """Join conditions with and/or, flattening children that are the same kind of group."""
    if len(parts) == 1:
        return parts[0]
    flat: list[Condition] = []
    for part in parts:
        if isinstance(part, Group) and part.operator == operator:
            flat.extend(part.conditions)
        else:
            flat.append(part)
    return Group(operator, tuple(flat))


def _keyword(token: Token) -> str | None:
    """Return a bare word in upper case, for matching keywords; None for anything else."""
    # ASCII only, so that e.g. a Turkish dotless "ın" is a name rather than the keyword IN.
    if token.kind != "word" or not token.value.isascii():
        return None
    return token.value.upper()


def _is_symbol(token: Token, symbol: str) -> bool:
    return token.kind == "symbol" and token.value == symbol


def _ends_item(token: Token) -> bool:
    """Tell whether a token can follow a select item or a table, so what precedes is an alias."""
    if token.kind == "word":
        return _keyword(token) in _RESERVED
    return token.kind == "end" or _is_symbol(token, ",") or _is_symbol(token, ";")


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "end of input"
    text = token.text if len(token.text) <= 40 else token.text[:37] + "..."
    if token.kind == "string":
        return f"string {text}"
    return f"'{text}'"
