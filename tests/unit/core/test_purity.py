"""The core stays pure: no I/O, wall clock, threads or event loop (STYLE point 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import agent.core

CORE = Path(agent.core.__file__).parent
FORBIDDEN = {"asyncio", "sqlite3", "socket", "websockets", "time", "threading", "datetime"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_nothing_impure(path):
    assert imported_roots(path) & FORBIDDEN == set()
