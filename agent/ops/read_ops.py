"""search_by_id, search_by_value and search_by_conditions."""

from __future__ import annotations

import asyncio
from typing import Any

from agent import jsonx
from agent.core.validate import valid_attribute
from agent.errors import ClientError
from agent.ops.permissions import AttributeGuard
from agent.ops.registry import operation
from agent.ops.request import Request
from agent.storage import query
from agent.storage.catalog import TableInfo
from agent.storage.conditions import Compare, Condition, attributes_of, compare, parse_conditions
from agent.storage.database import Database
from agent.storage.query import Sort
from agent.storage.writes import check_key


def attributes_wanted(raw: Any, info: TableInfo, guard: AttributeGuard | None = None) -> list[str]:
    """Resolve get_attributes (default "*") into the attribute names to return.

    Under attribute permissions `*` means every attribute the role may read, and naming one it
    may not is refused (403) rather than answered with nulls.
    """
    if raw is None:
        raw = ["*"]
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
        raise ClientError("'get_attributes' must be an array of attribute names")
    if guard is not None:
        guard.require("read", [a for a in raw if a != "*"])
    if "*" in raw:
        names = [a["attribute"] for a in info.describe_attributes()]
        return names if guard is None else guard.readable(names)
    return raw


# Results this large are decoded on a thread: ~5 us a row would stall other clients.
OFF_LOOP_ROWS = 2000


def project(docs: list[str], names: list[str]) -> list[dict]:
    """Parse documents and keep the wanted attributes (absent ones as null)."""
    out = []
    for doc in docs:
        record = jsonx.loads(doc)
        out.append({name: record.get(name) for name in names})
    return out


async def project_async(docs: list[str], names: list[str]) -> list[dict]:
    """`project`, off the event loop when the result is large."""
    if len(docs) < OFF_LOOP_ROWS:
        return project(docs, names)
    return await asyncio.to_thread(project, docs, names)


def target(req: Request) -> tuple[Database, TableInfo, AttributeGuard | None]:
    """Return the database, table and attribute guard of a read, after checking read permission."""
    db = req.services.storage.get(req.database())
    info = db.catalog.require(req.table())
    req.check(db.name, info.name, "read")
    return db, info, req.attribute_guard(db.name, info)


def _ids(req: Request, info: TableInfo) -> list:
    """Return search_by_id's ids, each a usable primary key (SQLite would take true for 1)."""
    ids = req.array("ids", "hash_values")
    for index, key in enumerate(ids):
        try:
            check_key(key, info.primary_key)
        except ClientError as exc:
            raise ClientError(f"ids[{index}]: {exc.message}") from None
    return ids


@operation("search_by_id", "search_by_hash")
async def search_by_id(req: Request) -> list[dict]:
    db, info, guard = target(req)
    ids = _ids(req, info)
    names = attributes_wanted(req.get("get_attributes"), info, guard)
    if len(ids) <= 16:  # a few primary-key lookups: cheaper here than a thread hop
        docs = db.read_sync(query.by_ids, info.name, ids)
    else:
        docs = await db.read(query.by_ids, info.name, ids)
    return await project_async(docs, names)


def wildcard(attribute: str, value: Any) -> Condition:
    """Turn search_by_value's value (with `*` wildcards) into a condition."""
    if not isinstance(value, str) or "*" not in value:
        return compare(attribute, "equals", value)
    if value.strip("*") == "":
        return Compare(attribute, "is_not_null")
    inner = value.strip("*")
    if "*" not in inner:
        if value.startswith("*") and value.endswith("*"):
            return compare(attribute, "contains", inner)
        if value.endswith("*"):
            return compare(attribute, "starts_with", inner)
        return compare(attribute, "ends_with", inner)
    return compare(attribute, "like", value.replace("*", "%"))


def sorts(raw: Any) -> list[Sort]:
    """Parse `sort: {attribute, descending, next: {...}}` into a list of sorts."""
    out: list[Sort] = []
    while raw is not None:
        if not isinstance(raw, dict) or not isinstance(raw.get("attribute"), str):
            raise ClientError("'sort' must be an object with an 'attribute' (and 'descending')")
        if not valid_attribute(raw["attribute"]):
            raise ClientError(f"'sort' attribute {raw['attribute']!r} is not an attribute name")
        out.append(Sort(raw["attribute"], bool(raw.get("descending", False))))
        raw = raw.get("next")
        if len(out) > 16:
            raise ClientError("'sort' chains at most 16 attributes")
    return out


async def _search(
    req: Request, db: Database, info: TableInfo, guard: AttributeGuard | None, condition: Condition
) -> list:
    order = sorts(req.get("sort"))
    if guard is not None:  # matching or ordering by a value reveals it as surely as returning it
        guard.require("read", attributes_of(condition) | {s.attribute for s in order})
    names = attributes_wanted(req.get("get_attributes"), info, guard)
    docs = await db.read(
        query.search,
        info.name,
        condition,
        order,
        req.integer("limit"),
        req.integer("offset"),
    )
    return await project_async(docs, names)


@operation("search_by_value")
async def search_by_value(req: Request) -> list[dict]:
    db, info, guard = target(req)
    attribute = req.string("attribute", "search_attribute")
    if guard is not None:  # first: an unknown name must not tell a hidden one apart
        guard.require("read", [attribute])
    if attribute not in info.attributes:
        raise ClientError(f"unknown attribute '{attribute}'")
    value = req.require("value", "search_value")
    return await _search(req, db, info, guard, wildcard(attribute, value))


@operation("search_by_conditions")
async def search_by_conditions(req: Request) -> list[dict]:
    db, info, guard = target(req)
    condition = parse_conditions(req.require("conditions"), req.get("operator", default="and"))
    return await _search(req, db, info, guard, condition)
