"""Rendering into a fixed Console, as rich's own tests do."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console

from harperctl import render, render_records

DOG = {
    "schema": "dev",
    "name": "dog",
    "hash_attribute": "id",
    "record_count": 3,
    "attributes": [
        {"attribute": "id", "is_primary_key": True, "indexed": True},
        {"attribute": "name", "type": "String", "indexed": True},
        {"attribute": "age", "type": "Int"},
    ],
}


def console(**kwargs: Any) -> Console:
    return Console(width=100, file=io.StringIO(), color_system=None, **kwargs)


def console_of(width: int) -> Console:
    """Return a console `width` columns wide that records what is printed."""
    return Console(width=width, file=io.StringIO(), color_system=None)


def text(con: Console) -> str:
    return con.file.getvalue()  # type: ignore[attr-defined]


def header(output: str) -> list[str]:
    """Return the column names of the first table in `output`."""
    line = next(line for line in output.splitlines() if line.startswith("┃"))
    return [cell.strip() for cell in line.strip("┃").split("┃")]


def row(output: str, first: str) -> list[str]:
    """Return the cells of the row whose first cell is `first`."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if line.startswith("│") and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in\n{output}")


def test_record_columns_primary_key_first_timestamps_last() -> None:
    records = [
        {"__updatedtime__": 2, "name": "Penny", "dog_id": 1, "__createdtime__": 1},
        {"age": 5, "dog_id": 2, "owner": None},
    ]
    assert render.record_columns(records, "dog_id") == [
        "dog_id",
        "name",
        "age",
        "owner",
        "__createdtime__",
        "__updatedtime__",
    ]


def test_record_columns_guess_id_without_a_primary_key() -> None:
    assert render.record_columns([{"name": "x", "id": 1}]) == ["id", "name"]
    assert render.record_columns([{"name": "x"}]) == ["name"]


def test_records_table() -> None:
    con = console()
    render.print_records(
        con,
        [
            {"name": "Penny", "__createdtime__": 1700000000000, "id": 1, "age": 5},
            {"id": 2, "name": "Kato", "owner": None, "tags": ["a", "b"], "good": True},
        ],
    )
    out = text(con)
    assert header(out) == ["id", "name", "age", "owner", "tags", "good", "__createdtime__"]
    assert row(out, "1") == ["1", "Penny", "5", "", "", "", "2023-11-14T22:13:20.000Z"]
    assert row(out, "2") == ["2", "Kato", "", "null", '["a", "b"]', "true", ""]
    assert "2 records" in out


def test_record_values_are_not_markup() -> None:
    con = console()
    render.print_records(con, [{"id": 1, "name": "[bold]Kato[/bold]"}])
    assert "[bold]Kato[/bold]" in text(con)


def test_no_records() -> None:
    con = console()
    render.print_records(con, [])
    assert text(con) == "no records\n"


def test_print_answer_picks_table_message_or_json() -> None:
    con = console()
    render.print_answer(con, [{"id": 1}])
    render.print_answer(con, {"message": "1 of 1 record successfully deleted"})
    render.print_answer(con, [1, 2])
    out = text(con)
    assert "1 record" in out and "1 of 1 record successfully deleted\n" in out
    assert out.endswith("[\n  1,\n  2\n]\n")


def test_print_databases() -> None:
    con = console()
    render.print_databases(
        con, {"system": {}, "dev": {"dog": {"record_count": 3}, "cat": {"record_count": 2}}}
    )
    out = text(con)
    assert header(out) == ["database", "tables", "records"]
    assert row(out, "dev") == ["dev", "2", "5"]
    assert row(out, "system") == ["system", "0", "0"]
    assert out.index("dev") < out.index("system")
    assert "2 databases" in out


def test_print_tables() -> None:
    con = console()
    render.print_tables(con, {"dev": {"dog": DOG}, "empty": {}})
    out = text(con)
    assert header(out) == ["database", "table", "primary key", "attributes", "records"]
    assert row(out, "dev") == ["dev", "dog", "id", "3", "3"]
    assert "1 table" in out


def test_print_tables_when_there_are_none() -> None:
    con = console()
    render.print_tables(con, {"dev": {}})
    assert text(con) == "no tables\n"


def test_print_table_description() -> None:
    con = console()
    render.print_table_description(con, DOG)
    out = text(con)
    assert "table        dev.dog" in out and "primary key  id" in out and "records      3" in out
    assert header(out) == ["attribute", "type", "indexed", "primary key"]
    assert row(out, "id") == ["id", "", "yes", "yes"]
    assert row(out, "name") == ["name", "String", "yes", ""]
    assert row(out, "age") == ["age", "Int", "", ""]


def test_print_users() -> None:
    con = console()
    render.print_users(
        con,
        [
            {
                "username": "admin",
                "active": True,
                "role": {"role": "super_user", "permission": {"super_user": True}},
            },
            {"username": "ann", "active": False, "role": "developer"},
        ],
    )
    out = text(con)
    assert header(out) == ["username", "role", "super user", "active"]
    assert row(out, "admin") == ["admin", "super_user", "yes", "yes"]
    assert row(out, "ann") == ["ann", "developer", "", "no"]


def test_print_roles() -> None:
    con = console()
    render.print_roles(
        con,
        [
            {
                "id": "r1",
                "role": "developer",
                "permission": {"super_user": False, "dev": {"tables": {}}, "app": {"tables": {}}},
            }
        ],
    )
    assert row(text(con), "developer") == ["developer", "r1", "", "app, dev"]


def test_print_user_info_flattens_the_role_and_hides_a_password() -> None:
    con = console()
    render.print_user_info(
        con,
        {
            "username": "admin",
            "active": True,
            "password": "hash",
            "role": {"role": "super_user", "permission": {"super_user": True}},
        },
    )
    out = text(con)
    assert "hash" not in out
    assert row(out, "role") == ["role", "super_user"]
    assert row(out, "super_user") == ["super_user", "true"]


def test_print_tokens_does_not_wrap() -> None:
    con = console()
    token = "a" * 150
    render.print_tokens(con, {"operation_token": token, "refresh_token": "r"})
    assert text(con) == f"operation_token: {token}\nrefresh_token: r\n"


def test_print_message() -> None:
    con = console()
    render.print_message(con, {"message": "database 'dev' successfully created"})
    render.print_message(con, {"operation_token": "x"})
    out = text(con)
    assert out.startswith("database 'dev' successfully created\n")
    assert row(out, "operation_token") == ["operation_token", "x"]


def test_progress_bar_draws_on_a_terminal_console() -> None:
    con = console(force_terminal=True)
    with render.progress_bar(10, "insert dev.dog", console=con) as advance:
        advance(4)
        advance(6)
    assert "insert dev.dog" in text(con)


def test_progress_bar_is_silent_when_stderr_is_not_a_terminal(capsys: Any) -> None:
    with render.progress_bar(10, "insert dev.dog") as advance:
        advance(10)
    assert capsys.readouterr() == ("", "")


# --- records on narrow and wide terminals ------------------------------------------------------

NOTE = "a fairly long note that has to fold somewhere on a narrow terminal, and does so"
DOGS = [
    {
        "id": n,
        "name": "Penny" if n == 1 else f"dog {n}",
        "breed": "terrier",
        "age": n % 17,
        "notes": NOTE,
        "__createdtime__": 1700000000000,
        "__updatedtime__": 1700000000000,
    }
    for n in range(1, 4)
]


def folded_header(output: str) -> list[str]:
    """Return the column names of the first table, joining the lines of folded names."""
    lines = [line for line in output.split("┡")[0].splitlines() if line.startswith("┃")]
    parts = [[cell.strip() for cell in line.strip("┃").split("┃")] for line in lines]
    return ["".join(column) for column in zip(*parts, strict=True)]


def segment_widths(output: str) -> list[int]:
    """Return the inner width of each column, read from the table's top border."""
    top = next(line for line in output.splitlines() if line.startswith("┏"))
    return [len(part) - 2 for part in top.strip("┏┓").split("┳")]


def test_fit_widths_folds_the_widest_columns_first() -> None:
    assert render_records.fit_widths([2, 5, 7], 80) == [2, 5, 7]
    widths = render_records.fit_widths([2, 5, 136, 24, 24], 80)
    assert widths is not None and sum(widths) + 3 * 5 + 1 == 80
    assert widths[:2] == [2, 5] and widths[2] >= widths[3] >= render_records.MIN_WIDTH
    assert render_records.fit_widths([30] * 7, 80) is None


@pytest.mark.parametrize("width", [80, 200])
def test_records_fit_the_width_and_no_column_is_squeezed(width: int) -> None:
    con = console_of(width)
    render.print_records(con, DOGS)
    out = text(con)
    assert all(len(line) <= width for line in out.splitlines())
    assert folded_header(out) == list(DOGS[0])
    widths = segment_widths(out)
    assert widths[:4] == [2, 5, 7, 3]  # short columns keep their whole width ("Penny" intact)
    assert min(widths[4:]) >= render_records.MIN_WIDTH  # long ones fold, never to nothing
    assert row(out, "1")[1] == "Penny"
    rows = [line for line in out.splitlines() if line.startswith("│")]
    if width == 200:  # everything fits: one line per record, nothing folded
        assert len(rows) == 3 and all(NOTE in line for line in rows)
    else:  # the notes and the times fold, every character still there
        assert len(rows) > 3 and NOTE not in out
        notes = "".join(line.split("│")[5].strip() + " " for line in rows[: len(rows) // 3])
        assert " ".join(notes.split()) == NOTE


def test_records_too_wide_for_a_table_print_one_block_each() -> None:
    con = console_of(80)
    wide = [{f"attribute_{n}": f"value {n}" for n in range(12)} | {"id": 1, "name": "Penny"}]
    render.print_records(con, wide)
    out = text(con)
    assert "┃" not in out and "│" not in out
    assert out.splitlines()[0].startswith("record 1 ──")
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert "name Penny" in lines and "attribute_11 value 11" in lines
    assert out.rstrip().endswith("1 record")
    assert all(len(line) <= 80 for line in out.splitlines())


def test_long_answers_print_a_table_per_thousand_records_with_the_same_columns() -> None:
    con = console_of(120)
    render.print_records(con, [{"id": n, "name": f"dog {n}"} for n in range(2500)])
    out = text(con)
    captions = [line.strip() for line in out.splitlines() if line.strip().startswith("records")]
    assert captions == ["records 1-1000", "records 1001-2000", "records 2001-2500"]
    assert out.rstrip().endswith("of 2500")  # the narrow table's caption wraps
    assert len(re.findall(r"┃ id +┃ name +┃", out)) == 3
