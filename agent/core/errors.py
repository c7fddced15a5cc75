"""Errors of the replication core, separating our misuse from a peer's bad input.

ReplicationError
├── LocalProtocolError    this node used the protocol wrongly (a bug here)
└── RemoteProtocolError   a peer sent something malformed or out of order
"""

from __future__ import annotations


class ReplicationError(Exception):
    """Root of the replication core's errors."""


class LocalProtocolError(ReplicationError):
    """This node broke the protocol: a bug on our side."""


class RemoteProtocolError(ReplicationError):
    """A peer sent a malformed or unexpected message; the link is reset."""
