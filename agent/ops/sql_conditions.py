"""WHERE and HAVING conditions of the `sql` operation: the grammar below a statement.

    condition   = and-chain {OR and-chain};  and-chain = negation {AND negation}
    negation    = NOT negation | '(' condition ')' | test
    test        = subject (op literal | IS [NOT] NULL | [NOT] BETWEEN/IN/LIKE ...)
                | literal op subject

Conditions are built with `agent.storage.conditions.compare()` (and `measure()` for an
aggregate), so search_by_conditions and SQL share one validation. What a test's subject may
be (a column; in HAVING an aggregate or an alias) is the statement parser's to say: it
provides `at_subject()`, `subject()`, `column()`, `at_column()`, `at_function()` and sets
`in_having`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.errors import ClientError
from agent.ops.sql_cursor import TokenCursor, keyword, unsupported
from agent.ops.sql_lexer import Token, syntax_error
from agent.storage.conditions import (
    Aggregate,
    Compare,
    Condition,
    Group,
    Not,
    Term,
    check_number,
    compare,
    measure,
)

CONSTANTS = {"TRUE": True, "FALSE": False, "NULL": None}
# The comparison a literal-on-the-left test turns into once its sides are swapped.
FLIP = {"=": "=", "==": "==", "!=": "!=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class ConditionGrammar(TokenCursor):
    """Conditions and literals; the statement parser subclasses it (see the module doc)."""

    in_having = False

    def at_subject(self) -> bool:
        """Tell whether a test's subject follows (the statement parser says)."""
        raise NotImplementedError

    def subject(self) -> Term:
        """Read a HAVING test's subject: an aggregate, a grouped column or an alias."""
        raise NotImplementedError

    def column(self) -> str:
        """Read a column name of the statement's table."""
        raise NotImplementedError

    def at_column(self) -> bool:
        """Tell whether a column reference follows."""
        raise NotImplementedError

    def at_function(self) -> bool:
        """Tell whether a function call follows."""
        raise NotImplementedError

    def disjunction(self) -> Condition:
        return join_conditions("or", self.chain("OR", self.conjunction))

    def conjunction(self) -> Condition:
        return join_conditions("and", self.chain("AND", self.negation))

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
        if not self.at_symbol(*FLIP):
            self.fail("a comparison operator")
        operator = FLIP[self.advance().value]
        if not self.at_subject():
            message = "comparing two values is not supported; one side must be a column"
            raise unsupported(self.token.position, message)
        return self.build(self.term(), operator, value, position)

    def term(self) -> Term:
        """Read a test's subject: in HAVING what `subject` reads, in WHERE a column."""
        return self.subject() if self.in_having else self.column()

    def test(self, attribute: Term, position: int) -> Condition:
        """Read the operator after a column and its operand(s)."""
        if self.at_symbol(*FLIP):
            return self.comparison(attribute, position)
        if self.accept_keyword("IS"):
            comparator = "is_not_null" if self.accept_keyword("NOT") else "is_null"
            self.expect_keyword("NULL")
            return self.build(attribute, comparator, None, position)
        negated = self.accept_keyword("NOT")
        if not self.at_keyword("BETWEEN", "IN", "LIKE"):
            self.fail("BETWEEN, IN or LIKE" if negated else "a comparison operator")
        word = keyword(self.advance())
        reader = {"BETWEEN": self.between, "IN": self.in_list, "LIKE": self.like}[word]
        node = reader(attribute, position)
        return Not(node) if negated else node

    def comparison(self, attribute: Term, position: int) -> Compare:
        operator = self.advance().value
        if self.in_having and self.at_function():
            message = "comparing two aggregates is not supported"
            raise unsupported(self.token.position, message)
        if self.at_column():
            message = "comparing two columns is not supported"
            raise unsupported(self.token.position, message)
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
        comparator, value = like_comparator(token.value)
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
        if keyword(token) in CONSTANTS:
            return CONSTANTS[keyword(self.advance())]
        self.fail(expected)

    def number(self, value: int | float, token: Token) -> int | float:
        """Return a number literal's value, refusing one SQLite would not keep exactly."""
        try:
            check_number(value, "a number")
        except ClientError as error:
            raise syntax_error(token.position, error.message) from None
        return value


def like_comparator(pattern: str) -> tuple[str, str]:
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


def join_conditions(operator: str, parts: list[Condition]) -> Condition:
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
