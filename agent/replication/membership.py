"""Cluster membership: add_node / update_node / remove_node and their peer-side halves.

add_node on A for B opens a replication connection to B (with the caller's credentials when
given), asks B to record A (`add_node_back`), and only when B agreed writes both rows into
A's `system.hdb_nodes`; the rows then replicate, so every node learns every other. Nothing is
written when B cannot be reached or refuses, and credentials are never stored in a row.
On a first join the exchange also settles whose users and roles win (agent.replication.joinusers)
before either side writes its hdb_nodes rows.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from agent import jsonx
from agent.core import messages as m
from agent.core.routes import RouteError, parse_route
from agent.errors import ClientError, Forbidden, NotFound
from agent.replication import certificates, departure, joinusers, verifypeer
from agent.replication.peers import authorization_header, normalize_url, start_version
from agent.replication.transport import DialError
from agent.storage import query
from agent.storage.system import NODES, SYSTEM

log = logging.getLogger(__name__)
OP_TIMEOUT = 10.0


def reverse_subscriptions(subscriptions: list | None) -> list | None:
    """Mirror subscriptions for the peer's row: what I subscribe to, it publishes."""
    if not subscriptions:
        return None
    return [
        {**s, "subscribe": bool(s.get("publish", True)), "publish": bool(s.get("subscribe", True))}
        for s in subscriptions
    ]


def check_subscriptions(raw: Any) -> list | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ClientError(
            "'subscriptions' must be an array of {database, table, subscribe, publish}"
        )
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(
            item.get("database", item.get("schema")), str
        ):
            raise ClientError(f"subscriptions[{index}] needs a 'database' (or 'schema')")
        out.append(
            {
                "database": item.get("database", item.get("schema")),
                "table": item.get("table"),
                "subscribe": bool(item.get("subscribe", True)),
                "publish": bool(item.get("publish", True)),
            }
        )
    return out


async def node_rows(replicator) -> dict[str, dict]:
    db = replicator.storage.get(SYSTEM)
    docs = await db.read(query.search, NODES, None)
    rows = [jsonx.loads(d) for d in docs]
    return {r["name"]: r for r in rows if "name" in r}


def target_url(replicator, body: dict) -> str:
    """Return the URL add_node dials: `url`, or `hostname` with this node's own settings."""
    url = body.get("url")
    host = body.get("hostname") or body.get("node_name") or body.get("name")
    if not url and not host:
        raise ClientError("add_node needs 'hostname' or 'url'")
    try:
        return parse_route(url or host, replicator.dialing).url
    except RouteError as exc:
        raise ClientError(str(exc)) from None


async def call_peer(
    replicator,
    url: str,
    header: str | None,
    body: dict,
    timeout: float = OP_TIMEOUT,
    *,
    peer_name: str | None = None,
    verify_tls: bool = True,
) -> dict:
    """Run one operation on a peer over a replication connection; raise ClientError if refused.

    Without `header` this node proves who it is (certificate or proof) and so must the peer.
    `timeout` bounds the answer (the dial stays bounded by OP_TIMEOUT)."""
    try:
        conn = await replicator.connect(
            url,
            peer_name=peer_name,
            authorization=header,
            verify_tls=verify_tls,
            timeout=OP_TIMEOUT,
        )
    except DialError as exc:
        if exc.status in (401, 403):
            raise ClientError(f"{url} refused the credentials: {exc}") from None
        raise ClientError(f"could not reach {url}: {exc}") from None
    try:
        await conn.send(m.serialize(m.OpRequest(1, body)))
        async with asyncio.timeout(timeout):
            reply = m.parse(await conn.recv())
    except TimeoutError:
        raise ClientError(
            f"{url} did not answer {body['operation']} within {timeout:.0f}s"
        ) from None
    except Exception as exc:
        raise ClientError(
            f"{url} closed the connection during {body['operation']}: {exc}"
        ) from None
    finally:
        await conn.close()
    if not isinstance(reply, m.OpResult) or reply.status != 200:
        detail = reply.body.get("error") if isinstance(reply.body, dict) else reply.body
        raise ClientError(f"{url} refused {body['operation']}: {detail}")
    return reply.body


def _peer_row(
    name: str, url: str, subscriptions: list | None, answer: dict, existing: dict, body: dict
) -> dict:
    """Return the hdb_nodes row add_node writes for the peer that answered add_node_back."""
    row = {"name": name, "url": url, "replicates": True, "subscriptions": subscriptions}
    row.update(certificates.peer_fields(answer.get("usingCA"), existing))
    revoked = certificates.revoked(body.get("revoked_certificates"), existing)
    if revoked:
        row["revoked_certificates"] = revoked
    if body.get("start_time") is not None:
        row["start_time"] = body.get("start_time")
    return row


async def add_node(replicator, body: dict, update: bool = False) -> dict:
    """Join a peer: the peer records us first, then we record it; all or nothing."""
    url = target_url(replicator, body)
    subscriptions = check_subscriptions(body.get("subscriptions"))
    try:
        header = authorization_header(body.get("authorization"))
        start_version(body.get("start_time"))  # validate before anything is written
    except RouteError as exc:
        raise ClientError(str(exc)) from None
    rows = await node_rows(replicator)
    existing = next(
        (r for r in rows.values() if normalize_url(r.get("url", "")) == normalize_url(url)), None
    )
    if update and existing is None:
        raise NotFound(f"{body.get('hostname') or url} does not exist")
    verify_tls = body.get("verify_tls", True)
    if not isinstance(verify_tls, bool):
        raise ClientError("'verify_tls' must be true or false")
    back = {
        "operation": "add_node_back",
        "hostname": replicator.node,
        "url": replicator.url,
        "subscriptions": reverse_subscriptions(subscriptions),
        **certificates.offer(replicator, header is not None),
    }
    if existing is None:  # a first join: settle whose users and roles win
        back["join"] = await user_offer(replicator, rows)
    answer = await call_peer(
        replicator,
        url,
        header,
        back,
        peer_name=existing.get("name") if existing else None,
        verify_tls=verify_tls,
    )
    peer_name = answer.get("node")
    if not isinstance(peer_name, str) or not peer_name:
        raise ClientError(f"{url} answered add_node_back without its node name")
    signed = certificates.accept(replicator, answer, peer_name)  # checked before any write
    replaced = nothing_replaced()
    if existing is None:
        replaced = await joinusers.settle_caller(replicator, answer.get("join"), peer_name)
    row = _peer_row(peer_name, url, subscriptions, answer, existing or {}, body)
    if body.get("retain_authorization") and header:
        replicator.retain(url, header)  # a local 0600 file, never a replicated row
    await certificates.store(replicator, signed)
    await replicator.write_nodes([row, *await own_row_if_needed(replicator)])
    await replicator.reconcile()
    verb = "updated" if update else "added"
    suffix = "" if update else " to cluster"
    return {
        "message": f"Successfully {verb} '{url}'{suffix}",
        "replaced_users": replaced["users"],
        "replaced_roles": replaced["roles"],
    }


def nothing_replaced() -> dict[str, list[str]]:
    return {"users": [], "roles": []}


def has_peers(replicator, rows: dict[str, dict], other: str | None = None) -> bool:
    """Tell whether this node is already in a cluster (besides with `other`)."""
    names = set(rows) - {replicator.node, other}
    return bool(names or replicator.routes)


async def user_offer(replicator, rows: dict[str, dict]) -> dict:
    """Return this side's offer for add_node_back: digests of its users and roles."""
    mine = await joinusers.read_rows(replicator.storage)
    return joinusers.offer(mine, secrets.token_hex(16), has_peers(replicator, rows))


OWN_FIELDS = ("url", "node_id", "ca", "operations_url")  # a change rewrites the own row


async def own_row_if_needed(replicator) -> list[dict]:
    """Return this node's own row to write, unless it is already there as it should be.

    Rewriting it on every add_node would, once it replicates, replace (last write wins on the
    whole row) the copy a peer keeps of it, with the subscriptions that peer recorded.
    """
    mine = (await node_rows(replicator)).get(replicator.node)
    fresh = own_row(replicator)
    if mine is not None and all(mine.get(k) == fresh.get(k) for k in OWN_FIELDS):
        return []
    return [fresh]


def own_row(replicator) -> dict:
    """Return this node's hdb_nodes row: its name, url, node id, operations API URL and the
    CA it chains to."""
    row = {
        "name": replicator.node,
        "url": replicator.url,
        "operations_url": replicator.operations_url,
        "replicates": True,
        "node_id": replicator.storage.node_id,
    }
    row.update(certificates.own_fields(replicator))
    return row


async def remove_node(replicator, body: dict) -> dict:
    """Remove a node everywhere, after (bounded) waiting for its writes to arrive here."""
    name = body.get("hostname") or body.get("node_name") or body.get("name")
    if not isinstance(name, str) or not name:
        raise ClientError("remove_node needs 'hostname'")
    rows = await node_rows(replicator)
    row = rows.get(name) or next((r for r in rows.values() if r.get("url") == name), None)
    if row is None:
        raise NotFound(f"{name} does not exist")
    answer: dict = {"message": f"Successfully removed '{name}' from cluster"}
    answer.update(await _drain_leaving(replicator, row))
    await replicator.write_nodes([row["name"]], kind="delete")
    replicator.forget_retained(row.get("url"))  # retain_authorization ends with the node
    try:
        await call_peer(
            replicator,
            row["url"],
            None,
            {"operation": "remove_node_back", "hostname": replicator.node},
            peer_name=row["name"],
        )
    except ClientError as exc:
        log.info("remove_node_back to %s failed (it may be offline): %s", name, exc)
    await replicator.reconcile()
    return answer


async def _drain_leaving(replicator, row: dict) -> dict:
    """Let a live node's writes reach this node before it leaves; say what did not."""
    try:
        heads = await call_peer(
            replicator, row["url"], None, {"operation": "origin_heads"}, peer_name=row["name"]
        )
    except ClientError as exc:
        return {
            "warning": f"{row['name']} could not be asked how far its writes go ({exc}); "
            "any it had not sent yet stay on it only"
        }
    missing = await departure.drain(replicator, heads if isinstance(heads, dict) else {})
    if not missing:
        return {}
    return {
        "warning": f"{row['name']} left before all its writes arrived here",
        "undelivered": missing,
    }


async def handle_peer_operation(replicator, body: dict, identity) -> dict:
    """Serve add_node_back / remove_node_back / origin_heads / verify_* from a peer.

    A node may only ask as itself: add_node_back and remove_node_back name the caller, and
    that must be the node the link was admitted as (a super user may name any).
    """
    op = body.get("operation")
    if op in ("add_node_back", "remove_node_back") and not identity.may_speak_as(
        body.get("hostname")
    ):
        raise Forbidden(
            f"{op} names {body.get('hostname')!r}, but this link was admitted as {identity.name}"
        )
    if op == "add_node_back":
        return await _add_node_back(replicator, body, identity)
    if op == "remove_node_back":
        await departure.forget_cluster(replicator)
        return {"node": replicator.node}
    if op == "origin_heads":
        return await departure.origin_heads(replicator)
    if op in verifypeer.PEER_OPERATIONS:
        return await verifypeer.serve(replicator, body)
    raise ClientError(f"unknown peer operation {op!r}")


async def _add_node_back(replicator, body: dict, identity) -> dict:
    name, url = body.get("hostname"), body.get("url")
    if not isinstance(name, str) or not isinstance(url, str) or not name or not url:
        raise ClientError("add_node_back needs hostname and url")
    if name == replicator.node:
        raise ClientError(f"node name {name!r} is this node's own name")
    subscriptions = check_subscriptions(body.get("subscriptions"))
    signed = certificates.sign_for(replicator, body, identity)  # refused before any write
    existing = (await node_rows(replicator)).get(name) or {}
    verdict = await _settle_users(replicator, body.get("join"), name)
    row = {"name": name, "url": url, "replicates": True, "subscriptions": subscriptions}
    row.update(certificates.peer_fields(body.get("ca"), existing))
    await replicator.write_nodes([row, *await own_row_if_needed(replicator)])
    await replicator.reconcile()
    return {"node": replicator.node, "url": replicator.url, "join": verdict, **signed}


async def _settle_users(replicator, offer: Any, caller: str) -> dict | None:
    """Settle whose users and roles win before the caller's row is written; None if not asked.

    A caller this node already records is joined already: its rows replicate as they are.
    """
    if offer is None:
        return None
    rows = await node_rows(replicator)
    if caller in rows:
        joinusers.parse_offer(offer)
        return joinusers.Verdict(True, 0, nothing_replaced(), nothing_replaced()).wire()
    mine = has_peers(replicator, rows, caller)
    verdict = await joinusers.settle_callee(replicator, offer, mine, caller)
    return verdict.wire()
