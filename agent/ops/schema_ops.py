"""Databases, tables and attributes: create, drop and describe."""

from __future__ import annotations

import os

from agent.core.clock import version_ms
from agent.errors import ClientError
from agent.ops.registry import operation
from agent.ops.request import Request
from agent.storage import rows
from agent.storage.catalog import (
    ATTRIBUTE_TYPES,
    TIME_ATTRIBUTES,
    Attribute,
    TableInfo,
    check_attribute,
    check_name,
)
from agent.storage.database import Database
from agent.storage.system import SCHEMAS, SYSTEM
from agent.storage.writes import (
    CreateAttribute,
    CreateTable,
    DropAttribute,
    DropTable,
    LocalTransaction,
    WriteOp,
)


@operation("create_database", "create_schema", super_user=True)
async def create_database(req: Request) -> dict:
    name = check_name("database", req.database())
    await req.services.storage.create(name)
    await _record_database(req, name, "upsert")
    return {"message": f"database '{name}' successfully created"}


async def _record_database(req: Request, name: str, kind: str) -> None:
    """Keep system.hdb_schema in step, so databases reach (or leave) every node."""
    services = req.services
    system = services.storage.get(SYSTEM)
    op = (
        WriteOp(kind, SCHEMAS, records=[{"name": name}])
        if kind == "upsert"
        else WriteOp(kind, SCHEMAS, ids=[name])
    )
    await system.write(LocalTransaction([op], services.storage.clock, services.node_name))


@operation("drop_database", "drop_schema", super_user=True)
async def drop_database(req: Request) -> dict:
    name = req.string("database", "schema")
    replicated = req.boolean("replicated", False)  # checked before anything is dropped
    await req.services.storage.drop(name)
    if replicated:
        await _record_database(req, name, "delete")
    return {"message": f"successfully deleted '{name}'"}


def _attributes(raw: list | None) -> list[Attribute]:
    out = []
    for index, item in enumerate(raw or []):
        if not isinstance(item, dict):
            raise ClientError(f"attributes[{index}] must be an object with a 'name'")
        name = check_attribute(item.get("name", item.get("attribute")))
        kind = item.get("type")
        if kind is not None and kind not in ATTRIBUTE_TYPES:
            raise ClientError(
                f"attributes[{index}].type {kind!r} is not one of {', '.join(ATTRIBUTE_TYPES)}"
            )
        out.append(Attribute(name, kind, bool(item.get("indexed", False))))
    return out


@operation("create_table", super_user=True)
async def create_table(req: Request) -> dict:
    database = check_name("database", req.database())
    table = check_name("table", req.table())
    pk = check_attribute(req.string("primary_key", "hash_attribute"))
    attrs = _attributes(req.array("attributes", required=False))
    info = TableInfo(
        database, table, pk, replicate=req.boolean("replicate", True), schema_defined=bool(attrs)
    )
    for attr in attrs:
        info.attributes[attr.name] = attr
    for name in (pk, "__createdtime__", "__updatedtime__"):
        info.attributes.setdefault(name, Attribute(name))
    services = req.services
    created = not services.storage.exists(database)
    db = await services.storage.create(database, exists_ok=True)
    if created:
        await _record_database(req, database, "upsert")
    await db.write(CreateTable(info, services.storage.clock, services.node_name))
    return {"message": f"table '{database}.{table}' successfully created."}


@operation("drop_table", super_user=True)
async def drop_table(req: Request) -> dict:
    db = req.services.storage.get(req.database())
    table = db.catalog.require(req.table()).name
    if db.name == SYSTEM:  # users, roles and nodes live there: dropping one locks everyone out
        raise ClientError(f"system table '{table}' cannot be dropped")
    replicated = req.boolean("replicated", False)
    services = req.services
    await db.write(DropTable(table, services.storage.clock, services.node_name, replicated))
    return {"message": f"successfully deleted table '{db.name}.{table}'"}


@operation("create_attribute", super_user=True)
async def create_attribute(req: Request) -> dict:
    db = req.services.storage.get(req.database())
    table = db.catalog.require(req.table()).name
    name = check_attribute(req.string("attribute"))
    kind = req.string("type", required=False)
    if kind is not None and kind not in ATTRIBUTE_TYPES:
        raise ClientError(f"'type' {kind!r} is not one of {', '.join(ATTRIBUTE_TYPES)}")
    attr = Attribute(name, kind, req.boolean("indexed", False))
    services = req.services
    await db.write(CreateAttribute(table, attr, services.storage.clock, services.node_name))
    return {"message": f"attribute '{db.name}.{table}.{name}' successfully created."}


@operation("drop_attribute", super_user=True)
async def drop_attribute(req: Request) -> dict:
    db = req.services.storage.get(req.database())
    table = db.catalog.require(req.table()).name
    if db.name == SYSTEM:  # system tables are read by the agent itself
        raise ClientError(f"attributes of system table '{table}' cannot be dropped")
    name = req.string("attribute")
    services = req.services
    await db.write(DropAttribute(table, name, services.storage.clock, services.node_name))
    return {"message": f"successfully deleted attribute '{name}'"}


def _table_stats(conn, table: str) -> tuple[int, int | None]:
    return rows.count_live(conn, table), rows.last_updated(conn, table)


async def describe(db: Database, info: TableInfo, req: Request | None = None) -> dict:
    """Describe one table as HarperDB's describe_table does.

    A role with attribute permissions on the table sees only the attributes it may read,
    insert or update (as HarperDB), so describe does not reveal a hidden attribute's name.
    """
    count, last = await db.read(_table_stats, info.name)
    attributes = info.describe_attributes(declared_only=info.schema_defined)
    guard = req.attribute_guard(db.name, info) if req is not None else None
    if guard is not None:
        attributes = [a for a in attributes if _usable(guard, a["attribute"], info.primary_key)]
    return {
        "schema": db.name,
        "name": info.name,
        "hash_attribute": info.primary_key,
        "audit": True,
        "schema_defined": info.schema_defined,
        "replicate": info.replicate,
        "attributes": attributes,
        "record_count": count,
        "db_size": _size(db),
        "sources": [],
        "last_updated_record": float(version_ms(last)) if last else None,
    }


def _usable(guard, name: str, primary_key: str) -> bool:
    """Whether a restricted role may use an attribute (times count only if it may read them)."""
    actions = ("read",) if name in TIME_ATTRIBUTES else ("read", "insert", "update")
    return any(guard.rules.allows(name, action, primary_key) for action in actions)


def _size(db: Database) -> int:
    try:
        return os.path.getsize(db.path) + os.path.getsize(f"{db.path}-wal")
    except OSError:
        return 0


async def _describe_database(req: Request, db: Database) -> dict:
    out = {}
    for name in db.catalog.names():
        if _visible(req, db.name, name):
            out[name] = await describe(db, db.catalog.require(name), req)
    return out


def _visible(req: Request, database: str, table: str) -> bool:
    return req.user is None or req.user.permissions.can_describe(database, table)


@operation("describe_all")
async def describe_all(req: Request) -> dict:
    storage = req.services.storage
    out = {}
    for name in storage.names():
        if name == SYSTEM:  # as HarperDB: describe_database {database: system} shows it
            continue
        tables = await _describe_database(req, storage.get(name))
        if tables or (req.user is None or req.user.permissions.super_user):
            out[name] = tables
    return out


@operation("describe_database", "describe_schema")
async def describe_database(req: Request) -> dict:
    db = req.services.storage.get(req.database())
    return await _describe_database(req, db)


@operation("describe_table")
async def describe_table(req: Request) -> dict:
    db = req.services.storage.get(req.database())
    info = db.catalog.require(req.table())
    if not _visible(req, db.name, info.name):
        req.check(db.name, info.name, "read")
    return await describe(db, info, req)
