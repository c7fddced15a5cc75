"""Fixtures for harperctl's unit tests: a fake transport, an isolated CLI runner.

No network and no unittest.mock: the fake transport goes in through the seam
`harperctl.client.new_transport`, and terminals are faked through `harperctl.terminal`.
stdout counts as a terminal (so commands print tables) unless a test asks for `piped`.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harperctl import client, terminal
from harperctl.cli import main


@dataclass
class Sent:
    """One request the fake transport received."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    verify: bool | str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class PiecesReply:
    """A streamed reply (`FakeTransport.open`): the body in pieces, then maybe an error."""

    status: int
    pieces: list[bytes]
    between: Callable[[int], None] | None = None
    error: BaseException | None = None
    closed: bool = False

    def chunks(self) -> Iterator[bytes]:
        for number, piece in enumerate(self.pieces):
            if self.between is not None:
                self.between(number)
            yield piece
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeTransport:
    """Record requests and answer each with the next canned response (or exception).

    `open` (the streaming side) answers from the same queue in pieces of `piece_size`
    bytes (whole by default), calling `between(n)` before piece n; `break_with` is raised
    after the last piece, as a connection that breaks off.
    """

    sent: list[Sent] = field(default_factory=list)
    queue: deque[Any] = field(default_factory=deque)
    closed: bool = False
    piece_size: int | None = None
    between: Callable[[int], None] | None = None
    break_with: BaseException | None = None
    replies: list[PiecesReply] = field(default_factory=list)

    def reply(self, body: Any = None, status: int = 200, raw: bytes | None = None) -> None:
        """Queue a response: `body` as JSON, or the exact bytes `raw`."""
        content = raw if raw is not None else json.dumps(body).encode()
        self.queue.append((status, {"Content-Type": "application/json"}, content))

    def fail(self, exc: BaseException) -> None:
        """Queue an exception to raise instead of answering."""
        self.queue.append(exc)

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float,
        verify: bool | str,
    ) -> tuple[int, dict[str, str], bytes]:
        self.sent.append(Sent(method, url, dict(headers), body, timeout, verify))
        if not self.queue:
            raise AssertionError(f"unexpected request: {body!r}")
        answer = self.queue.popleft()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def open(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        timeout: float,
        verify: bool | str,
    ) -> PiecesReply:
        status, _, content = self.request(method, url, headers, body, timeout, verify)
        size = self.piece_size or max(1, len(content))
        pieces = [content[i : i + size] for i in range(0, len(content), size)] or [b""]
        reply = PiecesReply(status, pieces, self.between, self.break_with)
        self.replies.append(reply)
        return reply

    def close(self) -> None:
        self.closed = True

    @property
    def bodies(self) -> list[Any]:
        return [request.json for request in self.sent]

    @property
    def last(self) -> Any:
        return self.sent[-1].json


@dataclass
class Outcome:
    """What one harperctl run did."""

    code: int
    stdout: str
    stderr: str


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Give every test its own config home, no HARPERCTL_* env, no terminals, fixed width."""
    config_home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    for name in (
        "HARPERCTL_URL",
        "HARPERCTL_USER",
        "HARPERCTL_PASSWORD",
        "HARPERCTL_TOKEN",
        "HARPERCTL_CA_FILE",
        "FORCE_COLOR",
        "TTY_COMPATIBLE",
        "TTY_INTERACTIVE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setattr(terminal, "stdin_is_terminal", lambda: False)
    monkeypatch.setattr(terminal, "stderr_is_terminal", lambda: False)
    monkeypatch.setattr(terminal, "stdout_is_terminal", lambda: True)
    return config_home


@pytest.fixture
def piped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend stdout is a pipe, so the output is plain lines (TSV) unless -o says otherwise."""
    monkeypatch.setattr(terminal, "stdout_is_terminal", lambda: False)


@pytest.fixture
def on_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend stdin is a terminal, so harperctl may prompt."""
    monkeypatch.setattr(terminal, "stdin_is_terminal", lambda: True)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTransport:
    """Make every Client harperctl builds use one FakeTransport."""
    transport = FakeTransport()
    monkeypatch.setattr(client, "new_transport", lambda: transport)
    return transport


@pytest.fixture
def run() -> Any:
    """Return run(*args, input=None, env=None) -> Outcome, calling cli.main in isolation."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Outcome:
        runner = CliRunner()
        with runner.isolation(input=input, env=env) as (out, err, _):
            code = main(list(args))
        return Outcome(code, out.getvalue().decode(), err.getvalue().decode())

    return invoke


@pytest.fixture
def write_profiles(isolated: Path) -> Any:
    """Return write(text, mode=0o600) -> Path, writing the profile file."""

    def write(text: str, mode: int = 0o600) -> Path:
        path = isolated / "harperctl" / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    return write
