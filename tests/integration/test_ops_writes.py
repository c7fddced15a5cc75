"""insert, update, upsert, delete and transaction against a real agent.

Where HarperDB answers are bugs, ours differ on purpose (the issue lists them): delete lists
ids that do not exist in skipped_hashes, and an insert without a primary key reports the id it
generated instead of null.
"""

from __future__ import annotations

import concurrent.futures

from support import error_of, make_table


def _get(agent, db, table, ids, **extra):
    return agent.op(
        {"operation": "search_by_id", "database": db, "table": table, "ids": ids, **extra}
    )


def _write(agent, operation, db, table, **fields):
    return agent.op({"operation": operation, "database": db, "table": table, **fields})


def test_insert_reports_hashes_and_stamps_times(shared_agent, db):
    make_table(shared_agent, db, "dog")
    answer = _write(
        shared_agent,
        "insert",
        db,
        "dog",
        records=[{"id": 8, "name": "Harper"}, {"id": 9, "name": "Penny"}],
    )
    assert answer == {
        "message": "inserted 2 of 2 records",
        "inserted_hashes": [8, 9],
        "skipped_hashes": [],
    }
    rex, penny = _get(shared_agent, db, "dog", [8, 9])
    assert rex["name"] == "Harper" and penny["name"] == "Penny"
    assert isinstance(rex["__createdtime__"], float)
    assert rex["__createdtime__"] == rex["__updatedtime__"]


def test_insert_one_record_message_is_singular(shared_agent, db):
    make_table(shared_agent, db, "dog")
    answer = _write(shared_agent, "insert", db, "dog", records=[{"id": "a"}])
    assert answer["message"] == "inserted 1 of 1 record"


def test_insert_duplicate_id_is_skipped_not_an_error(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": 1, "name": "first"}])
    answer = _write(
        shared_agent,
        "insert",
        db,
        "dog",
        records=[{"id": 1, "name": "second"}, {"id": 2, "name": "new"}],
    )
    assert answer == {
        "message": "inserted 1 of 2 records",
        "inserted_hashes": [2],
        "skipped_hashes": [1],
    }
    assert _get(shared_agent, db, "dog", [1])[0]["name"] == "first"


def test_insert_same_id_twice_in_one_request_keeps_the_first(shared_agent, db):
    make_table(shared_agent, db, "dog")
    answer = _write(
        shared_agent, "insert", db, "dog", records=[{"id": 5, "v": "a"}, {"id": 5, "v": "b"}]
    )
    assert answer["inserted_hashes"] == [5] and answer["skipped_hashes"] == [5]
    assert _get(shared_agent, db, "dog", [5])[0]["v"] == "a"


def test_insert_without_primary_key_reports_the_generated_id(shared_agent, db):
    make_table(shared_agent, db, "dog")
    answer = _write(
        shared_agent, "insert", db, "dog", records=[{"name": "anon"}, {"name": "other"}]
    )
    ids = answer["inserted_hashes"]
    assert len(ids) == 2 and None not in ids and ids[0] != ids[1]
    found = _get(shared_agent, db, "dog", ids)
    assert [r["name"] for r in found] == ["anon", "other"]
    assert [r["id"] for r in found] == ids


def test_insert_string_and_numeric_keys_are_distinct(shared_agent, db):
    make_table(shared_agent, db, "dog")
    answer = _write(
        shared_agent,
        "insert",
        db,
        "dog",
        records=[{"id": 1, "kind": "number"}, {"id": "1", "kind": "string"}],
    )
    assert answer["inserted_hashes"] == [1, "1"]
    assert _get(shared_agent, db, "dog", ["1"])[0]["kind"] == "string"
    assert _get(shared_agent, db, "dog", [1])[0]["kind"] == "number"


def test_insert_empty_records(shared_agent, db):
    make_table(shared_agent, db, "dog")
    answer = _write(shared_agent, "insert", db, "dog", records=[])
    assert answer == {
        "message": "inserted 0 of 0 records",
        "inserted_hashes": [],
        "skipped_hashes": [],
    }


def test_insert_keeps_nested_values(shared_agent, db):
    make_table(shared_agent, db, "dog")
    record = {
        "id": "n",
        "tags": ["a", "b"],
        "owner": {"name": "Kyle", "age": 40},
        "alive": True,
        "weight": 12.5,
        "nothing": None,
        "text": "ünïcødé ✓",
    }
    _write(shared_agent, "insert", db, "dog", records=[record])
    found = _get(shared_agent, db, "dog", ["n"])[0]
    for key, value in record.items():
        assert found[key] == value


def test_insert_with_a_bad_record_writes_nothing(shared_agent, db):
    make_table(shared_agent, db, "dog")
    body = {
        "operation": "insert",
        "database": db,
        "table": "dog",
        "records": [{"id": 1}, {"id": {"nested": "key"}}, {"id": 3}],
    }
    error_of(shared_agent, body, 400, "primary key 'id'")
    body["records"][1] = "not a record"
    error_of(shared_agent, body, 400, "record 1")
    assert _get(shared_agent, db, "dog", [1, 3]) == []


def test_update_merges_and_reports_update_hashes(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": 1, "name": "Rex", "age": 3}])
    before = _get(shared_agent, db, "dog", [1])[0]
    answer = _write(
        shared_agent, "update", db, "dog", records=[{"id": 1, "age": 4}, {"id": 404, "age": 1}]
    )
    assert answer == {
        "message": "updated 1 of 2 records",
        "update_hashes": [1],
        "skipped_hashes": [404],
    }
    after = _get(shared_agent, db, "dog", [1])[0]
    assert after["name"] == "Rex" and after["age"] == 4
    assert after["__createdtime__"] == before["__createdtime__"]
    assert after["__updatedtime__"] > before["__updatedtime__"]
    assert _get(shared_agent, db, "dog", [404]) == []


def test_update_without_primary_key_is_400(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": 1, "age": 3}])
    body = {
        "operation": "update",
        "database": db,
        "table": "dog",
        "records": [{"id": 1, "age": 5}, {"age": 9}],
    }
    error_of(shared_agent, body, 400, "record 1", "primary key 'id'")
    assert _get(shared_agent, db, "dog", [1])[0]["age"] == 3


def test_upsert_inserts_and_updates(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": 1, "name": "Rex", "age": 3}])
    answer = _write(
        shared_agent,
        "upsert",
        db,
        "dog",
        records=[{"id": 1, "age": 4}, {"id": 2, "name": "Penny"}, {"id": 3, "name": "Kato"}],
    )
    assert answer == {"message": "upserted 3 of 3 records", "upserted_hashes": [1, 2, 3]}
    rex, penny, kato = _get(shared_agent, db, "dog", [1, 2, 3])
    assert (rex["name"], rex["age"]) == ("Rex", 4)
    assert penny["name"] == "Penny" and kato["name"] == "Kato"


def test_upsert_without_primary_key_generates_one(shared_agent, db):
    make_table(shared_agent, db, "dog")
    answer = _write(shared_agent, "upsert", db, "dog", records=[{"name": "anon"}])
    (key,) = answer["upserted_hashes"]
    assert key is not None
    assert _get(shared_agent, db, "dog", [key])[0]["name"] == "anon"


def test_delete_lists_missing_ids_as_skipped(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": 1}, {"id": 2}, {"id": 3}])
    answer = _write(shared_agent, "delete", db, "dog", ids=[1, 3, 99])
    assert answer == {
        "message": "2 of 3 records successfully deleted",
        "deleted_hashes": [1, 3],
        "skipped_hashes": [99],
    }
    assert [r["id"] for r in _get(shared_agent, db, "dog", [1, 2, 3])] == [2]
    again = _write(shared_agent, "delete", db, "dog", ids=[1])
    assert again == {
        "message": "0 of 1 record successfully deleted",
        "deleted_hashes": [],
        "skipped_hashes": [1],
    }


def test_delete_hash_values_alias(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": "a"}])
    answer = _write(shared_agent, "delete", db, "dog", hash_values=["a"])
    assert answer["deleted_hashes"] == ["a"]


def test_deleted_record_can_be_inserted_again(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": 7, "v": 1}])
    _write(shared_agent, "delete", db, "dog", ids=[7])
    answer = _write(shared_agent, "insert", db, "dog", records=[{"id": 7, "v": 2}])
    assert answer["inserted_hashes"] == [7]
    assert _get(shared_agent, db, "dog", [7])[0]["v"] == 2
    assert _write(shared_agent, "update", db, "dog", records=[{"id": 7, "v": 3}])[
        "update_hashes"
    ] == [7]


def test_record_count_follows_writes(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": i} for i in range(10)])
    _write(shared_agent, "delete", db, "dog", ids=[0, 1, 2])
    described = shared_agent.op({"operation": "describe_table", "database": db, "table": "dog"})
    assert described["record_count"] == 7


def test_transaction_commits_every_part(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": 1, "name": "Rex"}])
    make_table(shared_agent, db, "owner")
    answer = shared_agent.op(
        {
            "operation": "transaction",
            "operations": [
                {"operation": "insert", "database": db, "table": "owner", "records": [{"id": "k"}]},
                {
                    "operation": "update",
                    "database": db,
                    "table": "dog",
                    "records": [{"id": 1, "owner": "k"}],
                },
                {"operation": "delete", "database": db, "table": "dog", "ids": [2]},
            ],
        }
    )
    assert answer["message"] == "transaction committed 3 operations"
    assert [r["message"] for r in answer["results"]] == [
        "inserted 1 of 1 record",
        "updated 1 of 1 record",
        "0 of 1 record successfully deleted",
    ]
    assert _get(shared_agent, db, "dog", [1])[0]["owner"] == "k"
    assert len(_get(shared_agent, db, "owner", ["k"])) == 1


def test_transaction_is_all_or_none(shared_agent, db):
    make_table(shared_agent, db, "dog", records=[{"id": 1, "name": "Rex"}])
    body = {
        "operation": "transaction",
        "operations": [
            {"operation": "insert", "database": db, "table": "dog", "records": [{"id": 2}]},
            {
                "operation": "update",
                "database": db,
                "table": "dog",
                "records": [{"id": 1, "name": "changed"}],
            },
            {
                "operation": "update",
                "database": db,
                "table": "dog",
                "records": [{"name": "no key"}],
            },
        ],
    }
    error_of(shared_agent, body, 400, "primary key 'id'")
    assert [r["name"] for r in _get(shared_agent, db, "dog", [1, 2])] == ["Rex"]


def test_transaction_validates_each_part(shared_agent, db):
    make_table(shared_agent, db, "dog")
    part = {"operation": "insert", "database": db, "table": "dog", "records": [{"id": 1}]}
    error_of(shared_agent, {"operation": "transaction", "operations": []}, 400, "operations")
    error_of(
        shared_agent, {"operation": "transaction", "operations": [part, "x"]}, 400, "operations[1]"
    )
    error_of(
        shared_agent,
        {
            "operation": "transaction",
            "operations": [part, {"operation": "drop_table", "database": db, "table": "dog"}],
        },
        400,
        "operations[1].operation",
    )
    error_of(
        shared_agent,
        {
            "operation": "transaction",
            "operations": [
                part,
                {"operation": "insert", "database": db, "table": "nosuch", "records": []},
            ],
        },
        404,
        f"Table '{db}.nosuch' does not exist",
    )
    error_of(
        shared_agent,
        {
            "operation": "transaction",
            "operations": [part, {"operation": "delete", "database": db, "table": "dog"}],
        },
        400,
        "operations[1]",
        "'ids'",
    )
    assert _get(shared_agent, db, "dog", [1]) == []


def test_transaction_across_databases_is_refused(shared_agent, db):
    make_table(shared_agent, db, "dog")
    make_table(shared_agent, f"{db}_b", "dog")
    body = {
        "operation": "transaction",
        "operations": [
            {"operation": "insert", "database": db, "table": "dog", "records": [{"id": 1}]},
            {"operation": "insert", "database": f"{db}_b", "table": "dog", "records": [{"id": 1}]},
        ],
    }
    error_of(shared_agent, body, 400, "one database")
    assert _get(shared_agent, db, "dog", [1]) == []


def test_concurrent_writes_all_land_and_bad_ones_leave_no_trace(shared_agent, db):
    make_table(shared_agent, db, "dog")

    def write(n: int):
        records = [{"id": n * 10 + i, "n": n} for i in range(10)]
        if n % 5 == 0:
            records[5] = {"id": [n]}  # a bad key: the whole request must be refused
        return n, shared_agent.request(
            {"operation": "insert", "database": db, "table": "dog", "records": records}
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(write, range(40)))
    for n, (status, answer) in results:
        if n % 5 == 0:
            assert status == 400, answer
        else:
            assert status == 200 and answer["message"] == "inserted 10 of 10 records", answer
    found = _get(shared_agent, db, "dog", list(range(400)), get_attributes=["id", "n"])
    assert sorted({r["n"] for r in found}) == [n for n in range(40) if n % 5]
    assert len(found) == 32 * 10
