"""harperctl certs: list, add, remove, csr and sign the certificates of a node.

`now` is the clock `certs list` marks expired certificates by; tests replace it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from harperctl import render
from harperctl.commands._context import AppContext, pass_app
from harperctl.commands._options import examples, read_input, yes_option
from harperctl.errors import AgentFailed, UsageError

now: Callable[[], float] = time.time

GROUP_HELP = """List, add, remove, request and sign the node's certificates.

\b
A node uses its certificates for https, and for replication links with mTLS: each side
shows a certificate the other's CAs (certificates added with --authority) trust.
To give node n2 a certificate signed by n1's CA:
  harperctl --url https://n2:9925 certs csr --host n2 --out n2.csr
  harperctl --url https://n1:9925 certs sign n2.csr --out n2.pem
  harperctl --url https://n2:9925 certs add n2 --certificate n2.pem
The private key of a CSR never leaves n2.
"""


@click.group(
    help=GROUP_HELP,
    epilog=examples(
        "harperctl certs list",
        "harperctl certs add ca-n1 --certificate ca.pem --authority",
        "harperctl certs csr --host n2.example.com > n2.csr",
    ),
)
def certs() -> None:
    """List, add, remove, request and sign the node's certificates."""


@certs.command("list", epilog=examples("harperctl certs list", "harperctl --json certs list"))
@pass_app
def list_certificates(app: AppContext) -> None:
    """List the node's certificates and CAs, without their PEM (list_certificates).

    \b
    Columns: name; authority (a CA this node trusts); self-signed; the subject's CN and
    its subject alternative names; serial number; valid to (expired ones marked); the
    private key file it pairs with ("-": none); what the certificate is used for.
    --json has every field, the PEM included.
    """
    answer = app.call({"operation": "list_certificates"})
    app.emit(answer, lambda console, rows: render.print_certificates(console, rows, now()))


@certs.command(
    "add",
    epilog=examples(
        "harperctl certs add n1 --certificate n1.pem --private-key n1.key --host n1.example.com",
        "harperctl certs add ca-n1 --certificate ca.pem --authority",
        "harperctl certs add --certificate n2.pem --use replication",
    ),
)
@click.argument("name", required=False)
@click.option(
    "--certificate",
    "certificate_file",
    metavar="FILE",
    required=True,
    help="PEM certificate to add ('-' reads stdin).",
)
@click.option(
    "--private-key",
    "key_file",
    metavar="FILE",
    help="PEM private key of the certificate (sent to the agent, never printed).",
)
@click.option("--authority", is_flag=True, help="The certificate is a CA this node trusts.")
@click.option(
    "--host", "hosts", metavar="HOST", multiple=True, help="Host the certificate serves (repeat)."
)
@click.option(
    "--use", "uses", metavar="USE", multiple=True, help="What the certificate is for (repeat)."
)
@pass_app
def add_certificate(
    app: AppContext,
    name: str | None,
    certificate_file: str,
    key_file: str | None,
    authority: bool,
    hosts: tuple[str, ...],
    uses: tuple[str, ...],
) -> None:
    """Add a certificate, or a CA with --authority, under NAME (add_certificate).

    NAME defaults to the certificate's CN. With --private-key, the key is stored with the
    certificate; without it, the agent keeps the certificate alone (a CA) or pairs it with
    a key it already holds (such as the one `certs csr` used).
    """
    body: dict[str, Any] = {"operation": "add_certificate"}
    if name is not None:
        body["name"] = name
    body["certificate"] = read_input(certificate_file, "a PEM certificate")[0]
    body["is_authority"] = authority
    if key_file is not None:
        body["private_key"] = read_secret(key_file)
    if hosts:
        body["hosts"] = list(hosts)
    if uses:
        body["uses"] = list(uses)
    app.emit(app.call(body), render.print_message)


def read_secret(path: str) -> str:
    """Return a private key file's text; errors name the file, never its content."""
    if path == "-":
        raise UsageError("--private-key needs a file, not stdin")
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the private key {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the private key {path} is not PEM text") from None


@certs.command(
    "remove",
    epilog=examples("harperctl certs remove old-n1", "harperctl certs remove old-n1 --yes"),
)
@click.argument("name")
@yes_option
@pass_app
def remove_certificate(app: AppContext, name: str, yes: bool) -> None:
    """Remove the certificate NAME from the node, after asking (remove_certificate)."""
    app.confirm(f"remove certificate {name!r}", yes)
    app.emit(app.call({"operation": "remove_certificate", "name": name}), render.print_message)


@certs.command(
    "csr",
    epilog=examples(
        "harperctl certs csr > n2.csr",
        "harperctl certs csr --host n2.example.com --host 10.0.0.2 --out n2.csr",
    ),
)
@click.option(
    "--host", "hosts", metavar="HOST", multiple=True, help="Host name or IP to ask for (repeat)."
)
@click.option("--out", metavar="FILE", help="Write the CSR to FILE instead of stdout.")
@pass_app
def create_csr(app: AppContext, hosts: tuple[str, ...], out: str | None) -> None:
    """Make a certificate signing request for this node's key (create_csr).

    Without --out, stdout is exactly the PEM, ready to pipe to `certs sign -` on the node
    holding the CA. The key stays on this node.
    """
    body: dict[str, Any] = {"operation": "create_csr"}
    if hosts:
        body["hosts"] = list(hosts)
    answer = app.call(body)
    csr = answer_field(answer, "csr", "create_csr")
    deliver(app, answer, csr, out, f"the CSR of {answer.get('name') or 'this node'}")


@certs.command(
    "sign",
    epilog=examples(
        "harperctl certs sign n2.csr --out n2.pem",
        "harperctl --url https://n2:9925 certs csr | harperctl certs sign - > n2.pem",
    ),
)
@click.argument("csr_file", metavar="CSR_FILE")
@click.option("--out", metavar="FILE", help="Write the certificate to FILE instead of stdout.")
@pass_app
def sign_certificate(app: AppContext, csr_file: str, out: str | None) -> None:
    """Sign the request in CSR_FILE ('-': stdin) with this node's CA (sign_certificate).

    The output is the signed certificate followed by the signing CA's, both PEM.
    """
    csr = read_input(csr_file, "a PEM certificate signing request")[0]
    answer = app.call({"operation": "sign_certificate", "csr": csr})
    pem = answer_field(answer, "certificate", "sign_certificate")
    ca = answer.get("signingCA")
    if isinstance(ca, str) and ca:
        pem = with_newline(pem) + ca
    deliver(app, answer, pem, out, "the certificate and its CA")


def answer_field(answer: Any, field: str, operation: str) -> str:
    """Return the PEM text `field` of an answer, or fail: an answer without it is a bug."""
    value = answer.get(field) if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value:
        raise AgentFailed(f"the agent's {operation} answer has no {field!r}", status=200)
    return value


def deliver(app: AppContext, answer: Any, pem: str, out: str | None, what: str) -> None:
    """Write `pem` to `out`, or print it; with --json, stdout holds only the answer."""
    if out is not None:
        write_text(out, pem)
    if app.json_output:
        app.emit(answer, render.print_message)
    elif out is not None:
        render.print_text(app.console, f"wrote {what} to {out}")
    else:
        click.echo(with_newline(pem), nl=False)


def write_text(path: str, text: str) -> None:
    """Write `text` to the file `path`, or raise a usage error naming it."""
    try:
        Path(path).write_text(with_newline(text), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def with_newline(text: str) -> str:
    """Return `text` ending with one newline, as PEM files do."""
    return text if text.endswith("\n") else text + "\n"


COMMANDS = [certs]
