"""The catalog of one database: its tables, primary keys and attributes.

The catalog lives in memory for fast checks and in the `_tables` / `_attributes` SQLite tables
of the same file. Only the writer thread changes it, and only after the SQLite transaction that
recorded the change has committed (`Staged` holds changes until then), so readers never see a
table that a rolled-back transaction created.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from typing import Iterable

# The naming rules live in the core: what a peer sends is held to the same ones.
from agent.core.validate import NAME_RE, valid_declared_attribute
from agent.errors import ClientError, NotFound

CREATED = "__createdtime__"
UPDATED = "__updatedtime__"
TIME_ATTRIBUTES = (CREATED, UPDATED)
ATTRIBUTE_TYPES = ("String", "Int", "Float", "Long", "Boolean", "Date", "ID", "Any", "Bytes")

DDL = """
CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _tables (
    name TEXT PRIMARY KEY, primary_key TEXT NOT NULL, replicate INTEGER NOT NULL,
    schema_defined INTEGER NOT NULL, created REAL NOT NULL,
    version INTEGER NOT NULL DEFAULT 0, origin TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _drops (name TEXT PRIMARY KEY, version INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _attributes (
    tbl TEXT NOT NULL, name TEXT NOT NULL, type TEXT, indexed INTEGER NOT NULL,
    PRIMARY KEY (tbl, name)
) WITHOUT ROWID;
"""


def check_name(kind: str, name: object) -> str:
    """Return `name` if it is a valid database or table name, else raise ClientError."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ClientError(f"{kind} name {name!r} is invalid: use 1-64 letters, digits, '_' or '-'")
    return name


def check_attribute(name: object) -> str:
    """Return `name` if it can be an attribute name, else raise ClientError."""
    if not valid_declared_attribute(name):
        raise ClientError(
            f"attribute name {name!r} must be a string of 1-250 characters without NUL"
        )
    return name


def row_table(name: str) -> str:
    """Return the quoted SQLite name of a table's row store."""
    return f'"r_{name}"'


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str | None = None
    indexed: bool = False


@dataclass
class TableInfo:
    """One table: primary key, whether it replicates, and the attributes seen so far."""

    database: str
    name: str
    primary_key: str
    replicate: bool = True
    schema_defined: bool = False
    created: float = 0.0
    attributes: dict[str, Attribute] = field(default_factory=dict)
    # The version and origin name of the create_table that made this definition: schema
    # converges like data (agent/storage/schema.py), so a newer create or drop wins.
    version: int = 0
    origin: str = ""

    def describe_attributes(self) -> list[dict]:
        """List attributes as describe_table does: primary key first, times last."""
        names = [self.primary_key] + sorted(
            n for n in self.attributes if n != self.primary_key and n not in TIME_ATTRIBUTES
        )
        names += [n for n in TIME_ATTRIBUTES if n in self.attributes]
        return [self._describe(n) for n in names]

    def _describe(self, name: str) -> dict:
        attr = self.attributes.get(name, Attribute(name))
        entry: dict = {"attribute": name}
        if name == self.primary_key:
            entry.update(is_primary_key=True, indexed=True)
        elif attr.indexed or name in TIME_ATTRIBUTES:
            entry["indexed"] = True
        if attr.type:
            entry["type"] = attr.type
        return entry

    def definition(self) -> dict:
        """Return the portable definition sent to peers in schema messages."""
        return {
            "name": self.name,
            "primary_key": self.primary_key,
            "replicate": self.replicate,
            "schema_defined": self.schema_defined,
            "version": self.version,
            "origin": self.origin,
            "attributes": [
                {"name": a.name, "type": a.type, "indexed": a.indexed}
                for a in self.attributes.values()
            ],
        }


def table_from_definition(database: str, spec: dict, created: float) -> TableInfo:
    """Build a TableInfo from a definition as `TableInfo.definition` writes it."""
    info = TableInfo(
        database=database,
        name=check_name("table", spec.get("name")),
        primary_key=check_attribute(spec.get("primary_key") or "id"),
        replicate=bool(spec.get("replicate", True)),
        schema_defined=bool(spec.get("schema_defined", False)),
        created=created,
    )
    version, origin = spec.get("version"), spec.get("origin")
    info.version = version if isinstance(version, int) and not isinstance(version, bool) else 0
    info.origin = origin if isinstance(origin, str) else ""
    for attr in spec.get("attributes") or ():
        info.attributes[attr["name"]] = Attribute(
            attr["name"], attr.get("type"), bool(attr.get("indexed"))
        )
    for name in (info.primary_key, *TIME_ATTRIBUTES):
        info.attributes.setdefault(name, Attribute(name))
    return info


class Catalog:
    """Tables of one database by name; mutated only by the writer after commit."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.tables: dict[str, TableInfo] = {}

    def get(self, name: str) -> TableInfo | None:
        return self.tables.get(name)

    def require(self, name: object) -> TableInfo:
        """Return the table or raise NotFound with HarperDB's message."""
        info = self.tables.get(name) if isinstance(name, str) else None
        if info is None:
            raise NotFound(f"Table '{self.database}.{name}' does not exist")
        return info

    def names(self) -> list[str]:
        return sorted(self.tables)

    def load(self, conn: sqlite3.Connection) -> None:
        """Read the catalog from its SQLite tables."""
        self.tables.clear()
        for name, pk, rep, sd, created, version, origin in conn.execute(
            "SELECT name, primary_key, replicate, schema_defined, created, version, origin "
            "FROM _tables"
        ):
            self.tables[name] = TableInfo(
                self.database, name, pk, bool(rep), bool(sd), created, {}, version, origin
            )
        for tbl, name, typ, indexed in conn.execute(
            "SELECT tbl, name, type, indexed FROM _attributes"
        ):
            if tbl in self.tables:
                self.tables[tbl].attributes[name] = Attribute(name, typ, bool(indexed))

    def publish(self, staged: Staged) -> None:
        """Apply committed changes to the live catalog."""
        for name in staged.dropped:
            self.tables.pop(name, None)
        for info in staged.created.values():
            self.tables[info.name] = info
        for tbl, attrs in staged.attributes.items():
            info = self.tables.get(tbl)
            if info is not None:
                info.attributes = {**info.attributes, **{a.name: a for a in attrs}}


@dataclass
class Staged:
    """Catalog changes made by uncommitted jobs of one writer batch."""

    created: dict[str, TableInfo] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    attributes: dict[str, list[Attribute]] = field(default_factory=dict)

    def merge(self, other: Staged) -> None:
        for name in other.dropped:
            self.created.pop(name, None)
            self.attributes.pop(name, None)
            self.dropped.add(name)
        for name, info in other.created.items():
            self.dropped.discard(name)
            self.created[name] = info
        for tbl, attrs in other.attributes.items():
            self.attributes.setdefault(tbl, []).extend(attrs)


class CatalogView:
    """What one job sees: the live catalog plus the batch's and its own staged changes."""

    def __init__(self, live: Catalog, batch: Staged) -> None:
        self.live = live
        self.batch = batch
        self.job = Staged()

    def get(self, name: str) -> TableInfo | None:
        for staged in (self.job, self.batch):
            if name in staged.dropped:
                return None
            if name in staged.created:
                return self._with_attrs(staged.created[name])
        info = self.live.get(name)
        return self._with_attrs(info) if info is not None else None

    def require(self, name: object) -> TableInfo:
        info = self.get(name) if isinstance(name, str) else None
        if info is None:
            raise NotFound(f"Table '{self.live.database}.{name}' does not exist")
        return info

    def _with_attrs(self, info: TableInfo) -> TableInfo:
        extra = self.batch.attributes.get(info.name, []) + self.job.attributes.get(info.name, [])
        if not extra:
            return info
        return replace(info, attributes={**info.attributes, **{a.name: a for a in extra}})

    def add_attributes(self, info: TableInfo, names: Iterable[str]) -> list[Attribute]:
        """Stage new attributes of `info`, returning those that were really new."""
        new = [Attribute(n) for n in names if n not in info.attributes]
        if new:
            self.job.attributes.setdefault(info.name, []).extend(new)
        return new


def persist_table(conn: sqlite3.Connection, info: TableInfo) -> None:
    """Create a table's row store and catalog rows inside the current transaction."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {row_table(info.name)} ("
        "pk PRIMARY KEY, doc TEXT, version INTEGER NOT NULL, origin TEXT NOT NULL"
        ") WITHOUT ROWID"
    )
    conn.execute(
        "INSERT OR REPLACE INTO _tables VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            info.name,
            info.primary_key,
            int(info.replicate),
            int(info.schema_defined),
            info.created,
            info.version,
            info.origin,
        ),
    )
    persist_attributes(conn, info.name, info.attributes.values())


def persist_attributes(conn: sqlite3.Connection, table: str, attrs: Iterable[Attribute]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO _attributes VALUES (?, ?, ?, ?)",
        [(table, a.name, a.type, int(a.indexed)) for a in attrs],
    )


def drop_table_sql(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {row_table(name)}")
    conn.execute("DELETE FROM _tables WHERE name = ?", (name,))
    conn.execute("DELETE FROM _attributes WHERE tbl = ?", (name,))


def record_drop(conn: sqlite3.Connection, name: str, version: int) -> None:
    """Remember that `name` was dropped at `version` (kept: older writes stay discarded)."""
    conn.execute(
        "INSERT INTO _drops VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
        "SET version = max(version, excluded.version)",
        (name, version),
    )


def dropped_at(conn: sqlite3.Connection, name: str) -> int:
    """Return the version of the newest drop of table `name` (0: never dropped)."""
    row = conn.execute("SELECT version FROM _drops WHERE name = ?", (name,)).fetchone()
    return row[0] if row else 0
