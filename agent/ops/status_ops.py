"""get_status, system_information and get_configuration: what a node reports about itself."""

from __future__ import annotations

import os
import platform
import socket
import sys
import time

from agent import __version__
from agent.ops.registry import operation
from agent.ops.request import Request


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def rss_bytes() -> int:
    """Return this process's resident set size."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _visible_databases(req: Request) -> list[str]:
    """List the databases the caller may see: all, or those with a table it holds a grant on.

    The same rule as describe_all, so get_status names nothing describe_all would hide.
    """
    storage = req.services.storage
    names = storage.names()
    perms = None if req.user is None else req.user.permissions
    if perms is None or perms.super_user:
        return names
    return [
        name
        for name in names
        if name in perms.grants
        and any(perms.can_describe(name, table) for table in storage.get(name).catalog.names())
    ]


@operation("get_status")
async def get_status(req: Request) -> dict:
    services = req.services
    return {
        "status": "running",
        "node_name": services.node_name,
        "version": __version__,
        "pid": os.getpid(),
        "uptime_seconds": round(time.time() - services.started, 3),
        "databases": _visible_databases(req),
        "replication": services.replication is not None,
    }


@operation("system_information", super_user=True)
async def system_information(req: Request) -> dict:
    mem = _meminfo()
    load = os.getloadavg()
    return {
        "system": {
            "platform": sys.platform,
            "distro": platform.platform(),
            "release": platform.release(),
            "hostname": socket.gethostname(),
            "arch": platform.machine(),
            "python": platform.python_version(),
        },
        "time": {
            "current": time.time() * 1000,
            "uptime": time.monotonic(),
            "timezone": time.strftime("%Z"),
        },
        "cpu": {"cores": os.cpu_count(), "load": list(load)},
        "memory": {
            "total": mem.get("MemTotal", 0),
            "free": mem.get("MemFree", 0),
            "available": mem.get("MemAvailable", 0),
            "rss": rss_bytes(),
        },
        "harperdb_processes": {
            "core": [{"pid": os.getpid(), "version": __version__, "name": "harper-agent"}]
        },
    }


@operation("get_configuration", super_user=True)
async def get_configuration(req: Request) -> dict:
    return req.services.config.as_dict()
