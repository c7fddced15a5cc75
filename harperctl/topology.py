"""The cluster as people think of it, built from every node's cluster_status answer.

Pure: no network, no output. `harperctl status`, `harperctl wait --synced` and `harperctl
nodes` ask the nodes (commands/cluster.py) and hand the answers here; render_cluster.py draws
the result. A link is one direction of replication: `node` receives `database` from `peer`
(the node's own cluster_status reports it; the peer's answer reports the reverse link).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

STATES_UP = ("connected", "copying")


@dataclasses.dataclass
class NodeView:
    """One node: where it was asked, and its cluster_status answer or why there is none."""

    name: str
    url: str | None
    status: dict | None = None
    error: str | None = None
    this: bool = False  # the node harperctl was pointed at

    @property
    def answered(self) -> bool:
        """Return True when the node answered cluster_status."""
        return self.status is not None


@dataclasses.dataclass
class LinkView:
    """`node` receiving `database` from `peer`, as `node` reports it."""

    node: str
    peer: str
    database: str
    state: str
    security: dict | None = None
    latency_ms: float | None = None
    behind_records: int | None = None
    behind_seconds: float | None = None
    behind_by_origin: list[dict] = dataclasses.field(default_factory=list)
    lag_seconds: float | None = None
    copy: dict | None = None
    offset_ms: float | None = None
    error: str | None = None
    down_since: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Cluster:
    """Every node, every link, and what the nodes disagree about."""

    nodes: list[NodeView]
    links: list[LinkView]
    notes: list[str]  # node-level findings: unserved origins, warnings, membership

    def node(self, name: str) -> NodeView | None:
        """Return the node called `name`, if known."""
        return next((n for n in self.nodes if n.name == name), None)


def operations_url(row: Mapping[str, Any], prefer_https: bool = False) -> str | None:
    """Return a node's operations API URL: its recorded one, else one from its replication URL.

    A replication URL on the operations port (ws://host:9925) is that port over http; one on a
    dedicated replication port gives a guess that may not answer (shown as not answering).
    """
    recorded = row.get("operations_url")
    if isinstance(recorded, str) and recorded:
        return recorded
    url = row.get("url")
    if not isinstance(url, str) or "://" not in url:
        return None
    scheme, rest = url.split("://", 1)
    http = "https" if scheme in ("wss", "https") or prefer_https else "http"
    return f"{http}://{rest.split('/', 1)[0]}"


def known_nodes(
    status: Mapping[str, Any], rows: Iterable[Mapping[str, Any]], asked_url: str
) -> list[NodeView]:
    """Return every node the asked node knows, itself first (marked `this`), none answered yet.

    The members are hdb_nodes' rows, plus any peer its cluster_status has a connection to.
    """
    me = str(status.get("node_name") or asked_url)
    found: dict[str, NodeView] = {me: NodeView(me, asked_url, dict(status), this=True)}
    https = asked_url.startswith("https:")
    candidates = [r for r in rows if isinstance(r, Mapping)]
    candidates += [c for c in status.get("connections") or [] if isinstance(c, Mapping)]
    for row in candidates:
        name = row.get("name") or row.get("url")
        if isinstance(name, str) and name and name not in found:
            found[name] = NodeView(name, operations_url(row, https))
    return list(found.values())


def build(nodes: list[NodeView]) -> Cluster:
    """Return the cluster: each answering node's links, checked against the other end."""
    links = [link for node in nodes if node.status for link in _links_of(node)]
    cluster = Cluster(nodes, links, [])
    by_pair = {(link.node, link.peer, link.database): link for link in links}
    for link in links:
        _check_other_end(cluster, link, by_pair)
    for node in nodes:
        cluster.notes += _node_notes(node, cluster)
    return cluster


def _links_of(node: NodeView) -> list[LinkView]:
    out = []
    for connection in node.status.get("connections") or []:
        if not isinstance(connection, Mapping):
            continue
        peer = str(connection.get("name") or connection.get("url") or "?")
        for socket in connection.get("database_sockets") or []:
            if isinstance(socket, Mapping):
                out.append(_link(node.name, peer, connection, socket))
    return out


def _link(node: str, peer: str, connection: Mapping, socket: Mapping) -> LinkView:
    behind = [b for b in socket.get("behind") or [] if isinstance(b, Mapping)]
    seconds = [b["seconds"] for b in behind if is_number(b.get("seconds"))]
    error = socket.get("lastConnectionError")
    if isinstance(error, Mapping):
        error = error.get("reason") or error.get("message")
    state = socket_state(socket)
    return LinkView(
        node=node,
        peer=peer,
        database=str(socket.get("database") or "?"),
        state=state,
        security=connection.get("security")
        if isinstance(connection.get("security"), dict)
        else None,
        latency_ms=_num(socket.get("latency")),
        behind_records=_num(socket.get("recordsBehind")),
        behind_seconds=max(seconds) if seconds else None,
        behind_by_origin=[dict(b) for b in behind if b.get("records")],
        lag_seconds=_num(socket.get("lagSeconds")),
        copy=socket.get("copy") if isinstance(socket.get("copy"), dict) else None,
        offset_ms=_num(socket.get("clockOffsetMs")),
        # a past error on a link that is up again would only alarm
        error=str(error) if error and state not in STATES_UP else None,
        down_since=socket.get("downSince") if state not in STATES_UP else None,
    )


def socket_state(socket: Mapping[str, Any]) -> str:
    """Return connected, disconnected, copying (a base copy in progress) or unknown."""
    copy = socket.get("copy")
    copying = (isinstance(copy, Mapping) and copy.get("state") == "copying") or (
        socket.get("lastReceivedStatus") == "Copying"
    )
    connected = socket.get("connected")
    if connected is False:
        return "disconnected"
    if copying:
        return "copying"
    return "connected" if connected else "unknown"


def _check_other_end(cluster: Cluster, link: LinkView, by_pair: dict) -> None:
    """Note where the two ends of a link do not tell the same story."""
    peer = cluster.node(link.peer)
    if peer is None:
        return
    if not peer.answered:
        if link.state in STATES_UP:
            link.notes.append(f"{link.node} sees it up, but {link.peer} does not answer")
        return
    reverse = by_pair.get((link.peer, link.node, link.database))
    if reverse is None:
        link.notes.append(f"{link.peer} has no link with {link.node} for {link.database}")
    elif (link.state in STATES_UP) != (reverse.state in STATES_UP):
        link.notes.append(
            f"{link.node} sees it {_up(link.state)}, "
            f"{link.peer} sees its link back {_up(reverse.state)}"
        )


def _up(state: str) -> str:
    return "up" if state in STATES_UP else "down"


def _node_notes(node: NodeView, cluster: Cluster) -> list[str]:
    """The node's warnings, origins no link brings, and members it does not know."""
    if not node.status:
        return []
    notes = [f"{node.name}: {w}" for w in node.status.get("warnings") or [] if isinstance(w, str)]
    for database, origins in sorted((node.status.get("origins") or {}).items()):
        for origin in origins if isinstance(origins, list) else []:
            if isinstance(origin, Mapping) and origin.get("unserved"):
                notes.append(
                    f"{node.name}: no link brings {origin.get('origin')}'s writes on {database} "
                    f"(applied up to {origin.get('applied')}, peers hold {origin.get('peersHold')})"
                )
    peers = {link.peer for link in cluster.links if link.node == node.name}
    for other in cluster.nodes:
        if other.name != node.name and other.answered and other.name not in peers:
            if any(link.peer == node.name for link in cluster.links if link.node == other.name):
                notes.append(f"{node.name} has no link with {other.name}, which links with it")
    return notes


@dataclasses.dataclass
class Summary:
    """One line's worth: nodes and links up, the worst lag, copies, verify."""

    nodes_up: int
    nodes: int
    links_up: int
    links: int
    behind_records: int
    worst_lag: LinkView | None
    copying: int
    divergent: int | None  # keys the last verify found apart; None: no verify ran
    verify_at: float | None
    disagreements: int


def summarize(cluster: Cluster) -> Summary:
    """Return the summary of `cluster`."""
    lagging = [link for link in cluster.links if _lag(link) is not None]
    worst = max(lagging, key=_lag, default=None)
    verify = [
        node.status["verify"]
        for node in cluster.nodes
        if node.status and isinstance(node.status.get("verify"), Mapping)
    ]
    latest = max(verify, key=lambda v: v.get("at") or 0, default=None)
    divergent = None
    if latest is not None:
        divergent = 0 if latest.get("agreed") else int(latest.get("divergent") or 0)
    return Summary(
        nodes_up=sum(node.answered for node in cluster.nodes),
        nodes=len(cluster.nodes),
        links_up=sum(link.state in STATES_UP for link in cluster.links),
        links=len(cluster.links),
        behind_records=sum(int(link.behind_records or 0) for link in cluster.links),
        worst_lag=worst if worst is not None and (_lag(worst) or 0) > 0 else None,
        copying=sum(link.state == "copying" for link in cluster.links),
        divergent=divergent,
        verify_at=_num(latest.get("at")) if latest else None,
        disagreements=sum(len(link.notes) for link in cluster.links),
    )


def _lag(link: LinkView) -> float | None:
    values = [v for v in (link.behind_seconds, link.lag_seconds) if v is not None]
    return max(values) if values else None


def not_synced(cluster: Cluster) -> list[str]:
    """Return why the cluster is not in sync; empty when every node answers, every link is
    connected (no copy running) with nothing behind, and every node has applied every
    origin as far as the others."""
    reasons = [f"{n.name} does not answer: {n.error}" for n in cluster.nodes if not n.answered]
    for link in cluster.links:
        where = f"{link.node} <- {link.peer} {link.database}"
        if link.state != "connected":
            reasons.append(f"{where}: {link.state}")
        elif link.behind_records:
            reasons.append(f"{where}: {link.behind_records} records behind")
    applied: dict[tuple[str, Any], dict[str, int]] = {}
    for node in cluster.nodes:
        for database, origins in ((node.status or {}).get("origins") or {}).items():
            for origin in origins if isinstance(origins, list) else []:
                if isinstance(origin, Mapping):
                    key = (database, origin.get("id") or origin.get("origin"))
                    done, held = int(origin.get("applied") or 0), int(origin.get("peersHold") or 0)
                    applied.setdefault(key, {})[node.name] = done
                    if done < held:
                        reasons.append(
                            f"{node.name}: {origin.get('origin')} on {database} applied to "
                            f"{done}, a peer holds {held}"
                        )
                    if origin.get("unserved"):
                        reasons.append(
                            f"{node.name}: no link brings {origin.get('origin')} on {database}"
                        )
    for (database, origin), by_node in sorted(applied.items(), key=str):
        if len(set(by_node.values())) > 1:
            spread = ", ".join(f"{name} {seq}" for name, seq in sorted(by_node.items()))
            reasons.append(f"{database}: origin {origin} applied unevenly ({spread})")
    return reasons


def is_number(value: Any) -> bool:
    """Return True for an int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _num(value: Any) -> Any:
    return value if is_number(value) else None


def as_json(cluster: Cluster) -> dict[str, Any]:
    """Return the cluster for --json: each node's exact cluster_status answer (or its error),
    the links and notes derived from them, and the summary."""
    summary = dataclasses.asdict(summarize(cluster))
    worst = summary.pop("worst_lag")
    summary["worst_lag"] = (
        None
        if worst is None
        else {k: worst[k] for k in ("node", "peer", "database", "behind_seconds", "lag_seconds")}
    )
    return {
        "type": "cluster-wide-status",
        "nodes": [
            {
                "name": node.name,
                "operations_url": node.url,
                "this": node.this,
                "answered": node.answered,
                "error": node.error,
                "status": node.status,
            }
            for node in cluster.nodes
        ],
        "links": [dataclasses.asdict(link) for link in cluster.links],
        "notes": list(cluster.notes),
        "summary": summary,
        "synced": not not_synced(cluster),
    }
