"""All replication of a node: peers, their links, publishers, relay choice and membership.

Peers come from `replication.routes` and from `system.hdb_nodes` rows (which replicate, so
joining one node of a cluster teaches the newcomer every other node, and them the newcomer).
For each peer and each replicated database this node runs one SubscriberLink (it dials and
receives); peers dial us for the other direction and get a PublisherSession.
"""

from __future__ import annotations

import asyncio
import logging
import time

from agent import jsonx
from agent.core.changes import DELETE, PUT
from agent.core.messages import decode_changes
from agent.core.relay import assign_origins
from agent.core.subscription import COPYING, STREAMING, Timing
from agent.replication import credentials, openings, transport
from agent.replication.addresses import dialing_for, operations_url, own_url
from agent.replication.antientropy import BackgroundVerify
from agent.replication.budget import Budget
from agent.replication.endpoint import Endpoint
from agent.replication.link import SubscriberLink
from agent.replication.peers import Peer, normalize_url, route_peer
from agent.replication.syncgate import SyncGate
from agent.replication.tail import LogTail, Tails
from agent.replication.trust import Trust
from agent.replication.verifypeer import Indexes
from agent.storage import query
from agent.storage.system import CERTIFICATES, NODES, SCHEMAS, SYSTEM
from agent.storage.writes import LocalTransaction, WriteOp

log = logging.getLogger(__name__)

# CPU seconds of verify work before the budget holds it back: one index build may overdraw
# it, and a larger burst let a fresh node spend seconds of CPU on verify under load.
VERIFY_BURST = 1.0


class Replicator:
    """Own every link of this node and answer cluster questions about them."""

    async def dial(self, url: str, **kwargs):
        """Dial a peer (transport.dial), refusing frames over replication.maxPayload.

        How links and membership reach a peer: a seam, so a test can dial an in-memory
        network (tests/shell replaces it on the instance).
        """
        return await transport.dial(url, max_size=self.max_payload, **kwargs)

    def __init__(self, node: str, config, storage, authenticator, certs=None) -> None:
        self.node = node
        self.config = config
        self.storage = storage
        self.authenticator = authenticator
        self.url = own_url(config, node)
        self.operations_url = operations_url(config, node)
        self.dialing = dialing_for(config)
        self.timing = Timing(
            config.get("replication.pingInterval"),
            config.get("replication.pingTimeout"),
            config.get("replication.stallTimeout"),
            # a copy that makes no progress this long ends the session; the next resumes it
            config.get("replication.copyTimeout"),
        )
        self.retry_interval = config.get("replication.retryInterval")
        self.max_clock_ahead_ms = config.get("replication.maxClockSkew") * 1000.0
        self.compression = bool(config.get("replication.compression"))
        self.chunk_records = config.get("replication.copyChunkRecords")
        # the largest frame accepted on every listener and dial, and the largest sent
        self.max_payload = config.get("replication.maxPayload")
        listener = config.listener("operationsApi.network.port")
        self.local_host = listener[0] if listener and listener[0].startswith("127.") else None
        self.endpoint = Endpoint(self)
        # replication.port set: the operator asked for address-only admission (insecure)
        self.insecure_port = config.listener("replication.port")
        self.trust = Trust(node, certs, insecure=self.insecure_port is not None)
        self.tails = Tails(storage)
        self.peers: dict[str, Peer] = {}
        self.publishers: set = set()
        # url -> Authorization kept by retain_authorization (a 0600 file, never a row)
        self.retained: dict[str, str] = credentials.load(config.root)
        self.routes: list = list(config.get("replication.routes") or [])
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sync_gate = SyncGate(node)
        self._cursor_cache: dict[str, dict] = {}  # last cursors a Subscribe read, per database
        self._servers: list = []
        self._reconcile_task: asyncio.Task | None = None
        self.started = time.time()
        share = config.get("replication.verifyCpuPercent") / 100.0
        # cluster_verify runs this node answers for, charged to its verify CPU budget
        self.verify_indexes = Indexes(Budget(share, VERIFY_BURST))
        self.last_verify: dict | None = None  # the last cluster_verify this node ran
        self.verifying: dict | None = None  # the table a cluster_verify compares right now
        self.background = BackgroundVerify(self)
        self._background_task: asyncio.Task | None = None

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for name in self.storage.names():
            self._tail(name)
        self.storage.attach_loop(self._loop, self._on_commit)
        self.storage.on_drop.append(self._dropped)
        await self._listen()
        self._reconcile_task = asyncio.create_task(self._reconcile_forever())
        self._background_task = asyncio.create_task(self.background.run_forever())
        await self.reconcile()

    async def _listen(self) -> None:
        self._servers.extend(await openings.listen(self))

    def security_warnings(self) -> list[str]:
        return openings.warnings(self)

    async def connect(
        self,
        url: str,
        *,
        peer_name: str | None = None,
        authorization: str | None = None,
        verify_tls: bool = True,
        timeout: float = 10.0,
    ):
        """Dial a peer and prove who we are; check it proves who it is (see openings.py)."""
        return await openings.connect(
            self,
            url,
            peer_name=peer_name,
            authorization=authorization,
            verify_tls=verify_tls,
            timeout=timeout,
        )

    async def stop(self) -> None:
        self.verify_indexes.stop.set()  # a verify index being built must not hold the stop
        for task in (self._reconcile_task, self._background_task):
            if task is not None:
                task.cancel()
        for peer in list(self.peers.values()):
            await self._stop_peer(peer)
        for server in self._servers:
            server.close()
        for server in self._servers:
            try:
                async with asyncio.timeout(2):
                    await server.wait_closed()
            except Exception:
                pass

    def _dropped(self, database: str) -> None:
        """Storage hook (any thread): forget the dropped database's tail and links."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._forget_database, database)

    def _forget_database(self, database: str) -> None:
        self.tails.pop(database, None)
        for peer in self.peers.values():
            link = peer.links.pop(database, None)
            if link is not None:
                asyncio.ensure_future(link.stop())

    def reidentified(self, database: str, old: str, moved: int) -> None:
        """A database took a new origin id: restart what served the old labels from memory."""
        log.warning("%s: origin %s retired, %d own transactions renumbered", database, old, moved)
        self.tails.pop(database, None)
        for session in list(self.publishers):
            if session.db is not None and session.db.name == database:
                asyncio.ensure_future(session.conn.close(1012, "origin id changed"))

    def _tail(self, database: str) -> LogTail:
        return self.tails[database]

    # --- commits ----------------------------------------------------------------------

    def _on_commit(self, database: str, entries: list) -> None:
        """Storage loop listener: new log entries for the tails (and membership)."""
        if not self.storage.exists(database):
            return
        self._tail(database).extend(entries)
        if database == SYSTEM and any(
            NODES in e.tables or SCHEMAS in e.tables or CERTIFICATES in e.tables for e in entries
        ):
            for entry in entries:
                self._schema_rows(entry)
            asyncio.ensure_future(self.reconcile())

    def _schema_rows(self, entry) -> None:
        if SCHEMAS not in entry.tables:
            return
        for w in decode_changes(entry.body):
            if w.table == SCHEMAS and w.kind == PUT and self._selected(str(w.key)):
                if not self.storage.exists(str(w.key)):
                    self.storage.create_sync(str(w.key), exists_ok=True)
            elif w.table == SCHEMAS and w.kind == DELETE and self.storage.exists(str(w.key)):
                if entry.origin != self.node:
                    self.storage.drop_sync(str(w.key))

    # --- which databases and peers ----------------------------------------------------

    def _selected(self, database: str) -> bool:
        chosen = self.config.get("replication.databases")
        return chosen == "*" or database in (chosen or [])

    def replicated_databases(self) -> list[str]:
        return [name for name in self.storage.names() if self._selected(name)]

    async def _node_rows(self) -> list[dict]:
        db = self.storage.get(SYSTEM)
        docs = await db.read(query.search, NODES, None)
        return [jsonx.loads(d) for d in docs]

    async def reconcile(self) -> None:
        """Make peers and links match routes and hdb_nodes (idempotent)."""
        rows = await self._node_rows()
        wanted: dict[str, Peer] = {}
        for entry in self.routes:
            try:
                peer = route_peer(entry, self.dialing)
            except ValueError as exc:
                log.warning("ignoring route %r: %s", entry, exc)
                continue
            wanted[normalize_url(peer.url)] = peer
        for row in rows:
            self._row_peer(row, wanted)
        for key in list(self.peers):
            if key not in wanted:
                await self._stop_peer(self.peers.pop(key))
        for key, peer in wanted.items():
            current = self.peers.setdefault(key, peer)
            if current is not peer:
                self._refresh_peer(current, peer)
            self._ensure_links(current)
        await self._update_trust(rows)

    async def _update_trust(self, rows: list[dict]) -> None:
        """Give admission the current members, routes, CAs and this node's certificate."""
        certificates = [
            jsonx.loads(d)
            for d in await self.storage.get(SYSTEM).read(query.search, CERTIFICATES, None)
        ]
        members = {r["name"]: r for r in rows if isinstance(r.get("name"), str)}
        routes = [p for p in self.peers.values() if p.from_route]
        self.trust.update(members, routes, certificates)
        for session in list(self.publishers):
            reason = self.trust.revoked_reason(getattr(session, "security", None) or {})
            if reason:
                log.warning("closing the link %s serves: %s", session.machine.peer, reason)
                asyncio.ensure_future(session.conn.close(1008, reason))

    def _row_peer(self, row: dict, wanted: dict[str, Peer]) -> None:
        name, url = row.get("name"), row.get("url")
        if (
            not name
            or name == self.node
            or not url
            or normalize_url(url) == normalize_url(self.url)
        ):
            return
        key = normalize_url(url)
        peer = wanted.get(key) or Peer(url)
        peer.name, peer.row = name, row
        peer.authorization = self.retained.get(key)
        peer.subscriptions = row.get("subscriptions") or None
        if row.get("start_time"):
            from agent.replication.peers import start_version

            peer.start_version = start_version(row["start_time"])
        wanted[key] = peer

    def _refresh_peer(self, current: Peer, fresh: Peer) -> None:
        if fresh.name:
            current.name = fresh.name
        current.authorization = fresh.authorization
        if fresh.row is not None:
            current.row = fresh.row
            if fresh.subscriptions != current.subscriptions:
                current.subscriptions = fresh.subscriptions
                self._restart_peer(current)  # both directions now carry other tables
            current.start_version = fresh.start_version or current.start_version

    def _restart_peer(self, peer: Peer) -> None:
        """Re-dial a peer's links and close its sessions, so new subscriptions take effect."""
        for database, link in list(peer.links.items()):
            asyncio.ensure_future(link.stop())
            del peer.links[database]
        for session in list(self.publishers):
            if peer.name and session.machine.peer == peer.name:
                asyncio.ensure_future(session.conn.close(1012, "subscriptions changed"))

    def _ensure_links(self, peer: Peer) -> None:
        for database in self.replicated_databases():
            if database not in peer.links and peer.wants_database(database):
                link = SubscriberLink(self, peer, database)
                peer.links[database] = link
                link.start()

    async def _stop_peer(self, peer: Peer) -> None:
        for link in list(peer.links.values()):
            await link.stop()
        peer.links.clear()
        for session in list(self.publishers):
            if session.machine.peer == peer.name:
                await session.conn.close(1000, "node removed")

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            try:
                await self.reconcile()
                if self.config.get("replication.failOver"):
                    for database in self.replicated_databases():
                        self._replan(database)  # never wait for a link event to serve an origin
            except Exception:
                log.exception("replication reconcile failed")

    # --- link callbacks ---------------------------------------------------------------

    async def welcomed(self, link: SubscriberLink, welcome) -> None:
        """Learn a peer's name; on `system`, create the databases it has that we replicate."""
        peer = link.peer
        if peer.name is None:
            peer.name = welcome.node
            await self._remember_route_node(peer)
        if link.database == SYSTEM:
            for name in welcome.databases:
                if self._selected(name) and not self.storage.exists(name):
                    await self.storage.create(name, exists_ok=True)
                    self._tail(name)
            self._ensure_links(peer)

    async def _remember_route_node(self, peer: Peer) -> None:
        rows = {r.get("name") for r in await self._node_rows()}
        if peer.name not in rows:
            await self.write_nodes([{"name": peer.name, "url": peer.url, "replicates": True}])

    async def write_nodes(self, rows: list[dict], kind: str = "upsert") -> None:
        db = self.storage.get(SYSTEM)
        op = (
            WriteOp(kind, NODES, records=rows)
            if kind != "delete"
            else WriteOp(kind, NODES, ids=rows)
        )
        await db.write(LocalTransaction([op], self.storage.clock, self.node))

    async def copy_plan(self, link, synced, copy_state, cursors) -> dict | None | str:
        """Decide whether this link copies first; 'wait' while another link copies."""
        own = self.storage.get(link.database).origin_id
        return self.sync_gate.plan(link, synced, copy_state, cursors, own)

    async def wait_synced(self, database: str, timeout: float) -> None:
        await self.sync_gate.wait(database, timeout)

    def copy_finished(self, link: SubscriberLink) -> None:
        self.sync_gate.finished(link)

    def link_changed(self, link: SubscriberLink) -> None:
        """A link connected or dropped: release a copy it held and re-plan relays."""
        if not link.state.connected:
            self.sync_gate.released(link)
        if self.config.get("replication.failOver"):
            self._replan(link.database)

    def _links(self, database: str) -> list[SubscriberLink]:
        return [p.links[database] for p in self.peers.values() if database in p.links]

    def _connected_links(self, database: str) -> list[SubscriberLink]:
        """Links that can serve origins: connected, and carrying every table (no relay
        through a filtered link: it would deliver part of each transaction)."""
        return [
            link
            for link in self._links(database)
            if link.state.connected
            and link.peer_origin
            and link.machine is not None
            and link.scope is None
        ]

    def direct_origins(self, database: str) -> set[str]:
        """Return the origin ids this node receives directly on `database` (and its own)."""
        own = self.storage.get(database).origin_id if self.storage.exists(database) else None
        return {o for o in (own, *(x.peer_origin for x in self._connected_links(database))) if o}

    def origin_name(self, database: str, origin_id: str) -> str:
        """Return the node name behind an origin id where known (else the id itself)."""
        for link in self._links(database):
            if link.peer_origin == origin_id and link.peer.name:
                return link.peer.name
        if self.storage.exists(database) and self.storage.get(database).origin_id == origin_id:
            return self.node
        return origin_id

    def known_origins(self, database: str, cursors: dict | None = None) -> set[str]:
        """Return every origin id known on `database`: peers', what they hold, what we hold.

        An origin that is no peer (a node removed, rebuilt, or an origin id retired after a
        restore) is still served by whichever peer holds its transactions.
        """
        known = set(cursors or ())
        for link in self._links(database):
            if link.peer_origin:
                known.add(link.peer_origin)
            known.update(link.peer_cursors)
        return known

    def origins_for(self, link: SubscriberLink, cursors: dict | None = None) -> set[str]:
        """Return the origin ids to request on `link`: its peer's own, plus any it relays."""
        own = link.peer_origin
        if not self.config.get("replication.failOver") or link.scope is not None:
            return {own} if own else set()
        database = link.database
        if cursors is not None:
            self._cursor_cache[database] = dict(cursors)
        cursors = self._cursor_cache.get(database)
        me = self.storage.get(database).origin_id
        connected = self._connected_links(database)
        reach = {x.peer_origin: x.machine.stats.reach for x in connected}
        plan = assign_origins(
            me, self.known_origins(database, cursors), [x.peer_origin for x in connected], reach
        )
        return plan.get(own, {own} if own else set())

    def _replan(self, database: str) -> None:
        """Ask again on every connected link whose share of the origins changed."""
        for link in self._connected_links(database):
            if link.machine.state not in (STREAMING, COPYING):
                continue  # its Subscribe is being planned right now, with the new plan
            if self.origins_for(link, self._cursor_cache.get(database)) != link.subscribed_origins:
                link.resubscribe()

    def retain(self, url: str, header: str) -> None:
        """Keep credentials for dialling `url` (add_node's retain_authorization)."""
        self.retained[normalize_url(url)] = header
        credentials.save(self.config.root, self.retained)

    def forget_retained(self, url: str | None) -> None:
        """Drop the credentials kept for `url` (None: all of them), file included."""
        keep = {} if url is None else dict(self.retained)
        keep.pop(normalize_url(url or ""), None)
        if keep != self.retained:
            self.retained = keep
            credentials.save(self.config.root, self.retained)

    async def save_routes(self) -> None:
        """Persist replication.routes to the config file (cluster_set/delete_routes)."""
        from agent.config import update_config_file

        await asyncio.to_thread(
            update_config_file, self.config.config_path, "replication.routes", list(self.routes)
        )

    def publish_policy(self, peer: str, database: str, requested: list | None) -> set | None:
        """Return the tables this node publishes to `peer` on `database` (None: all).

        Explicit subscriptions in our hdb_nodes row for the peer replace automatic
        management: only entries with `publish` true for this database are served, and a
        table-less entry covers the whole database. Raise PermissionError to refuse.
        """
        found = next((p for p in self.peers.values() if p.name == peer), None)
        allowed: set | None = None
        if found is not None and found.subscriptions:
            entries = [
                s
                for s in found.subscriptions
                if s.get("publish", True) and (s.get("database") or s.get("schema")) == database
            ]
            if not entries:
                raise PermissionError(f"this node does not publish {database!r} to {peer}")
            if all(s.get("table") for s in entries):
                allowed = {s["table"] for s in entries}
        if requested is not None:
            allowed = set(requested) if allowed is None else allowed & set(requested)
        return allowed

    # --- operations from peers ----------------------------------------------------------

    async def peer_operation(self, body: dict, identity) -> dict:
        from agent.replication.membership import handle_peer_operation

        return await handle_peer_operation(self, body, identity)
