"""Who wrote what: the node id of a root and the origin id of each database file.

A node id is made when the `system` database is created and kept in it, so it lives and dies
with the data: a wiped root starts as a new node, whatever its configured name. Each database
file writes its transactions under an origin id, which starts as the node id. When a peer
holds more of this file's own transactions than the file does (it was restored from a backup,
or copied), the file takes a fresh origin id: its old sequence numbers are already spent on
writes the peers hold, which then come back to it like any other origin's.
"""

from __future__ import annotations

import secrets
import sqlite3

from agent.storage import meta

NODE_ID = "node_id"
ORIGIN_ID = "origin_id"


def new_id() -> str:
    """Return a fresh random id (16 hex digits: 64 bits, collisions are not a concern)."""
    return secrets.token_hex(8)


def file_origin(conn: sqlite3.Connection, node_id: str) -> str:
    """Return the file's origin id, giving a new file the node id (or a fresh id)."""
    found = meta.read(conn, ORIGIN_ID)
    if found:
        return str(found)
    origin = node_id or new_id()
    meta.write(conn, ORIGIN_ID, origin)  # the connection autocommits
    return origin


def node_id(conn: sqlite3.Connection) -> str:
    """Return the node id kept in the `system` file, making one the first time."""
    found = meta.read(conn, NODE_ID)
    if found:
        return str(found)
    made = new_id()
    meta.write(conn, NODE_ID, made)
    return made
