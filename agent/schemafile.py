"""`<rootPath>/schema.graphql`: tables declared in HarperDB's GraphQL schema form.

    type LocalTableForNode @table(replicate: false) { id: ID! @primaryKey  name: String! }
    type Dog @table(database: "dev", table: "dog") { id: ID! @primaryKey  breed: String @indexed }

Only the parts that define tables are read: `@table(database, table, replicate)`,
`@primaryKey`, `@indexed` and the field types. Anything else is ignored; a malformed type
raises SchemaFileError naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TYPE_RE = re.compile(r"\btype\s+(\w+)\s*((?:@\w+(?:\([^)]*\))?\s*)*)\{([^}]*)\}", re.S)
DIRECTIVE_RE = re.compile(r"@(\w+)(?:\(([^)]*)\))?")
ARG_RE = re.compile(r"(\w+)\s*:\s*(\"[^\"]*\"|true|false|-?\d+)")
FIELD_RE = re.compile(r"(\w+)\s*:\s*(\[?\w+!?\]?!?)((?:\s*@\w+(?:\([^)]*\))?)*)")
TYPES = {
    "ID": "ID",
    "String": "String",
    "Int": "Int",
    "Float": "Float",
    "Long": "Long",
    "Boolean": "Boolean",
    "Date": "Date",
    "Any": "Any",
    "Bytes": "Bytes",
}


class SchemaFileError(ValueError):
    """schema.graphql cannot be understood; the message names the line."""


@dataclass
class DeclaredTable:
    database: str
    table: str
    primary_key: str
    replicate: bool = True
    attributes: list[dict] = field(default_factory=list)


def _args(text: str | None) -> dict:
    out = {}
    for key, raw in ARG_RE.findall(text or ""):
        if raw.startswith('"'):
            out[key] = raw[1:-1]
        elif raw in ("true", "false"):
            out[key] = raw == "true"
        else:
            out[key] = int(raw)
    return out


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def parse_schema(text: str) -> list[DeclaredTable]:
    """Return the tables a schema.graphql declares with @table."""
    tables = []
    for match in TYPE_RE.finditer(text):
        name, directives, body = match.groups()
        found = {d: _args(a) for d, a in DIRECTIVE_RE.findall(directives)}
        if "table" not in found:
            continue
        tables.append(_table(name, found["table"], body, _line(text, match.start())))
    return tables


def _table(name: str, args: dict, body: str, line: int) -> DeclaredTable:
    attributes, primary = [], None
    for fname, ftype, directives in FIELD_RE.findall(body):
        marks = {d for d, _ in DIRECTIVE_RE.findall(directives)}
        base = ftype.strip("[]!")
        attributes.append(
            {
                "name": fname,
                "type": TYPES.get(base, "Any"),
                "indexed": "indexed" in marks or "primaryKey" in marks,
            }
        )
        if "primaryKey" in marks:
            primary = fname
    if primary is None:
        raise SchemaFileError(f"line {line}: type {name} has no field marked @primaryKey")
    return DeclaredTable(
        database=str(args.get("database", "data")),
        table=str(args.get("table", name)),
        primary_key=primary,
        replicate=bool(args.get("replicate", True)),
        attributes=attributes,
    )
