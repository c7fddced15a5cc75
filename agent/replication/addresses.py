"""Where this node is reached: the replication URL peers dial, how it dials them, and its
operations API URL (recorded in its hdb_nodes row for `harperctl status`)."""

from __future__ import annotations

from agent.core.routes import Dialing


def dialing_for(config) -> Dialing:
    """Return which ports and schemes this node dials peers with, from its listeners."""
    ops = config.listener("operationsApi.network.port")
    secure = config.listener("operationsApi.network.securePort")
    rep = config.listener("replication.port")
    rep_secure = config.listener("replication.securePort")
    return Dialing(
        rep[1] if rep else None,
        rep_secure[1] if rep_secure else None,
        ops[1] if ops else 0,
        secure[1] if secure else None,
    )


def own_url(config, node: str) -> str:
    """Return how peers reach this node: replication.url, else built from the listeners."""
    if config.get("replication.url"):
        return str(config.get("replication.url"))
    scheme, port = dialing_for(config).default()
    listener = config.listener("replication.port") or config.listener("operationsApi.network.port")
    host = listener[0] if listener and listener[0] not in ("0.0.0.0", "::", "") else node
    return f"{scheme}://{host}:{port}"


def operations_url(config, node: str) -> str | None:
    """Return where clients reach this node's operations API (http, else https), or None.

    Recorded in this node's hdb_nodes row, so `harperctl status` can ask every member.
    """
    for key, scheme in (
        ("operationsApi.network.port", "http"),
        ("operationsApi.network.securePort", "https"),
    ):
        listener = config.listener(key)
        if listener:
            host = listener[0] if listener[0] not in ("0.0.0.0", "::", "") else node
            host = f"[{host}]" if ":" in host else host
            return f"{scheme}://{host}:{listener[1]}"
    return None
