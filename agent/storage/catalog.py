"""The catalog of one database: its tables, primary keys and attributes.

The catalog lives in memory for fast checks and in the `_tables` / `_attributes` SQLite tables
of the same file. Only the writer thread changes it, and only after the SQLite transaction that
recorded the change has committed (`Staged` holds changes until then), so readers never see a
table that a rolled-back transaction created.

Attributes are declared (create_table, create_attribute, schema.graphql: kept until
drop_attribute) or dynamic (first seen in a record: forgotten again once no live record
carries them, see `writes.ForgetAttributes`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

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
    declared INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tbl, name)
) WITHOUT ROWID;
"""


def migrate(conn: sqlite3.Connection) -> None:
    """Add `_attributes.declared` to a file made before it (its own transaction).

    Which untyped attributes such a file's tables declared is not known: typed, indexed and
    primary key attributes, and every attribute of a schema-defined table, count as declared.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(_attributes)")}
    if "declared" in columns:
        return
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ALTER TABLE _attributes ADD COLUMN declared INTEGER NOT NULL DEFAULT 0")
    conn.execute(
        "UPDATE _attributes SET declared = 1 WHERE type IS NOT NULL OR indexed OR EXISTS "
        "(SELECT 1 FROM _tables t WHERE t.name = tbl AND (t.schema_defined OR t.primary_key = "
        "_attributes.name))"
    )
    conn.execute("COMMIT")


def check_name(kind: str, name: object) -> str:
    """Return `name` if it is a valid database or table name, else raise ClientError."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
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
    declared: bool = False  # else dynamic: forgotten when no live record carries it


def spec_of(attr: Attribute) -> dict:
    """Return an attribute as ATTRIBUTE writes and table definitions carry it."""
    return {"type": attr.type, "indexed": attr.indexed, "declared": attr.declared}


def attribute_from_spec(name: str, spec: object, declared: bool = False) -> Attribute:
    """Build an Attribute from `spec_of`'s form; `declared` when a peer's spec predates it."""
    spec = spec if isinstance(spec, dict) else {}
    flag = spec.get("declared")
    return Attribute(
        name,
        spec.get("type"),
        bool(spec.get("indexed")),
        flag
        if isinstance(flag, bool)
        else declared or bool(spec.get("type") or spec.get("indexed")),
    )


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

    def describe_attributes(self, declared_only: bool = False) -> list[dict]:
        """List attributes as describe_table does: primary key first, times last.

        `declared_only`: as HarperDB describes a table created with attributes, only those
        (no `__createdtime__`/`__updatedtime__`, nothing records added).
        """
        names = [self.primary_key] + sorted(
            n
            for n, a in self.attributes.items()
            if n != self.primary_key
            and n not in TIME_ATTRIBUTES
            and (a.declared or not declared_only)
        )
        if not declared_only:
            names += [n for n in TIME_ATTRIBUTES if n in self.attributes]
        return [self._describe(n) for n in names]

    def forgettable(self, name: str) -> bool:
        """Return True for a dynamic attribute (not declared, primary key or a time)."""
        attr = self.attributes.get(name)
        return (
            attr is not None
            and not attr.declared
            and name != self.primary_key
            and name not in TIME_ATTRIBUTES
        )

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
            "attributes": [{"name": a.name, **spec_of(a)} for a in self.attributes.values()],
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
        name = attr["name"]
        info.attributes[name] = attribute_from_spec(name, attr, name == info.primary_key)
    for name in (info.primary_key, *TIME_ATTRIBUTES):
        info.attributes.setdefault(name, Attribute(name))
    return info


class Catalog:
    """Tables of one database by name; mutated only by the writer after commit."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.tables: dict[str, TableInfo] = {}
        # called after commit with the tables that lost records (writes.ForgetAttributes)
        self.on_stale: Callable[[set[str]], None] | None = None

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
        for tbl, name, typ, indexed, declared in conn.execute(
            "SELECT tbl, name, type, indexed, declared FROM _attributes"
        ):
            if tbl in self.tables:
                self.tables[tbl].attributes[name] = Attribute(
                    name, typ, bool(indexed), bool(declared)
                )

    def publish(self, staged: Staged) -> None:
        """Apply committed changes to the live catalog."""
        for name in staged.dropped:
            self.tables.pop(name, None)
        for info in staged.created.values():
            self.tables[info.name] = info
        for tbl, names in staged.forgotten.items():
            info = self.tables.get(tbl)
            if info is not None:
                info.attributes = {n: a for n, a in info.attributes.items() if n not in names}
        for tbl, attrs in staged.attributes.items():
            info = self.tables.get(tbl)
            if info is not None:
                info.attributes = {**info.attributes, **{a.name: a for a in attrs}}
        stale = staged.stale & set(self.tables)
        if stale and self.on_stale is not None:
            self.on_stale(stale)


@dataclass
class Staged:
    """Catalog changes made by uncommitted jobs of one writer batch."""

    created: dict[str, TableInfo] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    attributes: dict[str, list[Attribute]] = field(default_factory=dict)
    # Attributes removed (drop_attribute, or dynamic ones no record carries any more); never
    # a name also in `attributes` of the same table: adding and forgetting cancel out.
    forgotten: dict[str, set[str]] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)  # tables that lost records

    def merge(self, other: Staged) -> None:
        for name in other.dropped:
            self.created.pop(name, None)
            self.attributes.pop(name, None)
            self.forgotten.pop(name, None)
            self.dropped.add(name)
        for name, info in other.created.items():
            self.dropped.discard(name)
            self.created[name] = info
        for tbl, names in other.forgotten.items():
            self.forget(tbl, names)
        for tbl, attrs in other.attributes.items():
            self.add(tbl, attrs)
        self.stale |= other.stale

    def add(self, table: str, attrs: Iterable[Attribute]) -> None:
        attrs = list(attrs)
        if table in self.forgotten:
            self.forgotten[table] -= {a.name for a in attrs}
        self.attributes.setdefault(table, []).extend(attrs)

    def forget(self, table: str, names: Iterable[str]) -> None:
        names = set(names)
        if table in self.attributes:
            self.attributes[table] = [a for a in self.attributes[table] if a.name not in names]
        self.forgotten.setdefault(table, set()).update(names)


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
        attrs = info.attributes
        changed = False
        for staged in (self.batch, self.job):  # in the order they were made
            gone = staged.forgotten.get(info.name)
            if gone:
                attrs = {n: a for n, a in attrs.items() if n not in gone}
                changed = True
            extra = staged.attributes.get(info.name)
            if extra:
                attrs = {**attrs, **{a.name: a for a in extra}}
                changed = True
        return replace(info, attributes=attrs) if changed else info

    def add_attributes(self, info: TableInfo, names: Iterable[str]) -> list[Attribute]:
        """Stage new attributes of `info`, returning those that were really new."""
        new = [Attribute(n) for n in names if n not in info.attributes]
        if new:
            self.job.add(info.name, new)
        return new

    def forget_attributes(self, info: TableInfo, names: Iterable[str]) -> None:
        """Stage the removal of attributes of `info` (their catalog rows go separately)."""
        self.job.forget(info.name, names)

    def mark_stale(self, table: str) -> None:
        """Note that `table` lost records: its dynamic attributes are recounted after commit."""
        self.job.stale.add(table)


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
        "INSERT OR IGNORE INTO _attributes (tbl, name, type, indexed, declared) "
        "VALUES (?, ?, ?, ?, ?)",
        [(table, a.name, a.type, int(a.indexed), int(a.declared)) for a in attrs],
    )


def forget_attributes_sql(conn: sqlite3.Connection, table: str, names: Iterable[str]) -> None:
    conn.executemany(
        "DELETE FROM _attributes WHERE tbl = ? AND name = ?", [(table, n) for n in names]
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
