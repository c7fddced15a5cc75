"""Whose users and roles win when two nodes join, settled inside add_node / add_node_back.

Rows of `system.hdb_user` and `system.hdb_role` replicate by last write wins, so without this
the side that created its admin last would impose its password on the other. Instead:

1. The caller (add_node) sends an *offer* with add_node_back: whether it has peers, the
   highest version among its user and role rows, a fresh nonce, and per user and per role a
   digest of the row (HMAC-SHA256 keyed by the nonce; None for a tombstone). Never a row.
2. The callee decides (`callee_wins`): the side that has peers wins; between two standalone
   nodes, or two clusters, the callee (the node named in add_node) wins. `plan` says which
   rows each side re-writes: the winner its rows that differ on the other side (those users
   are *replaced* there), and either side its live rows the other holds only as a tombstone
   (so a join keeps every user either side has).
3. Each side re-writes its share with a fresh version (the same content, after folding the
   other side's highest version into the clock), so last write wins picks them everywhere.
   A side that would have to out-version rows stamped further ahead of its clock than
   replication.maxClockSkew refuses the join instead.
   The callee does so before it answers, the caller before it writes the hdb_nodes rows:
   both before either side pulls system data from the other.

The callee answers with a *verdict*: the replaced names and what the caller must re-write.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from agent import jsonx
from agent.core.clock import ahead_ms, too_far_ahead
from agent.errors import ClientError
from agent.storage import rows as row_store
from agent.storage.system import ROLES, SYSTEM, USERS
from agent.storage.writes import LocalTransaction, WriteOp

log = logging.getLogger(__name__)
KINDS = {"users": USERS, "roles": ROLES}  # wire key -> system table
TIMESTAMPS = ("__createdtime__", "__updatedtime__")  # not content: every write moves them
MAX_ENTRIES = 100_000
MAX_NAME = 1024
MAX_VERSION = (1 << 63) - 1
_DIGEST = re.compile(r"[0-9a-f]{64}")
_NONCE = re.compile(r"[0-9a-f]{16,128}")
PAGE = 1000


# -- pure: digests, the decision and the plan -----------------------------------------------------


def row_digest(row: dict, nonce: str) -> str:
    """Return a keyed digest of a row's content (timestamps left out); never the row itself."""
    content = {k: v for k, v in row.items() if k not in TIMESTAMPS}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(nonce.encode(), text.encode("utf-8", "surrogatepass"), "sha256").hexdigest()


def digests(table: dict[str, dict | None], nonce: str) -> dict[str, str | None]:
    """Return {key: digest, or None for a tombstone} for one table's rows."""
    return {k: None if row is None else row_digest(row, nonce) for k, row in table.items()}


def callee_wins(caller_has_peers: bool, callee_has_peers: bool) -> bool:
    """Return True when the callee's rows win: unless only the caller already has peers."""
    return not (caller_has_peers and not callee_has_peers)


@dataclass
class Share:
    """What one side re-writes for one table, and which of those replace the other's row."""

    rewrite: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)


def plan(winner: dict[str, str | None], loser: dict[str, str | None]) -> tuple[Share, Share]:
    """Return (winner's share, loser's share) for one table's digests on each side."""
    won, lost = Share(), Share()
    for key in sorted(set(winner) & set(loser), key=str):
        mine, theirs = winner[key], loser[key]
        if mine is not None and theirs is not None and mine != theirs:
            won.rewrite.append(key)
            won.replaced.append(key)
        elif mine is not None and theirs is None:
            won.rewrite.append(key)  # a live row beats the other side's older delete
        elif mine is None and theirs is not None:
            lost.rewrite.append(key)
    return won, lost


# -- the wire: offer and verdict, validated ------------------------------------------------------


@dataclass
class Offer:
    """The caller's side of the exchange, as add_node_back receives it."""

    nonce: str
    has_peers: bool
    top: int
    tables: dict[str, dict[str, str | None]]


@dataclass
class Verdict:
    """The callee's answer: the names replaced and what the caller must re-write."""

    callee_won: bool
    top: int
    replaced: dict[str, list[str]]
    rewrite: dict[str, list[str]]

    def wire(self) -> dict:
        return {
            "callee_won": self.callee_won,
            "top": self.top,
            "replaced": self.replaced,
            "rewrite": self.rewrite,
        }


def _bad(what: str) -> ClientError:
    return ClientError(f"add_node_back: {what}")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise _bad(f"{where} must hold names of 1-{MAX_NAME} characters")
    return value


def check_top(value: Any, where: str) -> int:
    """Return a version a peer sent, if it is one SQLite can store."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VERSION:
        raise _bad(f"'{where}' must be a version (an integer from 0 to 2**63-1)")
    return value


def _digest_map(raw: Any, where: str) -> dict[str, str | None]:
    if not isinstance(raw, dict) or len(raw) > MAX_ENTRIES:
        raise _bad(f"'{where}' must be an object of at most {MAX_ENTRIES} entries")
    for key, value in raw.items():
        _name(key, where)
        if value is not None and (not isinstance(value, str) or not _DIGEST.fullmatch(value)):
            raise _bad(f"'{where}' values must be hex SHA-256 digests or null")
    return dict(raw)


def _name_lists(raw: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(raw, dict) or set(raw) != set(KINDS):
        raise _bad(f"'{where}' must be an object with 'users' and 'roles'")
    out = {}
    for kind, names in raw.items():
        if not isinstance(names, list) or len(names) > MAX_ENTRIES:
            raise _bad(f"'{where}.{kind}' must be an array of names")
        out[kind] = [_name(n, f"{where}.{kind}") for n in names]
    return out


def parse_offer(raw: Any) -> Offer:
    """Return the caller's offer, or raise ClientError naming what is wrong with it."""
    if not isinstance(raw, dict):
        raise _bad("'join' must be an object")
    nonce = raw.get("nonce")
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise _bad("'join.nonce' must be 16-128 lowercase hex digits")
    if not isinstance(raw.get("has_peers"), bool):
        raise _bad("'join.has_peers' must be true or false")
    tables = {kind: _digest_map(raw.get(kind), f"join.{kind}") for kind in KINDS}
    return Offer(nonce, raw["has_peers"], check_top(raw.get("top"), "join.top"), tables)


def parse_verdict(raw: Any) -> Verdict:
    """Return the callee's verdict, or raise ClientError naming what is wrong with it."""
    if not isinstance(raw, dict) or not isinstance(raw.get("callee_won"), bool):
        raise _bad("the answer's 'join' must be an object with 'callee_won'")
    return Verdict(
        raw["callee_won"],
        check_top(raw.get("top"), "join.top"),
        _name_lists(raw.get("replaced"), "join.replaced"),
        _name_lists(raw.get("rewrite"), "join.rewrite"),
    )


# -- storage: read this side's rows, re-write a share ---------------------------------------------


@dataclass
class Rows:
    """This side's user and role rows (None for a tombstone) and their highest version."""

    tables: dict[str, dict[str, dict | None]]
    top: int


def _read_table(conn, table: str) -> tuple[dict[str, dict | None], int]:
    found: dict[str, dict | None] = {}
    top, after = 0, None
    while True:
        page = row_store.scan(conn, table, after, PAGE)
        for pk, doc, version, _origin in page:
            top = max(top, version)
            if isinstance(pk, str):  # users and roles are keyed by name
                found[pk] = None if doc is None else jsonx.loads(doc)
        if len(page) < PAGE:
            return found, top
        after = page[-1][0]


def _read_all(conn) -> Rows:
    tables, top = {}, 0
    for kind, table in KINDS.items():
        tables[kind], highest = _read_table(conn, table)
        top = max(top, highest)
    return Rows(tables, top)


async def read_rows(storage) -> Rows:
    """Return this node's user and role rows, tombstones included, in one read."""
    return await storage.get(SYSTEM).read(_read_all)


def offer(rows: Rows, nonce: str, has_peers: bool) -> dict:
    """Return the caller's offer for add_node_back."""
    return {
        "nonce": nonce,
        "has_peers": has_peers,
        "top": rows.top,
        **{kind: digests(rows.tables[kind], nonce) for kind in KINDS},
    }


async def rewrite(replicator, names: dict[str, list[str]], their_top: int, peer: str) -> None:
    """Re-write the named live rows with a version newer than any the other side holds."""
    if not any(names.values()):
        return  # nothing to out-version: a peer's clock, however far ahead, is the links' concern
    guard_clock(replicator, their_top, peer)
    storage = replicator.storage
    storage.clock.observe(their_top)
    current = await read_rows(storage)  # fresh: a change since the offer is kept as it is
    ops = []
    for kind, table in KINDS.items():
        held = current.tables[kind]
        records = [_content(held[k]) for k in names.get(kind, []) if held.get(k) is not None]
        if records:
            ops.append(WriteOp("upsert", table, records=records))
    if ops:
        transaction = LocalTransaction(ops, storage.clock, replicator.node)
        await storage.get(SYSTEM).write(transaction)


def _content(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "__updatedtime__"}


# -- the two halves --------------------------------------------------------------------------------


async def settle_callee(replicator, raw: Any, has_peers: bool, caller: str) -> Verdict:
    """Decide whose rows win, re-write this side's share, and return the verdict for the caller."""
    theirs = parse_offer(raw)
    mine = await read_rows(replicator.storage)
    won = callee_wins(theirs.has_peers, has_peers)
    replaced: dict[str, list[str]] = {}
    mine_to_write: dict[str, list[str]] = {}
    theirs_to_write: dict[str, list[str]] = {}
    for kind in KINDS:
        here = digests(mine.tables[kind], theirs.nonce)
        there = theirs.tables[kind]
        winner, loser = plan(here, there) if won else plan(there, here)
        replaced[kind] = winner.replaced
        mine_to_write[kind] = (winner if won else loser).rewrite
        theirs_to_write[kind] = (loser if won else winner).rewrite
    await rewrite(replicator, mine_to_write, theirs.top, caller)
    log_replaced("add_node_back", replicator.node if won else caller, replaced)
    return Verdict(won, mine.top, replaced, theirs_to_write)


async def settle_caller(replicator, raw: Any, peer: str) -> dict[str, list[str]]:
    """Re-write what the callee's verdict asks of this side; return the replaced names."""
    verdict = parse_verdict(raw)
    await rewrite(replicator, verdict.rewrite, verdict.top, peer)
    log_replaced("add_node", peer if verdict.callee_won else replicator.node, verdict.replaced)
    return verdict.replaced


def guard_clock(replicator, top: int, peer: str) -> None:
    """Refuse to out-version rows stamped too far ahead of our clock (replication.maxClockSkew).

    Re-writing above them would carry that offset into this node's clock for good, and every
    peer's clock guard would refuse the re-written rows anyway.
    """
    limit, now_ms = replicator.max_clock_ahead_ms, replicator.storage.clock.now_ms()
    if too_far_ahead(top, now_ms, limit):
        raise ClientError(
            f"{peer}'s users and roles carry versions {ahead_ms(top, now_ms) / 1000.0:.1f}s "
            f"ahead of this node's clock (replication.maxClockSkew is {limit / 1000.0:g}s); "
            "fix the clocks and join again"
        )


def log_replaced(where: str, winner: str, replaced: dict[str, list[str]]) -> None:
    """Log the names of the users and roles a join replaced (names only, never a row)."""
    if not any(replaced.values()):
        return
    log.warning(
        "%s: the rows of %s win; users replaced: %s; roles replaced: %s",
        where,
        winner,
        ", ".join(replaced["users"]) or "none",
        ", ".join(replaced["roles"]) or "none",
    )
