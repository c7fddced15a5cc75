"""Output for pipes: TSV cells and lines, JSON lines, record sinks, the plain console."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from rich.console import Group
from rich.table import Table
from rich.text import Text

from harperctl import plain, render
from harperctl.render_plain import PlainConsole


def unescape(cell: str) -> str:
    """Undo plain.escape (the reader's side of the TSV contract)."""
    out, chars = [], iter(cell)
    for char in chars:
        if char == "\\":
            out.append({"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[next(chars)])
        else:
            out.append(char)
    return "".join(out)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        ("Penny", "Penny"),
        ("a\tb\nc\\d\re", "a\\tb\\nc\\\\d\\re"),
        (True, "true"),
        (False, "false"),
        (5, "5"),
        (2.5, "2.5"),
        (1796585613742.8623, "1796585613742.8623"),
        ({"a": [1, "x y"]}, '{"a":[1,"x y"]}'),
        (["tab\there"], '["tab\\\\there"]'),
        ("Pénélope 🐕", "Pénélope 🐕"),
    ],
)
def test_tsv_value(value: Any, cell: str) -> None:
    assert plain.tsv_value(value) == cell
    assert "\t" not in cell and "\n" not in cell


def test_escaping_round_trips() -> None:
    text = "back\\slash\ttab\nnewline\r\\n literal"
    assert unescape(plain.escape(text)) == text


def test_jsonl_lines() -> None:
    assert plain.jsonl_lines([{"id": 1}, {"name": "Pé\nx"}]) == '{"id":1}\n{"name":"Pé\\nx"}\n'
    assert plain.jsonl_lines({"message": "ok"}) == '{"message":"ok"}\n'


def collect() -> tuple[list[str], list[str], Any, Any]:
    """Return (stdout pieces, stderr lines, write, warn) for a sink."""
    out: list[str] = []
    err: list[str] = []
    return out, err, out.append, err.append


def test_tsv_sink_writes_a_header_then_one_line_per_record() -> None:
    out, err, write, warn = collect()
    sink = plain.TsvSink(write, warn)
    sink.add([{"name": "Penny\tP", "id": 1, "__createdtime__": 5, "owner": None}])
    sink.add([{"id": 2, "name": "Kato\nK", "tags": ["a"]}])
    sink.close()
    assert "".join(out).splitlines() == [
        "id\tname\towner\ttags\t__createdtime__",
        "1\tPenny\\tP\t\t\t5",
        '2\tKato\\nK\t\t["a"]\t',
    ]
    assert err == []


def test_attributes_that_appear_after_the_first_chunk_are_named_on_stderr() -> None:
    out, err, write, warn = collect()
    sink = plain.TsvSink(write, warn)
    sink.add([{"id": n} for n in range(plain.FIRST_CHUNK)])
    sink.add([{"id": "late", "tags": ["a"], "age": 3}, {"id": "later", "age": 4}])
    sink.close()
    assert "".join(out).splitlines()[-2:] == ["late", "later"]
    assert err == [
        "harperctl: warning: attributes that first appear after record 1000 are not shown: "
        "tags, age (-o jsonl or --json shows every attribute)"
    ]


def test_tsv_sink_holds_the_first_chunk_for_the_columns_then_streams() -> None:
    out, err, write, warn = collect()
    sink = plain.TsvSink(write, warn)
    sink.add([{"id": n} for n in range(plain.FIRST_CHUNK - 1)])
    assert out == []
    sink.add([{"id": "last of the first chunk", "age": 3}])
    assert "".join(out).splitlines()[0] == "id\tage"
    written = len(out)
    sink.add([{"id": "next"}])
    assert len(out) == written + 1 and out[-1] == "next\t\n"
    sink.close()
    assert err == [] and sink.count == plain.FIRST_CHUNK + 1


def test_tsv_sink_prints_nothing_for_no_records() -> None:
    out, err, write, warn = collect()
    sink = plain.TsvSink(write, warn)
    sink.add([])
    sink.close()
    assert out == [] and err == []


def test_jsonl_sink_writes_every_attribute_at_once() -> None:
    out, err, write, warn = collect()
    sink = plain.JsonlSink(write, warn)
    sink.add([{"id": 1}])
    assert out == ['{"id":1}\n']
    sink.add([{"id": 2, "late": True}])
    sink.close()
    assert [json.loads(line) for line in "".join(out).splitlines()] == [
        {"id": 1},
        {"id": 2, "late": True},
    ]
    assert err == []


def plain_console() -> tuple[PlainConsole, io.StringIO]:
    """Return a PlainConsole writing into a buffer."""
    buffer = io.StringIO()
    console = PlainConsole()
    console.file = buffer
    return console, buffer


def test_plain_console_prints_tables_as_tsv_without_drawing() -> None:
    console, buffer = plain_console()
    table = Table(title="database dev", caption="2 users")
    table.add_column("user\nname")
    table.add_column("note")
    table.add_row(Text("admin"), "a\tb")
    table.add_row("ann", Text("x" * 300))
    console.print(table)
    assert buffer.getvalue() == f"database dev\nuser name\tnote\nadmin\ta\\tb\nann\t{'x' * 300}\n"


def test_plain_console_text_is_one_line_and_groups_print_in_order() -> None:
    console, buffer = plain_console()
    long = "inserted 2 of 2 records; " * 20
    console.print(Text(long))
    grid = Table.grid()
    grid.add_column()
    grid.add_column()
    grid.add_row("table", Text("dev.dog"))
    console.print(Group(Text("head"), grid))
    console.print()
    assert buffer.getvalue() == f"{long}\nhead\ntable\tdev.dog\n\n"
    assert not console.is_terminal


def test_render_functions_on_the_plain_console() -> None:
    console, buffer = plain_console()
    render.print_users(
        console,
        [
            {"username": "admin", "active": True, "role": {"role": "super_user"}},
            {"username": "ann", "active": False, "role": "developer"},
        ],
    )
    assert buffer.getvalue().splitlines() == [
        "username\trole\tsuper user\tactive",
        "admin\tsuper_user\t\tyes",
        "ann\tdeveloper\t\tno",
    ]
