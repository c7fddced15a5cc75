"""Each outside library has one importer, and harperctl never imports the agent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "harperctl"
# library -> the modules (relative to harperctl/) allowed to import it
OWNERS = {
    "requests": {"client.py"},
    "yaml": {"profiles.py"},
    "rich": {"render.py", "render_cluster.py", "render_records.py", "render_plain.py"},
}


def imported(path: Path) -> set[str]:
    """Return the top-level names of everything `path` imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_is_where_expected() -> None:
    assert (PACKAGE / "cli.py").is_file() and len(MODULES) > 10


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_stay_with_their_owners(path: Path) -> None:
    relative = str(path.relative_to(PACKAGE))
    names = imported(path)
    assert "agent" not in names
    for library, owners in OWNERS.items():
        if library in names:
            assert relative in owners, f"{relative} imports {library}"
    if "click" in names:
        assert relative == "cli.py" or relative.startswith("commands/"), relative
