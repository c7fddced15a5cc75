"""harperctl verify: do all nodes hold the same records? (cluster_verify), and --repair."""

from __future__ import annotations

import threading
from typing import Any

import click

from harperctl import render, terminal
from harperctl.commands._context import AppContext, make_client, pass_app
from harperctl.commands._options import examples
from harperctl.errors import HarperctlError, UsageError

VERIFY_TIMEOUT = 600.0  # per table, unless --timeout says otherwise

HELP = """Compare replicated tables across every node (cluster_verify).

\b
The node you talk to compares each table with all its peers by digests of key ranges,
descending only into ranges that differ, and lists each key the nodes hold differently
with every node's version ("absent" where a node lacks it) and the winner (last write
wins). With --repair it puts the winner on every node that differs and compares again.

\b
Exit codes: 0 every node agrees (after --repair: the second comparison agrees), 1 some
keys differ or a node could not be compared, and the usual ones otherwise (see harperctl
--help). On a terminal, each table's progress (indexing, comparison rounds, records per
node, candidates) is shown while it runs.
"""


class Divergent(HarperctlError):
    """The nodes do not agree (exit 1, after the answer was printed)."""


@click.command(
    "verify",
    help=HELP,
    epilog=examples(
        "harperctl verify",
        "harperctl verify --database dev --table dog",
        "harperctl verify dev.dog --repair",
        "harperctl --json verify > verify.json",
    ),
)
@click.argument("target", required=False, metavar="[DATABASE[.TABLE]]")
@click.option("--database", "-d", metavar="NAME", help="Only this database.")
@click.option("--table", "-t", metavar="NAME", help="Only this table (needs a database).")
@click.option(
    "--repair", is_flag=True, help="Put each winner where it differs, then compare again."
)
@pass_app
def verify(
    app: AppContext, target: str | None, database: str | None, table: str | None, repair: bool
) -> None:
    if target:
        if database or table:
            raise UsageError("give DATABASE[.TABLE] or --database/--table, not both")
        database, _, table = target.partition(".")
        table = table or None
    if table and not database:
        raise UsageError("--table needs --database")
    client = app.client
    if app.options.get("timeout") is None:
        client.timeout = max(client.timeout, VERIFY_TIMEOUT)
    targets = _targets(app, database, table)
    parts = []
    for number, (db, tb) in enumerate(targets, 1):
        body: dict[str, Any] = {"operation": "cluster_verify", "database": db}
        if tb is not None:
            body["table"] = tb
        if repair:
            body["repair"] = True
        label = f"{db}.{tb}" if tb else db
        if len(targets) > 1:
            label = f"[{number}/{len(targets)}] {label}"
        parts.append(_call_showing_progress(app, body, label))
    answer = merge(parts, repair)
    app.emit(answer, render.print_verify)
    if not answer["agreed"]:
        skipped = f"; not compared: {', '.join(answer['skipped'])}" if answer["skipped"] else ""
        raise Divergent(f"{answer['divergent']} keys differ between nodes{skipped}")


def _call_showing_progress(app: AppContext, body: dict, label: str) -> Any:
    """Run one cluster_verify; on a terminal, show its phase from cluster_status meanwhile
    (polled on a second connection every half second)."""
    if app.json_output or not terminal.stderr_is_terminal():
        return app.call(body)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["answer"] = app.call(body)
        except BaseException as exc:  # re-raised on the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="verify", daemon=True)
    worker.start()
    watcher = make_client(app.settings)
    try:
        with render.verify_progress(label) as show:
            while worker.is_alive():
                worker.join(0.5)
                try:
                    show(watcher.call({"operation": "cluster_status"}).get("verifying"))
                except HarperctlError:
                    continue  # the display only; the verify itself reports its errors
    finally:
        watcher.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answer"]


def _targets(app: AppContext, database: str | None, table: str | None) -> list[tuple]:
    """One cluster_verify per table when the tables are known (progress), else per database."""
    if table:
        return [(database, table)]
    described = app.call({"operation": "describe_all"})
    if not isinstance(described, dict):
        return [(database, None)] if database else []
    if database and database not in described:
        return [(database, None)]  # let the agent say what is wrong with it
    out = []
    for db, tables in sorted(described.items()):
        if db == "system" or (database and db != database) or not isinstance(tables, dict):
            continue
        out += [(db, t) for t, d in sorted(tables.items()) if _replicates(d)]
    return out


def _replicates(description: Any) -> bool:
    return not isinstance(description, dict) or description.get("replicate", True) is not False


def merge(parts: list[dict], repair: bool) -> dict:
    """Combine the answers of several cluster_verify calls into one of the same shape."""
    databases: dict[str, dict] = {}
    for part in parts:
        for db, tables in part.get("databases", {}).items():
            databases.setdefault(db, {}).update(tables)
    skipped = sorted({n for p in parts for n in p.get("skipped", [])})
    divergent = sum(p.get("divergent", 0) for p in parts)
    answer = {
        "agreed": all(p.get("agreed") for p in parts),
        "divergent": divergent,
        "nodes": sorted({n for p in parts for n in p.get("nodes", [])}),
        "skipped": skipped,
        "databases": databases,
        "bytes": sum(p.get("bytes", 0) for p in parts),
        "seconds": round(sum(p.get("seconds", 0) for p in parts), 3),
    }
    if repair:
        answer["repaired"] = sum(p.get("repaired", 0) for p in parts)
    return answer


COMMANDS = [verify]
