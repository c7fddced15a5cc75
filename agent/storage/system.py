"""The `system` database: users, roles, cluster nodes and certificates.

Its tables replicate like any other, which is how users, roles and membership spread.
"""

from __future__ import annotations

from agent.storage.catalog import TableInfo

SYSTEM = "system"
USERS = "hdb_user"
ROLES = "hdb_role"
NODES = "hdb_nodes"
CERTIFICATES = "hdb_certificate"
SCHEMAS = "hdb_schema"  # one row per database, so create_database reaches every node
SUPER_USER_ROLE = "super_user"

TABLES = {USERS: "username", ROLES: "id", NODES: "name", CERTIFICATES: "name", SCHEMAS: "name"}


def system_tables() -> list[TableInfo]:
    """Return the definitions of the system tables."""
    from agent.storage.catalog import table_from_definition

    return [
        table_from_definition(SYSTEM, {"name": name, "primary_key": pk}, 0.0)
        for name, pk in TABLES.items()
    ]
