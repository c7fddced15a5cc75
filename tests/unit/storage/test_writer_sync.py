"""Client writes are fsynced; replicated applies are not (the peer holds them durably)."""

from __future__ import annotations

from agent.core import messages as m
from agent.core.changes import PUT, Write
from agent.core.messages import encode_changes
from agent.storage.apply import RemoteTransaction
from agent.storage.catalog import TableInfo
from agent.storage.store import Storage
from agent.storage.writes import CreateTable, LocalTransaction, WriteOp


def _mode(db) -> int:
    return db._writer._conn.execute("PRAGMA synchronous").fetchone()[0]


def test_only_batches_with_a_client_write_are_fsynced(tmp_path):
    storage = Storage(tmp_path, "me")
    storage.open()
    try:
        db = storage.create_sync("dev")
        db.write_sync(CreateTable(TableInfo("dev", "dog", "id"), storage.clock, "me"))
        body = encode_changes([Write("dog", PUT, 1, '{"id":1}')])
        txn = m.Txn(1, 0, "peer", "peer-id", 1, 10 << 16, 1, 1.0, body)
        assert db.write_sync(RemoteTransaction("dev", txn, storage.clock))
        assert _mode(db) == 1  # NORMAL: no fsync for what a peer already holds
        db.write_sync(
            LocalTransaction([WriteOp("insert", "dog", [{"id": 2}])], storage.clock, "me")
        )
        assert _mode(db) == 2  # FULL again for a client's write
    finally:
        storage.close()


def test_write_async_storage_never_fsyncs(tmp_path):
    storage = Storage(tmp_path, "me", synchronous="NORMAL")
    storage.open()
    try:
        db = storage.create_sync("dev")
        db.write_sync(CreateTable(TableInfo("dev", "dog", "id"), storage.clock, "me"))
        db.write_sync(
            LocalTransaction([WriteOp("insert", "dog", [{"id": 2}])], storage.clock, "me")
        )
        assert _mode(db) == 1
    finally:
        storage.close()
