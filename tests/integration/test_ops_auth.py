"""Users, roles, grants and tokens, enforced on every data operation of a real agent."""

from __future__ import annotations

import base64

import pytest
from support import assert_error, error_of, make_table, post, unique

PASSWORD = "s3cret-pass"


def _add_reader(agent, db: str) -> str:
    """Add a user whose role may only read `<db>.open`; `<db>.closed` exists beside it."""
    make_table(agent, db, "open", records=[{"id": 1, "name": "visible"}])
    make_table(agent, db, "closed", records=[{"id": 1, "name": "hidden"}])
    role = unique("reader_role")
    permission = {
        db: {"tables": {"open": {"read": True, "insert": False, "update": False, "delete": False}}}
    }
    added = agent.op({"operation": "add_role", "role": role, "permission": permission})
    assert added["role"] == role
    username = unique("reader")
    answer = agent.op(
        {
            "operation": "add_user",
            "username": username,
            "password": PASSWORD,
            "role": role,
            "active": True,
        }
    )
    assert answer == {"message": f"{username} successfully added"}
    return username


@pytest.fixture(scope="module")
def read_only(shared_agent):
    """(database, user) for tests that only look: one reader for the whole module."""
    database = unique("grants")
    return database, _add_reader(shared_agent, database)


@pytest.fixture
def reader(shared_agent, db):
    """A reader of this test's own, for tests that change the user or its role."""
    return _add_reader(shared_agent, db)


def _as(username):
    return {"auth": (username, PASSWORD)}


def _data_ops(db, table):
    """Every data operation on one table, each a body that a super user could run."""
    where = {"database": db, "table": table}
    return {
        "search_by_id": {"operation": "search_by_id", **where, "ids": [1]},
        "search_by_value": {"operation": "search_by_value", **where, "attribute": "id", "value": 1},
        "search_by_conditions": {
            "operation": "search_by_conditions",
            **where,
            "conditions": [{"attribute": "id", "comparator": "equals", "value": 1}],
        },
        "describe_table": {"operation": "describe_table", **where},
        "sql select": {"operation": "sql", "sql": f"SELECT * FROM {db}.{table}"},
        "insert": {"operation": "insert", **where, "records": [{"id": 2}]},
        "update": {"operation": "update", **where, "records": [{"id": 1, "name": "x"}]},
        "upsert": {"operation": "upsert", **where, "records": [{"id": 3}]},
        "delete": {"operation": "delete", **where, "ids": [1]},
        "sql insert": {"operation": "sql", "sql": f"INSERT INTO {db}.{table} (id) VALUES (4)"},
        "sql update": {"operation": "sql", "sql": f"UPDATE {db}.{table} SET name = 'x'"},
        "sql delete": {"operation": "sql", "sql": f"DELETE FROM {db}.{table} WHERE id = 1"},
        "transaction": {
            "operation": "transaction",
            "operations": [{"operation": "insert", **where, "records": [{"id": 5}]}],
        },
    }


READS = ("search_by_id", "search_by_value", "search_by_conditions", "describe_table", "sql select")


def test_read_only_role_can_read_its_table(shared_agent, read_only):
    db, reader = read_only
    for name in READS:
        status, answer = shared_agent.request(_data_ops(db, "open")[name], **_as(reader))
        assert status == 200, (name, answer)
    found = shared_agent.op(
        {
            "operation": "search_by_id",
            "database": db,
            "table": "open",
            "ids": [1],
            "get_attributes": ["name"],
        },
        **_as(reader),
    )
    assert found == [{"name": "visible"}]


def test_read_only_role_cannot_write_its_table(shared_agent, read_only):
    db, reader = read_only
    for name, body in _data_ops(db, "open").items():
        if name in READS:
            continue
        message = error_of(shared_agent, body, 403, reader, f"'{db}.open'", **_as(reader))
        assert "not allowed" in message, (name, message)
    found = shared_agent.op(
        {"operation": "search_by_id", "database": db, "table": "open", "ids": [1, 2, 3, 4, 5]}
    )
    assert found == [{**found[0], "id": 1, "name": "visible"}]


def test_read_only_role_cannot_touch_other_tables(shared_agent, read_only):
    db, reader = read_only
    for body in _data_ops(db, "closed").values():
        error_of(shared_agent, body, 403, f"'{db}.closed'", **_as(reader))
    assert shared_agent.op(
        {
            "operation": "search_by_id",
            "database": db,
            "table": "closed",
            "ids": [1],
            "get_attributes": ["name"],
        }
    ) == [{"name": "hidden"}]


def test_read_only_role_sees_only_its_table_in_describe(shared_agent, read_only):
    db, reader = read_only
    everything = shared_agent.op({"operation": "describe_all"}, **_as(reader))
    assert list(everything) == [db]
    assert list(everything[db]) == ["open"]
    assert list(
        shared_agent.op({"operation": "describe_database", "database": db}, **_as(reader))
    ) == ["open"]


def test_system_tables_are_closed_to_non_super_users(shared_agent, read_only):
    _, reader = read_only
    body = {
        "operation": "search_by_value",
        "database": "system",
        "table": "hdb_user",
        "attribute": "username",
        "value": "*",
    }
    error_of(shared_agent, body, 403, "system.hdb_user", **_as(reader))
    body = {
        "operation": "insert",
        "database": "system",
        "table": "hdb_user",
        "records": [{"username": "evil", "role": "super_user"}],
    }
    error_of(shared_agent, body, 403, **_as(reader))


@pytest.mark.parametrize(
    "body",
    [
        {"operation": "create_database", "database": "nope"},
        {"operation": "create_table", "database": "nope", "table": "t", "primary_key": "id"},
        {"operation": "drop_database", "database": "data"},
        {"operation": "drop_table", "database": "data", "table": "t"},
        {"operation": "create_attribute", "database": "data", "table": "t", "attribute": "a"},
        {"operation": "add_user", "username": "x", "password": "y", "role": "super_user"},
        {"operation": "drop_user", "username": "admin"},
        {"operation": "list_users"},
        {"operation": "add_role", "role": "r", "permission": {"super_user": True}},
        {"operation": "list_roles"},
        {"operation": "system_information"},
        {"operation": "get_configuration"},
    ],
    ids=lambda body: body["operation"],
)
def test_super_user_operations_are_refused_to_others(shared_agent, read_only, body):
    _, reader = read_only
    error_of(shared_agent, body, 403, body["operation"], "super user", **_as(reader))


def test_a_user_cannot_raise_their_own_role(shared_agent, read_only):
    _, reader = read_only
    body = {"operation": "alter_user", "username": reader, "role": "super_user"}
    error_of(shared_agent, body, 403, "super user", **_as(reader))
    body = {"operation": "alter_user", "username": "admin", "password": "taken-over"}
    error_of(shared_agent, body, 403, **_as(reader))
    shared_agent.op({"operation": "describe_all"})  # admin's password still works


def test_write_grant_without_read(shared_agent, db):
    make_table(shared_agent, db, "inbox")
    role = unique("writer_role")
    shared_agent.op(
        {
            "operation": "add_role",
            "role": role,
            "permission": {
                db: {
                    "tables": {
                        "inbox": {"read": False, "insert": True, "update": False, "delete": False}
                    }
                }
            },
        }
    )
    writer = unique("writer")
    shared_agent.op(
        {"operation": "add_user", "username": writer, "password": PASSWORD, "role": role}
    )
    answer = shared_agent.op(
        {"operation": "insert", "database": db, "table": "inbox", "records": [{"id": 1}]},
        **_as(writer),
    )
    assert answer["inserted_hashes"] == [1]
    for name in ("search_by_id", "update", "upsert", "delete"):
        error_of(shared_agent, _data_ops(db, "inbox")[name], 403, **_as(writer))


def test_alter_role_takes_effect_at_once(shared_agent, db, reader):
    role = shared_agent.op({"operation": "user_info"}, **_as(reader))["role"]["id"]
    body = _data_ops(db, "open")["insert"]
    error_of(shared_agent, body, 403, **_as(reader))
    shared_agent.op(
        {
            "operation": "alter_role",
            "id": role,
            "permission": {db: {"tables": {"open": {"read": True, "insert": True}}}},
        }
    )
    assert shared_agent.op(body, **_as(reader))["inserted_hashes"] == [2]


def test_user_info_and_list_users_hide_secrets(shared_agent, read_only):
    _, reader = read_only
    info = shared_agent.op({"operation": "user_info"}, **_as(reader))
    assert info["username"] == reader
    assert info["role"]["permission"]["super_user"] is False
    assert "password" not in info
    users = shared_agent.op({"operation": "list_users"})
    names = [u["username"] for u in users]
    assert "admin" in names and reader in names
    assert all("password" not in u for u in users)


def test_add_user_errors(shared_agent, read_only):
    _, reader = read_only
    body = {"operation": "add_user", "username": reader, "password": "x", "role": "super_user"}
    error_of(shared_agent, body, 400, reader, "already exists")
    body = {"operation": "add_user", "username": unique("u"), "password": "x", "role": "nope"}
    error_of(shared_agent, body, 404, "role 'nope' does not exist")
    body = {"operation": "add_user", "username": unique("u"), "role": "super_user"}
    error_of(shared_agent, body, 400, "'password'")
    body = {"operation": "add_user", "password": "x", "role": "super_user"}
    error_of(shared_agent, body, 400, "'username'")


def test_add_role_with_a_bad_permission_is_400(shared_agent):
    body = {
        "operation": "add_role",
        "role": unique("r"),
        "permission": {"data": {"tables": {"t": {"read": "yes"}}}},
    }
    error_of(shared_agent, body, 400, "READ", "data.t")


def test_wrong_password_is_401_login_failed(shared_agent, read_only):
    _, reader = read_only
    error_of(
        shared_agent, {"operation": "describe_all"}, 401, "Login failed", auth=(reader, "wrong")
    )
    error_of(
        shared_agent,
        {"operation": "describe_all"},
        401,
        "Login failed",
        auth=("nobody-at-all", "wrong"),
    )
    error_of(shared_agent, {"operation": "describe_all"}, 401, "Login failed", auth=("admin", ""))


def test_no_credentials_is_401_must_login(shared_agent):
    error_of(shared_agent, {"operation": "describe_all"}, 401, "Must login", auth=None)
    error_of(
        shared_agent,
        {"operation": "insert", "database": "data", "table": "t", "records": []},
        401,
        "Must login",
        auth=None,
    )


def test_malformed_authorization_headers_are_401(shared_agent):
    for header, words in (
        ("Basic !!!not-base64", ["Basic"]),
        ("Basic " + base64.b64encode(b"no-colon").decode(), ["Basic"]),
        ("Digest abc", ["Basic", "Bearer"]),
        ("Bearer", ["invalid token"]),
        ("Bearer not.a.jwt", ["invalid token"]),
    ):
        resp = post(
            shared_agent,
            {"operation": "describe_all"},
            auth=None,
            headers={"Authorization": header},
        )
        assert_error(resp, 401, *words)


def test_deactivated_and_dropped_users_cannot_log_in(shared_agent, reader):
    tokens = shared_agent.op(
        {"operation": "create_authentication_tokens", "username": reader, "password": PASSWORD},
        auth=None,
    )
    bearer = {"Authorization": f"Bearer {tokens['operation_token']}"}
    shared_agent.op({"operation": "alter_user", "username": reader, "active": False})
    error_of(shared_agent, {"operation": "user_info"}, 401, "Login failed", **_as(reader))
    shared_agent.op({"operation": "alter_user", "username": reader, "active": True})
    assert shared_agent.op({"operation": "user_info"}, **_as(reader))["username"] == reader
    shared_agent.op({"operation": "drop_user", "username": reader})
    error_of(shared_agent, {"operation": "user_info"}, 401, "Login failed", **_as(reader))
    error_of(
        shared_agent, {"operation": "user_info"}, 401, "invalid token", auth=None, headers=bearer
    )


def test_changed_password_replaces_the_old_one(shared_agent, reader):
    shared_agent.op(
        {"operation": "alter_user", "username": reader, "password": "new-one"}, **_as(reader)
    )
    error_of(shared_agent, {"operation": "user_info"}, 401, "Login failed", **_as(reader))
    assert shared_agent.op({"operation": "user_info"}, auth=(reader, "new-one"))


def test_tokens_issue_use_and_refresh(shared_agent, read_only):
    db, reader = read_only
    tokens = shared_agent.op(
        {"operation": "create_authentication_tokens", "username": reader, "password": PASSWORD},
        auth=None,
    )
    assert set(tokens) == {"operation_token", "refresh_token"}
    assert tokens["operation_token"].count(".") == 2
    operation = {"Authorization": f"Bearer {tokens['operation_token']}"}
    refresh = {"Authorization": f"Bearer {tokens['refresh_token']}"}

    # The operation token carries the user's own permissions, no more.
    read = _data_ops(db, "open")["search_by_id"]
    assert shared_agent.op(read, auth=None, headers=operation)[0]["name"] == "visible"
    error_of(
        shared_agent, _data_ops(db, "open")["insert"], 403, reader, auth=None, headers=operation
    )
    error_of(shared_agent, {"operation": "list_users"}, 403, auth=None, headers=operation)

    # A refresh token is not an operation bearer, and the reverse.
    error_of(shared_agent, read, 401, "invalid token", auth=None, headers=refresh)
    error_of(
        shared_agent,
        {"operation": "refresh_operation_token"},
        401,
        "invalid token",
        auth=None,
        headers=operation,
    )

    renewed = shared_agent.op({"operation": "refresh_operation_token"}, auth=None, headers=refresh)
    assert set(renewed) == {"operation_token"}
    again = {"Authorization": f"Bearer {renewed['operation_token']}"}
    assert (
        shared_agent.op({"operation": "user_info"}, auth=None, headers=again)["username"] == reader
    )


def test_create_authentication_tokens_with_wrong_password(shared_agent, read_only):
    _, reader = read_only
    body = {"operation": "create_authentication_tokens", "username": reader, "password": "no"}
    error_of(shared_agent, body, 401, "invalid credentials", auth=None)
    body = {"operation": "create_authentication_tokens", "username": "ghost", "password": "no"}
    error_of(shared_agent, body, 401, "invalid credentials", auth=None)


def test_create_authentication_tokens_for_the_basic_caller(shared_agent):
    tokens = shared_agent.op({"operation": "create_authentication_tokens"})
    bearer = {"Authorization": f"Bearer {tokens['operation_token']}"}
    assert (
        shared_agent.op({"operation": "user_info"}, auth=None, headers=bearer)["username"]
        == "admin"
    )


def test_refresh_operation_token_without_a_token(shared_agent):
    error_of(shared_agent, {"operation": "refresh_operation_token"}, 401, "Must login", auth=None)


def test_refresh_token_in_the_body(shared_agent, read_only):
    _, reader = read_only
    """HarperDB's documented form: `{"operation", "refresh_token"}`, no header needed."""
    tokens = shared_agent.op(
        {"operation": "create_authentication_tokens", "username": reader, "password": PASSWORD},
        auth=None,
    )
    renewed = shared_agent.op(
        {"operation": "refresh_operation_token", "refresh_token": tokens["refresh_token"]},
        auth=None,
    )
    bearer = {"Authorization": f"Bearer {renewed['operation_token']}"}
    assert (
        shared_agent.op({"operation": "user_info"}, auth=None, headers=bearer)["username"] == reader
    )
    body = {"operation": "refresh_operation_token", "refresh_token": tokens["operation_token"]}
    error_of(shared_agent, body, 401, "invalid token", auth=None)
    body = {"operation": "refresh_operation_token", "refresh_token": 42}
    error_of(shared_agent, body, 400, "'refresh_token'", auth=None)


def test_super_user_role_cannot_be_dropped_and_held_roles_stay(shared_agent, read_only):
    _, reader = read_only
    error_of(shared_agent, {"operation": "drop_role", "id": "super_user"}, 400, "super_user")
    role = shared_agent.op({"operation": "user_info"}, **_as(reader))["role"]["id"]
    error_of(shared_agent, {"operation": "drop_role", "id": role}, 400, reader)
