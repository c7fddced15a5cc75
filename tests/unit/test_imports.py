"""Each outside library has one home; the core stays pure; harperctl never imports agent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# library -> the modules or packages (a trailing "/") allowed to import it
OWNERS = {
    "aiohttp": ["agent/ops/server.py"],
    "websockets": ["agent/replication/transport.py"],
    "msgpack": ["agent/core/messages.py"],
    "cryptography": ["agent/certs/"],
    "jwt": ["agent/ops/auth.py"],
    "yaml": ["agent/config.py", "harperctl/profiles.py"],
    "click": ["agent/cli.py", "harperctl/cli.py", "harperctl/commands/"],
    "rich": [
        "harperctl/render.py",
        "harperctl/render_cluster.py",
        "harperctl/render_records.py",
        "harperctl/render_plain.py",
    ],
    "requests": ["harperctl/client.py"],
    "sqlite3": ["agent/storage/"],
    "orjson": ["agent/jsonx.py"],
    "prometheus_client": ["agent/ops/metrics.py"],
    "graphql": ["agent/schemafile.py"],
}
CORE_FORBIDDEN = {"asyncio", "sqlite3", "socket", "time", "threading", "websockets", "aiohttp"}


def _sources() -> list[Path]:
    return sorted(p for pkg in ("agent", "harperctl") for p in (ROOT / pkg).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _allowed(rel: str, owners: list[str]) -> bool:
    return any(rel == o or (o.endswith("/") and rel.startswith(o)) for o in owners)


IMPORTS = {p.relative_to(ROOT).as_posix(): _imports(p) for p in _sources()}


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_library_has_one_home(library):
    importers = [rel for rel, names in IMPORTS.items() if library in names]
    strays = [rel for rel in importers if not _allowed(rel, OWNERS[library])]
    assert not strays, f"{library} imported outside {OWNERS[library]}: {strays}"


def test_core_is_pure():
    for rel, names in IMPORTS.items():
        if rel.startswith("agent/core/"):
            assert not names & CORE_FORBIDDEN, f"{rel} imports {names & CORE_FORBIDDEN}"


def test_harperctl_never_imports_agent():
    for rel, names in IMPORTS.items():
        if rel.startswith("harperctl/"):
            assert "agent" not in names, f"{rel} imports the agent"


def test_the_check_sees_the_code():
    assert "agent/ops/server.py" in IMPORTS and "aiohttp" in IMPORTS["agent/ops/server.py"]
