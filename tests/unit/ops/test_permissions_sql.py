"""What each SQL statement reads, as the attribute permission check sees it."""

from __future__ import annotations

import pytest

from agent.ops.sql import parse
from agent.ops.sql_ops import read_attributes


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM d.t", set()),
        ("SELECT COUNT(*) AS c FROM d.t", set()),
        ("SELECT id, name AS n FROM d.t", {"id", "name"}),
        ("SELECT MAX(secret) FROM d.t", {"secret"}),
        ("SELECT * FROM d.t WHERE a = 1 AND NOT (b > 2 OR c IS NULL)", {"a", "b", "c"}),
        ("SELECT id FROM d.t ORDER BY secret DESC, id", {"id", "secret"}),
        ("SELECT name AS n FROM d.t ORDER BY n", {"name"}),
        ("SELECT COUNT(*) AS c FROM d.t GROUP BY secret", {"secret"}),
        ("SELECT tag, COUNT(*) FROM d.t GROUP BY tag HAVING SUM(secret) > 1", {"tag", "secret"}),
        ("SELECT tag, COUNT(*) AS c FROM d.t GROUP BY tag HAVING c > 1 ORDER BY c", {"tag"}),
        ("UPDATE d.t SET a = 1 WHERE secret = 'x'", {"secret"}),
        ("UPDATE d.t SET a = 1", set()),
        ("DELETE FROM d.t WHERE hidden LIKE 'h%'", {"hidden"}),
    ],
)
def test_read_attributes(sql: str, expected: set[str]) -> None:
    assert read_attributes(parse(sql)) == expected
