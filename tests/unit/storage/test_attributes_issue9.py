"""Issue 9 in storage: 64-bit integers, names, forgotten and dropped attributes, replicated."""

from __future__ import annotations

import pytest
from test_apply import remote, txn

from agent import jsonx
from agent.core.changes import ATTRIBUTE, DELETE, DROP_ATTRIBUTE, PUT, Write
from agent.core.errors import RemoteProtocolError
from agent.core.validate import check_write, valid_name
from agent.errors import ClientError, NotFound
from agent.storage.catalog import Attribute, Staged, check_name
from agent.storage.writes import CreateAttribute, DropAttribute, ForgetAttributes, WriteOp


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",
        "9223372036854775808",
        "-9223372036854775809",
        '{"a": [1, 100000000000000000000]}',
    ],
)
def test_a_request_body_with_integers_outside_64_bits_is_refused_naming_them(text):
    with pytest.raises(ValueError, match=r"integer -?\d+ is outside the 64-bit range"):
        jsonx.loads_request(text)
    with pytest.raises(ValueError, match="64-bit range"):
        jsonx.loads_request(text.encode())


def test_a_deeply_nested_body_with_a_long_number_is_a_value_error_not_a_crash():
    # orjson takes 1,000 levels; the stdlib's exact re-check of the long number does not
    text = '{"n": 9223372036854775807, "x": ' + "[" * 1000 + "]" * 1000 + "}"
    with pytest.raises(ValueError, match="nested too deeply"):
        jsonx.loads_request(text)


@pytest.mark.parametrize(
    "text",
    [
        "9223372036854775807",
        "-9223372036854775808",
        '"123456789012345678901234"',
        "0.12345678901234567890123",
    ],
)
def test_loads_keeps_what_fits(text):
    assert jsonx.loads_request(text) == jsonx.loads(text.encode())


@pytest.mark.parametrize("name", ["x\n", "dog\n", "\ndog", "a b", ""])
def test_names_with_a_newline_are_invalid(name):
    assert not valid_name(name)
    with pytest.raises(ClientError):
        check_name("table", name)


def test_a_write_of_an_integer_sqlite_cannot_store_is_refused_naming_the_attribute(kit, db):
    kit.table(db, "dog")
    for value in (2**63, -(2**63) - 1, {"deep": [2**64]}):
        with pytest.raises(ClientError, match=r"attribute 'n' of record 1 holds -?\d+"):
            kit.insert(db, "dog", {"id": 1, "n": value})
    assert kit.docs(db, "dog") == {}
    kit.insert(db, "dog", {"id": 1, "n": 2**63 - 1})
    assert kit.docs(db, "dog")[1]["n"] == 2**63 - 1


def test_staged_add_and_forget_cancel_out_in_order():
    staged = Staged()
    first, second = Staged(), Staged()
    first.add("dog", [Attribute("a")])
    second.forget("dog", {"a"})
    staged.merge(first)
    staged.merge(second)
    assert staged.attributes["dog"] == [] and staged.forgotten["dog"] == {"a"}
    third = Staged()
    third.add("dog", [Attribute("a")])
    staged.merge(third)
    assert staged.forgotten["dog"] == set() and staged.attributes["dog"] == [Attribute("a")]


def _names(db, table="dog") -> set[str]:
    return set(db.catalog.require(table).attributes)


def test_forget_attributes_keeps_declared_keys_and_times(kit, db):
    kit.table(db, "dog")
    db.write_sync(CreateAttribute("dog", Attribute("kept"), kit.storage.clock, kit.origin))
    kit.insert(db, "dog", {"id": 1, "a": 1}, {"id": 2, "b": 2})
    kit.txn(db, WriteOp("delete", "dog", ids=[2]))
    # the delete's recount (database.Recounts) runs after commit; run one more to be sure
    assert db.write_sync(ForgetAttributes("dog")) == []
    assert _names(db) == {"id", "kept", "a", "__createdtime__", "__updatedtime__"}
    kit.txn(db, WriteOp("delete", "dog", ids=[1]))
    db.write_sync(ForgetAttributes("dog"))
    assert _names(db) == {"id", "kept", "__createdtime__", "__updatedtime__"}


def test_forgotten_attributes_stay_forgotten_after_reopening(make_kit, tmp_path):
    kit = make_kit()
    db = kit.db()
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1, "a": 1})
    kit.txn(db, WriteOp("delete", "dog", ids=[1]))
    db.write_sync(ForgetAttributes("dog"))
    kit.close()
    again = make_kit(path=kit.path)
    assert _names(again.db()) == {"id", "__createdtime__", "__updatedtime__"}


def test_drop_attribute_strips_values_logs_it_and_refuses_keys(kit, db):
    kit.table(db, "dog")
    kit.insert(db, "dog", {"id": 1, "a": 1, 'q"x': 2}, {"id": 2, "b": 2})
    assert db.write_sync(DropAttribute("dog", 'q"x', kit.storage.clock, kit.origin)) == 1
    assert kit.docs(db, "dog")[1].keys() == {"id", "a", "__createdtime__", "__updatedtime__"}
    assert kit.log(db)[-1][4] == [Write("dog", DROP_ATTRIBUTE, 'q"x', None)]
    assert 'q"x' not in _names(db)
    with pytest.raises(NotFound, match="does not exist"):
        db.write_sync(DropAttribute("dog", 'q"x', kit.storage.clock, kit.origin))
    for protected in ("id", "__createdtime__", "__updatedtime__"):
        with pytest.raises(ClientError, match="cannot drop"):
            db.write_sync(DropAttribute("dog", protected, kit.storage.clock, kit.origin))


def test_a_replicated_drop_attribute_strips_values_here(kit, db):
    kit.table(db, "dog")
    doc = '{"id": 1, "a": 1, "b": 2}'
    assert remote(kit, db, txn(1, Write("dog", ATTRIBUTE, "a", None), Write("dog", PUT, 1, doc)))
    assert {"a", "b"} <= _names(db)  # b only from the record: this node may have forgotten it
    assert remote(kit, db, txn(2, Write("dog", DROP_ATTRIBUTE, "a", None)))
    assert kit.docs(db, "dog")[1] == {"id": 1, "b": 2}
    assert "a" not in _names(db)
    assert remote(kit, db, txn(3, Write("dog", DELETE, 1, None)))
    db.write_sync(ForgetAttributes("dog"))
    assert "b" not in _names(db)


def test_peers_are_held_to_the_drop_attribute_shape():
    assert check_write("dog", DROP_ATTRIBUTE, "a", None).key == "a"
    for key, value in (("", None), ("a\x00", None), ("a", {"x": 1}), (None, None)):
        with pytest.raises(RemoteProtocolError):
            check_write("dog", DROP_ATTRIBUTE, key, value)
    with pytest.raises(RemoteProtocolError):
        check_write("dog", ATTRIBUTE, "a", {"type": None, "indexed": False, "declared": "yes"})
    with pytest.raises(RemoteProtocolError):
        check_write("dog\n", DROP_ATTRIBUTE, "a", None)
