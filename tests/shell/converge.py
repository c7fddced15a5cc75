"""What "converged" means for the shell simulator, read from each node's database files.

A node's state is read straight from its SQLite files through its own reader pool: every
replicated table's rows `(pk, doc, version, origin)` with tombstones, the per-origin cursors,
and which transactions of each origin the log holds. The cluster has converged when:

- every node holds the same databases, tables, rows and cursors (tombstones older than the
  newest tombstone horizon are left out: pruning forgets them at slightly different times);
- every acknowledged write is present or superseded on every node: its key's row has a
  version at least the acknowledged one, and the same version from the same node is the same
  kind of write; the row may be gone only when an acknowledged delete at least as new as the
  write is older than the tombstone horizon (its tombstone was pruned);
- no log has a hole: every sequence of every origin between its floor and its cursor is in
  the log, so no cursor passed a transaction that was not applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.storage import txlog
from agent.storage.catalog import row_table
from agent.storage.writes import tombstone_horizon

MAX_LINES = 25


@dataclass
class Dump:
    """One database file of one node, as the convergence check compares it."""

    tables: dict[str, dict[Any, tuple]]  # table -> pk -> (doc, version, origin)
    cursors: dict[str, int]
    holes: dict[str, list[int]]  # origin id -> sequences between floor and cursor not logged
    horizon: int


def dump(conn) -> Dump:
    """Read one database file (runs on a reader thread)."""
    names = [r[0] for r in conn.execute("SELECT name FROM _tables WHERE replicate ORDER BY name")]
    tables = {
        name: {
            pk: (doc, version, origin)
            for pk, doc, version, origin in conn.execute(
                f"SELECT pk, doc, version, origin FROM {row_table(name)}"
            )
        }
        for name in names
    }
    cursors = txlog.cursors(conn)
    floors = txlog.floors(conn)
    logged: dict[str, set[int]] = {}
    for origin_id, oseq in conn.execute("SELECT origin_id, oseq FROM _txlog"):
        logged.setdefault(origin_id, set()).add(oseq)
    holes = {}
    for origin_id, seq in cursors.items():
        have = logged.get(origin_id, set())
        missing = [s for s in range(floors.get(origin_id, 0) + 1, seq + 1) if s not in have]
        if missing:
            holes[origin_id] = missing
    return Dump(tables, cursors, holes, tombstone_horizon(conn))


async def dump_node(storage) -> dict[str, Dump]:
    """Read every database of a node."""
    return {name: await storage.get(name).read(dump) for name in storage.names()}


def problems(dumps: dict[str, dict[str, Dump]], acked: list) -> list[str]:
    """Return what keeps the cluster from having converged (empty: converged)."""
    found = _holes(dumps) + _differences(dumps) + _lost(dumps, acked)
    return found[:MAX_LINES] + ([f"... {len(found) - MAX_LINES} more"] if found[MAX_LINES:] else [])


def _holes(dumps: dict[str, dict[str, Dump]]) -> list[str]:
    return [
        f"{node}/{db}: the log lacks {origin}'s {seqs[:10]} below its cursor"
        for node, files in dumps.items()
        for db, d in files.items()
        for origin, seqs in d.holes.items()
    ]


def _horizons(dumps: dict[str, dict[str, Dump]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for files in dumps.values():
        for db, d in files.items():
            out[db] = max(out.get(db, 0), d.horizon)
    return out


def _visible(rows: dict[Any, tuple], horizon: int) -> dict[Any, tuple]:
    return {k: r for k, r in rows.items() if r[0] is not None or r[1] >= horizon}


def _differences(dumps: dict[str, dict[str, Dump]]) -> list[str]:
    nodes = sorted(dumps)
    first = nodes[0]
    horizons = _horizons(dumps)
    out = []
    for node in nodes[1:]:
        if set(dumps[node]) != set(dumps[first]):
            out.append(f"databases: {first}={sorted(dumps[first])} {node}={sorted(dumps[node])}")
    for db in sorted(dumps[first]):
        files = {n: dumps[n][db] for n in nodes if db in dumps[n]}
        out += _table_differences(db, files, horizons.get(db, 0))
        cursors = {n: f.cursors for n, f in files.items()}
        if any(c != cursors[first] for c in cursors.values()):
            out.append(f"{db} cursors differ: {cursors}")
    return out


def _table_differences(db: str, files: dict[str, Dump], horizon: int) -> list[str]:
    out = []
    names = {n: sorted(f.tables) for n, f in files.items()}
    if len({tuple(v) for v in names.values()}) > 1:
        return [f"{db} tables differ: {names}"]
    for table in next(iter(names.values())):
        rows = {n: _visible(f.tables[table], horizon) for n, f in files.items()}
        keys = set().union(*rows.values())
        for key in sorted(keys, key=repr):
            seen = {n: r.get(key) for n, r in rows.items()}
            if len(set(seen.values())) > 1:
                out.append(f"{db}.{table} {key!r}: {seen}")
    return out


def _lost(dumps: dict[str, dict[str, Dump]], acked: list) -> list[str]:
    horizons = _horizons(dumps)
    deletes: dict[tuple, list[int]] = {}
    for ack in acked:
        if ack.deleted:
            deletes.setdefault((ack.database, ack.table, ack.key), []).append(ack.version)
    out = []
    for ack in acked:
        # an absent row is kept only as a delete newer than the write, pruned past the horizon
        later = deletes.get((ack.database, ack.table, ack.key), [])
        forgotten = any(ack.version <= v < horizons.get(ack.database, 0) for v in later)
        for node, files in dumps.items():
            d = files.get(ack.database)
            row = d.tables.get(ack.table, {}).get(ack.key) if d else None
            if not _kept(ack, row, forgotten):
                out.append(f"{node} lost {ack}: holds {row}")
    return out


def _kept(ack, row: tuple | None, forgotten: bool) -> bool:
    """Tell whether `row` keeps an acknowledged write: it or a later one."""
    if row is None:
        return forgotten
    doc, version, origin = row
    if version != ack.version or origin != ack.node:
        return version > ack.version or (version == ack.version and origin > ack.node)
    return (doc is None) == ack.deleted


@dataclass
class Report:
    """Everything needed to understand (and approximately replay) a failed run."""

    seed: int
    headline: str
    problems: list[str]
    schedule: list[str]
    links: list[str]
    lost_applies: list[str]

    def text(self) -> str:
        parts = [
            f"{self.headline} (seed {self.seed}; replay: the same seed gives the same schedule)",
            "problems:",
            *(f"  {p}" for p in self.problems),
            "schedule as it ran:",
            *(f"  {line}" for line in self.schedule),
            "links:",
            *(f"  {line}" for line in self.links),
        ]
        if self.lost_applies:
            parts += ["applies lost on purpose:", *(f"  {x}" for x in self.lost_applies)]
        return "\n".join(parts)
