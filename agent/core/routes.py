"""Routes: where to dial a peer, parsed from every form HarperDB's config accepts.

A route is a hostname (`server-two`), an IP, a "host:port" string (split on the last colon,
which HarperDB 4.7 gets wrong), a URL (`ws://`, `wss://`, `http://`, `https://`), or a mapping
`{hostname|host, port, url, startTime}`. A route that names only a host is dialled with this
node's own replication settings (`Dialing`): ws://host:port when replication.port is set,
wss://host:securePort when only that is, else the operations API port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


class RouteError(ValueError):
    """A route entry cannot be understood; the message says why."""


@dataclass(frozen=True)
class Dialing:
    """This node's replication listeners, which decide how a bare host is dialled."""

    port: int | None = None  # replication.port (insecure ws)
    secure_port: int | None = None  # replication.securePort (wss)
    ops_port: int = 9925  # operationsApi.network.port
    ops_secure_port: int | None = None

    def default(self) -> tuple[str, int]:
        if self.port:
            return "ws", self.port
        if self.secure_port:
            return "wss", self.secure_port
        if self.ops_port:
            return "ws", self.ops_port
        return "wss", self.ops_secure_port or 9925


@dataclass(frozen=True)
class Route:
    host: str
    port: int
    scheme: str
    start_time: Any = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_route(entry: Any, dialing: Dialing) -> Route:
    """Parse one route entry; raise RouteError with the reason when it is malformed."""
    if isinstance(entry, dict):
        return _from_mapping(entry, dialing)
    if not isinstance(entry, str) or not entry.strip():
        raise RouteError(f"route {entry!r} must be a hostname, host:port, URL or mapping")
    text = entry.strip()
    if "://" in text:
        return _from_url(text, None)
    host, port = split_host_port(text)
    scheme, default_port = dialing.default()
    return Route(host, port or default_port, scheme)


def _from_mapping(entry: dict, dialing: Dialing) -> Route:
    start = entry.get("startTime", entry.get("start_time"))
    if entry.get("url"):
        return _from_url(str(entry["url"]), start)
    host = entry.get("hostname") or entry.get("host")
    if not isinstance(host, str) or not host:
        raise RouteError(f"route {entry!r} needs a hostname, host or url")
    base = parse_route(host, dialing)
    port = entry.get("port")
    if port is not None:
        port = _port(port, entry)
    return Route(base.host, port or base.port, base.scheme, start)


def _from_url(text: str, start: Any) -> Route:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise RouteError(f"route {text!r} is not a valid URL: {exc}") from None
    scheme = SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise RouteError(f"route {text!r} must be a ws://, wss://, http:// or https:// URL")
    if port is not None:
        port = _port(port, text)  # urlsplit accepts 0, which would silently mean the default
    return Route(parts.hostname, port or (9925 if scheme == "ws" else 9933), scheme, start)


def split_host_port(text: str) -> tuple[str, int | None]:
    """Split "host:port" on the last colon ("[v6]:port" too); the port is optional."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise RouteError(f"route {text!r} must be [address] or [address]:port")
        return host, (_port(rest[1:], text) if rest else None)
    if text.count(":") == 1:
        host, _, port = text.rpartition(":")
        return host, _port(port, text)
    return text, None


def _port(value: Any, entry: Any) -> int:
    if isinstance(value, bool):
        raise RouteError(f"route {entry!r} has a bad port {value!r}")
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise RouteError(f"route {entry!r} has a bad port {value!r}") from None
    if not 0 < port < 65536:
        raise RouteError(f"route {entry!r} has a port outside 1-65535")
    return port
