"""The composition root: wire storage, operations API and replication; own start and stop.

Start order: lock the root, open storage, bootstrap users, start the HTTP listener, then
replication. Stop order is the reverse, and storage closes last so every write that was
accepted is committed before the process exits.

Signals: SIGTERM and SIGINT stop the node; SIGHUP reloads logging and routes
(agent/systemd/reload.py). Under systemd, READY=1, STOPPING=1 and watchdog pings go to
$NOTIFY_SOCKET (agent/systemd/notify.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import signal
import ssl
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.certs.keys import load_or_create_keys
from agent.errors import AgentError
from agent.identity import node_name
from agent.lock import RootLock
from agent.ops.auth import Authenticator, TokenService
from agent.ops.directory import UserDirectory
from agent.ops.registry import load_handlers
from agent.ops.server import OpsServer
from agent.ops.services import Services
from agent.storage.store import Storage
from agent.storage.system import CERTIFICATES, ROLES, SUPER_USER_ROLE, SYSTEM, USERS
from agent.storage.writes import LocalTransaction, WriteOp

if TYPE_CHECKING:
    from agent.systemd.notify import Notifier

log = logging.getLogger("agent")
DEFAULT_ADMIN = "admin"


class Node:
    """One harper-agent process."""

    def __init__(self, config) -> None:
        self.config = config
        self.name = node_name(config)
        self.lock = RootLock(config.root)
        self.storage: Storage | None = None
        self.services: Services | None = None
        self.server: OpsServer | None = None
        self.replicator = None
        self.certs = None  # agent.certs.material.Material, once prepared

    def open_storage(self) -> Storage:
        synchronous = "NORMAL" if self.config.get("storage.writeAsync") else "FULL"
        self.storage = Storage(self.config.database_path, self.name, synchronous=synchronous)
        self.storage.open()
        return self.storage

    def bootstrap(self, admin_user: str | None, admin_password: str | None) -> str | None:
        """Create the super_user role and the first admin; return a generated password."""
        from agent.ops.auth import hash_password

        system = self.storage.get(SYSTEM)
        directory = UserDirectory(self.storage)
        ops = []  # one transaction, so a first start pays one fsync for both rows
        if directory.role(SUPER_USER_ROLE) is None:  # nothing written on a restart
            role = {
                "id": SUPER_USER_ROLE,
                "role": SUPER_USER_ROLE,
                "permission": {"super_user": True},
            }
            ops.append(WriteOp("insert", ROLES, [role]))
        generated = None
        if not directory.users():
            generated = None if admin_password else secrets.token_urlsafe(12)
            user = {
                "username": admin_user or DEFAULT_ADMIN,
                "password": hash_password(admin_password or generated),
                "role": SUPER_USER_ROLE,
                "active": True,
            }
            ops.append(WriteOp("insert", USERS, [user]))
        if ops:
            system.write_sync(LocalTransaction(ops, self.storage.clock, self.name))
        return generated

    def prepare_certificates(self):
        """Make this node's key, CA and certificate on first start; load the configured ones.

        Rows are written to system.hdb_certificate only when missing or changed, so a restart
        writes nothing. A configured certificate that does not name this node fails start.
        """
        from agent import jsonx
        from agent.certs.setup import material_for
        from agent.replication.addresses import own_url
        from agent.storage import query

        material = material_for(self.config, self.name, own_url(self.config, self.name))
        system = self.storage.get(SYSTEM)
        existing = {}
        for doc in system.read_sync(query.search, CERTIFICATES, None):
            row = jsonx.loads(doc)
            existing[row.get("name")] = row
        fresh = material.initial_rows(existing) + material.configured_rows()
        changed = [r for r in fresh if _differs(existing.get(r["name"]), r)]
        if changed:
            op = WriteOp("upsert", CERTIFICATES, changed)
            system.write_sync(LocalTransaction([op], self.storage.clock, self.name))
            for row in changed:
                existing[row["name"]] = row
        material.refresh(list(existing.values()), [])
        self.certs = material
        return material

    def declare_tables(self) -> None:
        """Create the tables schema.graphql declares that do not exist yet."""
        path = self.config.root / "schema.graphql"
        if not path.exists():
            return  # before the imports: graphql-core costs ~85 ms of every start otherwise
        from agent.schemafile import SchemaFileError, parse_schema
        from agent.storage.catalog import Attribute, TableInfo
        from agent.storage.writes import CreateTable

        try:
            declared = parse_schema(path.read_text())
        except (SchemaFileError, UnicodeDecodeError) as exc:
            raise AgentError(f"{path}: {exc}") from None
        for spec in declared:
            db = self.storage.create_sync(spec.database, exists_ok=True)
            _warn_if_declared_differently(path, spec, db.catalog.get(spec.table))
            info = TableInfo(spec.database, spec.table, spec.primary_key, spec.replicate, True)
            for attr in spec.attributes:
                info.attributes[attr["name"]] = Attribute(
                    attr["name"], attr["type"], attr["indexed"]
                )
            for name in ("__createdtime__", "__updatedtime__"):
                info.attributes.setdefault(name, Attribute(name))
            db.write_sync(CreateTable(info, self.storage.clock, self.name, exists_ok=True))

    def build_services(self) -> Services:
        root = self.config.root
        keys = root / "keys"
        tokens = TokenService(
            lambda: load_or_create_keys(keys / "jwt_private.pem", keys / "jwt_public.pem"),
            None,
            self.config.get("authentication.operationTokenTimeout"),
            self.config.get("authentication.refreshTokenTimeout"),
        )
        directory = UserDirectory(self.storage)
        authenticator = Authenticator(directory.lookup, tokens, time.time)
        directory.on_change.append(authenticator.invalidate)
        self.storage.add_listener(directory.committed)
        self.services = Services(
            self.storage, self.config, self.name, directory, authenticator, tokens
        )
        self.services.certs = self.certs
        return self.services

    async def start(self) -> None:
        load_handlers()
        services = self.services
        network = "operationsApi.network."
        self.server = OpsServer(
            services,
            self.config.get(network + "maxBodySize"),
            max_frame=self.config.get("replication.maxPayload"),
            timeout=self.config.get(network + "timeout"),
            keepalive=self.config.get(network + "keepAliveTimeout"),
            max_connections=self.config.get(network + "maxConnections"),
        )
        listeners = self._listeners()
        await self.server.start(*listeners[0], *listeners[1:])
        # Serving first, replication right after: its imports are not on the start-up path,
        # and a peer that dials in the meantime is told to retry.
        from agent.replication.replicator import Replicator

        self.replicator = Replicator(
            self.name, self.config, self.storage, services.authenticator, self.certs
        )
        services.replication = self.replicator
        self.server.endpoint = self.replicator.endpoint
        await self.replicator.start()
        self._pruner = asyncio.create_task(self._prune_forever())

    async def _prune_forever(self) -> None:
        """Keep the log within logging.auditRetention, tombstones within their own retention."""
        retention = self.config.get("logging.auditRetention")
        tombstones = self.config.get("replication.tombstoneRetention")
        interval = max(0.5, min(60.0, retention / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                pruned = await self.storage.prune(retention, tombstones)
            except Exception:
                log.exception("pruning failed")
                continue
            for name, (entries, tombstones) in pruned.items():
                if entries or tombstones:
                    log.info("pruned %s: %d log entries, %d tombstones", name, entries, tombstones)

    def _listeners(self) -> list[tuple]:
        out = []
        plain = self.config.listener("operationsApi.network.port")
        if plain:
            out.append((plain[0], plain[1], None))
        secure = self.config.listener("operationsApi.network.securePort")
        if secure:
            out.append((secure[0], secure[1], self._tls_context()))
        if not out:
            raise AgentError("no operations API listener: set operationsApi.network.port")
        return out

    def _tls_context(self) -> ssl.SSLContext:
        """HTTPS with this node's certificate; a client certificate is asked for, not needed.

        Peers upgrading to WSS here present theirs (mutual TLS); harperctl and browsers don't.
        """
        return self.certs.server_context()

    async def stop(self) -> None:
        if getattr(self, "_pruner", None) is not None:
            self._pruner.cancel()
        if self.replicator is not None:
            await self.replicator.stop()
            self.replicator = None
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def close(self) -> None:
        if self.storage is not None:
            self.storage.close()
            self.storage = None
        self.lock.release()


def _warn_if_declared_differently(path, spec, existing) -> None:
    """Say when schema.graphql declares an existing table otherwise: it is not changed."""
    if existing is None:
        return
    where = f"{path}: {spec.database}.{spec.table}"
    if existing.primary_key != spec.primary_key:
        log.warning(
            "%s declares primary key %s, but the table exists with %s: not changed "
            "(drop and re-create the table to change it)",
            where,
            spec.primary_key,
            existing.primary_key,
        )
    unindexed = [
        a["name"]
        for a in spec.attributes
        if a.get("indexed")
        and a["name"] != spec.primary_key
        and not getattr(existing.attributes.get(a["name"]), "indexed", False)
    ]
    if unindexed:
        log.warning(
            "%s declares %s @indexed, but the existing table does not index them: not changed",
            where,
            ", ".join(unindexed),
        )


def _differs(old: dict | None, new: dict) -> bool:
    return old is None or any(old.get(k) != v for k, v in new.items())


def _announce_password(username: str, password: str) -> None:
    # Printed once to the terminal, never to the log: the operator needs it to log in.
    print(
        f"harper-agent: created super user '{username}' with password: {password}\n"
        "harper-agent: this is shown once; change it with `harperctl user alter`.",
        file=sys.stdout,
        flush=True,
    )


def initialize(config, admin_user: str | None = None, admin_password: str | None = None) -> None:
    """Prepare a root: folders, storage, JWT keys, the super_user role and the first admin."""
    node = Node(config)
    node.lock.acquire()
    try:
        node.open_storage()
        generated = node.bootstrap(admin_user, admin_password)
        node.prepare_certificates()
        node.build_services()
        if generated:
            _announce_password(admin_user or DEFAULT_ADMIN, generated)
    finally:
        node.close()


def serve(
    config,
    admin_user: str | None = None,
    admin_password: str | None = None,
    reload: Callable[[], Any] | None = None,
) -> int:
    """Run the node until SIGTERM or SIGINT; return the process exit code.

    `reload` loads the settings again as `run` did (file, environment, the same flags); with
    it, SIGHUP applies logging and routes live (agent/systemd/reload.py).
    """
    from agent.logs import configure_logging

    configure_logging(config)
    node = Node(config)
    try:
        node.lock.acquire()
    except AgentError as exc:
        print(f"harper-agent: {exc.message}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_serve(node, admin_user, admin_password, reload))
    finally:
        node.close()


async def _serve(
    node: Node,
    admin_user: str | None,
    admin_password: str | None,
    reload: Callable[[], Any] | None = None,
) -> int:
    """Start the node, tell systemd, serve until a stop signal, then stop in order."""
    from agent.systemd.notify import Notifier

    notifier = Notifier()
    # pinging from the first moment: systemd may arm the watchdog before READY=1
    watchdog = notifier.start_watchdog()
    stop = asyncio.Event()
    hup = asyncio.Event()  # set by SIGHUP from now on, so an early one is kept, not fatal
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, hup.set)
    try:
        code = await _start(node, admin_user, admin_password, stop)
        if code is not None:
            return code
        return await _run_until_stopped(node, notifier, stop, hup, reload)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        notifier.close()


async def _start(
    node: Node, admin_user: str | None, admin_password: str | None, stop: asyncio.Event
) -> int | None:
    """Open, prepare and start the node; return an exit code if it cannot serve, else None.

    SIGTERM and SIGINT set `stop` from the moment the services exist.
    """
    started = time.monotonic()
    await asyncio.to_thread(node.open_storage)
    generated = node.bootstrap(admin_user, admin_password)
    if generated:
        _announce_password(admin_user or DEFAULT_ADMIN, generated)
    try:
        await asyncio.to_thread(node.declare_tables)
        await asyncio.to_thread(node.prepare_certificates)
    except AgentError as exc:
        print(f"harper-agent: {exc.message}", file=sys.stderr)
        return 2
    node.build_services()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
    except OSError as exc:
        print(f"harper-agent: cannot listen: {exc}", file=sys.stderr)
        return 1
    _announce_serving(node, (time.monotonic() - started) * 1000)
    return None


def _serving_address(node: Node) -> str:
    where = node.config.listener("operationsApi.network.port")
    return f"http://{where[0]}:{where[1]}" if where else "(TLS only)"


def _announce_serving(node: Node, ready_ms: float) -> None:
    address = _serving_address(node)
    log.warning(
        "harper-agent %s node %s serving on %s (ready in %.0f ms)",
        __version__,
        node.name,
        address,
        ready_ms,
    )
    if not node.config.get("logging.stdStreams"):
        # one line for whoever started us in a terminal; the rest goes to the log file
        print(
            f"harper-agent: node {node.name} serving on {address}; log in {node.config.log_file}",
            file=sys.stderr,
            flush=True,
        )


async def _run_until_stopped(
    node: Node,
    notifier: Notifier,
    stop: asyncio.Event,
    hup: asyncio.Event,
    reload: Callable[[], Any] | None,
) -> int:
    """Say READY to systemd, reload on SIGHUP, and stop in order on SIGTERM or SIGINT."""
    from agent.config import load_config
    from agent.systemd.reload import Reloader, reload_forever

    if reload is None:  # not from `run`: the same file and the environment, no flags
        reload = functools.partial(load_config, node.config.root, node.config.config_path)
    reloader = Reloader(node.config, reload, node.replicator)
    reloads = asyncio.create_task(reload_forever(hup, reloader, notifier))
    notifier.ready(f"node {node.name} serving on {_serving_address(node)}")
    await stop.wait()
    notifier.stopping()
    log.warning("stopping: finishing in-flight requests and writes")
    reloads.cancel()
    await node.stop()
    return 0
