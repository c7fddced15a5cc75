from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import Agent  # noqa: E402


@pytest.fixture
def agent_factory(tmp_path):
    """Start agents on their own loopback addresses; stop them all at the end."""
    started: list[Agent] = []

    def make(name: str = "node", start: bool = True, **kwargs) -> Agent:
        agent = Agent(tmp_path / f"{name}{len(started)}", **kwargs)
        started.append(agent)
        return agent.start() if start else agent

    yield make
    for agent in started:
        try:
            agent.kill()
        except Exception:
            pass


@pytest.fixture(scope="module")
def shared_agent(tmp_path_factory):
    """One agent for a whole test module (tests must not depend on each other's data)."""
    agent = Agent(tmp_path_factory.mktemp("shared"))
    agent.start()
    yield agent
    agent.kill()
