"""Attribute permissions on a real agent: every read and write path, JSON and SQL.

The role below grants dev.dog in full at table level and lists attributes as HarperDB's roles
do: `name` fully, `note` read-only, `tag` read and insert, `secret` nothing. `hidden` is not
listed, so (as in HarperDB) the role has no access to it; the primary key stays readable.
A super user is held to none of it, and nobody writes system tables around their operations.
"""

from __future__ import annotations

import pytest
from support import error_of, make_table, unique

PASSWORD = "attr-pass-1"
RECORDS = [
    {"id": 1, "name": "rex", "note": "n1", "tag": "t1", "secret": "s1", "hidden": "h1"},
    {"id": 2, "name": "ace", "note": "n2", "tag": "t2", "secret": "s2", "hidden": "h2"},
]
VISIBLE = {"id", "name", "note", "tag"}
ALL = VISIBLE | {"secret", "hidden", "__createdtime__", "__updatedtime__"}


def _attribute(name: str, read: bool, insert: bool, update: bool) -> dict:
    return {"attribute_name": name, "read": read, "insert": insert, "update": update}


@pytest.fixture(scope="module")
def setup(shared_agent):
    """(database, restricted user, db_only user): dog restricted by attribute, cat not."""
    db = unique("attrs")
    make_table(shared_agent, db, "dog", records=RECORDS)
    make_table(shared_agent, db, "cat", records=[{"id": 1, "secret": "meow"}])
    make_table(shared_agent, unique("elsewhere"), "t", records=[{"id": 1}])
    full = {"read": True, "insert": True, "update": True, "delete": True}
    permission = {
        db: {
            "tables": {
                "dog": {
                    **full,
                    "attribute_permissions": [
                        _attribute("name", True, True, True),
                        _attribute("note", True, False, False),
                        _attribute("tag", True, True, False),
                        _attribute("secret", False, False, False),
                    ],
                },
                "cat": {**full, "attribute_permissions": []},
            }
        }
    }
    role = unique("attr_role")
    shared_agent.op({"operation": "add_role", "role": role, "permission": permission})
    user = unique("attr_user")
    shared_agent.op({"operation": "add_user", "username": user, "password": PASSWORD, "role": role})
    return db, user


def _as(user: str) -> dict:
    return {"auth": (user, PASSWORD)}


def _dog(db: str) -> dict:
    return {"database": db, "table": "dog"}


def _row(agent, db: str, key) -> list[dict]:
    """Read one dog as the super user, every attribute."""
    return agent.op({"operation": "search_by_id", **_dog(db), "ids": [key]})


# -- reads ---------------------------------------------------------------------------------------


def _read_bodies(db: str) -> dict[str, dict]:
    where = _dog(db)
    name_is_rex = [{"attribute": "name", "comparator": "equals", "value": "rex"}]
    return {
        "search_by_id": {"operation": "search_by_id", **where, "ids": [1, 2]},
        "search_by_id *": {
            "operation": "search_by_id",
            **where,
            "ids": [1, 2],
            "get_attributes": ["*"],
        },
        "search_by_value": {
            "operation": "search_by_value",
            **where,
            "attribute": "name",
            "value": "*",
        },
        "search_by_conditions": {
            "operation": "search_by_conditions",
            **where,
            "conditions": [{"attribute": "id", "comparator": "greater_than", "value": 0}],
        },
        "search_by_conditions sorted": {
            "operation": "search_by_conditions",
            **where,
            "conditions": name_is_rex,
            "sort": {"attribute": "name", "next": {"attribute": "id"}},
        },
        "sql select *": {"operation": "sql", "sql": f"SELECT * FROM {db}.dog"},
        "sql select * where": {
            "operation": "sql",
            "sql": f"SELECT * FROM {db}.dog WHERE name = 'rex' OR id = 2 ORDER BY tag",
        },
    }


@pytest.mark.parametrize("path", list(_read_bodies("x")))
def test_star_reads_drop_what_the_role_may_not_read(shared_agent, setup, path):
    db, user = setup
    rows = shared_agent.op(_read_bodies(db)[path], **_as(user))
    assert rows, path
    for row in rows:
        assert set(row) == VISIBLE, (path, row)
    admin_rows = shared_agent.op(_read_bodies(db)[path])
    assert set(admin_rows[0]) == ALL, (path, admin_rows[0])


def _refused_reads(db: str) -> list[tuple[str, dict, str]]:
    where = _dog(db)
    q = f"{db}.dog"

    def cond(attribute: str, value="x") -> list[dict]:
        return [{"attribute": attribute, "comparator": "equals", "value": value}]

    return [
        (
            "get_attributes",
            {"operation": "search_by_id", **where, "ids": [1], "get_attributes": ["id", "secret"]},
            "secret",
        ),
        (
            "get_attributes unlisted",
            {"operation": "search_by_id", **where, "ids": [1], "get_attributes": ["hidden"]},
            "hidden",
        ),
        (
            "get_attributes star and secret",
            {"operation": "search_by_id", **where, "ids": [1], "get_attributes": ["*", "secret"]},
            "secret",
        ),
        (
            "get_attributes timestamp",
            {
                "operation": "search_by_id",
                **where,
                "ids": [1],
                "get_attributes": ["__createdtime__"],
            },
            "__createdtime__",
        ),
        (
            "search_by_value by secret",
            {"operation": "search_by_value", **where, "attribute": "secret", "value": "s1"},
            "secret",
        ),
        (
            "search_by_value wildcard",
            {"operation": "search_by_value", **where, "attribute": "hidden", "value": "h*"},
            "hidden",
        ),
        (
            "search_by_value get secret",
            {
                "operation": "search_by_value",
                **where,
                "attribute": "id",
                "value": 1,
                "get_attributes": ["secret"],
            },
            "secret",
        ),
        (
            "search_by_value sort",
            {
                "operation": "search_by_value",
                **where,
                "attribute": "id",
                "value": "*",
                "sort": {"attribute": "secret"},
            },
            "secret",
        ),
        (
            "conditions",
            {"operation": "search_by_conditions", **where, "conditions": cond("secret", "s1")},
            "secret",
        ),
        (
            "conditions nested",
            {
                "operation": "search_by_conditions",
                **where,
                "operator": "or",
                "conditions": [
                    *cond("name", "rex"),
                    {"operator": "and", "conditions": cond("hidden", "h1")},
                ],
            },
            "hidden",
        ),
        (
            "conditions sort",
            {
                "operation": "search_by_conditions",
                **where,
                "conditions": cond("name", "rex"),
                "sort": {"attribute": "id", "next": {"attribute": "secret"}},
            },
            "secret",
        ),
        (
            "conditions get",
            {
                "operation": "search_by_conditions",
                **where,
                "conditions": cond("name", "rex"),
                "get_attributes": ["name", "secret"],
            },
            "secret",
        ),
        ("sql column", {"operation": "sql", "sql": f"SELECT secret FROM {q}"}, "secret"),
        ("sql alias", {"operation": "sql", "sql": f"SELECT id, hidden AS h FROM {q}"}, "hidden"),
        (
            "sql where",
            {"operation": "sql", "sql": f"SELECT id FROM {q} WHERE secret = 's1'"},
            "secret",
        ),
        (
            "sql where not",
            {"operation": "sql", "sql": f"SELECT * FROM {q} WHERE NOT (secret LIKE 's%')"},
            "secret",
        ),
        (
            "sql order by",
            {"operation": "sql", "sql": f"SELECT id FROM {q} ORDER BY secret DESC"},
            "secret",
        ),
        ("sql aggregate", {"operation": "sql", "sql": f"SELECT COUNT(secret) FROM {q}"}, "secret"),
        ("sql max", {"operation": "sql", "sql": f"SELECT MAX(hidden) FROM {q}"}, "hidden"),
    ]


@pytest.mark.parametrize(
    "case", range(len(_refused_reads("x"))), ids=[c[0] for c in _refused_reads("x")]
)
def test_naming_an_unreadable_attribute_is_refused(shared_agent, setup, case):
    db, user = setup
    _, body, attribute = _refused_reads(db)[case]
    message = error_of(shared_agent, body, 403, f"'{attribute}'", "read", **_as(user))
    assert "s1" not in message and "h1" not in message
    shared_agent.op(body)  # the super user may


def test_readable_attributes_and_counts_still_answer(shared_agent, setup):
    db, user = setup
    rows = shared_agent.op(
        {"operation": "search_by_id", **_dog(db), "ids": [1], "get_attributes": ["id", "note"]},
        **_as(user),
    )
    assert rows == [{"id": 1, "note": "n1"}]
    sql = f"SELECT id, name AS n FROM {db}.dog WHERE tag = 't2'"
    assert shared_agent.op({"operation": "sql", "sql": sql}, **_as(user)) == [{"id": 2, "n": "ace"}]
    count = shared_agent.op(
        {"operation": "sql", "sql": f"SELECT COUNT(*) AS c FROM {db}.dog"}, **_as(user)
    )
    assert count == [{"c": 2}]


def test_a_table_without_attribute_permissions_reads_in_full(shared_agent, setup):
    db, user = setup
    body = {"operation": "search_by_id", "database": db, "table": "cat", "ids": [1]}
    assert shared_agent.op(body, **_as(user))[0]["secret"] == "meow"
    sql = f"SELECT secret FROM {db}.cat"
    assert shared_agent.op({"operation": "sql", "sql": sql}, **_as(user)) == [{"secret": "meow"}]


def test_describe_shows_a_restricted_role_only_attributes_it_may_use(shared_agent, setup):
    db, user = setup
    body = {"operation": "describe_table", **_dog(db)}
    shown = {a["attribute"] for a in shared_agent.op(body, **_as(user))["attributes"]}
    assert shown == VISIBLE, shown  # secret and hidden are not even named
    everything = {a["attribute"] for a in shared_agent.op(body)["attributes"]}
    assert {"secret", "hidden"} <= everything
    described = shared_agent.op({"operation": "describe_all"}, **_as(user))[db]["dog"]
    assert {a["attribute"] for a in described["attributes"]} == VISIBLE


def test_super_user_reads_every_attribute(shared_agent, setup):
    db, _ = setup
    rows = shared_agent.op(
        {
            "operation": "search_by_value",
            **_dog(db),
            "attribute": "secret",
            "value": "s1",
            "get_attributes": ["secret", "hidden"],
        }
    )
    assert rows == [{"secret": "s1", "hidden": "h1"}]
    sql = f"SELECT secret, hidden FROM {db}.dog WHERE secret = 's2' ORDER BY hidden"
    assert shared_agent.op({"operation": "sql", "sql": sql}) == [{"secret": "s2", "hidden": "h2"}]


# -- writes --------------------------------------------------------------------------------------


def _refused_writes(db: str) -> list[tuple[str, dict, str, str, list]]:
    """(case, body, attribute named, action named, ids that must stay untouched)."""
    where = _dog(db)
    q = f"{db}.dog"
    return [
        (
            "insert secret",
            {"operation": "insert", **where, "records": [{"id": 10, "name": "a", "secret": "x"}]},
            "secret",
            "insert",
            [10],
        ),
        (
            "insert read-only",
            {"operation": "insert", **where, "records": [{"id": 10, "note": "x"}]},
            "note",
            "insert",
            [10],
        ),
        (
            "insert unlisted",
            {"operation": "insert", **where, "records": [{"id": 10, "hidden": "x"}]},
            "hidden",
            "insert",
            [10],
        ),
        (
            "insert new attribute",
            {"operation": "insert", **where, "records": [{"id": 10, "brand_new": 1}]},
            "brand_new",
            "insert",
            [10],
        ),
        (
            "insert second record",
            {
                "operation": "insert",
                **where,
                "records": [{"id": 10, "name": "ok"}, {"id": 11, "name": "b", "secret": "x"}],
            },
            "secret",
            "insert",
            [10, 11],
        ),
        (
            "update read-only",
            {"operation": "update", **where, "records": [{"id": 1, "note": "changed"}]},
            "note",
            "update",
            [1],
        ),
        (
            "update insert-only",
            {
                "operation": "update",
                **where,
                "records": [{"id": 1, "name": "ok"}, {"id": 2, "tag": "changed"}],
            },
            "tag",
            "update",
            [1, 2],
        ),
        (
            "update secret",
            {"operation": "update", **where, "records": [{"id": 1, "secret": "changed"}]},
            "secret",
            "update",
            [1],
        ),
        (
            "upsert needs update too",
            {"operation": "upsert", **where, "records": [{"id": 1, "tag": "changed"}]},
            "tag",
            "update",
            [1],
        ),
        (
            "upsert secret",
            {"operation": "upsert", **where, "records": [{"id": 12, "secret": "x"}]},
            "secret",
            "insert",
            [12],
        ),
        (
            "transaction",
            {
                "operation": "transaction",
                "operations": [
                    {"operation": "insert", **where, "records": [{"id": 13, "name": "ok"}]},
                    {"operation": "update", **where, "records": [{"id": 1, "secret": "x"}]},
                ],
            },
            "secret",
            "update",
            [13, 1],
        ),
        (
            "sql insert",
            {
                "operation": "sql",
                "sql": f"INSERT INTO {q} (id, name, secret) VALUES (14, 'a', 'x')",
            },
            "secret",
            "insert",
            [14],
        ),
        (
            "sql insert unlisted",
            {"operation": "sql", "sql": f"INSERT INTO {q} (id, hidden) VALUES (14, 'x')"},
            "hidden",
            "insert",
            [14],
        ),
        (
            "sql update",
            {"operation": "sql", "sql": f"UPDATE {q} SET name = 'ok', note = 'x' WHERE id = 1"},
            "note",
            "update",
            [1],
        ),
        (
            "sql update where",
            {"operation": "sql", "sql": f"UPDATE {q} SET name = 'ok' WHERE secret = 's1'"},
            "secret",
            "read",
            [1],
        ),
        (
            "sql delete where",
            {"operation": "sql", "sql": f"DELETE FROM {q} WHERE hidden = 'h2'"},
            "hidden",
            "read",
            [2],
        ),
    ]


@pytest.mark.parametrize(
    "case", range(len(_refused_writes("x"))), ids=[c[0] for c in _refused_writes("x")]
)
def test_writing_a_forbidden_attribute_is_refused_and_writes_nothing(shared_agent, setup, case):
    db, user = setup
    _, body, attribute, action, ids = _refused_writes(db)[case]
    before = {key: _row(shared_agent, db, key) for key in ids}
    error_of(shared_agent, body, 403, f"'{attribute}'", action, **_as(user))
    assert {key: _row(shared_agent, db, key) for key in ids} == before


def test_allowed_writes_go_through(shared_agent, setup):
    db, user = setup
    where = _dog(db)
    me = _as(user)
    shared_agent.op(
        {"operation": "insert", **where, "records": [{"id": 20, "name": "n", "tag": "t"}]}, **me
    )
    shared_agent.op({"operation": "update", **where, "records": [{"id": 20, "name": "m"}]}, **me)
    shared_agent.op({"operation": "upsert", **where, "records": [{"id": 21, "name": "u"}]}, **me)
    shared_agent.op({"operation": "insert", **where, "records": [{"name": "generated"}]}, **me)
    sql = f"INSERT INTO {db}.dog (id, name, tag) VALUES (22, 's', 'q')"
    shared_agent.op({"operation": "sql", "sql": sql}, **me)
    sql = f"UPDATE {db}.dog SET name = 'sq' WHERE id = 22 AND tag = 'q'"
    assert shared_agent.op({"operation": "sql", "sql": sql}, **me)["update_hashes"] == [22]
    rows = {
        r["id"]: r
        for r in shared_agent.op({"operation": "search_by_id", **where, "ids": [20, 21, 22]})
    }
    assert (rows[20]["name"], rows[20]["tag"], rows[21]["name"]) == ("m", "t", "u")
    assert (rows[22]["name"], rows[22]["tag"]) == ("sq", "q")
    shared_agent.op({"operation": "delete", **where, "ids": [21]}, **me)  # table-level, as HarperDB
    shared_agent.op({"operation": "sql", "sql": f"DELETE FROM {db}.dog WHERE id = 22"}, **me)
    assert shared_agent.op({"operation": "search_by_id", **where, "ids": [21, 22]}) == []


def test_super_user_writes_every_attribute(shared_agent, setup):
    db, _ = setup
    where = _dog(db)
    shared_agent.op(
        {"operation": "insert", **where, "records": [{"id": 30, "secret": "x", "hidden": "y"}]}
    )
    sql = f"UPDATE {db}.dog SET secret = 'z' WHERE hidden = 'y'"
    assert shared_agent.op({"operation": "sql", "sql": sql})["update_hashes"] == [30]
    assert _row(shared_agent, db, 30)[0]["secret"] == "z"


# -- get_status ----------------------------------------------------------------------------------


def test_get_status_lists_only_databases_the_user_may_read(shared_agent, setup):
    db, user = setup
    assert shared_agent.op({"operation": "get_status"}, **_as(user))["databases"] == [db]
    everything = shared_agent.op({"operation": "get_status"})["databases"]
    assert {"system", db} < set(everything)
    assert any(name.startswith("elsewhere") for name in everything)


# -- system tables -------------------------------------------------------------------------------


def _system_writes() -> list[tuple[str, dict, str]]:
    def on(table: str) -> dict:
        return {"database": "system", "table": table}

    user = {"username": "sneaky", "password": "plain", "role": "super_user", "active": True}
    return [
        (
            "insert hdb_user",
            {"operation": "insert", **on("hdb_user"), "records": [user]},
            "add_user",
        ),
        (
            "upsert hdb_user",
            {"operation": "upsert", **on("hdb_user"), "records": [user]},
            "alter_user",
        ),
        (
            "update hdb_user",
            {
                "operation": "update",
                **on("hdb_user"),
                "records": [{"username": "admin", "password": "plain"}],
            },
            "alter_user",
        ),
        (
            "delete hdb_user",
            {"operation": "delete", **on("hdb_user"), "ids": ["admin"]},
            "drop_user",
        ),
        (
            "insert hdb_role",
            {
                "operation": "insert",
                **on("hdb_role"),
                "records": [{"id": "r", "role": "r", "permission": {}}],
            },
            "add_role",
        ),
        (
            "upsert hdb_nodes",
            {"operation": "upsert", **on("hdb_nodes"), "records": [{"name": "evil"}]},
            "add_node",
        ),
        (
            "delete hdb_certificate",
            {"operation": "delete", **on("hdb_certificate"), "ids": ["x"]},
            "remove_certificate",
        ),
        (
            "insert hdb_schema",
            {"operation": "insert", **on("hdb_schema"), "records": [{"name": "x"}]},
            "create_database",
        ),
        (
            "transaction",
            {
                "operation": "transaction",
                "operations": [{"operation": "insert", **on("hdb_user"), "records": [user]}],
            },
            "add_user",
        ),
        (
            "sql insert",
            {
                "operation": "sql",
                "sql": "INSERT INTO system.hdb_user "
                "(username, password, role) VALUES ('sneaky', 'plain', 'super_user')",
            },
            "add_user",
        ),
        (
            "sql update",
            {"operation": "sql", "sql": "UPDATE system.hdb_user SET password = 'plain'"},
            "alter_user",
        ),
        ("sql delete", {"operation": "sql", "sql": "DELETE FROM system.hdb_role"}, "drop_role"),
    ]


@pytest.mark.parametrize("case", range(len(_system_writes())), ids=[c[0] for c in _system_writes()])
def test_system_tables_are_written_through_their_operations_only(shared_agent, case):
    _, body, operation = _system_writes()[case]
    users = {
        "operation": "search_by_value",
        "database": "system",
        "table": "hdb_user",
        "attribute": "username",
        "value": "*",
    }
    before = shared_agent.op(users)
    error_of(shared_agent, body, 403, "system.", operation)
    assert shared_agent.op(users) == before
    assert shared_agent.op({"operation": "user_info"})["username"] == "admin"


def test_super_user_still_reads_system_tables(shared_agent):
    rows = shared_agent.op(
        {
            "operation": "search_by_value",
            "database": "system",
            "table": "hdb_user",
            "attribute": "username",
            "value": "admin",
        }
    )
    assert [r["username"] for r in rows] == ["admin"]
    rows = shared_agent.op({"operation": "sql", "sql": "SELECT username FROM system.hdb_user"})
    assert {"username": "admin"} in rows
