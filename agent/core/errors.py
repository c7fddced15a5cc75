"""Errors of the replication core, separating our misuse from a peer's bad input.

ReplicationError
├── LocalProtocolError    this node used the protocol wrongly (a bug here)
└── RemoteProtocolError   a peer sent something malformed or out of order; `code` is the
                          WebSocket close code the link ends with:
                            PROTOCOL_ERROR  1002  not our protocol: version byte, msgpack,
                                                  message type, field count or types, order
                            INVALID_PAYLOAD 1007  a well-formed frame whose data storage
                                                  must not take (documents, names, keys)
"""

from __future__ import annotations

# WebSocket close codes (RFC 6455 section 7.4.1) a link ends with, by cause.
NORMAL = 1000
PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007
POLICY = 1008  # refused by a rule of ours (the clock guard)
TOO_BIG = 1009  # a frame above replication.maxPayload
INTERNAL_ERROR = 1011


class ReplicationError(Exception):
    """Root of the replication core's errors."""


class LocalProtocolError(ReplicationError):
    """This node broke the protocol: a bug on our side."""


class RemoteProtocolError(ReplicationError):
    """A peer sent a malformed or unexpected message; the link is reset."""

    def __init__(self, message: str, code: int = PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code
