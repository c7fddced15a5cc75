"""harperctl certs: list, add, remove, csr, sign; and the certificate table."""

from __future__ import annotations

import io
import json
import re
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harperctl import render
from harperctl.commands import certs

NOW = parsedate_to_datetime("Tue, 01 Dec 2026 10:14:10 GMT").timestamp()
CERT_PEM = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"
CSR_PEM = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBcsr\n-----END CERTIFICATE REQUEST-----\n"
KEY_TEXT = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n"
NODE_CERT = {
    "name": "n1",
    "uses": None,
    "certificate": CERT_PEM,
    "is_authority": False,
    "private_key_name": "privateKey.pem",
    "details": {
        "issuer": "CN=HarperDB-Certificate-Authority-n1",
        "subject": "CN=n1",
        "subject_alt_name": "DNS:n1, IP Address:127.0.0.1",
        "serial_number": "5A3F0B9C1D2E",
        "valid_from": "Dec  1 10:14:10 2025 GMT",
        "valid_to": "Dec  1 10:14:10 2027 GMT",
    },
    "is_self_signed": False,
    "__updatedtime__": 1796120045844.0,
}
CA_CERT = {
    "name": "ca-n1",
    "uses": ["replication", "https"],
    "certificate": CA_PEM,
    "is_authority": True,
    "private_key_name": None,
    "details": {
        "issuer": "C=US\nO=HarperDB\nCN=HarperDB-Certificate-Authority-n1",
        "subject": "C=US\nO=HarperDB\nCN=HarperDB-Certificate-Authority-n1",
        "subject_alt_name": None,
        "serial_number": "01",
        "valid_from": "2024-01-01T00:00:00Z",
        "valid_to": "2026-01-01T00:00:00Z",
    },
    "is_self_signed": True,
    "__updatedtime__": 1796120045844.0,
}
ADDED = {"message": "Successfully added certificate: n1"}


def console(width: int = 140) -> Console:
    return Console(width=width, file=io.StringIO(), color_system=None)


def rendered(rows: Any, now: float = NOW, width: int = 140) -> str:
    con = console(width)
    render.print_certificates(con, rows, now)
    return con.file.getvalue()  # type: ignore[attr-defined]


def cells(output: str, first: str) -> list[str]:
    """Return the first line's cells of the row starting with `first` (2+ spaces apart)."""
    for line in output.splitlines():
        found = re.split(r"\s{2,}", line.strip())
        if found[0] == first:
            return found
    raise AssertionError(f"no row {first!r} in\n{output}")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "n1.pem").write_text(CERT_PEM)
    (tmp_path / "n1.key").write_text(KEY_TEXT)
    (tmp_path / "n2.csr").write_text(CSR_PEM)
    return tmp_path


# --- list --------------------------------------------------------------------------------


def test_list_sends_list_certificates_and_draws_a_table(
    run: Any, fake: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(certs, "now", lambda: NOW)
    fake.reply([NODE_CERT, CA_CERT])
    outcome = run("certs", "list")
    assert outcome.code == 0, outcome.stderr
    assert fake.bodies == [{"operation": "list_certificates"}]
    out = outcome.stdout
    assert cells(out, "n1") == ["n1", "no", "no", "n1", "5A3F0B9C1D2E", "2027-12-01"] + [
        "privateKey.pem",
        "-",
    ]
    assert "2 certificates" in out
    assert "BEGIN CERTIFICATE" not in out and "MIIB" not in out


def test_list_json_is_exactly_the_answer(run: Any, fake: Any) -> None:
    fake.reply([NODE_CERT, CA_CERT])
    outcome = run("--json", "certs", "list")
    assert outcome.code == 0
    assert json.loads(outcome.stdout) == [NODE_CERT, CA_CERT]
    assert outcome.stdout == json.dumps([NODE_CERT, CA_CERT], indent=2) + "\n"


def test_certificate_table_columns() -> None:
    out = rendered([NODE_CERT, CA_CERT])
    header = [line for line in out.split("─")[0].splitlines() if line.strip()]
    assert header[-2].split() == ["self-", "subject", "CN"]
    assert re.split(r"\s{2,}", header[-1].strip()) == [
        "name",
        "CA",
        "signed",
        "and SANs",
        "serial",
        "valid to",
        "key file",
        "uses",
    ]
    # the SANs go under the CN, IP Address shortened
    assert "DNS:n1, IP:127.0.0.1" in out
    # the CA: its CN from a multi-line DN, expired, no key file, one use per line
    ca = cells(out, "ca-n1")
    assert ca == ["ca-n1", "yes", "yes", "HarperDB-Certificate-Authority-n1", "01"] + [
        "2026-01-01",
        "-",
        "replication",
    ]
    lines = out.splitlines()
    below = lines[next(i for i, line in enumerate(lines) if "ca-n1" in line) + 1]
    assert re.split(r"\s{2,}", below.strip()) == ["expired", "https"]


def test_certificate_expiring_soon_and_odd_values() -> None:
    soon = {"name": "soon", "details": {"valid_to": NOW * 1000 + 5 * 86400 * 1000}}
    odd = {"name": "odd", "details": {"subject": {"CN": "x"}, "valid_to": "someday"}}
    bare = {"name": "bare"}
    out = rendered([soon, odd, bare])
    assert "in 5d" in out
    assert cells(out, "odd")[3:6] == ["x", "-", "someday"]
    assert cells(out, "bare") == ["bare", "no", "no", "-", "-", "-", "-", "-"]


def test_long_serials_are_cut_and_json_has_them_whole() -> None:
    long = "5A3F0B9C1D2E77A1B2C3D4E5F60718293A4B5C6D"
    row = {**NODE_CERT, "details": {**NODE_CERT["details"], "serial_number": long}}
    out = rendered([row], width=200)
    assert long not in out and long[: render.SHORT_SERIAL - 1] + "…" in out


def test_no_certificates_or_an_odd_answer() -> None:
    assert rendered([]) == "no certificates\n"
    assert rendered({"message": "nothing here"}) == "nothing here\n"


@pytest.mark.parametrize(
    ("name", "cn"),
    [
        ("CN=n1", "n1"),
        ("CN=n1, O=HarperDB", "n1"),
        ("C=US\nO=HarperDB\nCN=ca-n1", "ca-n1"),
        ("/C=US/CN=n2/O=x", "n2"),
        ({"CN": "n3"}, "n3"),
        ("O=only", "O=only"),
        (None, ""),
    ],
)
def test_common_name(name: Any, cn: str) -> None:
    assert render.common_name(name) == cn


def test_certificate_times() -> None:
    assert render.certificate_time("Dec  1 10:14:10 2026 GMT") == NOW
    assert render.certificate_time("2026-12-01T10:14:10Z") == NOW
    assert render.certificate_time(NOW * 1000) == NOW
    assert render.certificate_time("someday") is None


# --- add ---------------------------------------------------------------------------------


def test_add_sends_the_files_and_options(run: Any, fake: Any, files: Path) -> None:
    fake.reply(ADDED)
    outcome = run(
        "certs",
        "add",
        "n1",
        "--certificate",
        str(files / "n1.pem"),
        "--private-key",
        str(files / "n1.key"),
        "--host",
        "n1.example.com",
        "--host",
        "10.0.0.1",
        "--use",
        "replication",
    )
    assert outcome.code == 0, outcome.stderr
    assert fake.bodies == [
        {
            "operation": "add_certificate",
            "name": "n1",
            "certificate": CERT_PEM,
            "is_authority": False,
            "private_key": KEY_TEXT,
            "hosts": ["n1.example.com", "10.0.0.1"],
            "uses": ["replication"],
        }
    ]
    assert outcome.stdout == "Successfully added certificate: n1\n"
    assert "TOP-SECRET" not in outcome.stdout + outcome.stderr


def test_add_an_authority_without_name_or_key(run: Any, fake: Any, files: Path) -> None:
    fake.reply(ADDED)
    outcome = run("--json", "certs", "add", "--certificate", str(files / "n1.pem"), "--authority")
    assert outcome.code == 0
    assert fake.bodies == [
        {"operation": "add_certificate", "certificate": CERT_PEM, "is_authority": True}
    ]
    assert outcome.stdout == json.dumps(ADDED, indent=2) + "\n"


def test_add_reads_the_certificate_from_stdin(run: Any, fake: Any) -> None:
    fake.reply(ADDED)
    assert run("certs", "add", "n1", "--certificate", "-", input=CERT_PEM).code == 0
    assert fake.last["certificate"] == CERT_PEM


def test_add_needs_a_certificate(run: Any, fake: Any) -> None:
    outcome = run("certs", "add", "n1")
    assert outcome.code == 2 and "--certificate" in outcome.stderr and fake.sent == []


def test_add_missing_certificate_file(run: Any, fake: Any, tmp_path: Path) -> None:
    outcome = run("certs", "add", "--certificate", str(tmp_path / "nope.pem"))
    assert outcome.code == 2 and fake.sent == []
    assert f"cannot read {tmp_path / 'nope.pem'}: No such file or directory" in outcome.stderr


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda path: None, "No such file or directory"),
        (lambda path: path.mkdir(), "Is a directory"),
        (
            lambda path: path.write_bytes(b"\xff\xfeTOP-SECRET-KEY-MATERIAL\x80"),
            "is not PEM text",
        ),
    ],
    ids=["missing", "directory", "binary"],
)
def test_add_unreadable_private_key_never_shows_its_content(
    run: Any, fake: Any, files: Path, make: Any, reason: str
) -> None:
    key = files / "bad.key"
    make(key)
    outcome = run("certs", "add", "--certificate", str(files / "n1.pem"), "--private-key", str(key))
    assert outcome.code == 2 and fake.sent == []
    assert reason in outcome.stderr and str(key) in outcome.stderr
    assert "TOP-SECRET" not in outcome.stderr + outcome.stdout


def test_add_private_key_is_not_read_from_stdin(run: Any, fake: Any, files: Path) -> None:
    args = ("certs", "add", "--certificate", str(files / "n1.pem"), "--private-key", "-")
    outcome = run(*args, input=KEY_TEXT)
    assert outcome.code == 2 and "needs a file" in outcome.stderr and fake.sent == []


def test_add_refused_by_the_agent_exits_1_without_the_key(run: Any, fake: Any, files: Path) -> None:
    fake.reply({"error": "the private key does not match the certificate"}, status=400)
    args = ("--certificate", str(files / "n1.pem"), "--private-key", str(files / "n1.key"))
    outcome = run("certs", "add", "n1", *args)
    assert outcome.code == 1
    assert outcome.stderr == "harperctl: the private key does not match the certificate\n"


# --- remove ------------------------------------------------------------------------------


def test_remove_with_yes(run: Any, fake: Any) -> None:
    fake.reply({"message": "Successfully removed old-n1"})
    outcome = run("certs", "remove", "old-n1", "--yes")
    assert outcome.code == 0 and outcome.stdout == "Successfully removed old-n1\n"
    assert fake.bodies == [{"operation": "remove_certificate", "name": "old-n1"}]


def test_remove_refuses_without_yes_off_a_terminal(run: Any, fake: Any) -> None:
    outcome = run("certs", "remove", "old-n1")
    assert outcome.code == 2 and fake.sent == []
    assert "refusing to remove certificate 'old-n1' without --yes" in outcome.stderr


def test_remove_asks_on_a_terminal(run: Any, fake: Any, on_terminal: None) -> None:
    assert run("certs", "remove", "old-n1", input="n\n").code == 1 and fake.sent == []
    fake.reply({"message": "Successfully removed old-n1"})
    outcome = run("certs", "remove", "old-n1", input="y\n")
    assert outcome.code == 0 and "Really remove certificate 'old-n1'" in outcome.stderr


def test_remove_unknown_certificate_exits_1(run: Any, fake: Any) -> None:
    fake.reply({"error": "certificate 'x' not found"}, status=404)
    outcome = run("certs", "remove", "x", "-y")
    assert outcome.code == 1 and "certificate 'x' not found" in outcome.stderr


# --- csr ---------------------------------------------------------------------------------


def test_csr_prints_exactly_the_pem(run: Any, fake: Any) -> None:
    fake.reply({"csr": CSR_PEM, "name": "n2"})
    outcome = run("certs", "csr", "--host", "n2.example.com", "--host", "10.0.0.2")
    assert outcome.code == 0
    assert outcome.stdout == CSR_PEM
    assert fake.bodies == [{"operation": "create_csr", "hosts": ["n2.example.com", "10.0.0.2"]}]


def test_csr_without_hosts_and_pem_without_final_newline(run: Any, fake: Any) -> None:
    fake.reply({"csr": CSR_PEM.rstrip("\n"), "name": "n2"})
    outcome = run("certs", "csr")
    assert fake.bodies == [{"operation": "create_csr"}]
    assert outcome.stdout == CSR_PEM


def test_csr_to_a_file(run: Any, fake: Any, tmp_path: Path) -> None:
    fake.reply({"csr": CSR_PEM, "name": "n2"})
    out = tmp_path / "n2.csr"
    outcome = run("certs", "csr", "--out", str(out))
    assert outcome.code == 0 and out.read_text() == CSR_PEM
    assert outcome.stdout == f"wrote the CSR of n2 to {out}\n"


def test_csr_json_prints_only_the_answer_and_still_writes_out(
    run: Any, fake: Any, tmp_path: Path
) -> None:
    answer = {"csr": CSR_PEM, "name": "n2"}
    fake.reply(answer)
    fake.reply(answer)
    assert run("--json", "certs", "csr").stdout == json.dumps(answer, indent=2) + "\n"
    out = tmp_path / "n2.csr"
    outcome = run("--json", "certs", "csr", "--out", str(out))
    assert outcome.stdout == json.dumps(answer, indent=2) + "\n" and out.read_text() == CSR_PEM


def test_csr_cannot_write(run: Any, fake: Any, tmp_path: Path) -> None:
    fake.reply({"csr": CSR_PEM, "name": "n2"})
    outcome = run("certs", "csr", "--out", str(tmp_path / "no" / "such" / "n2.csr"))
    assert outcome.code == 2 and "cannot write" in outcome.stderr and outcome.stdout == ""


def test_csr_answer_without_csr_is_an_agent_failure(run: Any, fake: Any) -> None:
    fake.reply({"name": "n2"})
    outcome = run("certs", "csr")
    assert outcome.code == 5 and "create_csr answer has no 'csr'" in outcome.stderr


# --- sign --------------------------------------------------------------------------------

SIGNED = {"certificate": CERT_PEM, "signingCA": CA_PEM}


def test_sign_sends_the_csr_and_prints_certificate_then_ca(
    run: Any, fake: Any, files: Path
) -> None:
    fake.reply(SIGNED)
    outcome = run("certs", "sign", str(files / "n2.csr"))
    assert outcome.code == 0
    assert fake.bodies == [{"operation": "sign_certificate", "csr": CSR_PEM}]
    assert outcome.stdout == CERT_PEM + CA_PEM


def test_sign_reads_stdin_and_writes_a_file(run: Any, fake: Any, tmp_path: Path) -> None:
    fake.reply({"certificate": CERT_PEM.rstrip("\n"), "signingCA": CA_PEM})
    out = tmp_path / "n2.pem"
    outcome = run("certs", "sign", "-", "--out", str(out), input=CSR_PEM)
    assert outcome.code == 0 and fake.last["csr"] == CSR_PEM
    assert out.read_text() == CERT_PEM + CA_PEM
    assert outcome.stdout == f"wrote the certificate and its CA to {out}\n"


def test_sign_json(run: Any, fake: Any, files: Path) -> None:
    fake.reply(SIGNED)
    outcome = run("--json", "certs", "sign", str(files / "n2.csr"))
    assert outcome.stdout == json.dumps(SIGNED, indent=2) + "\n"


def test_sign_missing_csr_file(run: Any, fake: Any, tmp_path: Path) -> None:
    outcome = run("certs", "sign", str(tmp_path / "nope.csr"))
    assert outcome.code == 2 and "cannot read" in outcome.stderr and fake.sent == []


def test_sign_refused(run: Any, fake: Any, files: Path) -> None:
    fake.reply({"error": "this node has no CA with a private key"}, status=400)
    outcome = run("certs", "sign", str(files / "n2.csr"))
    assert outcome.code == 1 and outcome.stdout == ""
    assert "no CA with a private key" in outcome.stderr


def test_every_certs_command_has_help_and_an_example(run: Any) -> None:
    for command in ("list", "add", "remove", "csr", "sign"):
        outcome = run("certs", command, "--help")
        assert outcome.code == 0 and "Examples:" in outcome.stdout, command
        assert f"harperctl certs {command}" in outcome.stdout
