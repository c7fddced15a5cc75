"""Issue 9 on a real agent: names ending in a newline, 64-bit integers, forgotten attributes,
drop_attribute (also replicated) and describe_table of a table with declared attributes."""

from __future__ import annotations

import json

from harness import Cluster, wait_for
from support import error_of, make_table, post


def _attributes(agent, db: str, table: str) -> list[str]:
    described = agent.op({"operation": "describe_table", "database": db, "table": table})
    return [a["attribute"] for a in described["attributes"]]


def _all(agent, db: str, table: str) -> list[dict]:
    return agent.op(
        {
            "operation": "search_by_value",
            "database": db,
            "table": table,
            "attribute": "id",
            "value": "*",
            "get_attributes": ["*"],
        }
    )


def test_names_ending_in_a_newline_are_refused(shared_agent, db):
    error_of(shared_agent, {"operation": "create_database", "database": db + "\n"}, 400, "invalid")
    body = {"operation": "create_table", "database": db, "table": "dog\n", "primary_key": "id"}
    error_of(shared_agent, body, 400, "invalid")
    assert db not in shared_agent.op({"operation": "describe_all"})
    assert not list((shared_agent.root / "database").glob("*\n*"))


def test_a_body_with_an_integer_beyond_64_bits_is_400_naming_it(shared_agent, db):
    make_table(shared_agent, db, "dog")
    for number in (2**64, 2**63, -(2**63) - 1, 10**30):
        raw = (
            f'{{"operation": "insert", "database": "{db}", "table": "dog", '
            f'"records": [{{"id": 1, "n": {number}}}]}}'
        )
        error_of(shared_agent, raw, 400, "malformed JSON", str(number), "64-bit range")
    ok = (
        f'{{"operation": "insert", "database": "{db}", "table": "dog", '
        f'"records": [{{"id": 1, "n": {2**63 - 1}, "m": {-(2**63)}}}]}}'
    )
    assert post(shared_agent, ok).status_code == 200
    found = shared_agent.op(
        {"operation": "search_by_id", "database": db, "table": "dog", "ids": [1]}
    )
    assert found[0]["n"] == 2**63 - 1 and found[0]["m"] == -(2**63)
    assert isinstance(found[0]["n"], int)


def test_sql_insert_of_a_wide_integer_is_refused_naming_the_attribute(shared_agent, db):
    make_table(shared_agent, db, "dog")
    sql = f"INSERT INTO {db}.dog (id, n) VALUES (1, 9223372036854775808)"
    status, body = shared_agent.request({"operation": "sql", "sql": sql})
    assert status == 400, body
    assert "9223372036854775808" in body["error"]
    count = shared_agent.op({"operation": "sql", "sql": f"SELECT COUNT(*) AS c FROM {db}.dog"})
    assert count[0]["c"] == 0


def test_attributes_of_a_deleted_record_are_forgotten(shared_agent, db):
    make_table(shared_agent, db, "wide", records=[{"id": i, "name": f"n{i}"} for i in range(3)])
    wide = {"id": "wide", **{f"a{i}": i for i in range(5000)}}
    shared_agent.op({"operation": "insert", "database": db, "table": "wide", "records": [wide]})
    assert len(_attributes(shared_agent, db, "wide")) == 5000 + 4  # id, name, 2 times
    shared_agent.op({"operation": "delete", "database": db, "table": "wide", "ids": ["wide"]})

    def forgotten() -> bool:
        return len(_attributes(shared_agent, db, "wide")) == 4

    wait_for(forgotten, 10, 0.05, "the 5,000 attributes forgotten")
    rows = _all(shared_agent, db, "wide")
    assert len(rows) == 3
    assert all(set(r) == {"id", "name", "__createdtime__", "__updatedtime__"} for r in rows)
    # declared attributes stay, even when no record carries them
    shared_agent.op(
        {"operation": "create_attribute", "database": db, "table": "wide", "attribute": "kept"}
    )
    shared_agent.op(
        {"operation": "insert", "database": db, "table": "wide", "records": [{"id": 9, "x": 1}]}
    )
    shared_agent.op({"operation": "delete", "database": db, "table": "wide", "ids": [9]})
    wait_for(lambda: "x" not in _attributes(shared_agent, db, "wide"), 10, 0.05, "x forgotten")
    assert "kept" in _attributes(shared_agent, db, "wide")


def test_drop_attribute_removes_it_and_its_values(shared_agent, db):
    records = [{"id": 1, "name": "Rex", "age": 3}, {"id": 2, "name": "Fido"}]
    make_table(shared_agent, db, "dog", records=records)
    body = {"operation": "drop_attribute", "database": db, "table": "dog", "attribute": "name"}
    assert shared_agent.op(body) == {"message": "successfully deleted attribute 'name'"}
    assert "name" not in _attributes(shared_agent, db, "dog")
    rows = _all(shared_agent, db, "dog")
    assert [("name" in r, r.get("age")) for r in sorted(rows, key=lambda r: r["id"])] == [
        (False, 3),
        (False, None),
    ]
    error_of(shared_agent, body, 404, "'name'", "does not exist")
    for protected in ("id", "__createdtime__", "__updatedtime__"):
        error_of(shared_agent, {**body, "attribute": protected}, 400, protected)
    error_of(shared_agent, {**body, "table": "nosuch"}, 404, "nosuch")


def test_describe_of_a_table_with_declared_attributes_lists_only_those(shared_agent, db):
    shared_agent.op(
        {
            "operation": "create_table",
            "database": db,
            "table": "typed",
            "primary_key": "id",
            "attributes": [{"name": "id", "type": "ID"}, {"name": "name", "type": "String"}],
        }
    )
    shared_agent.op(
        {
            "operation": "insert",
            "database": db,
            "table": "typed",
            "records": [{"id": "a", "name": "x", "extra": 1}],
        }
    )
    described = shared_agent.op({"operation": "describe_table", "database": db, "table": "typed"})
    assert described["schema_defined"] is True
    assert [a["attribute"] for a in described["attributes"]] == ["id", "name"]
    make_table(shared_agent, db, "free", records=[{"id": 1, "b": 2}])
    assert _attributes(shared_agent, db, "free") == [
        "id",
        "b",
        "__createdtime__",
        "__updatedtime__",
    ]


def test_drop_attribute_replicates(tmp_path):
    cluster = Cluster(tmp_path, 2).start()
    try:
        cluster.join().wait_connected()
        a, b = cluster[0], cluster[1]
        make_table(
            a, "dev", "dog", records=[{"id": i, "name": f"d{i}", "age": i} for i in range(5)]
        )
        wait_for(lambda: len(_all_or_none(b, "dev", "dog")) == 5, 20, 0.05, "rows on b")
        a.op({"operation": "drop_attribute", "database": "dev", "table": "dog", "attribute": "age"})

        def dropped_on_b() -> bool:
            rows = _all_or_none(b, "dev", "dog")
            return len(rows) == 5 and all("age" not in r for r in rows)

        wait_for(dropped_on_b, 20, 0.05, "age dropped on b")
        assert "age" not in _attributes(b, "dev", "dog")
        assert "name" in _attributes(b, "dev", "dog")
    finally:
        cluster.kill_all()


def _all_or_none(agent, db: str, table: str) -> list[dict]:
    status, body = agent.request(
        {
            "operation": "search_by_value",
            "database": db,
            "table": table,
            "attribute": "id",
            "value": "*",
        }
    )
    return body if status == 200 else []


def test_integer_message_is_json(shared_agent):
    resp = post(shared_agent, '{"operation": "describe_all", "x": 18446744073709551616}')
    assert resp.status_code == 400
    assert (
        "integer 18446744073709551616 is outside the 64-bit range" in json.loads(resp.text)["error"]
    )
