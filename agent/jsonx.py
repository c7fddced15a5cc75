"""JSON encoding for hot paths: orjson when installed, the stdlib otherwise.

Documents are stored and sent as compact UTF-8 JSON; this module is the only importer of orjson.
"""

from __future__ import annotations

import json
from typing import Any

try:  # orjson is 3-6x the stdlib here; optional so a bare install still runs.
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only without orjson
    _orjson = None

JSONDecodeError = ValueError


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


def dumps_str(value: Any) -> str:
    """Encode to a compact JSON str (what SQLite's JSON functions read)."""
    return dumps(value).decode("utf-8")
