"""A real agent with <rootPath>/schema.graphql: broken, start fails; good, the tables exist.

Each kind of fault has its unit test in tests/unit/test_schemafile.py; this is the user's view.
"""

from __future__ import annotations

import os
import subprocess
import sys

from harness import Agent

BROKEN = """# the dogs of this node
type Dog @tabel(database: "dev", table: "dog") {
  id: ID @primaryKey
}
"""

GOOD = """# the dogs of this node
# type Cat @table(database: "dev") { id: ID @primaryKey }
type Dog @table(database: "dev", table: "dog") {
  id: ID! @primaryKey
  breed: String @indexed
  age: Int
}
type Local @table(database: "dev", replicate: false) { key: String @primaryKey }
"""


def _run_to_the_end(agent: Agent) -> subprocess.CompletedProcess:
    """Run `python -m agent run` on the agent's root until it exits by itself."""
    agent.write_config()
    env = {**os.environ, "HDB_ADMIN_USERNAME": "admin", "HDB_ADMIN_PASSWORD": agent.password}
    return subprocess.run(
        [sys.executable, "-m", "agent", "run", "--root", str(agent.root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_a_broken_schema_file_stops_start_with_its_line(tmp_path):
    agent = Agent(tmp_path / "broken")
    agent.root.mkdir(parents=True)
    (agent.root / "schema.graphql").write_text(BROKEN)
    result = _run_to_the_end(agent)
    assert result.returncode == 2, (result.returncode, result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"harper-agent: {agent.root / 'schema.graphql'}: line 2, column 10: "
        "unknown directive @tabel; did you mean @table?"
    )
    assert "Traceback" not in result.stderr


def test_a_missing_brace_stops_start(tmp_path):
    agent = Agent(tmp_path / "brace")
    agent.root.mkdir(parents=True)
    (agent.root / "schema.graphql").write_text(GOOD.replace("  age: Int\n}", "  age: Int\n"))
    result = _run_to_the_end(agent)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.strip().endswith(
        "schema.graphql: line 8, column 6: syntax error: Expected ':', found Name 'Local'; "
        "the '{' on line 3 is never closed"
    ), result.stderr


def test_a_good_schema_file_creates_its_tables(agent_factory):
    agent = agent_factory("good", start=False)
    agent.root.mkdir(parents=True)
    (agent.root / "schema.graphql").write_text(GOOD)
    agent.start()
    dog = agent.op({"operation": "describe_table", "database": "dev", "table": "dog"})
    assert dog["hash_attribute"] == "id"
    attributes = {a["attribute"]: a for a in dog["attributes"]}
    assert {"id", "breed", "age"} <= attributes.keys()
    assert attributes["breed"].get("indexed") is True
    assert not attributes["age"].get("indexed")
    tables = agent.op({"operation": "describe_database", "database": "dev"})
    assert sorted(tables) == ["Local", "dog"]  # the commented-out Cat is not a table
    agent.op({"operation": "insert", "database": "dev", "table": "dog", "records": [{"id": 1}]})


def test_declaring_an_existing_table_otherwise_is_said_not_done(agent_factory):
    agent = agent_factory("changed", start=False)
    agent.root.mkdir(parents=True)
    (agent.root / "schema.graphql").write_text(GOOD)
    agent.start()
    assert agent.stop() == 0
    changed = GOOD.replace("id: ID! @primaryKey", "id: ID!").replace(
        "age: Int", "age: Int @primaryKey"
    )
    (agent.root / "schema.graphql").write_text(
        changed.replace("age: Int @primaryKey", "age: Int @primaryKey\n  name: String @indexed")
    )
    agent.start()
    log = (agent.root / "log" / "hdb.log").read_text()
    assert "dev.dog declares primary key age, but the table exists with id: not changed" in log
    assert "dev.dog declares name @indexed, but the existing table does not index them" in log
    dog = agent.op({"operation": "describe_table", "database": "dev", "table": "dog"})
    assert dog["hash_attribute"] == "id"
