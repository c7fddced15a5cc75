"""One operation request: its JSON body, the caller, and typed access to fields.

Field helpers accept HarperDB's aliases (`schema` for `database`, `hash_attribute` for
`primary_key`, `hash_values` for `ids`, `search_attribute`/`search_value`) and raise
ClientError naming the field when it is missing or of the wrong type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.errors import ClientError, Forbidden
from agent.ops.permissions import AttributeGuard, check_system_write

if TYPE_CHECKING:
    from agent.ops.auth import User
    from agent.ops.services import Services
    from agent.storage.catalog import TableInfo

DEFAULT_DATABASE = "data"
_MISSING = object()


@dataclass
class Request:
    body: dict
    user: User | None
    services: Services
    authorization: str | None = None  # the raw header, for refresh_operation_token

    @property
    def operation(self) -> str:
        return self.body["operation"]

    def get(self, *names: str, default: Any = None) -> Any:
        """Return the first present of `names` (a field and its aliases)."""
        for name in names:
            if name in self.body and self.body[name] is not None:
                return self.body[name]
        return default

    def require(self, *names: str) -> Any:
        value = self.get(*names, default=_MISSING)
        if value is _MISSING:
            raise ClientError(f"'{names[0]}' is required")
        return value

    def string(self, *names: str, required: bool = True, default: str | None = None) -> Any:
        value = self.require(*names) if required else self.get(*names, default=default)
        if value is not None and not isinstance(value, str):
            raise ClientError(f"'{names[0]}' must be a string, got {_kind(value)}")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.get(name, default=default)
        if not isinstance(value, bool):
            raise ClientError(f"'{name}' must be true or false, got {_kind(value)}")
        return value

    def integer(self, name: str, default: int | None = None, minimum: int = 0) -> int | None:
        value = self.get(name, default=default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ClientError(f"'{name}' must be an integer >= {minimum}, got {value!r:.40}")
        return value

    def array(self, *names: str, required: bool = True) -> list | None:
        value = self.require(*names) if required else self.get(*names)
        if value is not None and not isinstance(value, list):
            raise ClientError(f"'{names[0]}' must be an array, got {_kind(value)}")
        return value

    def database(self) -> str:
        """Return the `database` field (alias `schema`), defaulting to "data"."""
        return self.string("database", "schema", required=False, default=DEFAULT_DATABASE)

    def table(self) -> str:
        return self.string("table")

    def require_super_user(self) -> None:
        if self.user is not None and not self.user.permissions.super_user:
            raise Forbidden(f"operation '{self.operation}' is restricted to super users")

    def check(self, database: str, table: str, action: str) -> None:
        """Raise Forbidden unless the caller may `action` on `database.table`."""
        if self.user is None or self.user.permissions.allows(database, table, action):
            return
        raise Forbidden(
            f"user '{self.user.username}' is not allowed to {action} '{database}.{table}'"
        )

    def check_write(self, database: str, table: str, action: str) -> None:
        """Raise Forbidden unless the caller may `action` on the table and it is no system one."""
        check_system_write(database, table)
        self.check(database, table, action)

    def attribute_guard(self, database: str, info: TableInfo) -> AttributeGuard | None:
        """Return the caller's attribute rules on the table; None when there are none to apply.

        None for super users and for roles whose grant on the table lists no attributes, so
        that the common case costs one lookup per request and nothing per record.
        """
        if self.user is None:
            return None
        rules = self.user.permissions.attribute_rules(database, info.name)
        if rules is None:
            return None
        return AttributeGuard(
            rules, info.primary_key, self.user.username, f"{database}.{info.name}"
        )


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
