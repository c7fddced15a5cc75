"""Decode the items of a top-level JSON array from bytes that arrive in pieces (no I/O).

The agent sends long arrays in slices. `ArrayItems.feed(piece)` returns the items the bytes
so far complete, so a caller can print record 1 while record 150,000 is still on its way,
holding only the unfinished tail. The items are decoded by the stdlib's C scanner
(`json.JSONDecoder.raw_decode`); this module only finds where each one starts.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class NotAnArray(ValueError):
    """The bytes are not one JSON array (or it broke off before its end)."""


class ArrayItems:
    """Feed the bytes of one JSON array in any pieces; get back its items in order."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._pos = 0
        # "open": before "["; "first": after "["; "item": after ","; "next": after an item
        self._state = "open"

    @property
    def done(self) -> bool:
        """Return True once the closing "]" was read."""
        return self._state == "done"

    def feed(self, data: bytes) -> list[Any]:
        """Add the next bytes and return the items they complete."""
        try:
            self._text = self._text[self._pos :] + self._utf8.decode(data)
        except UnicodeDecodeError as exc:
            raise NotAnArray(f"not UTF-8: {exc.reason}") from None
        self._pos = 0
        return self._items(final=False)

    def close(self) -> list[Any]:
        """Say the bytes ended; return the last items, or raise NotAnArray if it is cut short."""
        try:
            self._text = self._text[self._pos :] + self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise NotAnArray(f"not UTF-8: {exc.reason}") from None
        self._pos = 0
        items = self._items(final=True)
        if self._state != "done":
            raise NotAnArray("the array ends before its closing ']'")
        return items

    def _items(self, final: bool) -> list[Any]:
        """Return the items between the position and the end of the text; keep the rest."""
        items: list[Any] = []
        text = self._text
        while True:
            pos = _SPACE.match(text, self._pos).end()
            if pos == len(text):
                return items
            char = text[pos]
            if self._state == "done":
                raise NotAnArray(f"text after the array's closing ']': {text[pos : pos + 20]!r}")
            if self._state == "open":
                if char != "[":
                    raise NotAnArray(f"expected '[', got {text[pos : pos + 20]!r}")
                self._state, self._pos = "first", pos + 1
            elif self._state == "next":
                if char not in ",]":
                    raise NotAnArray(f"expected ',' or ']', got {text[pos : pos + 20]!r}")
                self._state, self._pos = ("item" if char == "," else "done"), pos + 1
            elif char == "]" and self._state == "first":
                self._state, self._pos = "done", pos + 1
            elif not self._item(text, pos, final, items):
                return items

    def _item(self, text: str, pos: int, final: bool, items: list[Any]) -> bool:
        """Decode the item at `pos` into `items`; return False when it is not complete yet."""
        try:
            item, end = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            if final:
                raise NotAnArray(f"invalid JSON at character {exc.pos}: {exc.msg}") from None
            return False
        # A number (or a literal) at the very end may go on in the next piece: wait for it.
        if end == len(text) and not final:
            return False
        items.append(item)
        self._state, self._pos = "next", end
        return True
