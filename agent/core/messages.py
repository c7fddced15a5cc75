"""Wire messages and change-set bodies, encoded with msgpack (the only msgpack importer).

Every frame is one byte of protocol version, then a msgpack array `[type, ...fields]`.
`parse` turns bytes into a message object or raises RemoteProtocolError; `serialize` is its
inverse. Change-set bodies (`encode_changes` / `decode_changes`) are opaque bytes inside TXN
frames so a relay forwards them without decoding.
"""

from __future__ import annotations

from typing import Any

import msgpack

from agent.core.changes import KINDS, Write
from agent.core.errors import RemoteProtocolError

PROTOCOL_VERSION = 1


def encode_changes(writes: list[Write] | list[tuple]) -> bytes:
    """Encode a transaction's writes for the log and the wire."""
    return msgpack.packb([list(w) for w in writes], use_bin_type=True)


def decode_changes(body: bytes) -> list[Write]:
    """Decode a change-set body, raising RemoteProtocolError when it is malformed."""
    try:
        raw = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise RemoteProtocolError(f"undecodable change set: {exc}") from None
    if not isinstance(raw, list):
        raise RemoteProtocolError("change set is not a list")
    return [_write(item) for item in raw]


def _write(item: Any) -> Write:
    if not isinstance(item, list) or len(item) != 4:
        raise RemoteProtocolError(f"malformed write {item!r:.80}")
    table, kind, key, value = item
    if not isinstance(table, str) or kind not in KINDS:
        raise RemoteProtocolError(f"malformed write {item!r:.80}")
    return Write(table, kind, key, value)
