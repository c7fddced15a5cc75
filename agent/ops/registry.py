"""The table of operations: name (and aliases) to handler, with who may call it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from agent.errors import ClientError
from agent.ops.request import Request

Handler = Callable[[Request], Awaitable[Any]]


@dataclass(frozen=True)
class Operation:
    name: str
    handler: Handler
    auth: bool = True  # False: answered without credentials (create_authentication_tokens)
    super_user: bool = False


OPERATIONS: dict[str, Operation] = {}


def operation(name: str, *aliases: str, auth: bool = True, super_user: bool = False):
    """Register the decorated coroutine as the handler of `name` and its aliases."""

    def register(handler: Handler) -> Handler:
        for key in (name, *aliases):
            if key in OPERATIONS:
                raise RuntimeError(f"operation {key!r} registered twice")
            OPERATIONS[key] = Operation(key, handler, auth, super_user)
        return handler

    return register


def lookup(body: Any) -> Operation:
    """Return the operation a request body names, with HarperDB's messages otherwise."""
    if not isinstance(body, dict) or "operation" not in body:
        raise ClientError("Request body must include an 'operation' property.")
    name = body["operation"]
    op = OPERATIONS.get(name) if isinstance(name, str) else None
    if op is None:
        raise ClientError(f"Operation '{name}' not found")
    return op


def load_handlers() -> None:
    """Import every handler module so their operations register."""
    from agent.ops import (  # noqa: F401
        cert_ops,
        cluster_ops,
        read_ops,
        schema_ops,
        sql_ops,
        status_ops,
        user_ops,
        write_ops,
    )
