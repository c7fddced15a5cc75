"""Hypothesis over every operation: hostile bodies get a 4xx JSON answer and change nothing.

Each operation has a field registry (`SPECS`): its fields and the values that make sense for
them. A case keeps each field plausible, drops it, or swaps in something nasty (a wrong type,
2**64, -1, 1e400, NUL and control characters, 100k-character strings, 1,000-deep nesting), may
add unknown fields and may malform `operation` itself; it is sent as admin, as a user with a
role, or without credentials. Every answer must come within REQUEST_TIMEOUT, be JSON, be below
500, and carry an "error" string when it is a 4xx; /health must answer right after. A dump of
every table of every database (system too), their descriptions and the cluster routes, taken
by a second super user, must be the same after every refused request (and after read-only
operations whatever they answer).

One agent serves the module. Destructive operations aim at throwaway objects (`fz_tmp_*`),
never at the callers or the dump user; when a write succeeds, `World.restore` puts the world
back (extra databases, users, roles, certificates, routes and nodes go, the seed comes back) and
the dump is taken again, so no case depends on the one before. restore_backup runs on an agent
of its own.

FUZZ_EXAMPLES sets the cases per operation (default 30; the run is seeded, so CI sees the same
cases every time). FUZZ_COLLECT=<file> records new problems there as JSON lines instead of
failing, to list every bug in one run. Each bug it found is kept in `EXAMPLES`, fixed: the
example fails again if the bug comes back.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from harness import PASSWORD, Agent, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES_PER_OP = int(os.environ.get("FUZZ_EXAMPLES", "30"))
COLLECT = os.environ.get("FUZZ_COLLECT")
REQUEST_TIMEOUT = 25.0  # add_node waits up to 10 s for a peer; more than this is a hang
HEALTH_TIMEOUT = 5.0

DB, SPARE_DB, SPARE_TABLE = "fuzz", "fz_tmp_db", "t"
READER, SUPER, TMP_USER = "fz_reader", "fz_super", "fz_tmp_user"
ROLE, TMP_ROLE, TMP_CERT = "fz_role", "fz_tmp_role", "fz_tmp_cert"
KEPT_USERS = {"admin", SUPER, READER, TMP_USER}
KEPT_ROLES = {"super_user", ROLE, TMP_ROLE}
DOGS = [
    {"id": 1, "name": "Rex", "age": 3, "tags": ["a", "b"]},
    {"id": 2, "name": "Fido", "age": 5, "owner": {"name": "Ann"}},
    {"id": "three", "name": "Odd"},
]
CAT_ATTRIBUTES = [
    {"name": "name", "type": "String"},
    {"name": "lives", "type": "Int"},
    {"name": "born", "type": "Date"},
]
CATS = [{"name": "Tom", "lives": 9}, {"name": "Kit", "lives": 3, "born": "2020-01-01"}]
ROLE_PERMISSION = {
    DB: {
        "tables": {
            "dog": {
                "read": True,
                "insert": False,
                "update": False,
                "delete": False,
                "attribute_permissions": [
                    {"attribute_name": "age", "read": False, "insert": False, "update": False}
                ],
            },
            "cat": {"read": True, "insert": True, "update": True, "delete": False},
        }
    }
}

# -- values --------------------------------------------------------------------------------------


class Raw:
    """JSON text spliced into a body as it is: what json.dumps cannot write (1e400, deep)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:24]!r}{'...' if len(self.text) > 24 else ''})"


class Live:
    """A value only the running agent knows (its URL, a valid token), filled in at send time."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Live({self.name!r})"


class Long(str):
    """A long string that prints short in reports."""

    def __repr__(self) -> str:
        return f"<{len(self)} chars {str.__repr__(self[:12])}...>"


class Many(list):
    """A long list that prints short in reports."""

    def __repr__(self) -> str:
        return f"<{len(self)} x {self[0]!r}>"


def one(*values: Any) -> st.SearchStrategy:
    return st.sampled_from(values)


CONTROL_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x1F),
        one("\x7f", "\u2028", "\u2029", "\ufeff", "\u200b", "'", '"', "\\", "%", "*", "_", ";"),
        st.characters(codec="utf-8"),
    ),
    max_size=16,
)
HUGE_NUMBERS = one(2**63, 2**64, -(2**63) - 1, 2**63 - 1, 2**53 + 1, 10**30, -1, 0)
RAW = one(
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1e-400"),
    Raw("123456789012345678901234567890"),
    Raw('"\\ud800"'),
    Raw("[" * 1000 + "]" * 1000),
    Raw('{"a":' * 1000 + "1" + "}" * 1000),
    Raw("[" * 200 + "1" + "]" * 200),
)
LONG = one(
    Long("x" * 100_000),
    Long("\x00" * 10_000 + "a"),
    Long("\u00e9" * 50_000),
    Long("\U0001f4a5" * 30_000),
    Long("a\n" * 30_000),
)
BIG_LISTS = one(Many([0] * 50_000), Many(["x"] * 5_000), Many([[1]] * 2_000))
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_NUMBERS,
    st.floats(allow_nan=False, allow_infinity=False),
    CONTROL_TEXT,
)
NASTY = st.one_of(
    SCALAR,
    RAW,
    LONG,
    BIG_LISTS,
    st.lists(SCALAR, max_size=3),
    st.dictionaries(CONTROL_TEXT, SCALAR, max_size=3),
    st.builds(lambda n: {f"k{i}": i for i in range(n)}, one(1_000, 6_000)),
)
BOOL = st.one_of(st.booleans(), NASTY)


def maybe(values: st.SearchStrategy) -> st.SearchStrategy:
    """A plausible value, or (inside structures) now and then a nasty one."""
    return st.one_of(values, values, values, NASTY)


# -- the field registry --------------------------------------------------------------------------

DATABASES = one(DB, "system", SPARE_DB, "fz_missing")
TABLES = one("dog", "cat", SPARE_TABLE, "hdb_user", "hdb_nodes", "missing")
WRITE_DATABASES = one(DB, SPARE_DB, "system", "fz_missing")
WRITE_TABLES = one("dog", "cat", SPARE_TABLE, "hdb_role", "missing")
ATTRS = one("id", "name", "age", "lives", "tags", "owner", "__createdtime__", "missing", "*")
VALUE = maybe(one(1, 2, "three", "Rex", "Tom", 9, 0.5, True, None, "*", "R*", "*e*", "", [1, 2]))
ID = maybe(one(1, 2, "three", 99, "Tom", "new"))
IDS = st.lists(ID, max_size=4)
RECORD = st.one_of(
    st.fixed_dictionaries(
        {"id": ID},
        optional={"name": VALUE, "age": VALUE, "lives": VALUE, "tags": VALUE, "born": VALUE},
    ),
    st.fixed_dictionaries({"name": ID}, optional={"lives": VALUE, "born": VALUE}),
    st.dictionaries(st.one_of(ATTRS, CONTROL_TEXT), VALUE, max_size=4),
)
RECORDS = st.lists(RECORD, max_size=3)
GET_ATTRIBUTES = st.one_of(st.lists(maybe(ATTRS), max_size=3), one("*"))
SORT = st.recursive(
    st.fixed_dictionaries({"attribute": maybe(ATTRS)}, optional={"descending": BOOL}),
    lambda inner: st.fixed_dictionaries({"attribute": maybe(ATTRS), "next": inner}),
    max_leaves=3,
)
COUNT = maybe(one(0, 1, 2, 10))
COMPARATOR = maybe(
    one("equals", "not_equal", "greater_than", "less_than_equal", "between", "contains")
    | one("starts_with", "ends_with", "in", "like", "is_null", "is_not_null", "=", ">=", "nope")
)
CONDITION = st.fixed_dictionaries(
    {"attribute": maybe(ATTRS), "comparator": COMPARATOR, "value": VALUE},
    optional={"search_attribute": maybe(ATTRS), "search_type": COMPARATOR, "search_value": VALUE},
)
OPERATOR = maybe(one("and", "or", "OR", "xor"))
CONDITIONS = st.recursive(
    st.lists(CONDITION, min_size=1, max_size=3),
    lambda inner: st.lists(
        st.one_of(CONDITION, st.fixed_dictionaries({"operator": OPERATOR, "conditions": inner})),
        min_size=1,
        max_size=3,
    ),
    max_leaves=6,
)
SQL_TEMPLATES = (
    "SELECT * FROM fuzz.dog WHERE name = '{}'",
    "SELECT {} FROM fuzz.dog",
    "SELECT * FROM fuzz.dog WHERE id IN ({})",
    "SELECT * FROM fuzz.dog ORDER BY {} LIMIT 5",
    "SELECT * FROM fuzz.dog LIMIT {}",
    "SELECT * FROM fuzz.dog LIMIT 1 OFFSET {}",
    "SELECT COUNT(*), MAX({}) FROM fuzz.cat",
    "SELECT * FROM fuzz.{}",
    "SELECT * FROM {}.dog",
    "SELECT * FROM fuzz.cat WHERE lives > {} AND name LIKE 'T%'",
    "INSERT INTO fuzz.dog (id, name) VALUES ({}, 'x')",
    "INSERT INTO fuzz.cat (name, lives) VALUES ('new', {})",
    "UPDATE fuzz.cat SET lives = {} WHERE name = 'Tom'",
    "UPDATE fuzz.dog SET {} = 1",
    "DELETE FROM fuzz.dog WHERE id = {}",
)
SQL_ARGUMENT = st.one_of(
    CONTROL_TEXT,
    st.integers().map(str),
    HUGE_NUMBERS.map(str),
    one("1e400", "-0", "NULL", "'", "''", "x'00'", "?", "(", "*", "1; DELETE FROM fuzz.dog"),
    one(Long(",".join(map(str, range(40_000)))), Long("x" * 100_000)),
    one(Long("(" * 1000 + "1" + ")" * 1000), Long("1 OR " * 3000 + "1")),
)
SQL = st.one_of(
    st.builds(lambda t, a: t.format(a), one(*SQL_TEMPLATES), SQL_ARGUMENT),
    CONTROL_TEXT,
    one("SELECT", "", "DROP TABLE fuzz.dog", "select * from fuzz.dog where id = 1 --"),
)
PEM_JUNK = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
KEY_JUNK = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
HOSTS = st.lists(maybe(one("localhost", "127.0.0.1", "*.example", "")), max_size=3)
SUBSCRIPTION = st.fixed_dictionaries(
    {"database": maybe(DATABASES)},
    optional={"table": maybe(TABLES), "subscribe": BOOL, "publish": BOOL, "schema": NASTY},
)
NODE_FIELDS = {
    "url": one(
        "ws://127.0.0.1:1", Live("own_url"), "ws://zz.invalid:1", "http://[::1", "ftp://x", ""
    ),
    "hostname": one("127.0.0.1:1", "zz.invalid", Live("own_host"), "[::1]:0"),
    "node_name": one("zz.invalid", Live("own_host")),
    "name": one("zz.invalid", ""),
    "authorization": maybe(
        one({"username": "admin", "password": PASSWORD}, {"username": "admin"}, "Basic Zm9v", "")
    ),
    "subscriptions": st.lists(maybe(SUBSCRIPTION), max_size=2),
    "start_time": maybe(one(0, "2024-01-01T00:00:00Z", "yesterday", 1e30)),
    "verify_tls": BOOL,
    "retain_authorization": BOOL,
    "revoked_certificates": st.lists(maybe(one("ab12", "")), max_size=2),
}
ROUTE = st.one_of(
    one("127.0.0.1:1", "ws://127.0.0.1:1", "[::1]:1", "127.0.0.1:0", "127.0.0.1:99999", "h:p"),
    st.fixed_dictionaries({"host": maybe(one("127.0.0.1", ""))}, optional={"port": COUNT}),
    st.fixed_dictionaries({"url": maybe(one("wss://127.0.0.1:1", "ws://"))}),
    NASTY,
)
TABLE_RIGHTS = st.fixed_dictionaries(
    {},
    optional={
        "read": BOOL,
        "insert": BOOL,
        "update": BOOL,
        "delete": BOOL,
        "attribute_permissions": st.lists(
            maybe(
                st.fixed_dictionaries(
                    {"attribute_name": maybe(ATTRS)}, optional={"read": BOOL, "update": BOOL}
                )
            ),
            max_size=2,
        ),
    },
)
PERMISSION = st.fixed_dictionaries(
    {},
    optional={
        "super_user": BOOL,
        "cluster_user": BOOL,
        "structure_user": st.one_of(BOOL, st.lists(maybe(DATABASES), max_size=2)),
        DB: maybe(
            st.fixed_dictionaries(
                {"tables": maybe(st.dictionaries(maybe(TABLES), maybe(TABLE_RIGHTS), max_size=2))}
            )
        ),
        "fz_missing": maybe(st.fixed_dictionaries({"tables": st.just({})})),
    },
)
ON_TABLE = {"database": DATABASES, "schema": DATABASES, "table": TABLES}
ON_WRITE = {"database": WRITE_DATABASES, "schema": WRITE_DATABASES, "table": WRITE_TABLES}
SEARCH = {"get_attributes": GET_ATTRIBUTES, "sort": SORT, "limit": COUNT, "offset": COUNT}
NAMES = one("fz_new", "fuzz", "system", "data", "bad name", "x\n", "a" * 65, "-")
NODE = {k: NODE_FIELDS[k] for k in NODE_FIELDS}
BY_NAME = {"hostname": NODE_FIELDS["hostname"], "node_name": NODE_FIELDS["node_name"]}

SPECS: dict[str, dict[str, st.SearchStrategy]] = {
    # data
    "insert": {**ON_WRITE, "records": RECORDS},
    "update": {**ON_WRITE, "records": RECORDS},
    "upsert": {**ON_WRITE, "records": RECORDS},
    "delete": {**ON_WRITE, "ids": IDS, "hash_values": IDS},
    "transaction": {},  # filled in below: its operations are write bodies
    "sql": {"sql": SQL},
    "search_by_id": {**ON_TABLE, "ids": IDS, "hash_values": IDS, **SEARCH},
    "search_by_hash": {**ON_TABLE, "hash_values": IDS, "get_attributes": GET_ATTRIBUTES},
    "search_by_value": {
        **ON_TABLE,
        "attribute": ATTRS,
        "search_attribute": ATTRS,
        "value": VALUE,
        "search_value": VALUE,
        **SEARCH,
    },
    "search_by_conditions": {**ON_TABLE, "conditions": CONDITIONS, "operator": OPERATOR, **SEARCH},
    # schema
    "create_database": {"database": NAMES, "schema": NAMES},
    "create_schema": {"schema": NAMES},
    "drop_database": {
        "database": one(SPARE_DB, "fz_missing", "system"),
        "schema": one(SPARE_DB, "system"),
        "replicated": BOOL,
    },
    "drop_schema": {"schema": one(SPARE_DB, "fz_missing", "system"), "replicated": BOOL},
    "create_table": {
        "database": one(DB, "fz_new", "system"),
        "schema": one(DB, "fz_new"),
        "table": NAMES,
        "primary_key": maybe(one("id", "name", "x\x00", "")),
        "hash_attribute": one("id"),
        "attributes": st.lists(
            maybe(
                st.fixed_dictionaries(
                    {"name": maybe(ATTRS)},
                    optional={"type": maybe(one("String", "Int", "Any", "nope")), "indexed": BOOL},
                )
            ),
            max_size=3,
        ),
        "replicate": BOOL,
    },
    "drop_table": {
        "database": one(SPARE_DB, "system", "fz_missing"),
        "schema": one(SPARE_DB, "system"),
        "table": one(SPARE_TABLE, "hdb_user", "missing"),
        "replicated": BOOL,
    },
    "drop_attribute": {
        **ON_TABLE,
        "attribute": maybe(one("age", "id", "name", "lives", "__createdtime__", "missing")),
    },
    "create_attribute": {
        **ON_TABLE,
        "attribute": maybe(one("fz_attr", "id", "a\x00b", "", Long("x" * 300))),
        "type": maybe(one("String", "Int", "nope")),
        "indexed": BOOL,
    },
    "describe_all": {},
    "describe_database": {"database": DATABASES, "schema": DATABASES},
    "describe_schema": {"schema": DATABASES},
    "describe_table": dict(ON_TABLE),
    # users, roles, tokens
    "add_user": {
        "username": one("fz_new_user", "admin", "a:b", ""),
        "password": one("pw", ""),
        "role": one(ROLE, "super_user", "fz_missing_role"),
        "active": BOOL,
    },
    "alter_user": {
        "username": one(TMP_USER, "fz_missing_user"),
        "password": one("pw2", ""),
        "role": one(ROLE, "super_user", TMP_ROLE, "fz_missing_role"),
        "active": BOOL,
    },
    "drop_user": {"username": one(TMP_USER, "fz_missing_user", "admin")},
    "list_users": {},
    "user_info": {},
    "add_role": {"role": one("fz_new_role", ROLE, ""), "permission": PERMISSION},
    "alter_role": {
        "id": one(TMP_ROLE, "fz_missing_role"),
        "role": one(TMP_ROLE),
        "permission": PERMISSION,
    },
    "drop_role": {
        "id": one(TMP_ROLE, ROLE, "super_user", "fz_missing_role"),
        "role": one(TMP_ROLE, "super_user"),
    },
    "list_roles": {},
    "create_authentication_tokens": {
        "username": one("admin", READER, "nobody", ""),
        "password": one(PASSWORD, "wrong", ""),
    },
    "refresh_operation_token": {
        "refresh_token": one(Live("refresh_token"), Live("operation_token"), "a.b.c", "")
    },
    # status
    "get_status": {},
    "system_information": {},
    "get_configuration": {},
    # certificates
    "add_certificate": {
        "certificate": one(Live("ca_pem"), PEM_JUNK, "garbage"),
        "is_authority": BOOL,
        "name": one("fz_cert", "a/b", ""),
        "private_key": one(KEY_JUNK, "garbage"),
        "uses": st.lists(maybe(one("operations", "replication", "")), max_size=2),
        "hosts": HOSTS,
    },
    "remove_certificate": {"name": one(TMP_CERT, "fz_missing_cert", "")},
    "list_certificates": {},
    "create_csr": {"hosts": HOSTS},
    "sign_certificate": {"csr": one(Live("csr"), PEM_JUNK, "garbage")},
    # cluster
    "add_node": NODE,
    "set_node": NODE,
    "update_node": NODE,
    "set_node_replication": NODE,
    "remove_node": {**BY_NAME, "name": one("zz.invalid", "")},
    "cluster_status": {},
    "cluster_verify": {"database": DATABASES, "table": TABLES, "repair": BOOL},
    "configure_cluster": {
        "connections": st.lists(maybe(st.fixed_dictionaries({}, optional=NODE)), max_size=2)
    },
    "cluster_get_routes": {},
    "cluster_set_routes": {"routes": st.lists(ROUTE, max_size=3)},
    "cluster_delete_routes": {"routes": st.lists(ROUTE, max_size=3)},
    # backups (restore_backup runs on an agent of its own: a success may replace everything)
    "get_backup": {"database": DATABASES, "schema": DATABASES, "table": TABLES},
    "restore_backup": {"database": DATABASES, "table": TABLES, "data": NASTY, "file": NASTY},
}

# Operations whose success changes nothing: checked against the dump whatever they answer.
READ_ONLY = {
    "search_by_id",
    "search_by_hash",
    "search_by_value",
    "search_by_conditions",
    "describe_all",
    "describe_database",
    "describe_schema",
    "describe_table",
    "list_users",
    "user_info",
    "list_roles",
    "create_authentication_tokens",
    "refresh_operation_token",
    "get_status",
    "system_information",
    "get_configuration",
    "list_certificates",
    "create_csr",
    "sign_certificate",
    "cluster_status",
    "cluster_get_routes",
    "get_backup",
}
THROWAWAY = {"restore_backup"}
BAD_OPERATION = st.one_of(
    NASTY, one("INSERT", "insert ", "insert\x00", "__proto__", "constructor", "add_node_back")
)
EXTRA_FIELDS = st.dictionaries(
    st.one_of(one("__proto__", "constructor", "operation_token", "hash_attribute"), CONTROL_TEXT),
    NASTY,
    max_size=2,
)
MODES = one("plausible", "plausible", "plausible", "missing", "nasty")


@st.composite
def bodies(draw: st.DrawFn, operation: str) -> dict:
    """Build a body for `operation`: each field plausible, missing or nasty, maybe more."""
    body: dict[str, Any] = {"operation": operation}
    for field, plausible in SPECS[operation].items():
        mode = draw(MODES)
        if mode != "missing":
            body[field] = draw(plausible if mode == "plausible" else NASTY)
    if draw(st.integers(0, 9)) == 0:
        body.update(draw(EXTRA_FIELDS))
    if draw(st.integers(0, 24)) == 0:
        body["operation"] = draw(BAD_OPERATION)
    return body


SPECS["transaction"] = {
    "operations": st.lists(
        maybe(st.one_of(*(bodies(k) for k in ("insert", "update", "upsert", "delete")))),
        max_size=3,
    )
}
CALLERS = one("admin", "admin", "admin", "reader", "nobody")

# -- the agent and its world ---------------------------------------------------------------------


class DumpFailed(Exception):
    """A request of the dump (or of restoring the seed) did not answer 200."""


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def short(value: Any, limit: int = 400) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def encode(body: Any) -> bytes:
    """Write `body` as JSON, splicing Raw texts in where they stand."""
    raws: list[str] = []

    def swap(value: Any) -> Any:
        if isinstance(value, Raw):
            raws.append(value.text)
            return f"@@raw{len(raws) - 1}@@"
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    text = json.dumps(swap(body), ensure_ascii=False)
    for index, raw in enumerate(raws):
        text = text.replace(f'"@@raw{index}@@"', raw, 1)
    return text.encode()


class World:
    """One seeded agent: send cases, take dumps, put everything back after a success."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.session = requests.Session()
        self.live: dict[str, str] = {}
        self.kept_certs: set[str] = set()
        self.kept_nodes: set[str] = set()
        self.baseline: dict = {}
        self.log = agent.root / "log" / "hdb.log"

    # requests

    def post(self, body: Any, caller: str = "admin", timeout: float = REQUEST_TIMEOUT):
        auth = {
            "admin": ("admin", self.agent.password),
            "super": (SUPER, PASSWORD),
            "reader": (READER, PASSWORD),
        }.get(caller)
        return self.session.post(
            self.agent.url + "/",
            data=body if isinstance(body, bytes) else encode(body),
            auth=auth,
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )

    def op(self, body: dict, caller: str = "super", ok: tuple = (200,)) -> Any:
        resp = self.post(body, caller)
        if resp.status_code not in ok:
            raise DumpFailed(f"{short(body, 200)} -> {resp.status_code} {resp.text[:300]}")
        return resp.json()

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Live):
            return self.live[value.name]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    # seed and restore

    def start(self) -> World:
        self.agent.start()
        self.op(
            {
                "operation": "add_user",
                "username": SUPER,
                "password": PASSWORD,
                "role": "super_user",
            },
            caller="admin",
        )
        self.seed()
        certs = self.op({"operation": "list_certificates"})
        self.kept_certs = {c["name"] for c in certs} | {TMP_CERT}
        self.kept_nodes = {r["name"] for r in self.rows("system", "hdb_nodes", "name")}
        tokens = self.op(
            {
                "operation": "create_authentication_tokens",
                "username": "admin",
                "password": self.agent.password,
            },
            caller="nobody",
        )
        csr = self.op({"operation": "create_csr"})["csr"]
        self.live.update(
            own_url=self.agent.ws_url,
            own_host=self.agent.host,
            refresh_token=tokens["refresh_token"],
            operation_token=tokens["operation_token"],
            csr=csr,
        )
        self.seed_certificate()
        self.baseline = self.snapshot()
        return self

    def seed(self) -> None:
        """Create what is missing of the seed (databases, tables, records, roles, users)."""
        have = self.op({"operation": "describe_all"})
        if DB not in have:
            self.create_table(DB, "dog", "id", records=DOGS)
            self.create_table(DB, "cat", "name", attributes=CAT_ATTRIBUTES, records=CATS)
        if SPARE_DB not in have:
            self.create_table(SPARE_DB, SPARE_TABLE, "id", records=[{"id": 1, "x": "y"}])
        roles = {r["id"] for r in self.op({"operation": "list_roles"})}
        for role, permission in ((ROLE, ROLE_PERMISSION), (TMP_ROLE, {DB: {"tables": {}}})):
            if role not in roles:
                self.op({"operation": "add_role", "role": role, "permission": permission})
        users = {u["username"] for u in self.op({"operation": "list_users"})}
        for user in (READER, TMP_USER):
            if user not in users:
                self.op(
                    {"operation": "add_user", "username": user, "password": PASSWORD, "role": ROLE}
                )

    def seed_certificate(self) -> None:
        certs = self.op({"operation": "list_certificates"})
        if any(c["name"] == TMP_CERT for c in certs):
            return
        if "ca_pem" not in self.live:
            ca = next(c for c in certs if c.get("is_authority"))
            self.live["ca_pem"] = ca["certificate"]
        self.op(
            {
                "operation": "add_certificate",
                "name": TMP_CERT,
                "certificate": self.live["ca_pem"],
                "is_authority": True,
            }
        )

    def create_table(self, db: str, table: str, key: str, records: list, **extra: Any) -> None:
        self.op(
            {
                "operation": "create_table",
                "database": db,
                "table": table,
                "primary_key": key,
                **extra,
            }
        )
        self.op({"operation": "insert", "database": db, "table": table, "records": records})

    def restore(self) -> None:
        """Undo whatever a successful case did: drop extras, rebuild the seed, dump again."""
        wait_for(self.healthy, 30, 0.1, "the agent to answer /health before restoring")
        for name in self.op({"operation": "describe_all"}):
            self.op({"operation": "drop_database", "database": name})
        for user in self.op({"operation": "list_users"}):
            if user["username"] not in KEPT_USERS:
                self.op({"operation": "drop_user", "username": user["username"]})
        for role in self.op({"operation": "list_roles"}):
            if role["id"] not in KEPT_ROLES:
                self.op({"operation": "drop_role", "id": role["id"]})
        for cert in self.op({"operation": "list_certificates"}):
            if cert["name"] not in self.kept_certs:
                self.op({"operation": "remove_certificate", "name": cert["name"]})
        routes = self.op({"operation": "cluster_get_routes"})
        if routes:
            self.op({"operation": "cluster_delete_routes", "routes": routes})
        for row in self.rows("system", "hdb_nodes", "name"):
            if row["name"] not in self.kept_nodes:
                self.op({"operation": "remove_node", "hostname": row["name"]})
        self.seed()
        self.seed_certificate()
        self.baseline = self.snapshot()

    # the dump

    def rows(self, db: str, table: str, key: str) -> list:
        body = {
            "operation": "search_by_value",
            "database": db,
            "table": table,
            "attribute": key,
            "value": "*",
        }
        return sorted(self.op(body), key=canonical)

    def snapshot(self) -> dict:
        """Every table's description and rows, of every database, and the routes."""
        out: dict[str, Any] = {"routes": self.op({"operation": "cluster_get_routes"})}
        for db in [*sorted(self.op({"operation": "describe_all"})), "system"]:
            tables = self.op({"operation": "describe_database", "database": db})
            for table, info in sorted(tables.items()):
                info.pop("db_size", None)
                rows = self.rows(db, table, info["hash_attribute"])
                out[f"{db}.{table}"] = {"describe": info, "rows": rows}
        return out

    def healthy(self) -> bool:
        resp = self.session.get(self.agent.url + "/health", timeout=HEALTH_TIMEOUT)
        return resp.status_code == 200

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def where(self, since: int) -> str:
        """The innermost agent frame of the traceback logged since `since`, if any."""
        with open(self.log, "rb") as fh:
            fh.seek(since)
            text = fh.read().decode(errors="replace")
        frames = re.findall(r'File "[^"]*/(agent/[^"]+)", line (\d+), in (\w+)', text)
        errors = re.findall(r"^(\w+(?:Error|Exception)\b.*)$", text, re.M)
        if not frames:
            return "no traceback logged"
        path, line, func = frames[-1]
        return f"{path}:{line} in {func}" + (f": {errors[-1][:160]}" if errors else "")


def diff(before: dict, after: dict) -> str:
    """Say briefly what differs between two dumps."""
    out = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if not (isinstance(a, dict) and isinstance(b, dict) and "rows" in a and "rows" in b):
            out.append(f"{key}: {short(a, 150)} -> {short(b, 150)}")
            continue
        if a["describe"] != b["describe"]:
            out.append(f"{key} description: {short(a['describe'], 150)} -> {short(b['describe'])}")
        gone = [r for r in a["rows"] if r not in b["rows"]]
        new = [r for r in b["rows"] if r not in a["rows"]]
        if gone or new:
            out.append(f"{key} rows: removed {short(gone, 200)}, added {short(new, 200)}")
    return "; ".join(out)


# -- one case ------------------------------------------------------------------------------------


def run_case(world: World, operation: str, body: dict, caller: str) -> list[str]:
    """Send one case and return what went wrong (nothing, when all holds)."""
    problems: list[str] = []
    mark = world.log_size()
    status = None
    try:
        resp = world.post(world.resolve(body), caller)
    except requests.Timeout:
        problems.append(f"hang: no answer within {REQUEST_TIMEOUT:.0f}s")
    except requests.ConnectionError as exc:
        problems.append(f"connection dropped: {short(exc, 200)}")
    else:
        status = resp.status_code
        problems += check_answer(resp)
        if status >= 500:
            problems.append(f"where: {world.where(mark)}")
    if world.agent.proc is None or world.agent.proc.poll() is not None:
        problems.append(f"the agent died: {world.agent.output()[-800:]}")
        return problems
    try:
        if not world.healthy():
            problems.append("/health does not answer 200 after the case")
    except requests.RequestException as exc:
        problems.append(f"/health does not answer within {HEALTH_TIMEOUT}s: {short(exc, 200)}")
    problems += check_dump(world, operation, status)
    return problems


def check_answer(resp: requests.Response) -> list[str]:
    status = resp.status_code
    problems = [f"{status}: {resp.text[:300]}"] if status >= 500 else []
    if not resp.headers.get("Content-Type", "").startswith("application/json"):
        problems.append(f"{status} is not JSON: {resp.headers.get('Content-Type')!r}")
    try:
        answer = resp.json()
    except ValueError:
        return [*problems, f"{status} with a body that is not JSON: {resp.text[:200]!r}"]
    if status >= 400 and not (isinstance(answer, dict) and isinstance(answer.get("error"), str)):
        problems.append(f"{status} without an 'error' string: {short(answer, 200)}")
    return problems


def check_dump(world: World, operation: str, status: int | None) -> list[str]:
    """The dump must be unchanged after a refusal (or a read); after a success, restore."""
    changed = status is not None and status < 300 and operation not in READ_ONLY
    try:
        after = world.snapshot()
    except (DumpFailed, requests.RequestException) as exc:
        world.restore()
        return [f"the dump fails after the case ({status}): {exc}"]
    if changed:
        world.restore()
        return []
    if after != world.baseline:
        world.restore()
        return [f"a {status or 'lost'} request changed data: {diff(world.baseline, after)}"]
    return []


# -- bugs the fuzz found (all fixed), kept as examples ------------------------------------------


@dataclass(frozen=True)
class Example:
    """A case that once answered 500 or changed data when refused."""

    name: str
    body: dict
    caller: str = "admin"


DEEP = Raw("[" * 1000 + "]" * 1000)
EXAMPLES: list[Example] = [
    Example(
        "deep-body",
        {"operation": "describe_all", "x": DEEP, "n": 2**63 - 1},
    ),
    Example(
        "drop-database-bad-replicated",
        {"operation": "drop_database", "database": SPARE_DB, "replicated": "yes"},
    ),
    Example(
        "sort-attribute-with-nul",
        {
            "operation": "search_by_value",
            "database": DB,
            "table": "dog",
            "attribute": "id",
            "value": "*",
            "sort": {"attribute": "a\x00b"},
        },
    ),
    Example(
        "super-user-role-demoted",
        {"operation": "alter_role", "id": "super_user", "permission": {"super_user": False}},
    ),
    Example(
        "csr-host-not-ascii",
        {"operation": "create_csr", "hosts": ["h\u00e9"]},
    ),
]
FOUND: Counter = Counter()  # cases run, problems found
COUNTS: Counter = Counter()


# -- the tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory, request):
    world = World(Agent(tmp_path_factory.mktemp("fuzz"))).start()
    yield world
    alive = world.agent.proc is not None and world.agent.proc.poll() is None
    world.agent.kill()
    line = (
        f"fuzz: {FOUND['cases']} cases over {len(COUNTS)} operations "
        f"({EXAMPLES_PER_OP} each); {FOUND['new']} found a problem"
    )
    plugins = request.config.pluginmanager
    reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)
    assert alive, "the agent died during the fuzz"


@pytest.fixture(scope="module")
def spare_world(tmp_path_factory):
    """An agent of its own, for operations whose success may replace everything."""
    world = World(Agent(tmp_path_factory.mktemp("fuzz-spare"))).start()
    yield world
    world.agent.kill()


def check(world: World, operation: str, body: dict, caller: str) -> None:
    FOUND["cases"] += 1
    COUNTS[operation] += 1
    problems = run_case(world, operation, body, caller)
    if not problems:
        return
    FOUND["new"] += 1
    report = f"{operation} as {caller}: {short(body, 600)}\n  " + "\n  ".join(problems)
    if COLLECT:
        with open(COLLECT, "a") as fh:
            found = {"operation": operation, "caller": caller, "body": short(body, 2000)}
            fh.write(json.dumps({**found, "problems": problems}) + "\n")
        return
    raise AssertionError(report)


@pytest.mark.parametrize("operation", sorted(SPECS))
@settings(
    max_examples=EXAMPLES_PER_OP,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_no_operation_answers_500_or_changes_data_when_refused(request, operation, data):
    world = request.getfixturevalue("spare_world" if operation in THROWAWAY else "world")
    body = data.draw(bodies(operation), label="body")
    caller = data.draw(CALLERS, label="caller")
    check(world, operation, body, caller)


@pytest.mark.parametrize(
    "example",
    [pytest.param(e, id=e.name) for e in EXAMPLES],
)
def test_examples(world, example):
    problems = run_case(world, example.body["operation"], example.body, example.caller)
    assert not problems, "\n".join(problems)


def test_fuzz_covers_every_operation():
    """Every registered operation is in the registry (a new one must join the fuzz)."""
    from agent.ops.registry import OPERATIONS, load_handlers

    load_handlers()
    assert set(OPERATIONS) - set(SPECS) == set()
