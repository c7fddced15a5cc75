"""JSON encoding for hot paths: orjson when installed, the stdlib otherwise.

Documents are stored and sent as compact UTF-8 JSON; this module is the only importer of orjson.
`loads_request` (request bodies) refuses integers outside signed 64 bits (what SQLite stores):
orjson would turn one above 2**64 into a float and the stdlib would keep it exact, so either
way it would change or fail later; refusing it names the number. `loads` is the fast path for
what this node stored or checked itself: the write path refuses such integers before storing.
"""

from __future__ import annotations

import json
from typing import Any

try:  # orjson is 3-6x the stdlib here; optional so a bare install still runs.
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only without orjson
    _orjson = None

JSONDecodeError = ValueError
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# A literal of 19 or more digits is the only way to write an integer outside 64 bits: finding
# such a run in the digits-only image of the text (C speed, ~0.4 us a record) decides whether
# the slow exact check below is needed at all.
_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_RUN = b"0" * 19


def _checked_int(text: str) -> int:
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"integer {text} is outside the 64-bit range ({INT64_MIN}..{INT64_MAX})")
    return value


def check_integers(data: bytes | str) -> None:
    """Raise ValueError naming the first integer literal in `data` outside signed 64 bits."""
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_RUN in raw.translate(_DIGITS):
        try:
            json.loads(raw, parse_int=_checked_int)
        except RecursionError:  # nested deeper than the stdlib parser goes
            raise ValueError("JSON nested too deeply") from None


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


if _orjson is not None:
    _OPTS = _orjson.OPT_NON_STR_KEYS

    def dumps(value: Any) -> bytes:
        """Encode to compact UTF-8 JSON bytes."""
        try:
            return _orjson.dumps(value, default=_default, option=_OPTS)
        except TypeError:  # e.g. integers beyond 64 bits, which the stdlib encodes exactly
            return json.dumps(
                value, default=_default, separators=(",", ":"), ensure_ascii=False
            ).encode()

    def loads(data: bytes | str) -> Any:
        """Decode JSON; raises ValueError with the position on bad input."""
        return _orjson.loads(data)

else:  # pragma: no cover

    def dumps(value: Any) -> bytes:
        return json.dumps(
            value, default=_default, separators=(",", ":"), ensure_ascii=False
        ).encode()

    def loads(data: bytes | str) -> Any:
        return json.loads(data)


def loads_request(data: bytes | str) -> Any:
    """Decode a request body; also refuse integers outside signed 64 bits, naming them."""
    value = loads(data)
    check_integers(data)
    return value


def dumps_str(value: Any) -> str:
    """Encode to a compact JSON str (what SQLite's JSON functions read)."""
    return dumps(value).decode("utf-8")
