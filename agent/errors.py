"""Errors the agent raises, each carrying the HTTP status it answers with.

    AgentError (500)                 anything the agent did wrong
    ├── ClientError (400)            the request was wrong; the message names the field
    │   ├── Unauthorized (401)       no or bad credentials
    │   ├── Forbidden (403)          credentials fine, permission missing
    │   ├── NotFound (404)           named database, table, user, node... does not exist
    │   ├── Conflict (409)           e.g. the root is already in use
    │   └── PayloadTooLarge (413)    body over operationsApi.network.maxBodySize
    └── StorageError (500)           SQLite or the disk failed
        └── StreamGap (500)          a replicated transaction or copy chunk does not follow
                                     what was applied; nothing of it was (the link resubscribes)
    ConfigError                      a setting is invalid (start-up exits with code 2)

Handlers raise these; `agent.ops.server` alone turns them into `{"error": ...}` responses.
"""

from __future__ import annotations


class AgentError(Exception):
    """Root of every error the agent reports to a client."""

    status = 500

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class ClientError(AgentError):
    """The request is wrong; the message says which field and why."""

    status = 400


class Unauthorized(ClientError):
    status = 401


class Forbidden(ClientError):
    status = 403


class NotFound(ClientError):
    status = 404


class Conflict(ClientError):
    status = 409


class PayloadTooLarge(ClientError):
    status = 413


class StorageError(AgentError):
    """SQLite or the disk failed; nothing of the failed write was applied."""

    status = 500


class StreamGap(StorageError):
    """What a peer sent does not continue what was applied here; nothing of it was applied.

    Applying it would let a cursor pass something that never arrived, so the writer refuses
    it and the link subscribes again from the cursors it has.
    """


class ConfigError(Exception):
    """A setting has a bad value: names the key, the value and the reason."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        super().__init__(f"{key}: {value!r}: {reason}")
        self.key = key
        self.value = value
        self.reason = reason
