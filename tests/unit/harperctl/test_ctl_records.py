"""Record files (array, object, NDJSON), batching, summaries and id coercion."""

from __future__ import annotations

import pytest

from harperctl.errors import UsageError
from harperctl.records import batches, coerce_ids, parse_records, summarize, written_count


def test_parse_a_json_array() -> None:
    assert parse_records('[{"id": 1}, {"id": 2}]') == [{"id": 1}, {"id": 2}]


def test_parse_a_single_object_over_several_lines() -> None:
    assert parse_records('{\n  "id": 1,\n  "name": "Penny"\n}\n') == [{"id": 1, "name": "Penny"}]


def test_parse_ndjson_skipping_blank_lines() -> None:
    text = '{"id": 1}\n\n{"id": 2}\n{"id": 3}\n'
    assert parse_records(text) == [{"id": 1}, {"id": 2}, {"id": 3}]


def test_a_bad_ndjson_line_names_its_number() -> None:
    text = '{"id": 1}\n{"id": 2}\n{"id": 3,}\n{"id": 4}\n'
    with pytest.raises(UsageError, match=r"^dogs.ndjson: line 3: invalid JSON") as caught:
        parse_records(text, "dogs.ndjson")
    assert caught.value.exit_code == 2


def test_an_ndjson_line_that_is_not_an_object_names_its_number() -> None:
    with pytest.raises(UsageError, match="line 2: expected an object, got an array"):
        parse_records('{"id": 1}\n[1, 2]\n')


def test_a_bad_array_names_the_line() -> None:
    with pytest.raises(UsageError, match="line 3: invalid JSON"):
        parse_records('[\n {"id": 1},\n {"id": 2,,},\n {"id": 3}\n]\n')


def test_an_array_of_non_objects_names_the_record() -> None:
    with pytest.raises(UsageError, match="record 2 is a number, not an object"):
        parse_records('[{"id": 1}, 5]')


@pytest.mark.parametrize("text", ["", "   \n", '"text"', "42"])
def test_no_records_or_not_objects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_records(text)


def test_batches_cut_in_order() -> None:
    records = [{"id": n} for n in range(5)]
    assert [len(b) for b in batches(records, 2)] == [2, 2, 1]
    assert [r["id"] for b in batches(records, 2) for r in b] == [0, 1, 2, 3, 4]
    with pytest.raises(UsageError):
        list(batches(records, 0))


def test_summarize_sums_insert_batches() -> None:
    results = [
        (
            1000,
            {
                "message": "inserted 1000 of 1000 records",
                "inserted_hashes": list(range(1000)),
                "skipped_hashes": [],
            },
        ),
        (
            1000,
            {
                "message": "inserted 998 of 1000 records",
                "inserted_hashes": list(range(998)),
                "skipped_hashes": [1, 2],
            },
        ),
        (
            500,
            {
                "message": "inserted 500 of 500 records",
                "inserted_hashes": list(range(500)),
                "skipped_hashes": [],
            },
        ),
    ]
    assert summarize("insert", results) == "inserted 2498 of 2500 records; skipped 2"


def test_summarize_upsert_has_no_skipped() -> None:
    results = [(3, {"message": "upserted 3 of 3 records", "upserted_hashes": [1, 2, 3]})]
    assert summarize("upsert", results) == "upserted 3 of 3 records"


def test_summarize_update_uses_update_hashes() -> None:
    results = [
        (2, {"message": "updated 1 of 2 records", "update_hashes": [1], "skipped_hashes": [9]})
    ]
    assert summarize("update", results) == "updated 1 of 2 records; skipped 1"
    assert summarize("update", [(1, {"update_hashes": [1], "skipped_hashes": []})]) == (
        "updated 1 of 1 record; skipped 0"
    )


def test_written_count_falls_back_to_the_message() -> None:
    assert written_count("insert", {"message": "inserted 7 of 9 records"}, 9) == 7
    assert written_count("insert", {"message": "done"}, 9) == 9
    assert written_count("insert", "weird", 9) == 0


@pytest.mark.parametrize(
    ("raw", "mode", "expected"),
    [
        (["1", "22", "-3", "dog", "007", "1.5"], None, [1, 22, -3, "dog", "007", "1.5"]),
        (["1", "007"], "int", [1, 7]),
        (["1", "dog"], "string", ["1", "dog"]),
    ],
)
def test_coerce_ids(raw: list[str], mode: str | None, expected: list) -> None:
    assert coerce_ids(raw, mode) == expected


def test_int_ids_refuse_text() -> None:
    with pytest.raises(UsageError, match="'dog' is not an integer"):
        coerce_ids(["1", "dog"], "int")
