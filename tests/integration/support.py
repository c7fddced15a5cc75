"""Helpers the operations API integration tests share: raw posts, error checks, names.

`Agent.request` decodes every answer as JSON; the error tests need the raw response too (its
status, its content type, whether it is JSON at all), so `post` returns it undecoded.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import requests
from harness import Agent

_serial = itertools.count(1)


def unique(hint: str) -> str:
    """Return a database/table/user name no other test of this run uses."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", hint).strip("_")[:40] or "n"
    return f"{base}_{next(_serial)}"


def post(
    agent: Agent,
    body: Any,
    auth: tuple[str, str] | None | str = "default",
    headers: dict | None = None,
) -> requests.Response:
    """POST `body` (a dict as JSON, or bytes/str sent as they are) and return the response."""
    if auth == "default":
        auth = ("admin", agent.password)
    if isinstance(body, (bytes, str)):
        headers = {"Content-Type": "application/json", **(headers or {})}
        return agent.session.post(
            agent.url + "/", data=body, auth=auth, headers=headers, timeout=30
        )
    return agent.session.post(agent.url + "/", json=body, auth=auth, headers=headers, timeout=30)


def assert_error(resp: requests.Response, status: int, *words: str) -> str:
    """Check an error answer: its status, a JSON content type, `{"error": ...}` naming `words`."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    content_type = resp.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"content type {content_type!r}"
    body = resp.json()
    assert isinstance(body, dict) and list(body) == ["error"], body
    message = body["error"]
    assert isinstance(message, str) and message, body
    for word in words:
        assert word in message, f"{word!r} not in error {message!r}"
    return message


def error_of(agent: Agent, body: Any, status: int, *words: str, **kwargs: Any) -> str:
    """POST `body` and check that it fails with `status` and a message naming `words`."""
    return assert_error(post(agent, body, **kwargs), status, *words)


def make_table(
    agent: Agent,
    database: str,
    table: str,
    primary_key: str = "id",
    records: list[dict] | None = None,
) -> None:
    """Create database.table (the database comes with it) and insert `records`."""
    agent.op(
        {
            "operation": "create_table",
            "database": database,
            "table": table,
            "primary_key": primary_key,
        }
    )
    if records:
        answer = agent.op(
            {"operation": "insert", "database": database, "table": table, "records": records}
        )
        assert answer["skipped_hashes"] == [], answer


def healthy(agent: Agent) -> None:
    """Assert the agent still answers GET /health."""
    resp = agent.session.get(agent.url + "/health", timeout=5)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "ok"
