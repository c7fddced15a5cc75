"""A transaction's changes: the list of writes that travels in the log and on the wire.

Each write is a tuple `(table, kind, key, value)`:

    PUT           key = primary key, value = the record as JSON text
    DELETE        key = primary key, value = None (a tombstone)
    ATTRIBUTE     key = attribute name, value = {"type": ..., "indexed": ..., "declared": ...}
    CREATE_TABLE  key = None, value = the table definition
    DROP_TABLE    key = None, value = None
    DROP_ATTRIBUTE key = attribute name, value = None (its values leave every record)

Every write of one transaction shares the transaction's version and origin, which are kept
beside the body (in the log row and the frame), not inside it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

PUT = 1
DELETE = 2
ATTRIBUTE = 3
CREATE_TABLE = 4
DROP_TABLE = 5
DROP_ATTRIBUTE = 6
KINDS = (PUT, DELETE, ATTRIBUTE, CREATE_TABLE, DROP_TABLE, DROP_ATTRIBUTE)
DATA_KINDS = (PUT, DELETE)


class Write(NamedTuple):
    table: str
    kind: int
    key: Any
    value: Any


def record_count(writes: list[Write]) -> int:
    """Count the record writes (puts and deletes) of a change set."""
    return sum(1 for w in writes if w.kind in DATA_KINDS)
