"""Wire messages and change-set bodies, encoded with msgpack (the only msgpack importer).

Every frame is one byte of protocol version, then a msgpack array `[type, ...fields]`.
`parse` turns bytes into a message object or raises RemoteProtocolError; `serialize` is its
inverse. Change-set bodies (`encode_changes` / `decode_changes`) are opaque bytes inside TXN
frames so a relay forwards them without decoding.

What a peer sends is checked before anything acts on it: `parse` refuses a frame that is not
the protocol (close code 1002: version byte, msgpack, message type, field count, a field of the
wrong type or out of range); `decode_changes` and `check_rows` refuse data storage must not
take (1007, see agent/core/validate.py). Nothing else escapes them, whatever the bytes.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack

from agent.core import validate
from agent.core.changes import Write
from agent.core.clock import valid_version
from agent.core.errors import INVALID_PAYLOAD, RemoteProtocolError

# 2: gap-free per-origin sequences (Txn.origin_id/oseq), origin ids in Hello/Welcome
# 3: Progress says how far behind the subscriber is per origin, in records
PROTOCOL_VERSION = 3


def encode_changes(writes: list[Write] | list[tuple]) -> bytes:
    """Encode a transaction's writes for the log and the wire."""
    return msgpack.packb([list(w) for w in writes], use_bin_type=True)


def decode_changes(body: bytes) -> list[Write]:
    """Decode a peer's change-set body, raising RemoteProtocolError unless storage can take it."""
    return validate.check_writes(_unpack_changes(body))


def load_changes(body: bytes) -> list[Write]:
    """Decode a change set from this node's own log (written by us: not checked again)."""
    make = Write._make
    return [make(item) for item in _unpack_changes(body)]


def _unpack_changes(body: bytes) -> list:
    try:
        raw = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise RemoteProtocolError(f"undecodable change set: {exc}", INVALID_PAYLOAD) from None
    if not isinstance(raw, list):
        raise RemoteProtocolError("change set is not a list", INVALID_PAYLOAD)
    return raw


# --- Frames ---------------------------------------------------------------------------------
# A message class lists its fields with a check for each; `serialize` packs
# [TYPE, *fields] after the version byte and `parse` validates the same shape.


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    """A finite number: NaN or infinity would reach the log's NOT NULL REAL columns."""
    if isinstance(v, float):
        return math.isfinite(v)
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < 1 << 63


def _is_opt_num(v: Any) -> bool:
    return v is None or _is_num(v)


def _is_dict(v: Any) -> bool:
    return isinstance(v, dict)


def _is_list(v: Any) -> bool:
    return isinstance(v, list)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_bytes(v: Any) -> bool:
    return isinstance(v, (bytes, bytearray))


def _is_seq(v: Any) -> bool:
    """A count or a position: 0 .. 2**63-1 (what SQLite's INTEGER holds)."""
    return _is_int(v) and 0 <= v < 1 << 63


def _is_position(v: Any) -> bool:
    """A sequence number that names something: positive (sequences start at 1)."""
    return _is_int(v) and 0 < v < 1 << 63


def _is_version(v: Any) -> bool:
    return valid_version(v)


def _is_stamp(v: Any) -> bool:
    """The version of a transaction: in range, and never 0 (every clock tick is later)."""
    return valid_version(v) and v > 0


def _is_cursor_map(v: Any) -> bool:
    return validate.is_cursor_map(v)


def _is_node(v: Any) -> bool:
    return validate.valid_node(v)


def _is_name(v: Any) -> bool:
    return validate.valid_name(v)


def _is_name_list(v: Any) -> bool:
    return isinstance(v, list) and all(validate.valid_name(x) for x in v)


def _is_opt_name_list(v: Any) -> bool:
    return v is None or _is_name_list(v)


def _is_opt_key(v: Any) -> bool:
    return v is None or validate.valid_key(v)


def _is_caps(v: Any) -> bool:
    """Hello's capabilities: a dict whose `tables` (the tables asked for) is None or names."""
    return isinstance(v, dict) and _is_opt_name_list(v.get("tables"))


def _is_copy_request(v: Any) -> bool:
    return validate.check_copy_request(v)


def _is_behind_map(v: Any) -> bool:
    """origin id -> [records not yet applied, commit time (ms) of the oldest of them]."""
    return isinstance(v, dict) and all(
        _is_str(k) and isinstance(x, list) and len(x) == 2 and _is_seq(x[0]) and _is_opt_num(x[1])
        for k, x in v.items()
    )


def _is_version_map(v: Any) -> bool:
    return isinstance(v, dict) and all(_is_str(k) and _is_version(x) for k, x in v.items())


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(_is_str(x) for x in v)


def _anything(v: Any) -> bool:
    return True


class Message:
    """Base of every frame: subclasses set TYPE and FIELDS = ((name, check), ...)."""

    TYPE = 0
    FIELDS: tuple = ()
    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = [name for name, _ in self.FIELDS]
        values = dict(zip(names, args, strict=False))
        values.update(kwargs)
        for name in names:
            object.__setattr__(self, name, values.get(name))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("messages are immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.values() == other.values()

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r:.60}" for n, _ in self.FIELDS)
        return f"{type(self).__name__}({shown})"

    def values(self) -> list:
        return [getattr(self, name) for name, _ in self.FIELDS]


def _message(name: str, type_code: int, *fields: tuple) -> type:
    cls = type(
        name,
        (Message,),
        {"TYPE": type_code, "FIELDS": fields, "__slots__": tuple(f for f, _ in fields)},
    )
    return cls


# Subscriber -> publisher: who I am (name, and the origin id I write this database under)
# and which database this link carries.
Hello = _message(
    "Hello",
    1,
    ("node", _is_node),
    ("database", _is_name),
    ("caps", _is_caps),
    ("origin", _is_str),
)
# Publisher -> subscriber: who answered, its origin id for the database, every origin it
# holds with how far (so the subscriber knows what exists, and can tell it went back in
# time), (on `system`) the databases it has, and the tables this link carries when explicit
# subscriptions narrow it (None: all), whose transactions then arrive filtered.
Welcome = _message(
    "Welcome",
    2,
    ("node", _is_node),
    ("database", _is_name),
    ("databases", _is_name_list),
    ("origin", _is_str),
    ("cursors", _is_cursor_map),
    ("versions", _is_version_map),
    ("tables", _is_opt_name_list),
)
# Subscriber -> publisher: the last sequence applied of every origin (and its version), the
# origins wanted from this peer, and whether to copy first.
Subscribe = _message(
    "Subscribe",
    3,
    ("cursors", _is_cursor_map),
    ("origins", _is_str_list),
    ("copy", _is_copy_request),
    ("start_version", _is_version),
    ("versions", _is_version_map),
)
Schema = _message("Schema", 4, ("tables", _is_list))
# `horizon`: the publisher's tombstone horizon when the subscriber is behind it (0: not), so
# the subscriber drops rows the snapshot lacks that are older (their delete was forgotten).
# (Schema's table definitions are checked by the Subscriber, with check_table_definition.)
CopyStart = _message(
    "CopyStart",
    5,
    ("frontier", _is_cursor_map),
    ("total", _is_seq),
    ("reason", _is_str),
    ("resumed", _is_seq),
    ("horizon", _is_version),
)
# Rows of one table with keys in (`after`, `last`]; `done` closes the table: (after, end).
CopyChunk = _message(
    "CopyChunk",
    6,
    ("table", _is_name),
    ("rows", _is_list),
    ("after", _is_opt_key),
    ("last", _is_opt_key),
    ("done", _is_bool),
)
# `versions`: the version of each frontier cursor's transaction, kept with the cursors.
CopyEnd = _message(
    "CopyEnd",
    7,
    ("frontier", _is_cursor_map),
    ("copied", _is_seq),
    ("versions", _is_version_map),
)
# One transaction: `seq`/`prev` number the frames of this stream (the publisher's log
# positions); `origin_id`/`oseq` are the origin's own gap-free sequence, which is what the
# receiver applies by; `origin` is the origin's name (the conflict rule's tie-break).
Txn = _message(
    "Txn",
    8,
    ("seq", _is_position),
    ("prev", _is_seq),
    ("origin", _is_str),
    ("origin_id", _is_str),
    ("oseq", _is_position),
    ("version", _is_stamp),
    ("records", _is_seq),
    ("at", _is_num),
    ("body", _is_bytes),
)
Ack = _message("Ack", 9, ("seq", _is_seq), ("records", _is_seq))
Progress = _message(
    "Progress",
    10,
    ("head", _is_seq),
    ("pending", _is_seq),
    ("oldest_at", _is_opt_num),
    ("now", _is_num),
    ("origins", _is_behind_map),
)
Ping = _message("Ping", 11, ("sent", _is_num))
Pong = _message("Pong", 12, ("sent", _is_num), ("peer_time", _is_num))
Close = _message("Close", 13, ("reason", _is_str), ("retry", _is_bool))
OpRequest = _message("OpRequest", 14, ("id", _is_int), ("body", _is_dict))
OpResult = _message("OpResult", 15, ("id", _is_int), ("status", _is_int), ("body", _anything))
# Publisher -> subscriber: the origins this node receives directly right now (and itself), so
# a subscriber borrowing an origin picks a relay that really has it.
Reach = _message("Reach", 16, ("origins", _is_str_list))


def check_rows(rows: list) -> None:
    """Validate a CopyChunk's rows `[pk, doc, version, origin]` before they touch storage."""
    validate.check_rows(rows)


MESSAGES = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Welcome,
        Subscribe,
        Schema,
        CopyStart,
        CopyChunk,
        CopyEnd,
        Txn,
        Ack,
        Progress,
        Ping,
        Pong,
        Close,
        OpRequest,
        OpResult,
        Reach,
    )
}


def serialize(message: Message) -> bytes:
    """Encode a message as one frame."""
    return bytes([PROTOCOL_VERSION]) + msgpack.packb(
        [message.TYPE, *message.values()], use_bin_type=True
    )


def parse(frame: bytes) -> Message:
    """Decode one frame, raising RemoteProtocolError for anything malformed."""
    if not isinstance(frame, (bytes, bytearray)) or len(frame) < 2:
        raise RemoteProtocolError("frame too short or not binary")
    if frame[0] != PROTOCOL_VERSION:
        raise RemoteProtocolError(f"unsupported protocol version {frame[0]}")
    try:
        raw = msgpack.unpackb(memoryview(frame)[1:], raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise RemoteProtocolError(f"undecodable frame: {exc}") from None
    if not isinstance(raw, list) or not raw or not _is_int(raw[0]) or raw[0] not in MESSAGES:
        raise RemoteProtocolError(
            f"unknown message {raw[0] if isinstance(raw, list) and raw else raw!r:.40}"
        )
    cls = MESSAGES[raw[0]]
    fields = raw[1:]
    if len(fields) != len(cls.FIELDS):
        raise RemoteProtocolError(
            f"{cls.__name__} needs {len(cls.FIELDS)} fields, got {len(fields)}"
        )
    for (name, check), value in zip(cls.FIELDS, fields, strict=True):
        if not check(value):
            raise RemoteProtocolError(f"{cls.__name__}.{name} is malformed: {value!r:.60}")
    return cls(*fields)
