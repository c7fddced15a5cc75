"""Cluster-wide commands: status (every node asked), wait --synced, nodes.

The node harperctl is pointed at names the members (system.hdb_nodes, each row with the
member's operations API URL, and its own cluster_status connections); every member is then
asked at once, each with a short timeout, with the same credentials. `harperctl.topology`
turns the answers into nodes, links and findings; `render_cluster` draws them.
`now` and `sleep` are the clock seam tests replace.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click

from harperctl import render_cluster, terminal, topology
from harperctl.commands._context import AppContext, make_client, pass_app, print_json, warn
from harperctl.commands._options import examples
from harperctl.errors import AgentFailed, ApiError, ConnectionFailed, HarperctlError, UsageError
from harperctl.topology import Cluster, NodeView

now: Callable[[], float] = time.time
sleep: Callable[[float], None] = time.sleep

DEFAULT_INTERVAL = 2.0
NODE_TIMEOUT = 5.0  # seconds each other node gets to answer (a frozen node must not hang us)
STATUS_BODY = {"operation": "cluster_status"}
NODES_BODY = {
    "operation": "search_by_value",
    "database": "system",
    "table": "hdb_nodes",
    "attribute": "name",
    "value": "*",
    "get_attributes": ["*"],
}


def member_rows(app: AppContext) -> list[dict]:
    """Return system.hdb_nodes' rows, or none when this user may not read them."""
    try:
        rows = app.call(dict(NODES_BODY))
    except ApiError:
        return []
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def ask_cluster(
    app: AppContext, last: Cluster | None = None, one: bool = False, each: float = NODE_TIMEOUT
) -> Cluster:
    """Ask the target for the members, then every member for its cluster_status (`one`: the
    target alone).

    When the target stops answering but an earlier round (`last`) knows the members, they
    are asked anyway and the target is shown as not answering; with no earlier round the
    target's failure is raised as usual.
    """
    try:
        status = app.call(dict(STATUS_BODY))
    except ConnectionFailed as exc:
        if last is None or one:
            raise
        nodes = [dataclasses.replace(n, status=None, error=None) for n in last.nodes]
        next(n for n in nodes if n.this).error = exc.message
        _ask_each(app, [n for n in nodes if not n.this], each)
        return topology.build(nodes)
    if not isinstance(status, dict):
        raise AgentFailed("the cluster_status answer is not an object")
    if one:
        name = str(status.get("node_name") or app.client.url)
        return topology.build([NodeView(name, app.client.url, status, this=True)])
    nodes = topology.known_nodes(status, member_rows(app), app.client.url)
    _ask_each(app, [n for n in nodes if not n.this], each)
    return topology.build(nodes)


def _ask_each(app: AppContext, nodes: list[NodeView], each: float = NODE_TIMEOUT) -> None:
    """Fill each node's status (or error), asking them all at once."""
    if not nodes:
        return
    with ThreadPoolExecutor(max_workers=min(16, len(nodes))) as pool:
        for node, (answer, error) in zip(
            nodes, pool.map(lambda n: _ask(app, n, each), nodes), strict=True
        ):
            node.status, node.error = answer, error


def _ask(app: AppContext, node: NodeView, each: float) -> tuple[Any, str | None]:
    if node.url is None:
        return None, "its operations API URL is not known"
    timeout = min(each, app.settings.timeout)
    client = make_client(dataclasses.replace(app.settings, url=node.url, timeout=timeout))
    try:
        answer = client.call(dict(STATUS_BODY))
    except HarperctlError as exc:
        return None, exc.message
    finally:
        client.close()
    if not isinstance(answer, dict):
        return None, "its cluster_status answer is not an object"
    return answer, None


STATUS_HELP = """Show the whole cluster: every node is asked (cluster_status).

The node given by --url names the members; each is asked at its operations API
(recorded in system.hdb_nodes) with the same credentials, at most 5 s each. A node
that does not answer is shown as such, with the reason.

\b
On a terminal:
  nodes   * marks the node asked; whether each answers; its links up
  links   one row per node, peer and database: the node receives the database
          from the peer ("from"). state (connected, copying, disconnected since
          when), behind (records not yet received / age of the oldest), copy
          (base copy: bar, percent, time left), latency ms, security (how the
          link was admitted: mTLS, signed, credentials, address only), clock
          offset ms (the peer's clock minus the node's). Columns are left out
          from the right when the terminal is too narrow.
  below   every error and every disagreement in full (e.g. a node that sees a
          link up while its peer does not answer), then a summary line: nodes
          and links up, records behind, the worst lag, copies, the last verify.

\b
Off a terminal (a pipe), one line per item, tab-separated, first field the kind;
each kind comes after a header line starting with "#":
  #node  name this url answers error
  #link  node from database state behind_records behind_seconds copy_percent
         copy_eta_seconds latency_ms clock_offset_ms security error notes
  summary <the summary line>      note <a finding>

\b
--json prints {"type": "cluster-wide-status", "nodes": [{"name", "operations_url",
"this", "answered", "error", "status": <that node's exact cluster_status answer>}],
"links": [...], "notes": [...], "summary": {...}, "synced": bool}.
--node NAME|URL asks one node only and shows its own view, one table per peer; with
--json that node's exact cluster_status answer.
With --watch, redraw every --interval seconds until Ctrl-C (nodes may go and come back);
with --json, one JSON object per line.
"""


def status_command(name: str) -> click.Command:
    """Return the status command under `name` (status, and its alias cluster-status)."""

    @click.command(
        name,
        help=STATUS_HELP if name == "status" else "Same as status.\n\n" + STATUS_HELP,
        epilog=examples(
            f"harperctl {name}",
            f"harperctl {name} --watch --interval 5",
            f"harperctl {name} --node server-two",
            f"harperctl {name} | grep ^link | cut -f2-5",
            f"harperctl {name} --json --watch > status.ndjson",
        ),
    )
    @click.option("--watch", "-w", is_flag=True, help="Redraw every --interval until Ctrl-C.")
    @click.option(
        "--interval",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help=f"Seconds between polls with --watch [{DEFAULT_INTERVAL:g}].",
    )
    @click.option("--node", metavar="NAME|URL", help="Ask only this node (its own view).")
    @click.option("--all", "ask_all", is_flag=True, help="Ask every node (the default).")
    @pass_app
    def command(
        app: AppContext, watch: bool, interval: float | None, node: str | None, ask_all: bool
    ) -> None:
        if interval is not None and not watch:
            raise UsageError("--interval needs --watch")
        if node is not None and ask_all:
            raise UsageError("give --node or --all, not both")
        if node is not None:
            _point_at(app, node)
        one = node is not None
        if watch:
            watch_cluster(app, interval or DEFAULT_INTERVAL, one)
        else:
            _show(app, ask_cluster(app, one=one), one)

    return command


def _show(app: AppContext, cluster: Cluster, one: bool) -> None:
    """Print one round: the exact answer (--node) or the cluster-wide object with --json."""
    if app.json_output:
        print_json(_json(cluster, one))
    else:
        render_cluster.print_cluster(app.console, cluster, now(), app.output.mode)


def _json(cluster: Cluster, one: bool) -> Any:
    return cluster.nodes[0].status if one else topology.as_json(cluster)


def _point_at(app: AppContext, node: str) -> None:
    """Make `node` (a URL, or a member's name) the agent this run talks to."""
    if "://" not in node:
        rows = {row.get("name"): row for row in member_rows(app)}
        if node not in rows:
            known = ", ".join(sorted(str(name) for name in rows)) or "none"
            raise UsageError(f"no node named {node!r} (known: {known}); give its URL instead")
        https = app.client.url.startswith("https:")
        node = topology.operations_url(rows[node], https) or ""
    app.retarget(node)


def watch_cluster(app: AppContext, interval: float, one: bool) -> None:
    """Poll every `interval` seconds until interrupted (Ctrl-C), surviving nodes that go away
    and come back; with --json print one object per line."""
    last: Cluster | None = None
    if app.json_output:
        while True:
            fresh = _poll(app, last, one, lambda error: warn(f"harperctl: {error}"))
            if fresh is not last:
                click.echo(json.dumps(_json(fresh, one), ensure_ascii=False))
            last = fresh
            sleep(interval)
    with render_cluster.watch_cluster(app.console, interval, app.output.mode) as show:
        while True:
            note: list[str] = []
            last = _poll(app, last, one, note.append)
            if last is not None:
                show(last, now(), note[0] if note else None)
            sleep(interval)


def _poll(
    app: AppContext, last: Cluster | None, one: bool, report: Callable[[str], None]
) -> Cluster | None:
    """One round; after the first, a failure is reported and the last picture kept."""
    try:
        return ask_cluster(app, last, one)
    except HarperctlError as exc:
        if last is None:
            raise
        report(f"{exc.message} (retrying)")
        return last


status = status_command("status")
cluster_status = status_command("cluster-status")


@click.command(
    "wait",
    epilog=examples(
        "harperctl wait --synced",
        "harperctl add-node server-two && harperctl wait --synced --timeout 120",
        "harperctl --json wait --synced --timeout 30",
    ),
)
@click.option("--synced", is_flag=True, help="Wait until the cluster is in sync (required).")
@click.option(
    "--timeout",
    "limit",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up after this long (exit code 1).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between checks.",
)
@pass_app
def wait(app: AppContext, synced: bool, limit: float, interval: float) -> None:
    """Wait until every node answers and every link is connected and caught up.

    In sync means: every member answers cluster_status; every link of every node is
    connected (no base copy running) with no records behind; no origin's writes lack a
    link; and every node has applied each origin as far as the others. Exit code 0 when
    in sync, 1 when --timeout passes first (the reasons are printed), as for other
    failures. Progress goes to stderr. With --json, stdout gets one object:
    {"synced": bool, "waited_seconds": S, "reasons": [...]}.
    """
    if not synced:
        raise UsageError("say what to wait for: --synced")
    started = now()
    reasons: list[str] = []
    while True:
        try:
            # the other nodes get at most what is left of --timeout (and 5 s)
            left = max(0.5, min(NODE_TIMEOUT, limit - (now() - started)))
            reasons = topology.not_synced(ask_cluster(app, each=left))
        except ConnectionFailed as exc:
            reasons = [exc.message]
        waited = now() - started
        if not reasons or waited >= limit:
            break
        _progress(
            f"waiting for sync ({waited:.0f}s): {reasons[0]}"
            + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else "")
        )
        sleep(min(interval, max(0.0, limit - waited)))
    _progress(None)
    if app.json_output:
        print_json({"synced": not reasons, "waited_seconds": round(waited, 3), "reasons": reasons})
    if reasons:
        listed = "\n  ".join(reasons[:10]) + ("\n  ..." if len(reasons) > 10 else "")
        raise HarperctlError(f"not in sync after {waited:.0f}s:\n  {listed}")
    if not app.json_output:
        click.echo(f"in sync after {waited:.1f}s")


_last_progress: list[str] = []


def _progress(line: str | None) -> None:
    """Show what wait is waiting for: one line redrawn on a terminal, else each change."""
    if terminal.stderr_is_terminal():
        click.echo("\r\033[K" + (line or ""), err=True, nl=line is None)
    elif line is not None and (not _last_progress or _last_progress[-1] != line):
        _last_progress.append(line)
        click.echo(line, err=True)


@click.command("nodes", epilog=examples("harperctl nodes", "harperctl --json nodes"))
@pass_app
def nodes(app: AppContext) -> None:
    """List the nodes this node knows (system.hdb_nodes): * marks this node, and whether
    each answers now (GET /health). --json prints exactly the rows."""
    rows = app.call(dict(NODES_BODY))
    if app.json_output:
        print_json(rows)
        return
    rows = [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
    me = app.call(dict(STATUS_BODY)).get("node_name")
    https = app.client.url.startswith("https:")
    urls = [topology.operations_url(row, https) for row in rows]
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(rows)))) as pool:
        answers = list(pool.map(lambda url: _health(app, url), urls))
    render_cluster.print_nodes(app.console, rows, me, urls, answers, app.output.mode)


def _health(app: AppContext, url: str | None) -> str | None:
    """Return None when the node at `url` answers /health, else why not."""
    if url is None:
        return "operations API URL not known"
    timeout = min(NODE_TIMEOUT, app.settings.timeout)
    client = make_client(dataclasses.replace(app.settings, url=url, timeout=timeout))
    try:
        client.health()
    except HarperctlError as exc:
        return exc.message
    finally:
        client.close()
    return None


COMMANDS = [status, cluster_status, wait, nodes]
