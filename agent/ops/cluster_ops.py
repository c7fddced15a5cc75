"""Cluster operations: add/set/update/remove_node, cluster_status, routes, configure_cluster."""

from __future__ import annotations

from agent.errors import ClientError
from agent.ops.registry import operation
from agent.ops.request import Request


def _replicator(req: Request):
    rep = req.services.replication
    if rep is None:
        raise ClientError("replication is not running on this node")
    return rep


@operation("add_node", "set_node", super_user=True)
async def add_node(req: Request) -> dict:
    from agent.replication.membership import add_node as join

    return await join(_replicator(req), req.body)


@operation("update_node", "set_node_replication", super_user=True)
async def update_node(req: Request) -> dict:
    from agent.replication.membership import add_node as join

    return await join(_replicator(req), req.body, update=True)


@operation("remove_node", super_user=True)
async def remove_node(req: Request) -> dict:
    from agent.replication.membership import remove_node as leave

    return await leave(_replicator(req), req.body)


@operation("cluster_status", super_user=True)
async def cluster_status(req: Request) -> dict:
    from agent.replication.status import cluster_status as status

    return await status(_replicator(req))


@operation("cluster_verify", super_user=True)
async def cluster_verify(req: Request) -> dict:
    """Compare replicated tables across the nodes; with `repair`, mend what differs."""
    from agent.replication.verify import cluster_verify as verify

    return await verify(_replicator(req), req.body)


@operation("configure_cluster", super_user=True)
async def configure_cluster(req: Request) -> dict:
    """Replace the whole setup: remove nodes not listed, add (or update) the listed ones."""
    from agent.replication.membership import add_node as join
    from agent.replication.membership import node_rows, target_url

    rep = _replicator(req)
    bodies = req.array("connections")
    if not all(isinstance(b, dict) for b in bodies):
        raise ClientError("each of 'connections' must be an add_node body")
    urls = {target_url(rep, b) for b in bodies}
    stale = [
        name
        for name, row in (await node_rows(rep)).items()
        if name != rep.node and row.get("url") not in urls
    ]
    if stale:
        await rep.write_nodes(stale, kind="delete")
    for body in bodies:
        await join(rep, body)
    return {"message": "Cluster successfully configured."}


def _route_key(route) -> str:
    return repr(sorted(route.items())) if isinstance(route, dict) else str(route)


@operation("cluster_get_routes", super_user=True)
async def cluster_get_routes(req: Request) -> list:
    return list(_replicator(req).routes)


@operation("cluster_set_routes", super_user=True)
async def cluster_set_routes(req: Request) -> dict:
    from agent.core.routes import RouteError, parse_route

    rep = _replicator(req)
    known = {_route_key(r) for r in rep.routes}
    added, skipped = [], []
    for route in req.array("routes"):
        try:
            parse_route(route, rep.dialing)
        except RouteError as exc:
            raise ClientError(str(exc)) from None
        (skipped if _route_key(route) in known else added).append(route)
        known.add(_route_key(route))
    rep.routes.extend(added)
    await rep.save_routes()
    await rep.reconcile()
    return {"message": "cluster routes successfully set", "set": added, "skipped": skipped}


@operation("cluster_delete_routes", super_user=True)
async def cluster_delete_routes(req: Request) -> dict:
    rep = _replicator(req)
    wanted = {_route_key(r): r for r in req.array("routes")}
    deleted = [r for r in rep.routes if _route_key(r) in wanted]
    rep.routes = [r for r in rep.routes if _route_key(r) not in wanted]
    found = {_route_key(r) for r in deleted}
    skipped = [r for key, r in wanted.items() if key not in found]
    await rep.save_routes()
    await rep.reconcile()
    return {
        "message": "cluster routes successfully deleted",
        "deleted": deleted,
        "skipped": skipped,
    }
