"""Role permissions as HarperDB writes them, and the checks made on every data operation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.errors import ClientError, Forbidden
from agent.storage.catalog import CREATED, UPDATED
from agent.storage.system import CERTIFICATES, NODES, ROLES, SCHEMAS, USERS

ACTIONS = ("read", "insert", "update", "delete")
ATTRIBUTE_ACTIONS = ("read", "insert", "update")
SYSTEM_DATABASE = "system"
ROLE_FLAGS = ("super_user", "cluster_user")
STRUCTURE_USER = "structure_user"
ATTRIBUTE_PERMISSIONS = "attribute_permissions"
_NOT_DATABASES = (*ROLE_FLAGS, STRUCTURE_USER)
# The writer stamps these on every write, whatever a record says; a role may only read them.
TIMESTAMPS = (CREATED, UPDATED)
# System tables are written by these operations alone: a direct write would skip what they do
# (hash a password, validate a role, sign a certificate, create the database file).
SYSTEM_TABLE_OPERATIONS = {
    USERS: "add_user, alter_user or drop_user",
    ROLES: "add_role, alter_role or drop_role",
    NODES: "add_node, update_node or remove_node",
    CERTIFICATES: "add_certificate or remove_certificate",
    SCHEMAS: "create_database, drop_database, create_table or drop_table",
}


@dataclass(frozen=True)
class AttributeRules:
    """One table's non-empty `attribute_permissions`, applied as HarperDB applies them.

    A listed attribute may do what its entry grants (and the table grants too); an attribute
    not listed may do nothing. The primary key is readable whenever the table is, and, unless
    listed itself, may be inserted or updated when any listed attribute may (HarperDB gives the
    key what any attribute has). The timestamps are only ever read: the writer stamps them.
    """

    table_actions: frozenset[str]
    granted: Mapping[str, frozenset[str]]
    # union of every listed attribute's actions: what an unlisted primary key may do
    any_granted: frozenset[str] = frozenset()

    @classmethod
    def from_grant(cls, grant: Mapping[str, Any], table_actions: frozenset[str]) -> AttributeRules:
        """Read a table grant whose `attribute_permissions` is a non-empty list."""
        granted: dict[str, frozenset[str]] = {}
        for entry in grant[ATTRIBUTE_PERMISSIONS]:
            name = entry.get("attribute_name") if isinstance(entry, Mapping) else None
            if not isinstance(name, str):
                continue  # junk grants nothing; the list being non-empty still locks the rest
            actions = frozenset(a for a in ATTRIBUTE_ACTIONS if entry.get(a) is True)
            if name in TIMESTAMPS:  # HarperDB keeps only their read
                actions &= {"read"}
            granted[name] = actions & table_actions
        any_granted = frozenset().union(*granted.values())
        return cls(table_actions, granted, any_granted)

    def allows(self, attribute: str, action: str, primary_key: str) -> bool:
        """Tell whether `action` (read/insert/update) may touch `attribute`."""
        if attribute in TIMESTAMPS:
            return action != "read" or "read" in self.granted.get(attribute, ())
        if attribute == primary_key:
            if action == "read":
                return "read" in self.table_actions
            return action in self.granted.get(attribute, self.any_granted)
        return action in self.granted.get(attribute, ())

    def refused(self, names: Iterable[str], action: str, primary_key: str) -> list[str]:
        """Return, sorted, the names among `names` that `action` may not touch."""
        return sorted({n for n in names if not self.allows(n, action, primary_key)})

    def readable(self, names: Iterable[str], primary_key: str) -> list[str]:
        """Keep the names the role may read, in their order."""
        return [n for n in names if self.allows(n, "read", primary_key)]


@dataclass(frozen=True)
class AttributeGuard:
    """A caller's attribute rules bound to one table: what read and write paths consult."""

    rules: AttributeRules
    primary_key: str
    username: str
    table: str  # "database.table", for messages

    def require(self, action: str, names: Iterable[str]) -> None:
        """Raise Forbidden naming every attribute among `names` that `action` may not touch."""
        refused = self.rules.refused(names, action, self.primary_key)
        if refused:
            listed = ", ".join(f"'{name}'" for name in refused)
            noun = "attribute" if len(refused) == 1 else "attributes"
            raise Forbidden(
                "This operation is not authorized due to role restrictions: "
                f"user '{self.username}' may not {action} {noun} {listed} of '{self.table}'"
            )

    def readable(self, names: Iterable[str]) -> list[str]:
        return self.rules.readable(names, self.primary_key)


@dataclass(frozen=True)
class Permissions:
    """What a role may do: everything (super_user) or per-table actions."""

    super_user: bool = False
    cluster_user: bool = False
    # database -> table -> granted actions; only grants that are exactly `true` count.
    grants: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    # database -> table -> rules, only for tables whose grant lists attribute_permissions:
    # every other table costs a read one dict miss and nothing per record.
    attributes: Mapping[str, Mapping[str, AttributeRules]] = field(default_factory=dict)

    @classmethod
    def from_role(cls, role: Mapping[str, Any] | None) -> Permissions:
        """Read a role row `{"id", "role", "permission"}`; None or junk grants nothing."""
        permission = role.get("permission") if isinstance(role, Mapping) else None
        if not isinstance(permission, Mapping):
            return cls()
        grants = _grants_of(permission)
        return cls(
            super_user=permission.get("super_user") is True,
            cluster_user=permission.get("cluster_user") is True,
            grants=grants,
            attributes=_attribute_rules_of(permission, grants),
        )

    def allows(self, database: str, table: str, action: str) -> bool:
        """Tell whether this role may `action` (read/insert/update/delete) on the table."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        if self.super_user:
            return True
        if database == SYSTEM_DATABASE:
            return False
        return action in self.grants.get(database, {}).get(table, frozenset())

    def can_describe(self, database: str, table: str) -> bool:
        """Tell whether the role holds any grant on the table, enough to see its schema."""
        if self.super_user:
            return True
        if database == SYSTEM_DATABASE:
            return False
        return bool(self.grants.get(database, {}).get(table))

    def attribute_rules(self, database: str, table: str) -> AttributeRules | None:
        """Return the table's attribute rules; None when every attribute follows the table."""
        if self.super_user or not self.attributes:
            return None
        return self.attributes.get(database, {}).get(table)


def _grants_of(permission: Mapping[str, Any]) -> dict[str, dict[str, frozenset[str]]]:
    grants: dict[str, dict[str, frozenset[str]]] = {}
    for database, tables in _tables_of(permission):
        grants[database] = {
            table: frozenset(a for a in ACTIONS if grant.get(a) is True)
            for table, grant in tables.items()
            if isinstance(grant, Mapping)
        }
    return grants


def _attribute_rules_of(
    permission: Mapping[str, Any], grants: Mapping[str, Mapping[str, frozenset[str]]]
) -> dict[str, dict[str, AttributeRules]]:
    """Return rules for the tables whose `attribute_permissions` is a non-empty list.

    An empty (or absent) list means every attribute follows the table (HarperDB's rule).
    """
    rules: dict[str, dict[str, AttributeRules]] = {}
    for database, tables in _tables_of(permission):
        for table, grant in tables.items():
            if not isinstance(grant, Mapping):
                continue
            entries = grant.get(ATTRIBUTE_PERMISSIONS)
            if isinstance(entries, list) and entries:
                actions = grants[database][table]
                rules.setdefault(database, {})[table] = AttributeRules.from_grant(grant, actions)
    return rules


def _tables_of(permission: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield (database, its `tables` object) for each database a permission document grants."""
    for database, spec in permission.items():
        tables = spec.get("tables") if isinstance(spec, Mapping) else None
        if database not in _NOT_DATABASES and isinstance(tables, Mapping):
            yield database, tables


def check_system_write(database: str, table: str) -> None:
    """Refuse a data write to a system table, naming the operations that write it.

    Everyone is refused, super users too: a row written around add_user keeps its password in
    plain text, one around add_role skips the role's validation.
    """
    if database != SYSTEM_DATABASE:
        return
    owners = SYSTEM_TABLE_OPERATIONS.get(table)
    use = f"use {owners}" if owners else "it is maintained by the agent"
    raise Forbidden(
        f"'{database}.{table}' is a system table and cannot be written by insert, update, "
        f"upsert, delete or SQL: {use}"
    )


def validate_permission(permission: object) -> dict[str, Any]:
    """Check an add_role/alter_role permission document and return it normalised.

    Missing table actions become `false` and a missing `attribute_permissions` becomes `[]`
    (HarperDB assumes false for what is not granted). Whether each database, table and
    attribute exists is the caller's check: this one knows no schema.
    """
    if permission is None:
        raise ClientError("permission is required")
    if not isinstance(permission, Mapping):
        raise ClientError("'permission' must be an object")
    result: dict[str, Any] = {"super_user": False}
    for key, value in permission.items():
        if key in ROLE_FLAGS:
            result[key] = _flag(key, value)
        elif key == STRUCTURE_USER:
            result[key] = _structure_user(value)
        else:
            result[key] = _database_permission(key, value)
    _check_role_type(result)
    return result


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ClientError(f"Value for '{key}' permission must be a boolean")
    return value


def _structure_user(value: object) -> bool | list[str]:
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ClientError(f"Value for '{STRUCTURE_USER}' permission must be a boolean or Array")


def _check_role_type(result: Mapping[str, Any]) -> None:
    """Refuse a super_user or cluster_user role that also lists grants (HarperDB does)."""
    flagged = [flag for flag in ROLE_FLAGS if result.get(flag) is True]
    if len(flagged) > 1:
        raise ClientError(
            "Roles cannot have both 'super_user' and 'cluster_user' values included in their "
            "permissions set."
        )
    if flagged and any(key not in ROLE_FLAGS for key in result):
        raise ClientError(
            f"Roles with '{flagged[0]}' set to true cannot have other permissions set."
        )


def _database_permission(database: str, spec: object) -> dict[str, Any]:
    if not database:
        raise ClientError("Invalid database name '' in permission")
    if not isinstance(spec, Mapping):
        raise ClientError(f"Value for database '{database}' must be an object")
    for key in spec:
        if key != "tables":
            raise ClientError(f"Invalid database permission key value '{key}' for '{database}'")
    tables = spec.get("tables", {})
    if not isinstance(tables, Mapping):
        raise ClientError(f"Value for 'tables' must be an object for '{database}'")
    return {"tables": {t: _table_permission(f"{database}.{t}", g) for t, g in tables.items()}}


def _table_permission(where: str, grant: object) -> dict[str, Any]:
    if not isinstance(grant, Mapping):
        raise ClientError(f"Value for table permissions must be an object for '{where}'")
    for key in grant:
        if key not in ACTIONS and key != ATTRIBUTE_PERMISSIONS:
            raise ClientError(f"Invalid table permission key value '{key}' for '{where}'")
    result: dict[str, Any] = {}
    for action in ACTIONS:
        result[action] = grant.get(action, False)
        if not isinstance(result[action], bool):
            raise ClientError(f"Table {action.upper()} permission must be a boolean for '{where}'")
    result[ATTRIBUTE_PERMISSIONS] = _attribute_permissions(where, grant, result)
    return result


def _attribute_permissions(where: str, grant: Mapping[str, Any], table: dict) -> list[dict]:
    entries = grant.get(ATTRIBUTE_PERMISSIONS)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ClientError(f"Value for '{ATTRIBUTE_PERMISSIONS}' must be an array for '{where}'")
    result = [_attribute_permission(where, entry) for entry in entries]
    for action in ATTRIBUTE_ACTIONS:
        if not table[action] and any(entry[action] for entry in result):
            raise ClientError(
                f"You have a conflict with TABLE permissions for '{where}' being false and "
                "ATTRIBUTE permissions being true"
            )
    return result


def _attribute_permission(where: str, entry: object) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise ClientError(f"Entries in '{ATTRIBUTE_PERMISSIONS}' must be objects for '{where}'")
    for key in entry:
        # HarperDB tolerates a `delete` key here although attributes have no delete grant.
        if key not in (*ATTRIBUTE_ACTIONS, "attribute_name", "delete"):
            raise ClientError(f"Invalid attribute permission key value '{key}' for '{where}'")
    name = entry.get("attribute_name")
    if not isinstance(name, str) or not name:
        raise ClientError(
            f"Permission object in '{ATTRIBUTE_PERMISSIONS}' missing an 'attribute_name' "
            f"for '{where}'"
        )
    result: dict[str, Any] = {"attribute_name": name}
    for action in ATTRIBUTE_ACTIONS:
        result[action] = entry.get(action, False)
        if not isinstance(result[action], bool):
            raise ClientError(
                f"{action.upper()} attribute permission for '{name}' must be a boolean "
                f"for '{where}'"
            )
    return result
