"""The `sql` operation: SELECT / INSERT / UPDATE / DELETE on db.table."""

from __future__ import annotations

import asyncio
from typing import Any

from agent.errors import ClientError
from agent.ops.permissions import AttributeGuard
from agent.ops.read_ops import OFF_LOOP_ROWS, attributes_wanted, project
from agent.ops.registry import operation
from agent.ops.request import Request
from agent.ops.sql import Delete, Insert, Select, Update, parse
from agent.ops.write_ops import check_attributes, describe_result, run_writes
from agent.storage import query
from agent.storage.conditions import attributes_of
from agent.storage.query import Sort
from agent.storage.writes import WriteOp


@operation("sql")
async def sql(req: Request) -> Any:
    statement = parse(req.string("sql"))
    db = req.services.storage.get(statement.database)
    info = db.catalog.require(statement.table)
    guard = req.attribute_guard(db.name, info)
    if isinstance(statement, Select):
        req.check(db.name, info.name, "read")
        if guard is not None:
            guard.require("read", read_attributes(statement))
        return await _select(db, info, statement, guard)
    return await _write(req, info, statement, guard)


def read_attributes(statement: Select | Update | Delete) -> set[str]:
    """Return every attribute a statement reads: columns, WHERE, ORDER BY, GROUP BY, HAVING.

    A value used to match, order or group leaks as surely as one returned. `*` and COUNT(*)
    name none.
    """
    names = attributes_of(statement.where)
    if isinstance(statement, Select):
        names |= {c.name for c in statement.columns if c.name is not None}
        names |= {o.attribute for o in statement.order_by if o.attribute is not None}
        # GROUP BY and HAVING (their Measure leaves name the aggregated attribute)
        names |= set(getattr(statement, "group_by", ()))
        names |= attributes_of(getattr(statement, "having", None))
    return names


async def _select(db, info, statement: Select, guard: AttributeGuard | None) -> list[dict]:
    columns = statement.columns
    if statement.grouped:  # GROUP BY or aggregates: one row per group, computed in SQLite
        rows = await db.read(
            query.grouped,
            info.name,
            statement.where,
            statement.grouping(),
            statement.limit,
            statement.offset,
        )
        return [{c.output_name: v for c, v in zip(columns, row, strict=True)} for row in rows]
    sorts = [Sort(o.attribute, o.descending) for o in statement.order_by]
    docs = await db.read(
        query.search, info.name, statement.where, sorts, statement.limit, statement.offset
    )
    if len(docs) < OFF_LOOP_ROWS:
        return _shape(docs, columns, info, statement.distinct, guard)
    # decoding a large result takes long enough to stall every other client: off the loop
    return await asyncio.to_thread(_shape, docs, columns, info, statement.distinct, guard)


def _shape(docs: list[str], columns, info, distinct: bool, guard) -> list[dict]:
    if any(c.name is None for c in columns):
        names = attributes_wanted(["*"], info, guard)
        rows = project(docs, names)
    else:
        rows = [
            {c.output_name: r[c.name] for c in columns}
            for r in project(docs, [c.name for c in columns])
        ]
    if not distinct:
        return rows
    seen, unique = set(), []
    for row in rows:
        key = repr(sorted(row.items(), key=lambda kv: kv[0]))
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


async def _write(req: Request, info, statement, guard: AttributeGuard | None) -> dict:
    database = statement.database
    if isinstance(statement, Insert):
        req.check_write(database, info.name, "insert")
        if guard is not None:
            check_attributes(guard, ("insert",), list(statement.records))
        op = WriteOp("insert", info.name, records=[dict(r) for r in statement.records])
    elif isinstance(statement, Update):
        req.check_write(database, info.name, "update")
        if info.primary_key in statement.assignments:
            raise ClientError(f"UPDATE cannot change the primary key '{info.primary_key}'")
        if guard is not None:
            guard.require("update", statement.assignments)
            guard.require("read", read_attributes(statement))
        where = statement.where if statement.where is not None else True
        op = WriteOp("update", info.name, where=where, assign=dict(statement.assignments))
    elif isinstance(statement, Delete):
        req.check_write(database, info.name, "delete")
        if guard is not None:
            guard.require("read", read_attributes(statement))
        where = statement.where if statement.where is not None else True
        op = WriteOp("delete", info.name, where=where)
    else:  # pragma: no cover - parse() returns only the four statements
        raise ClientError("unsupported statement")
    (result,) = await run_writes(req, database, [op])
    return describe_result(result)
