"""insert, upsert, update, delete and get: bodies, batching, output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harperctl import render, terminal


def insert_answer(ids: list[Any], skipped: list[Any] | None = None) -> dict[str, Any]:
    skipped = skipped or []
    return {
        "message": f"inserted {len(ids)} of {len(ids) + len(skipped)} records",
        "inserted_hashes": ids,
        "skipped_hashes": skipped,
    }


def test_insert_from_a_file(run: Any, fake: Any, tmp_path: Path) -> None:
    path = tmp_path / "dogs.json"
    path.write_text('[{"id": 1, "name": "Penny"}, {"id": 2, "name": "Kato"}]')
    fake.reply(insert_answer([1, 2]))
    outcome = run("insert", "dev.dog", str(path))
    assert outcome.code == 0, outcome.stderr
    assert fake.bodies == [
        {
            "operation": "insert",
            "database": "dev",
            "table": "dog",
            "records": [{"id": 1, "name": "Penny"}, {"id": 2, "name": "Kato"}],
        }
    ]
    assert outcome.stdout == "inserted 2 of 2 records; skipped 0\n"


@pytest.mark.parametrize("operation", ["insert", "upsert", "update"])
def test_write_from_stdin_json_output(run: Any, fake: Any, operation: str) -> None:
    canned = {"message": f"{operation}ed 1 of 1 records", "skipped_hashes": []}
    fake.reply(canned)
    outcome = run("--json", operation, "dev.dog", "-", input='{"id": 1}\n')
    assert fake.last == {
        "operation": operation,
        "database": "dev",
        "table": "dog",
        "records": [{"id": 1}],
    }
    assert json.loads(outcome.stdout) == canned


def test_stdin_is_the_default_source(run: Any, fake: Any) -> None:
    fake.reply({"message": "upserted 2 of 2 records", "upserted_hashes": [1, 2]})
    outcome = run("upsert", "dev.dog", input='{"id": 1}\n{"id": 2}\n')
    assert fake.last["records"] == [{"id": 1}, {"id": 2}]
    assert outcome.stdout == "upserted 2 of 2 records\n"


def test_update_summary(run: Any, fake: Any) -> None:
    fake.reply({"message": "updated 1 of 2 records", "update_hashes": [1], "skipped_hashes": [3]})
    outcome = run("update", "dev.dog", input='[{"id": 1, "age": 6}, {"id": 3, "age": 1}]')
    assert outcome.stdout == "updated 1 of 2 records; skipped 1\n"


def test_batches_sum_and_json_merges_them_into_one_answer(run: Any, fake: Any) -> None:
    records = "\n".join(json.dumps({"id": n}) for n in range(2500))
    answers = [
        insert_answer(list(range(1000))),
        insert_answer(list(range(999)), [5]),
        insert_answer(list(range(500))),
    ]
    for answer in answers * 2:
        fake.reply(answer)
    human = run("insert", "dev.dog", "--batch-size", "1000", input=records)
    assert human.stdout == "inserted 2499 of 2500 records; skipped 1\n"
    assert [len(body["records"]) for body in fake.bodies] == [1000, 1000, 500]
    assert [r["id"] for body in fake.bodies for r in body["records"]] == list(range(2500))
    as_json = run("insert", "dev.dog", "--batch-size", "1000", "--json", input=records)
    assert json.loads(as_json.stdout) == {
        "message": "inserted 2499 of 2500 records",
        "inserted_hashes": list(range(1000)) + list(range(999)) + list(range(500)),
        "skipped_hashes": [5],
    }


def test_one_batch_json_is_the_agents_answer_and_several_have_its_shape(
    run: Any, fake: Any
) -> None:
    one = {"message": "upserted 2 of 2 records", "upserted_hashes": [1, 2]}
    fake.reply(one)
    assert json.loads(run("--json", "upsert", "dev.dog", input="[{}, {}]").stdout) == one
    fake.reply({"message": "upserted 1 of 1 record", "upserted_hashes": [1]})
    fake.reply({"message": "upserted 1 of 1 record", "upserted_hashes": [2]})
    several = run("--json", "upsert", "dev.dog", "--batch-size", "1", input="[{}, {}]")
    assert json.loads(several.stdout) == one


def test_write_help_says_upsert_merges_and_json_is_one_object(run: Any) -> None:
    upsert = " ".join(run("upsert", "--help").stdout.split())
    assert "merged into the stored one" in upsert and "replaced" not in upsert
    assert "one JSON object however many batches" in upsert


def test_a_failing_batch_says_how_far_it_got(run: Any, fake: Any) -> None:
    fake.reply(insert_answer([0, 1]))
    fake.reply({"error": "database 'dev' does not exist"}, status=400)
    outcome = run("insert", "dev.dog", "--batch-size", "2", input="[{}, {}, {}, {}, {}]")
    assert outcome.code == 1 and len(fake.sent) == 2
    assert outcome.stderr == (
        "harperctl: batch 2 of 3 failed (2 records sent before it): database 'dev' does not exist\n"
    )


def test_a_bad_line_is_reported_before_anything_is_sent(run: Any, fake: Any) -> None:
    outcome = run("insert", "dev.dog", input='{"id": 1}\n{"id": 2}\nnot json\n')
    assert outcome.code == 2 and "<stdin>: line 3: invalid JSON" in outcome.stderr
    assert fake.sent == []


def test_a_missing_file_is_a_usage_error(run: Any, fake: Any, tmp_path: Path) -> None:
    outcome = run("insert", "dev.dog", str(tmp_path / "nope.json"))
    assert outcome.code == 2 and "cannot read" in outcome.stderr and fake.sent == []


def test_stdin_on_a_terminal_is_refused(run: Any, fake: Any, on_terminal: None) -> None:
    outcome = run("insert", "dev.dog")
    assert outcome.code == 2 and "stdin is a terminal" in outcome.stderr and fake.sent == []


def test_progress_bar_only_for_several_batches_on_a_terminal(
    run: Any, fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(terminal, "stderr_is_terminal", lambda: True)
    shown: list[tuple[int, str]] = []
    real = render.progress_bar

    def spy(total: int, label: str, console: Any = None) -> Any:
        shown.append((total, label))
        return real(total, label, console)

    monkeypatch.setattr(render, "progress_bar", spy)
    fake.reply(insert_answer([1]))
    run("insert", "dev.dog", input='{"id": 1}')
    fake.reply(insert_answer([1]))
    fake.reply(insert_answer([2]))
    run("insert", "dev.dog", "--batch-size", "1", input='{"id": 1}\n{"id": 2}')
    assert shown == [(2, "insert dev.dog")]


@pytest.mark.parametrize(
    ("flags", "ids"),
    [([], [1, "dog", "007"]), (["--string-ids"], ["1", "dog", "007"])],
)
def test_delete(run: Any, fake: Any, flags: list[str], ids: list[Any]) -> None:
    canned = {
        "message": "3 of 3 records successfully deleted",
        "deleted_hashes": ids,
        "skipped_hashes": [],
    }
    fake.reply(canned)
    outcome = run("delete", "dev.dog", "1", "dog", "007", *flags)
    assert fake.last == {"operation": "delete", "database": "dev", "table": "dog", "ids": ids}
    assert outcome.stdout == "3 of 3 records successfully deleted\n"


def test_delete_int_ids(run: Any, fake: Any) -> None:
    fake.reply({"message": "ok"})
    run("delete", "dev.dog", "007", "--int-ids")
    assert fake.last["ids"] == [7]
    outcome = run("delete", "dev.dog", "dog", "--int-ids")
    assert outcome.code == 2 and len(fake.sent) == 1


def test_delete_needs_ids(run: Any, fake: Any) -> None:
    assert run("delete", "dev.dog").code == 2 and fake.sent == []


def test_get(run: Any, fake: Any) -> None:
    records = [{"id": 1, "name": "Penny", "__createdtime__": 0, "__updatedtime__": 0}]
    fake.reply(records)
    outcome = run("get", "dev.dog", "1", "2")
    assert fake.last == {
        "operation": "search_by_id",
        "database": "dev",
        "table": "dog",
        "ids": [1, 2],
        "get_attributes": ["*"],
    }
    assert "│ 1  │ Penny │ 1970-01-01T00:00:00.000Z │" in outcome.stdout
    fake.reply(records)
    as_json = run("--json", "get", "dev.dog", "1", "--attributes", "id,name")
    assert fake.last["get_attributes"] == ["id", "name"]
    assert json.loads(as_json.stdout) == records


def test_delete_of_ids_that_are_not_there_names_them_and_exits_1(run: Any, fake: Any) -> None:
    fake.reply(
        {
            "message": "1 of 3 records successfully deleted",
            "deleted_hashes": [1],
            "skipped_hashes": [5, "x"],
        }
    )
    outcome = run("delete", "dev.dog", "1", "5", "x")
    assert outcome.code == 1
    assert outcome.stdout == "1 of 3 records successfully deleted\n"
    assert outcome.stderr == "harperctl: 2 of 3 ids not found in dev.dog: 5, x\n"


def test_delete_missing_ids_from_a_harperdb_style_answer(run: Any, fake: Any) -> None:
    fake.reply({"message": "1 of 2 records successfully deleted", "deleted_hashes": [1]})
    outcome = run("--json", "delete", "dev.dog", "1", "2")
    assert outcome.code == 1 and json.loads(outcome.stdout)["deleted_hashes"] == [1]
    assert outcome.stderr == "harperctl: 1 of 2 ids not found in dev.dog: 2\n"
