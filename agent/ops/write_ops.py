"""insert, update, upsert, delete, and `transaction` (several of them, all or none)."""

from __future__ import annotations

from agent.errors import ClientError
from agent.ops.permissions import AttributeGuard
from agent.ops.registry import operation
from agent.ops.request import Request
from agent.storage.writes import WRITE_KINDS, LocalTransaction, OpResult, WriteOp

ACTIONS = {
    "insert": ("insert",),
    "update": ("update",),
    "upsert": ("insert", "update"),
    "delete": ("delete",),
}


def _plural(n: int) -> str:
    return "record" if n == 1 else "records"


def describe_result(result: OpResult) -> dict:
    """Shape one operation's outcome as HarperDB answers it."""
    done, total = len(result.written), len(result.written) + len(result.skipped)
    if result.kind == "insert":
        return {
            "message": f"inserted {done} of {total} {_plural(total)}",
            "inserted_hashes": result.written,
            "skipped_hashes": result.skipped,
        }
    if result.kind == "update":
        return {
            "message": f"updated {done} of {total} {_plural(total)}",
            "update_hashes": result.written,
            "skipped_hashes": result.skipped,
        }
    if result.kind == "upsert":
        return {
            "message": f"upserted {done} of {total} {_plural(total)}",
            "upserted_hashes": result.written,
        }
    return {
        "message": f"{done} of {total} {_plural(total)} successfully deleted",
        "deleted_hashes": result.written,
        "skipped_hashes": result.skipped,
    }


def write_op(req: Request, kind: str) -> tuple[str, WriteOp]:
    """Validate one write body and return (database, WriteOp)."""
    services = req.services
    database = req.database()
    db = services.storage.get(database)
    info = db.catalog.require(req.table())
    for action in ACTIONS[kind]:
        req.check_write(database, info.name, action)
    if kind == "delete":  # attributes carry no delete grant: a row goes whole (as HarperDB)
        ids = req.array("ids", "hash_values")
        return database, WriteOp(kind, info.name, ids=ids)
    records = req.array("records")
    guard = req.attribute_guard(database, info)
    if guard is not None:
        check_attributes(guard, ACTIONS[kind], records)
    return database, WriteOp(kind, info.name, records=records)


def check_attributes(guard: AttributeGuard, actions: tuple[str, ...], records: list) -> None:
    """Refuse the whole write if any record carries an attribute the role may not write."""
    names = {name for record in records if isinstance(record, dict) for name in record}
    for action in actions:
        guard.require(action, names)


async def run_writes(req: Request, database: str, ops: list[WriteOp]) -> list[OpResult]:
    services = req.services
    db = services.storage.get(database)
    job = LocalTransaction(ops, services.storage.clock, services.node_name)
    return await db.write(job)


async def _single(req: Request, kind: str) -> dict:
    database, op = write_op(req, kind)
    (result,) = await run_writes(req, database, [op])
    return describe_result(result)


@operation("insert")
async def insert(req: Request) -> dict:
    return await _single(req, "insert")


@operation("update")
async def update(req: Request) -> dict:
    return await _single(req, "update")


@operation("upsert")
async def upsert(req: Request) -> dict:
    return await _single(req, "upsert")


@operation("delete")
async def delete(req: Request) -> dict:
    return await _single(req, "delete")


@operation("transaction")
async def transaction(req: Request) -> dict:
    """Apply several writes atomically: every one commits, or none does."""
    bodies = req.array("operations")
    if not bodies:
        raise ClientError("'operations' must hold at least one operation")
    parsed = [_transaction_part(req, index, body) for index, body in enumerate(bodies)]
    databases = sorted({database for database, _ in parsed})
    if len(databases) > 1:
        raise ClientError(
            "a transaction must stay within one database (SQLite commits each database file "
            f"separately, so atomicity across files cannot be kept); got {', '.join(databases)}"
        )
    results = await run_writes(req, databases[0], [op for _, op in parsed])
    return {
        "message": f"transaction committed {len(results)} operations",
        "results": [describe_result(r) for r in results],
    }


def _transaction_part(req: Request, index: int, body: object) -> tuple[str, WriteOp]:
    if not isinstance(body, dict):
        raise ClientError(f"operations[{index}] must be an object")
    kind = body.get("operation")
    if kind not in WRITE_KINDS:
        raise ClientError(
            f"operations[{index}].operation must be one of {', '.join(WRITE_KINDS)}, got {kind!r}"
        )
    try:
        return write_op(Request(body, req.user, req.services), kind)
    except ClientError as exc:
        exc.message = f"operations[{index}]: {exc.message}"
        raise
