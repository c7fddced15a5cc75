"""The tokenizer of the `sql` operation's SQL subset (agent.ops.sql parses its tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.errors import ClientError


class SqlError(ClientError):
    """The SQL text is malformed, or uses something this subset does not support."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        # Where parsing stopped (1-based), so a client can point at it; None for the whole text.
        self.position = position


def syntax_error(position: int, detail: str) -> SqlError:
    return SqlError(f"SQL syntax error at position {position}: {detail}", position)


# --- tokenizer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One lexical unit; `text` is as written, for error messages."""

    kind: str  # word, name (a quoted identifier), string, number, symbol or end
    value: Any
    position: int
    text: str


# Longest first, so "<=" is not read as "<" then "=".
_SYMBOLS = ("<=", ">=", "<>", "!=", "==", "=", "<", ">", "(", ")", ",", ".", ";", "*", "-", "+")
_NAME_QUOTES = {"`": "`", '"': '"', "[": "]"}
_DIGITS = "0123456789"


def tokenize(sql: str) -> list[Token]:
    """Split SQL text into tokens, the last of them of kind "end"."""
    tokens = []
    index = 0
    while True:
        while index < len(sql) and sql[index].isspace():
            index += 1
        if index >= len(sql):
            tokens.append(Token("end", None, index + 1, ""))
            return tokens
        token, index = _next_token(sql, index)
        tokens.append(token)


def _next_token(sql: str, start: int) -> tuple[Token, int]:
    char = sql[start]
    if char.isalpha() or char == "_":
        return _word(sql, start)
    if char in _DIGITS:
        return _number(sql, start)
    if char == "'":
        text, end = _quoted(sql, start, "'", "string")
        return Token("string", text, start + 1, sql[start:end]), end
    if char in _NAME_QUOTES:
        return _quoted_name(sql, start)
    for symbol in _SYMBOLS:
        if sql.startswith(symbol, start):
            return Token("symbol", symbol, start + 1, symbol), start + len(symbol)
    raise syntax_error(start + 1, f"unexpected character {char!r}")


def _word(sql: str, start: int) -> tuple[Token, int]:
    end = start + 1
    while end < len(sql) and (sql[end].isalnum() or sql[end] in "_$"):
        end += 1
    text = sql[start:end]
    return Token("word", text, start + 1, text), end


def _quoted_name(sql: str, start: int) -> tuple[Token, int]:
    name, end = _quoted(sql, start, _NAME_QUOTES[sql[start]], "identifier")
    if not name:
        raise syntax_error(start + 1, "empty quoted identifier")
    return Token("name", name, start + 1, sql[start:end]), end


def _quoted(sql: str, start: int, close: str, what: str) -> tuple[str, int]:
    """Read a quoted run where a doubled closing quote stands for one; return it and its end."""
    parts = []
    index = start + 1
    while True:
        end = sql.find(close, index)
        if end < 0:
            raise syntax_error(start + 1, f"unterminated {what}")
        parts.append(sql[index:end])
        if not sql.startswith(close, end + 1):
            return "".join(parts), end + 1
        parts.append(close)
        index = end + 2


def _number(sql: str, start: int) -> tuple[Token, int]:
    end = _digits(sql, start)
    if sql.startswith(".", end) and _digits(sql, end + 1) > end + 1:
        end = _digits(sql, end + 1)
    end = _exponent(sql, end)
    text = sql[start:end]
    try:
        # An integer stays exact however long: the parser refuses one outside 64 bits once
        # its sign is known, rather than storing a float nobody wrote.
        value: int | float = float(text) if any(c in ".eE" for c in text) else int(text)
    except ValueError:  # more digits than int() converts
        raise syntax_error(start + 1, f"number {text[:20]}... is too long") from None
    if value in (float("inf"), float("-inf")):
        raise syntax_error(start + 1, f"number {text} is out of range")
    return Token("number", value, start + 1, text), end


def _digits(sql: str, index: int) -> int:
    while index < len(sql) and sql[index] in _DIGITS:
        index += 1
    return index


def _exponent(sql: str, index: int) -> int:
    """Return the end of an exponent (e5, E-3) starting at index, or index when there is none."""
    if not sql.startswith(("e", "E"), index):
        return index
    digits = index + 2 if sql.startswith(("+", "-"), index + 1) else index + 1
    end = _digits(sql, digits)
    return end if end > digits else index
