"""This node's name and the address it serves on, derived from the settings."""

from __future__ import annotations

import socket

WILDCARDS = ("0.0.0.0", "::", "")


def node_name(config) -> str:
    """Return replication.hostname, else the bound host, else the machine's hostname."""
    configured = config.get("replication.hostname")
    if configured:
        return str(configured)
    listen = config.listener("operationsApi.network.port")
    host = listen[0] if listen else config.get("operationsApi.network.host")
    if host and host not in WILDCARDS:
        return host
    return socket.gethostname()
