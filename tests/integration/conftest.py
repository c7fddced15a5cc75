from __future__ import annotations

import pytest
from support import unique


@pytest.fixture
def db(request) -> str:
    """A database name of this test's own, so tests can share one agent."""
    return unique(request.node.name.removeprefix("test_"))
