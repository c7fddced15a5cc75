"""The root is private to the agent's user: folders 0700, files 0600, also after a restart of
a root an older version left 0755/0644."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from harness import Agent
from support import make_table

# Certificates are public: agent/certs writes them 0644 on purpose, inside keys/ (0700).
PUBLIC = {".active-certificate.pem"}


def _open_to_others(root: Path) -> list[str]:
    """Return what under `root` (root included) grants group or other any access."""
    found = []
    for path in [root, *root.rglob("*")]:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode) or path.name in PUBLIC:
            continue
        if info.st_mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {stat.S_IMODE(info.st_mode):o}")
    return found


def test_a_fresh_root_is_private(tmp_path):
    agent = Agent(tmp_path / "fresh").start()
    try:
        make_table(agent, "dev", "dog", records=[{"id": 1}])
        files = {p.name for p in agent.root.rglob("*")}
        assert {"system.sqlite", "dev.sqlite", "dev.sqlite-wal", "harper-agent.lock"} <= files
        assert _open_to_others(agent.root) == []
    finally:
        agent.kill()


def test_a_restart_tightens_an_open_root_and_says_so(tmp_path):
    agent = Agent(tmp_path / "old").start()
    make_table(agent, "dev", "dog", records=[{"id": 1}])
    assert agent.stop() == 0
    for path in [agent.root, *agent.root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert _open_to_others(agent.root)
    agent.start()
    try:
        assert agent.op(
            {"operation": "search_by_id", "database": "dev", "table": "dog", "ids": [1]}
        )
        make_table(agent, "dev2", "cat", records=[{"id": 1}])
        assert _open_to_others(agent.root) == []
        log = next(agent.root.glob("log/*.log")).read_text()
        restart = log[log.index("stopping:") :]
        assert restart.count("made private to this user") == 1, restart
        assert str(agent.root) in restart
    finally:
        agent.kill()
