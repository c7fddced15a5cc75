"""Peers this node replicates with: from configured routes and from system.hdb_nodes rows."""

from __future__ import annotations

import base64
import socket
from dataclasses import dataclass, field
from typing import Any

from agent.core.clock import version_for_time
from agent.core.routes import Dialing, Route, RouteError, parse_route


def normalize_url(url: str) -> str:
    return url.rstrip("/").lower()


def start_version(start_time: Any) -> int:
    """Turn a route's startTime / add_node's start_time (ISO or epoch ms) into a version."""
    if start_time in (None, "", 0):
        return 0
    if isinstance(start_time, (int, float)) and not isinstance(start_time, bool):
        return version_for_time(float(start_time))
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(str(start_time).replace("Z", "+00:00"))
    except ValueError:
        raise RouteError(f"start_time {start_time!r} is not ISO-8601 or epoch ms") from None
    if moment.tzinfo is None:
        raise RouteError(f"start_time {start_time!r} needs a time zone (e.g. Z)")
    return version_for_time(moment.timestamp() * 1000.0)


def authorization_header(auth: Any) -> str | None:
    """Turn add_node's `authorization` ({username, password} or a header string) into a header."""
    if auth in (None, ""):
        return None
    if isinstance(auth, str):
        if auth.split(" ", 1)[0].lower() not in ("basic", "bearer"):
            raise RouteError(
                "authorization must be {username, password} or 'Basic ...'/'Bearer ...'"
            )
        return auth
    if isinstance(auth, dict) and isinstance(auth.get("username"), str):
        token = f"{auth['username']}:{auth.get('password') or ''}".encode()
        return "Basic " + base64.b64encode(token).decode()
    raise RouteError("authorization must be {username, password} or 'Basic ...'/'Bearer ...'")


@dataclass
class Peer:
    """One remote node: where to dial it and its links, one per replicated database."""

    url: str
    name: str | None = None
    from_route: bool = False
    row: dict | None = None
    authorization: str | None = None  # retained credentials: a local file, never replicated
    start_version: int = 0
    subscriptions: list | None = None
    links: dict = field(default_factory=dict)
    revoked: list | None = None  # a route's revokedCertificates (serials)

    @property
    def key(self) -> str:
        return self.name or self.url

    @property
    def host(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.url).hostname or ""

    def headers(self) -> dict:
        return {"Authorization": self.authorization} if self.authorization else {}

    def wants_database(self, database: str) -> bool:
        """Explicit subscriptions limit which databases this node subscribes to from the peer."""
        if not self.subscriptions:
            return True
        return any(
            s.get("subscribe", True) and (s.get("database") or s.get("schema")) == database
            for s in self.subscriptions
        )

    def subscribed_tables(self, database: str) -> list[str] | None:
        """Return the tables to ask this peer for on `database` (None: all of them)."""
        if not self.subscriptions:
            return None
        entries = [
            s
            for s in self.subscriptions
            if s.get("subscribe", True) and (s.get("database") or s.get("schema")) == database
        ]
        if not entries or not all(s.get("table") for s in entries):
            return None
        return sorted({s["table"] for s in entries})


def route_peer(entry: Any, dialing: Dialing) -> Peer:
    route: Route = parse_route(entry, dialing)
    peer = Peer(route.url, None, True, None, None, start_version(route.start_time))
    if isinstance(entry, dict) and isinstance(entry.get("revokedCertificates"), list):
        peer.revoked = list(entry["revokedCertificates"])
    return peer


def resolve(host: str) -> set[str]:
    """Return the IPs a host name stands for (the host itself when it is an IP)."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return {host}
