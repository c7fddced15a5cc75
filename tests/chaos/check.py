"""Judge a chaos run: compare what clients were told with what every node holds at the end.

The checker is pure: it takes the write ledger (every write with its outcome) and each node's
table contents, read straight from its SQLite file, and returns counts plus examples. Keeping
it free of processes and sockets is what lets the unit tests prove it can fail.

Outcomes: "acked" (HTTP 200 and the record was written), "skipped" (HTTP 200 but the agent
wrote nothing, e.g. a delete of an id it has not received yet), "refused" (4xx) and "unknown"
(timeout, connection error, 5xx, node down): an unknown write may or may not have happened.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLES = ("items", "hot", "pair_a", "pair_b")
MAX_EXAMPLES = 20

# (doc, version, origin); doc is None for a tombstone
Row = tuple[str | None, int, str]
TableRows = dict[Any, Row]
NodeContents = dict[str, TableRows]  # table -> pk -> row
Contents = dict[str, NodeContents]  # node name -> its tables


@dataclass
class Write:
    """One client write and what the client was told about it."""

    kind: str  # insert | upsert | delete | transaction
    table: str  # for a transaction: "pair_a+pair_b"
    id: str
    token: str
    node: str
    start: float  # seconds since the run started
    outcome: str = "pending"  # acked | skipped | refused | unknown
    detail: str = ""


@dataclass
class Findings:
    """Counts of each kind of failure, with up to MAX_EXAMPLES readable examples each."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, example: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        found = self.examples.setdefault(kind, [])
        if len(found) < MAX_EXAMPLES:
            found.append(example)

    def count(self, kind: str) -> int:
        return self.counts.get(kind, 0)


FAILURE_KINDS = ("lost", "divergent_ids", "deletes_undone", "torn", "hot_bad")


def read_node(path: Path) -> NodeContents:
    """Read every chaos table of one node's database file, read-only (safe while it runs)."""
    contents: NodeContents = {table: {} for table in TABLES}
    if not path.exists():
        return contents
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in TABLES:
            if f"r_{table}" in names:
                rows = conn.execute(f'SELECT pk, doc, version, origin FROM "r_{table}"')
                contents[table] = {pk: (doc, version, origin) for pk, doc, version, origin in rows}
    finally:
        conn.close()
    return contents


def tombstone_horizon(path: Path) -> int:
    """Return a node's tombstone horizon: it may have pruned tombstones older than this."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT value FROM _meta WHERE key = 'tombstone_horizon'").fetchone()
        return int(row[0]) if row else 0
    except sqlite3.Error:  # an older agent without the table or key
        return 0
    finally:
        conn.close()


def without_expired(contents: Contents, horizon: int) -> Contents:
    """Drop tombstones older than `horizon`: nodes prune them each on its own schedule.

    A tombstone past tombstone retention is gone on one node and not yet on another for a
    few seconds; that is not divergence. Live rows and newer tombstones are all compared.
    """
    if not horizon:
        return contents
    return {
        node: {
            table: {pk: row for pk, row in rows.items() if row[0] is not None or row[1] >= horizon}
            for table, rows in tables.items()
        }
        for node, tables in contents.items()
    }


def token_of(row: Row | None) -> str | None:
    """Return the token a live row carries, None for an absent row or a tombstone."""
    if row is None or row[0] is None:
        return None
    return json.loads(row[0]).get("token")


def describe(row: Row | None) -> str:
    if row is None:
        return "absent"
    doc, version, origin = row
    if doc is None:
        return f"tombstone v={version} origin={origin}"
    return f"token={token_of(row)} v={version} origin={origin}"


def per_node(contents: Contents, table: str, pk: Any) -> str:
    """Say what each node holds for one id, for an example line."""
    return "; ".join(f"{node}: {describe(c[table].get(pk))}" for node, c in contents.items())


def divergent(contents: Contents) -> list[tuple[str, Any]]:
    """Return every (table, id) whose row (tombstones included) or presence differs by node."""
    found = []
    for table in TABLES:
        keys = set().union(*(c[table].keys() for c in contents.values()))
        for pk in keys:
            if len({c[table].get(pk) for c in contents.values()}) > 1:
                found.append((table, pk))
    return found


def agree(contents: Contents) -> bool:
    """True when every node holds exactly the same rows."""
    return not divergent(contents)


def behind(contents: Contents) -> dict[str, int]:
    """Count, per node, the divergent ids where it lacks the newest row some node has."""
    out: dict[str, int] = {}
    for table, pk in divergent(contents):
        rows = {node: tables[table].get(pk) for node, tables in contents.items()}
        newest = max((r[1] for r in rows.values() if r is not None), default=0)
        for node, row in rows.items():
            if row is None or row[1] < newest:
                out[node] = out.get(node, 0) + 1
    return dict(sorted(out.items()))


def check(writes: list[Write], contents: Contents) -> Findings:
    """Count lost writes, divergent ids, undone deletes, torn pairs and bad hot keys."""
    findings = Findings({kind: 0 for kind in FAILURE_KINDS})
    for table, pk in sorted(divergent(contents), key=repr):
        findings.add("divergent_ids", f"{table}/{pk}: {per_node(contents, table, pk)}")
    _check_inserts(writes, contents, findings)
    _check_transactions(writes, contents, findings)
    _check_deletes(writes, contents, findings)
    _check_torn(contents, findings)
    _check_hot(writes, contents, findings)
    return findings


def _deleted(writes: list[Write]) -> set[str]:
    """Ids a delete may have removed: acked, or with an outcome nobody knows."""
    return {w.id for w in writes if w.kind == "delete" and w.outcome in ("acked", "unknown")}


def _missing_on(contents: Contents, table: str, pk: str, token: str) -> list[str]:
    return [node for node, c in contents.items() if token_of(c[table].get(pk)) != token]


def _check_inserts(writes: list[Write], contents: Contents, findings: Findings) -> None:
    deleted = _deleted(writes)
    for w in writes:
        if w.kind != "insert" or w.outcome != "acked" or w.id in deleted:
            continue
        missing = _missing_on(contents, "items", w.id, w.token)
        if missing:
            where = per_node(contents, "items", w.id)
            findings.add("lost", f"items/{w.id} acked by {w.node} at {w.start:.1f}s: {where}")


def _check_transactions(writes: list[Write], contents: Contents, findings: Findings) -> None:
    for w in writes:
        if w.kind != "transaction" or w.outcome != "acked":
            continue
        tables = [t for t in ("pair_a", "pair_b") if _missing_on(contents, t, w.id, w.token)]
        if tables:
            where = " | ".join(f"{t}: {per_node(contents, t, w.id)}" for t in tables)
            findings.add("lost", f"transaction {w.id} acked by {w.node} at {w.start:.1f}s: {where}")


def _check_deletes(writes: list[Write], contents: Contents, findings: Findings) -> None:
    for w in writes:
        if w.kind != "delete" or w.outcome != "acked":
            continue
        alive = [n for n, c in contents.items() if token_of(c["items"].get(w.id)) is not None]
        if alive:
            where = per_node(contents, "items", w.id)
            findings.add(
                "deletes_undone", f"items/{w.id} deleted via {w.node} at {w.start:.1f}s: {where}"
            )


def _check_torn(contents: Contents, findings: Findings) -> None:
    torn: dict[Any, list[str]] = defaultdict(list)
    for node, c in contents.items():
        for pk in set(c["pair_a"]) | set(c["pair_b"]):
            a, b = token_of(c["pair_a"].get(pk)), token_of(c["pair_b"].get(pk))
            if a != b:
                torn[pk].append(f"{node}: pair_a={a} pair_b={b}")
    for pk in sorted(torn, key=repr):
        findings.add("torn", f"{pk}: " + "; ".join(torn[pk]))


def _check_hot(writes: list[Write], contents: Contents, findings: Findings) -> None:
    written: dict[str, set[str]] = defaultdict(set)
    acked: set[str] = set()
    for w in writes:
        if w.kind == "upsert" and w.outcome in ("acked", "unknown"):
            written[w.id].add(w.token)
            if w.outcome == "acked":
                acked.add(w.id)
    keys = set(acked).union(*(c["hot"].keys() for c in contents.values()))
    for pk in sorted(keys, key=repr):
        values = {token_of(c["hot"].get(pk)) for c in contents.values()}
        (value,) = values if len(values) == 1 else (None,)
        if value is None or value not in written[pk]:
            findings.add("hot_bad", f"hot/{pk}: {per_node(contents, 'hot', pk)}")


def row_counts(contents: Contents) -> dict[str, dict[str, dict[str, int]]]:
    """Per node and table: live rows and tombstones, for the report."""
    return {
        node: {
            table: {
                "live": sum(1 for r in rows.values() if r[0] is not None),
                "tombstones": sum(1 for r in rows.values() if r[0] is None),
            }
            for table, rows in c.items()
        }
        for node, c in contents.items()
    }
