"""--ca-file, HARPERCTL_CA_FILE and --insecure against a real local https server (trustme CA)."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

trustme = pytest.importorskip("trustme")

ANSWER = {"dev": {}}


class Handler(http.server.BaseHTTPRequestHandler):
    """Answer every operation with ANSWER."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture
def agent(ca: Any) -> Iterator[str]:
    """Serve https on a free loopback port with a certificate of `ca`; yield its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def ca_file(ca: Any, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_untrusted_certificate_exits_3_naming_the_fix(run: Any, agent: str) -> None:
    outcome = run("--url", agent, "db", "list")
    assert outcome.code == 3 and outcome.stdout == ""
    assert outcome.stderr.startswith(f"harperctl: TLS failure talking to {agent}/: certificate")
    assert "verify failed" in outcome.stderr
    assert "--ca-file" in outcome.stderr and "--insecure" in outcome.stderr
    assert outcome.stderr.count("\n") == 1


def test_a_ca_of_someone_else_does_not_verify(run: Any, agent: str, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    outcome = run("--url", agent, "--ca-file", str(other), "db", "list")
    assert outcome.code == 3 and "--ca-file" in outcome.stderr


def test_ca_file_verifies(run: Any, agent: str, ca_file: str) -> None:
    outcome = run("--url", agent, "--ca-file", ca_file, "--json", "db", "list")
    assert outcome.code == 0, outcome.stderr
    assert json.loads(outcome.stdout) == ANSWER and outcome.stderr == ""


def test_ca_file_from_the_environment(run: Any, agent: str, ca_file: str) -> None:
    outcome = run("--url", agent, "--json", "db", "list", env={"HARPERCTL_CA_FILE": ca_file})
    assert outcome.code == 0, outcome.stderr
    assert json.loads(outcome.stdout) == ANSWER


def test_ca_file_from_a_profile(run: Any, agent: str, ca_file: str, write_profiles: Any) -> None:
    write_profiles(f"default: tls\nprofiles: {{tls: {{url: '{agent}', ca_file: '{ca_file}'}}}}\n")
    outcome = run("--json", "db", "list")
    assert outcome.code == 0, outcome.stderr


def test_missing_ca_file_is_a_usage_error(run: Any, agent: str, tmp_path: Path) -> None:
    outcome = run("--url", agent, "--ca-file", str(tmp_path / "nope.pem"), "db", "list")
    assert outcome.code == 2 and "does not exist" in outcome.stderr


def test_insecure_connects_with_one_warning(run: Any, agent: str) -> None:
    outcome = run("--url", agent, "--insecure", "--json", "db", "list")
    assert outcome.code == 0
    assert json.loads(outcome.stdout) == ANSWER
    assert outcome.stderr == (
        f"harperctl: warning: not verifying the TLS certificate of {agent} (--insecure)\n"
    )


def test_insecure_over_http_says_nothing(run: Any, fake: Any) -> None:
    fake.reply(ANSWER)
    outcome = run("--insecure", "db", "list")
    assert outcome.code == 0 and outcome.stderr == "" and fake.sent[0].verify is False
