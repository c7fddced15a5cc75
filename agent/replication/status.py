"""cluster_status: HarperDB's shape, plus lag, records behind, copy progress and clock offset."""

from __future__ import annotations

import time
from email.utils import formatdate

from agent.core.clock import version_ms


def _date(seconds: float | None) -> str | None:
    return formatdate(seconds, usegmt=True) if seconds else None


def _copy(stats, now: float) -> dict | None:
    if stats.copy_started_at is None:
        return None
    done, total = stats.copy_done, stats.copy_total
    elapsed = max(1e-3, (stats.copy_finished_at or now) - stats.copy_started_at)
    rate = done / elapsed
    remaining = max(0, total - done)
    return {
        "state": "done" if stats.copy_finished_at else "copying",
        "reason": stats.copy_reason,
        "copied": done,
        "total": total,
        "percent": round(100.0 * done / total, 1) if total else 100.0,
        "records_per_second": round(rate, 1),
        "eta_seconds": 0.0
        if stats.copy_finished_at
        else (round(remaining / rate, 1) if rate > 0 else None),
    }


def socket_status(link, session, now: float, names=None) -> dict:
    """Describe one (peer, database) pair from both directions of its links."""
    machine = link.machine if link else None
    stats = machine.stats if machine else None
    streaming = bool(link and link.state.connected)
    copying = bool(stats and stats.copy_started_at and not stats.copy_finished_at)
    out = {
        "database": link.database,
        "connected": streaming,
        "latency": round(stats.latency_ms, 3) if stats and stats.latency_ms is not None else None,
        "thread_id": 0,
        "nodes": sorted(names(link.database, o) if names else o for o in link.subscribed_origins)
        if link
        else [],
        "lastCommitConfirmed": _date(session.acked_at) if session else None,
        "lastReceivedRemoteTime": _date(stats.last_origin_at) if stats else None,
        "lastReceivedLocalTime": _date(stats.last_data_at) if stats else None,
        "lastReceivedVersion": float(version_ms(stats.last_version))
        if stats and stats.last_version
        else None,
        "sendingMessage": _date(version_ms(session.sending) / 1000.0)
        if session and session.sending
        else None,
        "backPressurePercent": session.machine.backpressure() if session else 0.0,
        "lastReceivedStatus": "Copying"
        if copying
        else ("Receiving" if stats and stats.pending else "Waiting"),
        "recordsBehind": stats.pending if stats else None,
        "behind": _behind(link, stats, now, names) if stats else [],
        "lagSeconds": round(machine.lag_seconds(now), 3) if machine else None,
        "clockOffsetMs": round(stats.clock_offset_ms, 3)
        if stats and stats.clock_offset_ms is not None
        else None,
        "recordsReceived": stats.records if stats else 0,
        "copy": _copy(stats, now) if stats else None,
    }
    if not streaming:
        # A down link has no current latency, lag or backlog: showing the last ones would
        # make it look healthy. Say since when it is down instead (and why, below).
        out.update(
            latency=None, lagSeconds=None, recordsBehind=None, clockOffsetMs=None, behind=None
        )
        out["lastReceivedStatus"] = "Disconnected"
        out["downSince"] = _date(link.state.down_since) if link else None
    if link:
        out["gaps"] = link.state.gaps
        out["clockRefusals"] = link.state.clock_refusals
        if link.state.last_gap:
            out["lastGap"] = link.state.last_gap
    if link and link.state.last_error:
        out["lastConnectionError"] = {
            "reason": link.state.last_error,
            "time": _date(link.state.last_error_at),
        }
    return out


def _behind(link, stats, now: float, names) -> list[dict]:
    """Per origin the peer serves on this link: records it has that we have not applied,
    and how old the oldest of them is (seconds, by the peer's clock corrected)."""
    offset = (stats.clock_offset_ms or 0.0) / 1000.0
    out = []
    for origin, (records, oldest) in sorted(stats.behind.items()):
        out.append(
            {
                "origin": names(link.database, origin) if names else origin,
                "records": records,
                "seconds": round(max(0.0, now + offset - oldest), 3) if oldest else 0.0,
            }
        )
    return out


async def origins_status(replicator, database: str) -> list[dict]:
    """Every origin known on `database`: how far this node applied it, which connected links
    serve it, and how far the peers said they hold it. `unserved`: no link brings it."""
    from agent.storage import txlog

    db = replicator.storage.get(database)
    cursors = await db.read(txlog.cursors)
    links = [p.links[database] for p in replicator.peers.values() if database in p.links]
    out = []
    for origin in sorted(replicator.known_origins(database, cursors)):
        if origin == db.origin_id:
            continue
        served = sorted(
            link.peer.key
            for link in links
            if link.state.connected and origin in link.subscribed_origins
        )
        held = [link.peer_cursors.get(origin, 0) for link in links]
        applied = cursors.get(origin, 0)
        out.append(
            {
                "origin": replicator.origin_name(database, origin),
                "id": origin,
                "applied": applied,
                "peersHold": max(held, default=0),
                "servedBy": served,
                "unserved": not served,
            }
        )
    return out


def _public_row(peer) -> dict:
    row = dict(peer.row or {"name": peer.name, "url": peer.url})
    for secret in ("authorization", "ca", "__createdtime__", "__updatedtime__", "secret"):
        row.pop(secret, None)
    row.setdefault("name", peer.name or peer.url)
    row.setdefault("url", peer.url)
    row.setdefault("replicates", True)
    return row


def link_security(peer) -> dict | None:
    """How this node's links to `peer` proved both sides, from the newest dial."""
    found = [link.state.security for link in peer.links.values() if link.state.security]
    if not found:
        return None
    mine = dict(found[0])
    mine.pop("serial", None)
    return mine


async def cluster_status(replicator) -> dict:
    """Assemble the cluster_status answer."""
    now = time.time()
    sessions = {(s.machine.peer, s.machine.database): s for s in replicator.publishers}
    connections = []
    for peer in sorted(replicator.peers.values(), key=lambda p: p.key):
        row = _public_row(peer)
        row["database_sockets"] = [
            socket_status(link, sessions.get((peer.name, db)), now, replicator.origin_name)
            for db, link in sorted(peer.links.items())
        ]
        row["security"] = link_security(peer)
        connections.append(row)
    return {
        "type": "cluster-status",
        "node_name": replicator.node,
        "node_id": replicator.storage.node_id,
        "url": replicator.url,
        "operations_url": replicator.operations_url,
        "is_enabled": True,
        "warnings": replicator.security_warnings(),
        "connections": connections,
        "origins": {
            database: await origins_status(replicator, database)
            for database in replicator.replicated_databases()
        },
        "verify": replicator.last_verify,
        "verifying": replicator.verifying,
        "antiEntropy": replicator.background.status(),
    }
