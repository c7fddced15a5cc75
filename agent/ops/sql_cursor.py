"""The token cursor the `sql` operation's parser reads with (agent.ops.sql).

`TokenCursor` steps through tokenize()'s list: looking at, accepting and expecting keywords
and symbols, comma lists, nesting depth, and the error for an unexpected token (a refusal
naming unsupported SQL, else a syntax error with its position).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

from agent.ops.sql_lexer import SqlError, Token, syntax_error

MAX_DEPTH = 64
T = TypeVar("T")

# Words that cannot be bare identifiers (quote them to use them as names).
RESERVED = frozenset(
    "SELECT DISTINCT FROM AS WHERE AND OR NOT IN IS NULL LIKE BETWEEN TRUE FALSE ORDER BY ASC "
    "DESC LIMIT OFFSET INSERT INTO VALUES UPDATE SET DELETE GROUP HAVING UNION INTERSECT EXCEPT "
    "JOIN INNER LEFT RIGHT FULL OUTER CROSS NATURAL ON USING CREATE DROP ALTER TRUNCATE WITH "
    "EXISTS CASE ESCAPE NULLS".split()
)
# What to say when one of these words turns up where something else was expected.
REFUSALS = {
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


def unsupported(position: int, message: str) -> SqlError:
    return SqlError(f"{message} (at position {position})", position)


class TokenCursor:
    """A position in a token list and the moves a recursive-descent parser makes on it."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

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
        return keyword(self.token) in words

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
        refusal = REFUSALS.get(keyword(token) or "")
        if refusal:
            raise unsupported(token.position, refusal)
        raise syntax_error(token.position, f"expected {expected}, found {describe(token)}")

    @contextmanager
    def nested(self) -> Iterator[None]:
        """Count one level of parentheses or NOT, refusing trees deeper than MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            message = f"conditions nested deeper than {MAX_DEPTH} levels are not supported"
            raise unsupported(self.token.position, message)
        yield
        self.depth -= 1


def keyword(token: Token) -> str | None:
    """Return a bare word in upper case, for matching keywords; None for anything else."""
    # ASCII only, so that e.g. a Turkish dotless "ın" is a name rather than the keyword IN.
    if token.kind != "word" or not token.value.isascii():
        return None
    return token.value.upper()


def is_symbol(token: Token, symbol: str) -> bool:
    return token.kind == "symbol" and token.value == symbol


def ends_item(token: Token) -> bool:
    """Tell whether a token can follow a select item or a table, so what precedes is an alias."""
    if token.kind == "word":
        return keyword(token) in RESERVED
    return token.kind == "end" or is_symbol(token, ",") or is_symbol(token, ";")


def describe(token: Token) -> str:
    if token.kind == "end":
        return "end of input"
    text = token.text if len(token.text) <= 40 else token.text[:37] + "..."
    if token.kind == "string":
        return f"string {text}"
    return f"'{text}'"
