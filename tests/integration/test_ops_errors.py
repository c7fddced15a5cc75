"""Bad input of every kind gets a 4xx JSON `{"error": ...}` naming what was wrong.

After each case the agent must still answer /health, and nothing of a refused write may have
been applied. Where HarperDB answers 500 for a validation error (search_by_id without ids) or
mixes 400 and 404 for a missing table, ours is 400 and 404 on purpose.
"""

from __future__ import annotations

import concurrent.futures
import socket

import pytest
from support import assert_error, error_of, healthy, make_table, post, unique

DB = unique("errors")
MISSING_DB = f"{DB}_missing"


@pytest.fixture(scope="module")
def agent(shared_agent):
    make_table(shared_agent, DB, "dog", records=[{"id": 1, "name": "Rex"}])
    yield shared_agent
    assert shared_agent.proc.poll() is None, "the agent died during the error tests"


@pytest.fixture(autouse=True)
def still_healthy(agent):
    """After every case: the agent answers /health and the seed record is untouched."""
    yield
    healthy(agent)
    found = agent.op(
        {"operation": "search_by_id", "database": DB, "table": "dog", "ids": [1, 2, 3]}
    )
    assert [(r["id"], r["name"]) for r in found] == [(1, "Rex")]


# -- the body itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, words",
    [
        (b'{"operation": ', ["malformed JSON"]),
        (b'{"operation": "describe_all",}', ["malformed JSON"]),
        (b"{'operation': 'describe_all'}", ["malformed JSON"]),
        (b'{"operation": "describe_all"} trailing', ["malformed JSON"]),
        (b"\xff\xfe{}", ["malformed JSON"]),
        (b"[" * 100_000, ["malformed JSON"]),
        (b'{"operation":"insert","table":"dog","records":[{"id":1e400}]}', ["malformed JSON"]),
        (b"", ["Body cannot be empty"]),
        (b"   \n", ["Body cannot be empty"]),
        (b'[{"operation": "describe_all"}]', ["'operation' property"]),
        (b'"describe_all"', ["'operation' property"]),
        (b"42", ["'operation' property"]),
        (b"null", ["'operation' property"]),
        (b"{}", ["'operation' property"]),
        (b'{"database": "data"}', ["'operation' property"]),
    ],
    ids=lambda value: value[:24].decode(errors="replace") if isinstance(value, bytes) else None,
)
def test_bad_bodies_are_400(agent, raw, words):
    assert_error(post(agent, raw), 400, *words)


def test_unknown_operation_is_400(agent):
    error_of(agent, {"operation": "no_such_op"}, 400, "Operation 'no_such_op' not found")
    error_of(agent, {"operation": 5}, 400, "Operation '5' not found")
    error_of(agent, {"operation": ["insert"]}, 400, "Operation", "not found")


# -- fields ------------------------------------------------------------------------------------

ON_DOG = {"database": DB, "table": "dog"}

MISSING_FIELDS = [
    ({"operation": "create_table", "database": DB, "primary_key": "id"}, "'table' is required"),
    ({"operation": "create_table", "database": DB, "table": "t2"}, "'primary_key' is required"),
    ({"operation": "drop_database"}, "'database' is required"),
    ({"operation": "drop_table", "database": DB}, "'table' is required"),
    ({"operation": "describe_table", "database": DB}, "'table' is required"),
    ({"operation": "create_attribute", **ON_DOG}, "'attribute' is required"),
    ({"operation": "insert", "database": DB, "records": []}, "'table' is required"),
    ({"operation": "insert", **ON_DOG}, "'records' is required"),
    ({"operation": "update", **ON_DOG}, "'records' is required"),
    ({"operation": "upsert", **ON_DOG}, "'records' is required"),
    ({"operation": "delete", **ON_DOG}, "'ids' is required"),
    ({"operation": "search_by_id", **ON_DOG}, "'ids' is required"),
    ({"operation": "search_by_hash", **ON_DOG, "get_attributes": ["*"]}, "'ids' is required"),
    ({"operation": "search_by_value", **ON_DOG, "value": 1}, "'attribute' is required"),
    ({"operation": "search_by_value", **ON_DOG, "attribute": "id"}, "'value' is required"),
    ({"operation": "search_by_conditions", **ON_DOG}, "'conditions' is required"),
    ({"operation": "sql"}, "'sql' is required"),
    ({"operation": "transaction"}, "'operations' is required"),
    ({"operation": "add_user", "password": "p", "role": "super_user"}, "'username' is required"),
    ({"operation": "add_user", "username": "u", "role": "super_user"}, "'password' is required"),
    ({"operation": "add_user", "username": "u", "password": "p"}, "'role' is required"),
    ({"operation": "alter_user", "password": "p"}, "'username' is required"),
    ({"operation": "drop_user"}, "'username' is required"),
    ({"operation": "add_role", "permission": {"super_user": True}}, "'role' is required"),
    ({"operation": "add_role", "role": "r"}, "'permission' is required"),
    ({"operation": "drop_role"}, "'id' is required"),
]


@pytest.mark.parametrize(
    "body, words",
    MISSING_FIELDS,
    ids=[f"{b['operation']}-{w.split()[0]}" for b, w in MISSING_FIELDS],
)
def test_missing_fields_are_400_naming_the_field(agent, body, words):
    error_of(agent, body, 400, words)


def test_create_authentication_tokens_without_username_or_caller_is_400(agent):
    body = {"operation": "create_authentication_tokens", "password": "p"}
    error_of(agent, body, 400, "'username' is required", auth=None)


WRONG_TYPES = [
    (
        {"operation": "create_table", "database": DB, "table": 5, "primary_key": "id"},
        "'table' must be a string, got a number",
    ),
    (
        {"operation": "create_table", "database": ["x"], "table": "t", "primary_key": "id"},
        "'database' must be a string, got an array",
    ),
    (
        {"operation": "create_table", "database": DB, "table": "t", "primary_key": {"a": 1}},
        "'primary_key' must be a string, got an object",
    ),
    (
        {
            "operation": "create_table",
            "database": DB,
            "table": "t",
            "primary_key": "id",
            "attributes": "name",
        },
        "'attributes' must be an array",
    ),
    (
        {
            "operation": "create_table",
            "database": DB,
            "table": "t",
            "primary_key": "id",
            "attributes": ["name"],
        },
        "attributes[0] must be an object",
    ),
    (
        {
            "operation": "create_table",
            "database": DB,
            "table": "t",
            "primary_key": "id",
            "replicate": "yes",
        },
        "'replicate' must be true or false",
    ),
    ({"operation": "drop_table", **ON_DOG, "replicated": 1}, "'replicated' must be true or false"),
    ({"operation": "describe_table", "database": DB, "table": None}, "'table' is required"),
    ({"operation": "insert", **ON_DOG, "records": {"id": 2}}, "'records' must be an array"),
    ({"operation": "insert", **ON_DOG, "records": "x"}, "'records' must be an array"),
    ({"operation": "insert", **ON_DOG, "records": [{"id": 2}, 7]}, "record 1 must be an object"),
    (
        {"operation": "insert", **ON_DOG, "records": [{"id": 2}, {"id": [3]}]},
        "primary key 'id' must be a string or a number",
    ),
    (
        {"operation": "insert", **ON_DOG, "records": [{"id": 2}, {"id": True}]},
        "primary key 'id' must be a string or a number",
    ),
    (
        {"operation": "insert", **ON_DOG, "records": [{"id": ""}]},
        "primary key 'id' must be 1-1024 characters",
    ),
    (
        {"operation": "insert", **ON_DOG, "records": [{"id": "x" * 1025}]},
        "primary key 'id' must be 1-1024 characters",
    ),
    (
        {"operation": "update", **ON_DOG, "records": [{"id": 1, "name": "Max"}, {"name": "x"}]},
        "record 1 is missing primary key 'id'",
    ),
    ({"operation": "upsert", **ON_DOG, "records": [None]}, "record 0 must be an object"),
    ({"operation": "delete", **ON_DOG, "ids": 1}, "'ids' must be an array"),
    (
        {"operation": "delete", **ON_DOG, "ids": [1, {"id": 2}]},
        "primary key 'id' must be a string or a number",
    ),
    ({"operation": "search_by_id", **ON_DOG, "ids": "1"}, "'ids' must be an array"),
    ({"operation": "search_by_id", **ON_DOG, "ids": [1, {"a": 1}]}, "ids[1]"),
    ({"operation": "search_by_id", **ON_DOG, "ids": [True]}, "ids[0]"),
    (
        {"operation": "search_by_id", **ON_DOG, "ids": [1], "get_attributes": 5},
        "'get_attributes' must be an array",
    ),
    (
        {"operation": "search_by_id", **ON_DOG, "ids": [1], "get_attributes": [1]},
        "'get_attributes' must be an array",
    ),
    (
        {"operation": "search_by_value", **ON_DOG, "attribute": 5, "value": 1},
        "'attribute' must be a string",
    ),
    (
        {"operation": "search_by_value", **ON_DOG, "attribute": "nosuch", "value": 1},
        "unknown attribute 'nosuch'",
    ),
    (
        {"operation": "search_by_value", **ON_DOG, "attribute": "name", "value": {"a": 1}},
        "cannot compare",
    ),
    (
        {
            "operation": "search_by_value",
            **ON_DOG,
            "attribute": "name",
            "value": "*",
            "limit": "10",
        },
        "'limit' must be an integer",
    ),
    (
        {"operation": "search_by_value", **ON_DOG, "attribute": "name", "value": "*", "limit": 1.5},
        "'limit' must be an integer",
    ),
    (
        {"operation": "search_by_value", **ON_DOG, "attribute": "name", "value": "*", "offset": -1},
        "'offset' must be an integer >= 0",
    ),
    (
        {"operation": "search_by_conditions", **ON_DOG, "conditions": "id = 1"},
        "'conditions' must be a non-empty array",
    ),
    (
        {"operation": "search_by_conditions", **ON_DOG, "conditions": [5]},
        "each condition must be an object",
    ),
    (
        {
            "operation": "search_by_conditions",
            **ON_DOG,
            "conditions": [{"attribute": "", "comparator": "equals", "value": 1}],
        },
        "condition attribute",
    ),
    (
        {
            "operation": "search_by_conditions",
            **ON_DOG,
            "conditions": [{"attribute": "id", "comparator": 5, "value": 1}],
        },
        "comparator",
    ),
    (
        {
            "operation": "search_by_conditions",
            **ON_DOG,
            "conditions": [{"attribute": "id", "comparator": "in", "value": 1}],
        },
        "in on 'id' needs a list",
    ),
    ({"operation": "sql", "sql": 5}, "'sql' must be a string"),
    (
        {"operation": "sql", "sql": f"SELECT * FROM {DB}.dog WHERE id = 99999999999999999999"},
        "must fit in a 64-bit integer",
    ),  # SQLite would make it a double: refused with the reason, as the JSON API does
    (
        {"operation": "transaction", "operations": {"operation": "insert"}},
        "'operations' must be an array",
    ),
    (
        {"operation": "add_user", "username": "u", "password": 5, "role": "super_user"},
        "'password' must be a string",
    ),
    (
        {
            "operation": "add_user",
            "username": "u",
            "password": "p",
            "role": "super_user",
            "active": "yes",
        },
        "'active' must be true or false",
    ),
    ({"operation": "add_role", "role": "r", "permission": "all"}, "'permission' must be an object"),
    (
        {"operation": "create_authentication_tokens", "username": ["admin"], "password": "p"},
        "'username' must be a string",
    ),
    (
        {"operation": "refresh_operation_token", "refresh_token": ["t"]},
        "'refresh_token' must be a string",
    ),
]


@pytest.mark.parametrize(
    "body, words",
    WRONG_TYPES,
    ids=[f"{b['operation']}-{i}" for i, (b, _) in enumerate(WRONG_TYPES)],
)
def test_wrong_typed_fields_are_400_naming_the_field(agent, body, words):
    if words is None:
        assert agent.op(body) == []
        return
    error_of(agent, body, 400, words)


# -- names that do not exist -------------------------------------------------------------------


def _on(database, table):
    where = {"database": database, "table": table}
    return [
        {"operation": "describe_table", **where},
        {"operation": "drop_table", **where},
        {"operation": "create_attribute", **where, "attribute": "a"},
        {"operation": "insert", **where, "records": [{"id": 2}]},
        {"operation": "update", **where, "records": [{"id": 1}]},
        {"operation": "upsert", **where, "records": [{"id": 2}]},
        {"operation": "delete", **where, "ids": [1]},
        {"operation": "search_by_id", **where, "ids": [1]},
        {"operation": "search_by_value", **where, "attribute": "id", "value": 1},
        {
            "operation": "search_by_conditions",
            **where,
            "conditions": [{"attribute": "id", "comparator": "equals", "value": 1}],
        },
        {"operation": "sql", "sql": f"SELECT * FROM {database}.{table}"},
        {"operation": "sql", "sql": f"INSERT INTO {database}.{table} (id) VALUES (2)"},
        {"operation": "sql", "sql": f"DELETE FROM {database}.{table}"},
        {
            "operation": "transaction",
            "operations": [{"operation": "insert", **where, "records": [{"id": 2}]}],
        },
    ]


@pytest.mark.parametrize("body", _on(DB, "nosuch"), ids=lambda b: b["operation"])
def test_unknown_table_is_404(agent, body):
    error_of(agent, body, 404, f"Table '{DB}.nosuch' does not exist")


@pytest.mark.parametrize(
    "body",
    [
        *_on(MISSING_DB, "dog"),
        {"operation": "describe_database", "database": MISSING_DB},
        {"operation": "drop_database", "database": MISSING_DB},
    ],
    ids=lambda b: b["operation"],
)
def test_unknown_database_is_404(agent, body):
    error_of(agent, body, 404, f"database '{MISSING_DB}' does not exist")


def test_unknown_user_and_role_are_404(agent):
    error_of(agent, {"operation": "drop_user", "username": "ghost"}, 404, "ghost")
    error_of(agent, {"operation": "alter_user", "username": "ghost", "password": "p"}, 404, "ghost")
    error_of(agent, {"operation": "drop_role", "id": "ghost_role"}, 404, "ghost_role")
    error_of(
        agent,
        {"operation": "add_user", "username": unique("u"), "password": "p", "role": "ghost_role"},
        404,
        "ghost_role",
    )


# -- credentials -------------------------------------------------------------------------------


def test_wrong_credentials_are_401(agent):
    error_of(
        agent, {"operation": "describe_all"}, 401, "Login failed", auth=("admin", "wrong-password")
    )
    error_of(agent, {"operation": "describe_all"}, 401, "Login failed", auth=("ghost", "x"))
    error_of(agent, {"operation": "describe_all"}, 401, "Must login", auth=None)
    error_of(
        agent,
        {"operation": "describe_all"},
        401,
        "invalid token",
        auth=None,
        headers={"Authorization": "Bearer abc.def.ghi"},
    )
    error_of(
        agent,
        {"operation": "describe_all"},
        401,
        "Basic",
        auth=None,
        headers={"Authorization": "Token abc"},
    )


def test_wrong_credentials_write_nothing(agent):
    body = {"operation": "insert", **ON_DOG, "records": [{"id": 2, "name": "intruder"}]}
    error_of(agent, body, 401, "Login failed", auth=("admin", "wrong-password"))
    error_of(agent, body, 401, "Must login", auth=None)


# -- HTTP around the operations ----------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/", 405),
        ("PUT", "/", 405),
        ("DELETE", "/", 405),
        ("GET", "/no/such/path", 404),
        ("POST", "/health", 405),
    ],
)
def test_other_paths_and_methods_answer_json(agent, method, path, status):
    resp = agent.session.request(
        method, agent.url + path, timeout=5, auth=("admin", agent.password)
    )
    assert_error(resp, status, "POST /")


def test_garbage_on_the_socket_does_not_hurt(agent):
    for garbage in (
        b"GARBAGE\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64,
        b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"oper',
    ):
        with socket.create_connection((agent.host, agent.port), timeout=5) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            try:
                sock.recv(4096)
            except OSError:
                pass
        healthy(agent)


def test_a_storm_of_bad_requests_beside_good_ones(agent):
    bad = [
        b'{"operation": ',
        b"[]",
        b'{"operation": "nope"}',
        b'{"operation":"insert","database":"%s","table":"dog","records":[{"id":[1]}]}'
        % DB.encode(),
    ]

    def send(n: int):
        if n % 2:
            return n, post(agent, bad[n // 2 % len(bad)]).status_code
        return n, post(agent, {"operation": "search_by_id", **ON_DOG, "ids": [1]}).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(200)))
    assert all(status == (400 if n % 2 else 200) for n, status in results), results


# -- body size ---------------------------------------------------------------------------------

LIMIT = 4096


@pytest.fixture(scope="module")
def small_body_agent(tmp_path_factory):
    from harness import Agent

    node = Agent(
        tmp_path_factory.mktemp("small_body"),
        config={"operationsApi": {"network": {"maxBodySize": "4kb"}}},
    )
    node.start()
    make_table(node, "data", "dog")
    yield node
    node.kill()


def _insert_of_size(size: int) -> bytes:
    """An insert body of exactly `size` bytes."""
    head = b'{"operation":"insert","table":"dog","records":[{"id":1,"pad":"'
    tail = b'"}]}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_a_body_at_the_limit_is_accepted(small_body_agent):
    body = _insert_of_size(LIMIT)
    assert len(body) == LIMIT
    resp = post(small_body_agent, body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["inserted_hashes"] == [1]


@pytest.mark.parametrize("size", [LIMIT + 1, 3 * LIMIT])
def test_an_oversized_body_is_413(small_body_agent, size):
    resp = post(small_body_agent, _insert_of_size(size).replace(b'"id":1', b'"id":2'))
    assert_error(resp, 413, str(LIMIT), "maxBodySize")
    healthy(small_body_agent)
    found = small_body_agent.op({"operation": "search_by_id", "table": "dog", "ids": [2]})
    assert found == []


def test_an_oversized_chunked_body_is_413(small_body_agent):
    body = _insert_of_size(3 * LIMIT).replace(b'"id":1', b'"id":3')
    chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))  # no Content-Length
    resp = small_body_agent.session.post(
        small_body_agent.url + "/",
        data=chunks,
        auth=("admin", small_body_agent.password),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert_error(resp, 413, "maxBodySize")
    healthy(small_body_agent)
    assert small_body_agent.op({"operation": "search_by_id", "table": "dog", "ids": [3]}) == []
