"""Attribute permissions and the system-table write rule, as pure logic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import Forbidden
from agent.ops.permissions import (
    SYSTEM_TABLE_OPERATIONS,
    AttributeGuard,
    AttributeRules,
    Permissions,
    check_system_write,
)

FULL = {"read": True, "insert": True, "update": True, "delete": True}


def _attr(name: str, read: bool = False, insert: bool = False, update: bool = False) -> dict:
    return {"attribute_name": name, "read": read, "insert": insert, "update": update}


def _perms(tables: dict, super_user: bool = False) -> Permissions:
    permission = {"super_user": super_user, "dev": {"tables": tables}}
    return Permissions.from_role({"id": "r", "role": "r", "permission": permission})


def _rules(attributes: list, **table: bool) -> AttributeRules:
    rules = _perms({"dog": {**FULL, **table, "attribute_permissions": attributes}})
    found = rules.attribute_rules("dev", "dog")
    assert found is not None
    return found


@pytest.mark.parametrize("attributes", [None, []])
def test_no_listed_attribute_means_every_attribute_follows_the_table(attributes) -> None:
    grant = dict(FULL) if attributes is None else {**FULL, "attribute_permissions": attributes}
    perms = _perms({"dog": grant})
    assert perms.attribute_rules("dev", "dog") is None
    assert perms.attributes == {}  # nothing to consult on the hot path


def test_super_user_has_no_rules_whatever_its_document_lists() -> None:
    perms = _perms({"dog": {**FULL, "attribute_permissions": [_attr("x")]}}, super_user=True)
    assert perms.attribute_rules("dev", "dog") is None


def test_rules_only_for_the_tables_that_list_attributes() -> None:
    perms = _perms({"dog": {**FULL, "attribute_permissions": [_attr("x")]}, "cat": FULL})
    assert perms.attribute_rules("dev", "dog") is not None
    assert perms.attribute_rules("dev", "cat") is None
    assert perms.attribute_rules("other", "dog") is None


RULES = [
    _attr("name", read=True, insert=True, update=True),
    _attr("note", read=True),
    _attr("tag", read=True, insert=True),
    _attr("secret"),
]


@pytest.mark.parametrize(
    ("attribute", "action", "expected"),
    [
        ("name", "read", True),
        ("name", "update", True),
        ("note", "read", True),
        ("note", "insert", False),
        ("note", "update", False),
        ("tag", "insert", True),
        ("tag", "update", False),
        ("secret", "read", False),
        ("secret", "insert", False),
        ("unlisted", "read", False),  # HarperDB: a non-empty list locks every other attribute
        ("unlisted", "insert", False),
        ("id", "read", True),  # the key is readable with the table
        ("id", "insert", True),  # and gets what any listed attribute has
        ("id", "update", True),
        ("__createdtime__", "read", False),  # unlisted, so not readable
        ("__createdtime__", "insert", True),  # the writer stamps it: never refused on writes
        ("__updatedtime__", "update", True),
    ],
)
def test_listed_unlisted_key_and_timestamps(attribute: str, action: str, expected: bool) -> None:
    assert _rules(RULES).allows(attribute, action, "id") is expected


def test_key_takes_only_what_listed_attributes_have() -> None:
    rules = _rules([_attr("name", read=True), _attr("secret")])
    assert rules.allows("id", "read", "id")
    assert not rules.allows("id", "insert", "id")
    assert not rules.allows("id", "update", "id")


def test_a_listed_key_keeps_its_own_writes_but_stays_readable() -> None:
    rules = _rules([_attr("id", read=False, insert=True), _attr("name", read=True, update=True)])
    assert rules.allows("id", "read", "id")
    assert rules.allows("id", "insert", "id")
    assert not rules.allows("id", "update", "id")


def test_the_key_is_not_readable_without_table_read() -> None:
    rules = _rules([_attr("name", insert=True)], read=False)
    assert not rules.allows("id", "read", "id")
    assert rules.allows("id", "insert", "id")


def test_attribute_grants_never_exceed_the_table() -> None:
    # add_role refuses this; a row that skipped validation must still not widen the table
    rules = _rules([_attr("name", read=True, insert=True, update=True)], update=False)
    assert rules.allows("name", "insert", "id")
    assert not rules.allows("name", "update", "id")
    assert not rules.allows("id", "update", "id")


def test_a_listed_timestamp_may_be_read() -> None:
    rules = _rules([_attr("__updatedtime__", read=True, insert=True)])
    assert rules.allows("__updatedtime__", "read", "id")
    assert not rules.allows("__createdtime__", "read", "id")
    assert not rules.allows("id", "insert", "id")  # a timestamp's insert grants the key nothing


def test_junk_entries_grant_nothing_but_still_lock_the_rest() -> None:
    rules = _rules(["name", {"read": True}, _attr("note", read=True)])
    assert rules.allows("note", "read", "id")
    assert not rules.allows("name", "read", "id")


def test_refused_is_sorted_and_unique_readable_keeps_order() -> None:
    rules = _rules(RULES)
    names = ["secret", "name", "zz", "secret", "id", "note"]
    assert rules.refused(names, "read", "id") == ["secret", "zz"]
    assert rules.readable(names, "id") == ["name", "id", "note"]


def test_guard_names_every_refused_attribute() -> None:
    guard = AttributeGuard(_rules(RULES), "id", "alice", "dev.dog")
    guard.require("read", ["id", "name"])
    guard.require("update", [])
    with pytest.raises(Forbidden) as caught:
        guard.require("update", ["name", "tag", "secret"])
    assert caught.value.status == 403
    message = caught.value.message
    assert "'secret', 'tag'" in message and "update" in message and "dev.dog" in message
    assert "alice" in message and "'name'" not in message
    with pytest.raises(Forbidden, match="attribute 'secret' of"):
        guard.require("read", ["secret"])


names_strategy = st.lists(st.sampled_from(["id", "name", "note", "tag", "secret", "x", "y"]))
entries_strategy = st.lists(
    st.builds(
        _attr,
        st.sampled_from(["id", "name", "note", "secret", "__createdtime__"]),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    min_size=1,
)


@given(entries_strategy, names_strategy, st.sampled_from(["read", "insert", "update"]))
def test_refused_and_allowed_partition_the_names(entries, names, action) -> None:
    rules = _rules(entries)
    refused = set(rules.refused(names, action, "id"))
    allowed = {n for n in names if rules.allows(n, action, "id")}
    assert refused | allowed == set(names) and not refused & allowed
    if action == "read":
        assert rules.readable(names, "id") == [n for n in names if n in allowed]
    assert "id" in allowed or "id" not in names or action != "read"


@pytest.mark.parametrize("table", sorted(SYSTEM_TABLE_OPERATIONS))
def test_system_tables_name_the_operations_that_write_them(table: str) -> None:
    with pytest.raises(Forbidden) as caught:
        check_system_write("system", table)
    assert f"system.{table}" in caught.value.message
    assert SYSTEM_TABLE_OPERATIONS[table] in caught.value.message


def test_other_tables_may_be_written() -> None:
    check_system_write("dev", "hdb_user")
    with pytest.raises(Forbidden, match="maintained by the agent"):
        check_system_write("system", "hdb_future")
