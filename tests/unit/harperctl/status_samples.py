"""cluster_status answers of a three-node cluster (a, b, c) in several conditions."""

from __future__ import annotations

import copy
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

NOW = parsedate_to_datetime("Tue, 01 Dec 2026 10:14:10 GMT").timestamp()
NAMES = ("a", "b", "c")


def ops_url(name: str) -> str:
    return f"http://{name}:9925"


def socket(database: str, **fields: Any) -> dict[str, Any]:
    """A healthy socket, with `fields` changed."""
    out = {
        "database": database,
        "connected": True,
        "latency": 0.4,
        "lastReceivedStatus": "Waiting",
        "recordsBehind": 0,
        "behind": [],
        "lagSeconds": 0.0,
        "clockOffsetMs": 0.02,
        "copy": None,
    }
    out.update(fields)
    return out


def down(database: str, reason: str, since: float = NOW - 42) -> dict[str, Any]:
    """A socket whose link is down, as the agent reports it."""
    return socket(
        database,
        connected=False,
        latency=None,
        recordsBehind=None,
        behind=None,
        lagSeconds=None,
        clockOffsetMs=None,
        lastReceivedStatus="Disconnected",
        downSince=formatdate(since, usegmt=True),
        lastConnectionError={"reason": reason, "time": formatdate(since, usegmt=True)},
    )


def status(name: str, sockets: dict[str, list[dict]] | None = None, **extra: Any) -> dict:
    """Node `name`'s answer: a link from each other node with `sockets[peer]` (default: a
    healthy dev and system socket)."""
    connections = []
    for peer in NAMES:
        if peer == name:
            continue
        chosen = (sockets or {}).get(peer) or [socket("dev"), socket("system")]
        connections.append(
            {
                "name": peer,
                "url": f"ws://{peer}:9925",
                "replicates": True,
                "database_sockets": copy.deepcopy(chosen),
                "security": {"mode": "signed", "transport": "ws"},
            }
        )
    answer = {
        "type": "cluster-status",
        "node_name": name,
        "url": f"ws://{name}:9925",
        "operations_url": ops_url(name),
        "connections": connections,
        "warnings": [],
        "origins": {
            "dev": [
                {"origin": p, "id": ord(p), "applied": 10, "peersHold": 10, "unserved": False}
                for p in NAMES
                if p != name
            ]
        },
    }
    answer.update(extra)
    return answer


def rows() -> list[dict]:
    """system.hdb_nodes as every node holds it."""
    return [{"name": n, "url": f"ws://{n}:9925", "operations_url": ops_url(n)} for n in NAMES]


HEALTHY = {name: status(name) for name in NAMES}
LAGGING = {
    **HEALTHY,
    "b": status(
        "b",
        {
            "a": [
                socket(
                    "dev",
                    recordsBehind=20028,
                    behind=[{"origin": "a", "records": 20028, "seconds": 12.5}],
                    lastReceivedStatus="Receiving",
                ),
                socket("system"),
            ]
        },
    ),
}
COPYING = {
    **HEALTHY,
    "c": status(
        "c",
        {
            "a": [
                socket(
                    "dev",
                    lastReceivedStatus="Copying",
                    recordsBehind=5800,
                    copy={
                        "state": "copying",
                        "copied": 4200,
                        "total": 10000,
                        "percent": 42.0,
                        "eta_seconds": 3.4,
                    },
                ),
                socket("system"),
            ]
        },
    ),
}
LONG_ERROR = (
    "ws://c:9925 refused the connection: HTTP 403: node c is not a member of this cluster "
    "or its certificate serial 4f:2a:91 is revoked (revoked_certificates on update_node)"
)
# c is down: a and b see their links from c down; c does not answer
DOWN = {
    "a": status(
        "a",
        {
            "c": [
                down(
                    "dev", "cannot reach ws://c:9925: [Errno 111] Connect call failed ('c', 9925)"
                ),
                down("system", "refused"),
            ]
        },
    ),
    "b": status("b", {"c": [down("dev", LONG_ERROR), down("system", LONG_ERROR)]}),
}

# What HarperDB itself answers: none of our extra fields, an error with a code.
HARPERDB_STATUS = {
    "type": "cluster-status",
    "node_name": "server-one",
    "is_enabled": True,
    "connections": [
        {
            "name": "server-two",
            "url": "wss://server-two:9933",
            "replicates": True,
            "replicateByDefault": True,
            "database_sockets": [
                {
                    "database": "data",
                    "connected": True,
                    "latency": 0.48,
                    "thread_id": 1,
                    "nodes": ["server-two"],
                    "lastCommitConfirmed": "Tue, 01 Dec 2026 10:14:01 GMT",
                    "lastReceivedRemoteTime": "Tue, 01 Dec 2026 10:13:00 GMT",
                    "lastReceivedLocalTime": "Tue, 01 Dec 2026 10:13:10 GMT",
                    "lastReceivedVersion": 1796119990000.5,
                    "backPressurePercent": 0,
                    "lastReceivedStatus": "Waiting",
                },
                {
                    "database": "system",
                    "connected": True,
                    "lastReceivedStatus": "Copying",
                    "lastConnectionError": {"code": "ECONNRESET", "time": "x"},
                },
            ],
        },
        {"name": "server-three", "url": "wss://server-three:9933", "replicates": False},
    ],
}
