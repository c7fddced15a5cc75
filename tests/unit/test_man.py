"""The checked-in man pages are what `make man` generates from the click commands now."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_man_pages_are_current(tmp_path):
    pytest.importorskip("click_man")
    spec = importlib.util.spec_from_file_location("make_man", ROOT / "tools" / "make_man.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("harperctl.1", "harper-agent.8"):
        fresh = (tmp_path / name).read_text()
        assert fresh == (ROOT / "man" / name).read_text(), f"run `make man`: {name} is stale"
        assert "add-node" in fresh or name.startswith("harper-agent")
