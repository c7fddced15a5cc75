"""`<rootPath>/schema.graphql`: tables declared in HarperDB's GraphQL schema form.

    type LocalTableForNode @table(replicate: false) { id: ID! @primaryKey  name: String! }
    type Dog @table(database: "dev", table: "dog") { id: ID! @primaryKey  breed: String @indexed }

The text is parsed by graphql-core (the only importer of graphql), so `#` comments, strings and
block strings mean what GraphQL says. A type with `@table` is a table; other types are ignored
(fields may use them as nested types). What becomes of a table: `@table(database, table,
replicate)`, the `@primaryKey` field, `@indexed` fields and the field types.

Every directive HarperDB documents is accepted with its arguments checked; those harper-agent
does not act on are logged once each as having no effect. Anything else is an error: a syntax
error, an unknown directive or argument, an argument of the wrong kind, a directive in the wrong
place, an unknown field type, a table without exactly one @primaryKey, a bad database or table
name, or one table declared twice. SchemaFileError lists them all, each with its line and column.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from graphql import GraphQLError, parse
from graphql.language import (
    BooleanValueNode,
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    EnumValueNode,
    ExecutableDefinitionNode,
    IntValueNode,
    Lexer,
    ListTypeNode,
    Node,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    Source,
    StringValueNode,
    TokenKind,
    TypeDefinitionNode,
    TypeNode,
    Visitor,
    print_ast,
    visit,
)
from graphql.pyutils import suggestion_list

from agent.core.validate import valid_declared_attribute, valid_name

log = logging.getLogger(__name__)

# HarperDB's scalar types and the attribute type each is stored as (None: not stored).
SCALARS = {
    "ID": "ID",
    "String": "String",
    "Int": "Int",
    "Float": "Float",
    "Long": "Long",
    "BigInt": "Any",
    "Boolean": "Boolean",
    "Date": "Date",
    "Any": "Any",
    "Bytes": "Bytes",
    "Blob": "Bytes",
    "FullText": None,
}
# Argument kinds: the value nodes each accepts, and how to say what it must be.
_KINDS = {
    "String": ((StringValueNode,), "a string"),
    "Boolean": ((BooleanValueNode,), "true or false"),
    "Int": ((IntValueNode,), "a whole number"),
    # HarperDB's docs write @relationship(from: brandId): a bare name, or a string
    "name": ((StringValueNode, EnumValueNode), "a field name"),
}


@dataclass(frozen=True)
class _Directive:
    """A directive HarperDB documents: where it goes and the kind of each argument."""

    on: str  # "type" or "field"
    args: dict[str, str]  # name -> kind ("any": not checked)


def _spec(on: str, args: str = "") -> _Directive:
    """Build a _Directive from "name:Kind name:Kind ..."."""
    return _Directive(on, dict(item.split(":") for item in args.split()))


DIRECTIVES = {
    "table": _spec(
        "type",
        "table:String database:String replicate:Boolean expiration:Int eviction:Int "
        "scanInterval:Int audit:Boolean randomAccessFields:Boolean",
    ),
    "export": _spec("type", "name:String rest:Boolean mqtt:Boolean"),
    "sealed": _spec("type"),
    "primaryKey": _spec("field"),
    "indexed": _spec(
        "field",
        "type:String distance:String efConstruction:Int M:Int optimizeRouting:Int mL:Int "
        "efConstructionSearch:Int",
    ),
    "createdTime": _spec("field"),
    "updatedTime": _spec("field"),
    "expiresAt": _spec("field"),
    "enumerable": _spec("field"),
    "allow": _spec("field", "role:String"),
    "computed": _spec("field", "from:String version:Int"),
    "relationship": _spec("field", "from:name to:name"),
    "fullText": _spec(
        "field",
        "fields:any synonyms:any highlighting:any analyzer:String stopWords:Boolean "
        "positions:Boolean surfaceTerms:Boolean",
    ),
}
# What HarperDB would do that harper-agent does not: logged once each when used.
NO_EFFECT = {
    "@table(expiration)": "records never expire",
    "@table(eviction)": "records never expire",
    "@table(scanInterval)": "records never expire",
    "@table(audit)": "the transaction log is always kept",
    "@sealed": "records may carry other attributes",
    "@createdTime": "the field is not filled in",
    "@updatedTime": "the field is not filled in",
    "@expiresAt": "records never expire",
    "@allow": "the field is not restricted by role",
    "@computed": "the field is not computed",
    "@relationship": "the field is not resolved",
    "@fullText": "no full-text index is built",
}
# Fields HarperDB does not store: they are not attributes of the table.
NOT_STORED = {"computed", "relationship", "fullText"}
MAX_ERRORS = 20


class SchemaFileError(ValueError):
    """schema.graphql cannot be understood; `errors` holds (line, column, reason) of each fault."""

    def __init__(self, errors: list[tuple[int, int, str]]) -> None:
        self.errors = sorted(errors)[:MAX_ERRORS]
        lines = [f"line {line}, column {column}: {reason}" for line, column, reason in self.errors]
        if len(lines) == 1:
            super().__init__(lines[0])
        else:
            super().__init__(f"{len(errors)} errors:\n  " + "\n  ".join(lines))


@dataclass
class DeclaredTable:
    """A table schema.graphql declares, as node.declare_tables creates it."""

    database: str
    table: str
    primary_key: str
    replicate: bool = True
    attributes: list[dict] = field(default_factory=list)


def parse_schema(text: str) -> list[DeclaredTable]:
    """Return the tables a schema.graphql declares with @table; raise SchemaFileError."""
    document = _parse(text)
    if document is None:
        return []
    checker = _Checker(document)
    checker.check()
    if checker.errors:
        raise SchemaFileError(checker.errors)
    for feature, line in checker.unused.items():
        log.warning(
            "schema.graphql line %d: %s has no effect in harper-agent: %s",
            line,
            feature,
            NO_EFFECT[feature],
        )
    return checker.tables


def _parse(text: str) -> DocumentNode | None:
    """Parse the text; None when it holds no definitions at all (empty, or only comments)."""
    source = Source(text, "schema.graphql")
    try:
        if Lexer(source).advance().kind == TokenKind.EOF:
            return None
        return parse(source)
    except GraphQLError as err:
        line, column = (err.locations or [(1, 1)])[0]
        reason = err.message.replace("Syntax Error: ", "syntax error: ", 1).rstrip(".")
        if opened := _unclosed_brace(source):
            reason += f"; the '{{' on line {opened} is never closed"
        raise SchemaFileError([(line, column, reason)]) from None


def _unclosed_brace(source: Source) -> int | None:
    """Return the line of the innermost '{' still open at the end of the text, if any."""
    lexer, opened = Lexer(source), []
    try:
        token = lexer.advance()
        while token.kind != TokenKind.EOF:
            if token.kind == TokenKind.BRACE_L:
                opened.append(token.line)
            elif token.kind == TokenKind.BRACE_R and opened:
                opened.pop()
            token = lexer.advance()
    except GraphQLError:
        return None
    return opened[-1] if opened else None


def _where(node: Node) -> tuple[int, int]:
    token = node.loc.start_token if node.loc else None
    return (token.line, token.column) if token else (1, 1)


def _did_you_mean(name: str, options: object, prefix: str = "") -> str:
    found = suggestion_list(name, list(options))
    return f"; did you mean {prefix}{found[0]}?" if found else ""


def _base_type(node: TypeNode) -> tuple[str, bool]:
    """Return (the named type under any [ ] and !, whether it is a list)."""
    is_list = False
    while isinstance(node, (ListTypeNode, NonNullTypeNode)):
        is_list = is_list or isinstance(node, ListTypeNode)
        node = node.type
    return node.name.value, is_list


class _Checker:
    """Walk a parsed document once: collect the tables and every fault found."""

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self.errors: list[tuple[int, int, str]] = []
        self.tables: list[DeclaredTable] = []
        self.unused: dict[str, int] = {}  # NO_EFFECT feature -> first line using it
        types = [d for d in document.definitions if isinstance(d, TypeDefinitionNode)]
        self.defined = {d.name.value for d in types}
        self.custom = {
            d.name.value for d in document.definitions if isinstance(d, DirectiveDefinitionNode)
        }
        self.seen: dict[tuple[str, str], int] = {}  # (database, table) -> line

    def fail(self, node: Node, reason: str) -> None:
        """Record a fault at `node`'s position."""
        self.errors.append((*_where(node), reason))

    def check(self) -> None:
        """Check every definition and directive; declare each @table type."""
        visitor = _DirectiveVisitor(self)
        for definition in self.document.definitions:
            self._definition(definition)
            if not isinstance(definition, ExecutableDefinitionNode):
                visit(definition, visitor)

    def _definition(self, node: Node) -> None:
        if isinstance(node, ExecutableDefinitionNode):
            self.fail(node, "only type definitions belong in schema.graphql, not queries")
        elif isinstance(node, ObjectTypeExtensionNode):
            name = node.name.value
            self.fail(node, f"extend type {name} is not supported: put it in type {name}")
        for child in getattr(node, "fields", None) or ():
            self._field_type(node.name.value, child)
        if isinstance(node, ObjectTypeDefinitionNode):
            table = _find(node.directives, "table")
            if table is not None:
                self._table(node, table)

    def _field_type(self, owner: str, node: Node) -> None:
        name, _ = _base_type(node.type)
        if name not in SCALARS and name not in self.defined:
            hint = _did_you_mean(name, [*SCALARS, *self.defined])
            self.fail(node.type, f"unknown type {name} (field {owner}.{node.name.value}){hint}")

    def _table(self, node: ObjectTypeDefinitionNode, directive: DirectiveNode) -> None:
        args = _literal_args(directive)
        database, name = args.get("database", "data"), args.get("table", node.name.value)
        replicate = args.get("replicate", True)
        if not isinstance(database, str) or not isinstance(name, str):
            return  # the argument's kind is reported by the directive check
        for kind, value in (("database", database), ("table", name)):
            if not valid_name(value):
                why = "use 1-64 letters, digits, '_' or '-'"
                self.fail(directive, f"{kind} name {value!r} is invalid: {why}")
        if (database, name) in self.seen:
            first = self.seen[(database, name)]
            self.fail(node, f"table {database}.{name} is already declared on line {first}")
        self.seen.setdefault((database, name), _where(node)[0])
        primary, attributes = self._fields(node)
        if primary is None:
            return
        replicate = replicate if isinstance(replicate, bool) else True
        self.tables.append(DeclaredTable(database, name, primary, replicate, attributes))

    def _fields(self, node: ObjectTypeDefinitionNode) -> tuple[str | None, list[dict]]:
        """Return (primary key, attributes) of a table type, recording faults."""
        keys, attributes = [], []
        for child in node.fields or ():
            marks = {d.name.value for d in child.directives or ()}
            base, is_list = _base_type(child.type)
            name = child.name.value
            if not valid_declared_attribute(name):
                self.fail(child, f"field name {name[:40]!r}... is longer than 250 characters")
            if "primaryKey" in marks:
                keys.append(child)
                if is_list:
                    self.fail(child, f"primary key {name} cannot be a list")
            if marks & NOT_STORED or SCALARS.get(base, "Any") is None:
                continue
            indexed = bool(marks & {"indexed", "primaryKey"})
            attributes.append({"name": name, "type": SCALARS.get(base, "Any"), "indexed": indexed})
        if len(keys) != 1:
            self._primary_key_count(node, keys)
            return None, attributes
        return keys[0].name.value, attributes

    def _primary_key_count(self, node: ObjectTypeDefinitionNode, keys: list) -> None:
        type_name = node.name.value
        if not keys:
            self.fail(node, f"type {type_name} has no field marked @primaryKey")
            return
        names = ", ".join(k.name.value for k in keys)
        self.fail(keys[1], f"type {type_name} marks {len(keys)} fields @primaryKey ({names})")

    def directive(self, node: DirectiveNode, place: str) -> None:
        """Check one directive used on a `place` ("type", "field", "enum", ...)."""
        name = node.name.value
        if name in self.custom:
            return  # declared in the file itself: GraphQL's business, not ours
        spec = DIRECTIVES.get(name)
        if spec is None:
            hint = _did_you_mean(name, DIRECTIVES, "@")
            self.fail(node, f"unknown directive @{name}{hint}")
            return
        if spec.on != place:
            article = "an" if place[0] in "aeiou" else "a"
            self.fail(node, f"@{name} belongs on a {spec.on}, not on {article} {place}")
            return
        self._arguments(node, spec)
        self._note_unused(node)

    def _arguments(self, node: DirectiveNode, spec: _Directive) -> None:
        name = node.name.value
        counts = Counter(arg.name.value for arg in node.arguments or ())
        for arg in node.arguments or ():
            key = arg.name.value
            kind = spec.args.get(key)
            if kind is None:
                hint = _did_you_mean(key, spec.args)
                has = f"has no argument {key}" if spec.args else "takes no arguments"
                self.fail(arg, f"@{name} {has}{hint}")
            elif counts[key] > 1:
                self.fail(arg, f"@{name}({key}:) is given {counts[key]} times")
                counts[key] = 1  # report it once
            elif kind != "any" and not isinstance(arg.value, _KINDS[kind][0]):
                must, value = _KINDS[kind][1], print_ast(arg.value)
                self.fail(arg.value, f"@{name}({key}:) must be {must}, not {value}")

    def _note_unused(self, node: DirectiveNode) -> None:
        name = node.name.value
        features = [f"@{name}"] + [f"@{name}({a.name.value})" for a in node.arguments or ()]
        for feature in features:
            if feature in NO_EFFECT:
                self.unused.setdefault(feature, _where(node)[0])


def _find(directives: object, name: str) -> DirectiveNode | None:
    return next((d for d in directives or () if d.name.value == name), None)


def _literal_args(node: DirectiveNode) -> dict:
    """Return the directive's arguments: strings and booleans as Python values, others None."""
    literal = (StringValueNode, BooleanValueNode)
    return {
        arg.name.value: arg.value.value if isinstance(arg.value, literal) else None
        for arg in reversed(node.arguments or ())  # the first of a repeated argument wins
    }


# Where a directive sits, by the class of the node carrying it.
_PLACES = {
    "ObjectTypeDefinitionNode": "type",
    "ObjectTypeExtensionNode": "type",
    "FieldDefinitionNode": "field",
    "InterfaceTypeDefinitionNode": "interface",
    "EnumTypeDefinitionNode": "enum",
    "EnumValueDefinitionNode": "enum value",
    "InputObjectTypeDefinitionNode": "input type",
    "InputValueDefinitionNode": "argument or input field",
    "ScalarTypeDefinitionNode": "scalar",
    "UnionTypeDefinitionNode": "union",
    "SchemaDefinitionNode": "schema",
}


class _DirectiveVisitor(Visitor):
    """Hand every directive of the document to the checker with the place it sits on."""

    def __init__(self, checker: _Checker) -> None:
        super().__init__()
        self.checker = checker

    def enter(self, node: Node, *_args: object) -> None:
        """Check the directives a type-system node carries."""
        place = _PLACES.get(type(node).__name__, "definition")
        for directive in getattr(node, "directives", None) or ():
            self.checker.directive(directive, place)
