"""The `sql` operation: SELECT / INSERT / UPDATE / DELETE on db.table."""

from __future__ import annotations

from typing import Any

from agent.errors import ClientError
from agent.ops.read_ops import attributes_wanted, project
from agent.ops.registry import operation
from agent.ops.request import Request
from agent.ops.sql import Delete, Insert, Select, Update, parse
from agent.ops.write_ops import describe_result, run_writes
from agent.storage import query
from agent.storage.query import Sort
from agent.storage.writes import WriteOp


@operation("sql")
async def sql(req: Request) -> Any:
    statement = parse(req.string("sql"))
    db = req.services.storage.get(statement.database)
    info = db.catalog.require(statement.table)
    if isinstance(statement, Select):
        req.check(db.name, info.name, "read")
        return await _select(db, info, statement)
    return await _write(req, info, statement)


async def _select(db, info, statement: Select) -> list[dict]:
    columns = statement.columns
    aggregates = [c for c in columns if c.aggregate]
    if aggregates:
        if len(aggregates) != len(columns):
            raise ClientError("mixing aggregates and plain columns needs GROUP BY (unsupported)")
        specs = [(c.aggregate, c.name) for c in columns]
        values = await db.read(query.aggregate, info.name, statement.where, specs)
        return [{c.output_name: v for c, v in zip(columns, values, strict=True)}]
    sorts = [Sort(o.attribute, o.descending) for o in statement.order_by]
    docs = await db.read(
        query.search, info.name, statement.where, sorts, statement.limit, statement.offset
    )
    return _shape(docs, columns, info, statement.distinct)


def _shape(docs: list[str], columns, info, distinct: bool) -> list[dict]:
    if any(c.name is None for c in columns):
        names = attributes_wanted(["*"], info)
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


async def _write(req: Request, info, statement) -> dict:
    database = statement.database
    if isinstance(statement, Insert):
        req.check(database, info.name, "insert")
        op = WriteOp("insert", info.name, records=[dict(r) for r in statement.records])
    elif isinstance(statement, Update):
        req.check(database, info.name, "update")
        if info.primary_key in statement.assignments:
            raise ClientError(f"UPDATE cannot change the primary key '{info.primary_key}'")
        where = statement.where if statement.where is not None else True
        op = WriteOp("update", info.name, where=where, assign=dict(statement.assignments))
    elif isinstance(statement, Delete):
        req.check(database, info.name, "delete")
        where = statement.where if statement.where is not None else True
        op = WriteOp("delete", info.name, where=where)
    else:  # pragma: no cover - parse() returns only the four statements
        raise ClientError("unsupported statement")
    (result,) = await run_writes(req, database, [op])
    return describe_result(result)
