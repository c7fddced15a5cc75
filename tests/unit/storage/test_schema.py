"""Replicated schema converges like data, whatever order creates, drops and writes arrive in."""

from __future__ import annotations

import itertools

import pytest

from agent.core import messages as m
from agent.core.changes import CREATE_TABLE, DROP_TABLE, PUT, Write
from agent.core.clock import make_version
from agent.errors import StreamGap
from agent.storage.apply import EnsureSchema, RemoteTransaction

BASE = make_version(1_700_000_000_000)


def create(pk: str = "id") -> Write:
    return Write("cat", CREATE_TABLE, None, {"name": "cat", "primary_key": pk})


def drop() -> Write:
    return Write("cat", DROP_TABLE, None, None)


def put(doc: str = '{"id": 1, "name": "tom"}', key=1) -> Write:
    return Write("cat", PUT, key, doc)


class Origins:
    """Transactions from several origins, each numbered by its own sequence."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def txn(self, origin: str, version: int, *writes: Write) -> m.Txn:
        self.next[origin] = self.next.get(origin, 0) + 1
        body = m.encode_changes(list(writes))
        return m.Txn(0, 0, origin, f"id-{origin}", self.next[origin], version, 1, 1.0, body)


def apply(kit, db, msg: m.Txn) -> bool:
    return db.write_sync(RemoteTransaction(db.name, msg, kit.storage.clock))


def state(kit, db) -> tuple:
    """What must be the same on every node: the table's definition and its rows."""
    info = db.catalog.get("cat")
    if info is None:
        return None, {}
    return (info.primary_key, info.version), kit.docs(db, "cat")


def test_a_write_for_a_table_never_seen_is_a_gap_and_invents_nothing(kit, db):
    o = Origins()
    with pytest.raises(StreamGap, match="not here yet"):
        apply(kit, db, o.txn("b", BASE + 1, put()))
    assert db.catalog.get("cat") is None


def test_a_drop_discards_writes_older_than_it_and_the_table_stays_gone(kit, db):
    o = Origins()
    apply(kit, db, o.txn("a", BASE + 1, create()))
    apply(kit, db, o.txn("a", BASE + 5, drop()))
    assert apply(kit, db, o.txn("b", BASE + 3, put()))  # applied as a transaction: discarded
    assert db.catalog.get("cat") is None
    assert db.write_sync(EnsureSchema(db.name, [{"name": "cat", "version": BASE + 1}])) == []
    assert db.catalog.get("cat") is None  # a peer's stale Schema does not bring it back


def test_a_create_older_than_a_drop_does_not_resurrect_the_table(kit, db):
    o = Origins()
    apply(kit, db, o.txn("a", BASE + 5, drop()))
    apply(kit, db, o.txn("b", BASE + 2, create()))
    assert db.catalog.get("cat") is None


def test_a_newer_create_after_a_drop_makes_the_table_again(kit, db):
    o = Origins()
    apply(kit, db, o.txn("a", BASE + 1, create()))
    apply(kit, db, o.txn("a", BASE + 2, drop()))
    apply(kit, db, o.txn("b", BASE + 3, create()))
    apply(kit, db, o.txn("b", BASE + 4, put()))
    assert state(kit, db) == (("id", BASE + 3), {1: {"id": 1, "name": "tom"}})


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_concurrent_creates_with_different_keys_converge_in_any_order(kit, tmp_path, order):
    """Three events from three origins: every arrival order ends in the same table."""
    events = [
        ("a", BASE + 1, [create("id")]),
        ("b", BASE + 2, [create("name")]),  # the newest definition wins: keyed by name
        ("c", BASE + 3, [put('{"id": 7, "name": "tom"}', key="tom")]),
    ]
    db = kit.storage.create_sync(f"conv{''.join(map(str, order))}")
    o = Origins()
    pending = [events[i] for i in order]
    for _ in range(len(pending) + 1):  # a write whose table is not there yet comes back later
        retry = []
        for origin, version, writes in pending:
            try:
                apply(kit, db, o.txn(origin, version, *writes))
            except StreamGap:
                o.next[origin] -= 1  # not applied: the same sequence is sent again
                retry.append((origin, version, writes))
        pending = retry
    assert pending == []
    assert state(kit, db) == (("name", BASE + 2), {"tom": {"id": 7, "name": "tom"}})


def test_a_newer_create_with_another_key_re_keys_the_rows(kit, db):
    o = Origins()
    apply(kit, db, o.txn("a", BASE + 1, create("id")))
    apply(kit, db, o.txn("a", BASE + 2, put('{"id": 1, "name": "tom"}', key=1)))
    apply(kit, db, o.txn("a", BASE + 3, put('{"id": 2}', key=2)))  # no name: cannot be placed
    apply(kit, db, o.txn("b", BASE + 4, create("name")))
    assert state(kit, db) == (("name", BASE + 4), {"tom": {"id": 1, "name": "tom"}})
