"""Draw the cluster (harperctl.topology) for people, or as tagged tab-separated lines.

On a terminal: a nodes table, a links table whose columns fit the width (the least needed
ones are left out on narrow terminals, never squeezed into wrapped cells), every error and
disagreement in full below, then one summary line. Off a terminal: one line per node, link
and summary, tab-separated, first field the kind (`node`, `link`, `summary`), each kind
preceded once by a `#`-header naming its fields; no cell is ever wrapped.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harperctl.topology import (
    STATES_UP,
    Cluster,
    LinkView,
    NodeView,
    Summary,
    as_json,
    is_number,
    summarize,
)

BAR_WIDTH = 10
STATE_STYLES = {"connected": "green", "copying": "yellow", "disconnected": "red"}
# links table columns: (header, priority); on a narrow terminal the highest numbers go first
LINK_COLUMNS = (
    ("node", 0),
    ("from", 0),
    ("database", 0),
    ("state", 0),
    ("behind", 1),
    ("copy", 2),
    ("latency ms", 3),
    ("security", 4),
    ("offset ms", 5),
)
NODE_FIELDS = ("name", "this", "url", "answers", "error")
LINK_FIELDS = (
    "node",
    "from",
    "database",
    "state",
    "behind_records",
    "behind_seconds",
    "copy_percent",
    "copy_eta_seconds",
    "latency_ms",
    "clock_offset_ms",
    "security",
    "error",
    "notes",
)


def cluster_view(
    cluster: Cluster, width: int, now: float, note: str | None = None, head: bool = False
) -> Group:
    """Return the whole picture for a terminal `width` columns wide; with `head` the note and
    the summary come first (--watch: they stay in view when the rest does not fit)."""
    summary = summary_text(summarize(cluster), now)
    top = [Text(note, style="dim")] if note else []
    parts: list[Any] = [*top, summary, Text("")] if head else []
    parts += [nodes_table(cluster), Text("")]
    if cluster.links:
        parts.append(links_table(cluster.links, width, now))
    else:
        parts.append(Text("no replication links", style="dim"))
    details = detail_lines(cluster)
    if details:
        parts += [Text(""), *details]
    if not head:
        parts += [Text(""), summary, *top]
    return Group(*parts)


def nodes_table(cluster: Cluster) -> Table:
    """Nodes: `*` marks the one asked; whether each answered; its links up."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, title="nodes", title_justify="left")
    for header in ("", "node", "operations API", "answers", "links up"):
        table.add_column(header, no_wrap=True, overflow="ellipsis")
    for node in cluster.nodes:
        mine = [link for link in cluster.links if link.node == node.name]
        up = sum(link.state in STATES_UP for link in mine)
        table.add_row(
            "*" if node.this else "",
            Text(node.name, style="bold" if node.this else ""),
            Text(node.url or "-"),
            Text("yes", style="green") if node.answered else Text("no", style="red"),
            Text(f"{up}/{len(mine)}" if node.answered else "-"),
        )
    return table


def links_table(links: list[LinkView], width: int, now: float) -> Table:
    """One row per (node, from, database); columns left out from the right when too narrow."""
    rows = [link_cells(link, now) for link in links]
    keep = fit_columns([h for h, _ in LINK_COLUMNS], rows, width)
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, title="links (node <- from)", title_justify="left"
    )
    for index in keep:
        header = LINK_COLUMNS[index][0]
        right = header in ("behind", "latency ms", "offset ms")
        table.add_column(header, no_wrap=True, justify="right" if right else "left")
    for cells in rows:
        table.add_row(*(cells[index] for index in keep))
    return table


def fit_columns(headers: list[str], rows: list[list[Text]], width: int) -> list[int]:
    """Return the indexes of the columns to show so the table fits `width` columns."""
    widths = [
        max([len(header)] + [cell.cell_len for cell in (row[i] for row in rows)])
        for i, header in enumerate(headers)
    ]
    keep = list(range(len(headers)))
    by_priority = sorted(keep, key=lambda i: (-LINK_COLUMNS[i][1], -i))
    for index in by_priority:
        # each column: its cells, one space of padding each side, one between columns
        if sum(widths[i] + 3 for i in keep) <= width or LINK_COLUMNS[index][1] == 0:
            break
        keep.remove(index)
    return keep


def link_cells(link: LinkView, now: float) -> list[Text]:
    """Return the cells of one link, in LINK_COLUMNS order."""
    state = "down" if link.state == "disconnected" else link.state
    since = parse_date(link.down_since)
    if link.state not in STATES_UP and since is not None:
        state += f" {seconds_text(max(0.0, now - since))}"
    return [
        Text(link.node),
        Text(link.peer),
        Text(link.database),
        Text(state + (" !" if link.notes else ""), style=STATE_STYLES.get(link.state, "")),
        Text(behind_text(link)),
        copy_bar(link.copy),
        Text(number(link.latency_ms)),
        Text(security_text(link.security)),
        Text(number(link.offset_ms)),
    ]


def behind_text(link: LinkView) -> str:
    """Records behind and the age of the oldest, e.g. "1,204 / 3.5s"; "-" when unknown."""
    if link.behind_records is None:
        return "-"
    text = f"{link.behind_records:,.0f}"
    seconds = link.behind_seconds if link.behind_seconds is not None else link.lag_seconds
    if link.behind_records and seconds is not None:
        text += f" / {seconds_text(seconds)}"
    return text


def copy_bar(copy: dict | None) -> Text:
    """A base copy as a bar, percent and time left: "█████░░░░░ 52% 3s left"; "-" if none."""
    if not isinstance(copy, dict):
        return Text("-")
    percent = copy.get("percent")
    percent = float(percent) if isinstance(percent, (int, float)) else 0.0
    if copy.get("state") == "done":
        return Text("done", style="dim")
    filled = round(BAR_WIDTH * max(0.0, min(percent, 100.0)) / 100)
    text = Text("█" * filled, style="yellow")
    text.append("░" * (BAR_WIDTH - filled), style="dim")
    eta = copy.get("eta_seconds")
    left = f" {seconds_text(eta)} left" if isinstance(eta, (int, float)) else ""
    text.append(f" {percent:.0f}%{left}")
    return text


def security_text(security: dict | None) -> str:
    """How the link was admitted: mTLS, signed, credentials, address only; "-" unknown."""
    if not security or not security.get("mode"):
        return "-"
    mode = str(security["mode"])
    if mode == "mtls":
        return "mTLS"
    if mode == "address":
        return "address only"
    transport = security.get("transport")
    return f"{mode} ({transport})" if transport else mode


def detail_lines(cluster: Cluster) -> list[Text]:
    """Errors and disagreements in full, wrapped by the console rather than cut; one line for
    what several databases of the same pair of nodes share."""
    lines = [
        Text(f"{node.name} does not answer: {node.error}", style="red")
        for node in cluster.nodes
        if not node.answered
    ]
    found: dict[tuple[str, str, str, str], list[str]] = {}
    for link in cluster.links:
        if len(link.behind_by_origin) > 1:  # one origin is already the row's behind column
            each = ", ".join(
                f"{b.get('origin')} {b.get('records'):,}"
                + (f" ({seconds_text(b['seconds'])})" if is_number(b.get("seconds")) else "")
                for b in link.behind_by_origin
            )
            lines.append(Text(f"{link.node} <- {link.peer} {link.database}: behind {each}"))
        for kind, text in [("last error: ", link.error)] * bool(link.error) + [
            ("", note) for note in link.notes
        ]:
            found.setdefault((link.node, link.peer, kind, text), []).append(link.database)
    for (node, peer, kind, text), databases in found.items():
        style = "red" if kind else "yellow"
        lines.append(Text(f"{node} <- {peer} ({', '.join(databases)}): {kind}{text}", style=style))
    lines += [Text(note, style="yellow") for note in cluster.notes]
    return lines


def summary_text(summary: Summary, now: float) -> Text:
    """The one summary line."""
    healthy = summary.nodes_up == summary.nodes and summary.links_up == summary.links
    text = Text(
        f"nodes {summary.nodes_up}/{summary.nodes} up · "
        f"links {summary.links_up}/{summary.links} up",
        style="bold green" if healthy and not summary.disagreements else "bold red",
    )
    for part in summary_parts(summary, now):
        text.append(" · " + part)
    return text


def summary_parts(summary: Summary, now: float) -> list[str]:
    """The summary's parts after nodes and links: behind, worst lag, copies, verify."""
    parts = [f"{summary.behind_records:,} records behind"]
    worst = summary.worst_lag
    if worst is not None:
        seconds = max(v for v in (worst.behind_seconds, worst.lag_seconds) if v is not None)
        parts.append(
            f"worst lag {seconds_text(seconds)} ({worst.node} <- {worst.peer} {worst.database})"
        )
    if summary.copying:
        parts.append(f"{summary.copying} copying")
    if summary.disagreements:
        parts.append(f"{summary.disagreements} disagreements")
    if summary.divergent is None:
        parts.append("verify: not run")
    else:
        ago = f" {seconds_text(max(0.0, now - summary.verify_at))} ago" if summary.verify_at else ""
        found = "agreed" if not summary.divergent else f"{summary.divergent} keys apart"
        parts.append(f"verify{ago}: {found}")
    return parts


def tsv_lines(cluster: Cluster, now: float) -> Iterator[str]:
    """Yield the cluster as tagged tab-separated lines (see the module docstring)."""
    yield "#node\t" + "\t".join(NODE_FIELDS)
    for node in cluster.nodes:
        yield _tsv("node", node.name, "yes" if node.this else "", node.url, _yn(node), node.error)
    yield "#link\t" + "\t".join(LINK_FIELDS)
    for link in cluster.links:
        copy = link.copy or {}
        yield _tsv(
            "link",
            link.node,
            link.peer,
            link.database,
            link.state,
            link.behind_records,
            link.behind_seconds,
            copy.get("percent") if copy.get("state") == "copying" else None,
            copy.get("eta_seconds") if copy.get("state") == "copying" else None,
            link.latency_ms,
            link.offset_ms,
            security_text(link.security),
            link.error,
            "; ".join(link.notes),
        )
    summary = summarize(cluster)
    text = (
        f"nodes {summary.nodes_up}/{summary.nodes} up · links {summary.links_up}/{summary.links} "
        "up · " + " · ".join(summary_parts(summary, now))
    )
    yield _tsv("summary", text)
    for note in cluster.notes:
        yield _tsv("note", note)


def _line(console: Console, line: str) -> None:
    """Write one line as is: no markup, no wrapping, tabs kept."""
    console.file.write(line + "\n")
    console.file.flush()


def _yn(node: NodeView) -> str:
    return "yes" if node.answered else "no"


def _tsv(*fields: Any) -> str:
    return "\t".join(tsv_cell(field) for field in fields)


def tsv_cell(value: Any) -> str:
    """One field: empty for None, backslash, tab and newline escaped."""
    if value is None:
        return ""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def number(value: Any) -> str:
    """Milliseconds: 2 decimals below 10, 1 below 100, else none; "-" when unknown."""
    if not is_number(value):
        return "-"
    if abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:.1f}" if abs(value) < 100 else f"{value:,.0f}"


def seconds_text(seconds: float) -> str:
    """0.4s, 12.5s, 3m05s, 2h04m."""
    if abs(seconds) < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def parse_date(value: Any) -> float | None:
    """Return an RFC 1123 date ("Sun, 06 Dec 2026 19:40:01 GMT") as epoch seconds, else None."""
    try:
        return email.utils.parsedate_to_datetime(str(value)).timestamp() if value else None
    except (TypeError, ValueError, IndexError):
        return None


def print_cluster(console: Console, cluster: Cluster, now: float, mode: str = "auto") -> None:
    """Print the cluster in `mode`: table, tsv, jsonl (one object per node, link, summary and
    note, with a "kind"), or auto (tables on a terminal, tsv otherwise)."""
    if mode == "auto":
        mode = "table" if console.is_terminal else "tsv"
    if mode == "table":
        console.print(cluster_view(cluster, console.width, now))
    elif mode == "jsonl":
        for item in jsonl_items(cluster, now):
            _line(console, json.dumps(item, ensure_ascii=False))
    else:
        for line in tsv_lines(cluster, now):
            _line(console, line)


def jsonl_items(cluster: Cluster, now: float) -> Iterator[dict]:
    """Yield the nodes, links, summary and notes as objects, each with its "kind"."""
    whole = as_json(cluster)
    for node in whole["nodes"]:
        yield {"kind": "node", **{k: v for k, v in node.items() if k != "status"}}
    for link in whole["links"]:
        yield {"kind": "link", **link}
    yield {"kind": "summary", **whole["summary"], "synced": whole["synced"]}
    for note in whole["notes"]:
        yield {"kind": "note", "text": note}


@contextlib.contextmanager
def watch_cluster(
    console: Console, every: float, mode: str = "auto"
) -> Iterator[Callable[[Cluster, float, str | None], None]]:
    """Yield `show(cluster, now, note)`: redrawn in place on a terminal (rich Live), else
    printed again in `mode`, followed by a blank line."""
    if not console.is_terminal or mode not in ("auto", "table"):

        def again(cluster: Cluster, now: float, note: str | None = None) -> None:
            print_cluster(console, cluster, now, mode)
            _line(console, "")

        yield again
        return

    def view(cluster: Cluster, now: float, note: str | None) -> Group:
        stamp = time.strftime("%H:%M:%S", time.localtime(now))
        lines = [f"refreshed {stamp} · every {every:g}s · Ctrl-C to stop", note]
        return cluster_view(cluster, console.width, now, " · ".join(x for x in lines if x), True)

    with Live(console=console, auto_refresh=False, transient=False) as live:
        yield lambda cluster, now, note=None: live.update(view(cluster, now, note), refresh=True)


def print_nodes(
    console: Console,
    rows: list[dict],
    me: str | None,
    urls: list[str | None],
    answers: list[str | None],
    mode: str = "auto",
) -> None:
    """Print hdb_nodes rows: * for this node, name, operations API, whether it answers, url.

    `answers[i]` is None when row i's node answered /health, else the reason it did not.
    `mode` as print_cluster's; jsonl gives each row with `this`, `answers` and `error` added.
    """
    if mode == "auto":
        mode = "table" if console.is_terminal else "tsv"
    if mode == "jsonl":
        for row, url, error in zip(rows, urls, answers, strict=True):
            more = {"this": row.get("name") == me, "answers": error is None, "error": error}
            _line(console, json.dumps({**row, "operations_url": url, **more}))
        return
    if not rows:
        console.print("no nodes (this node has not joined a cluster)")
        return
    if mode == "tsv":
        _line(console, "#node\tname\tthis\toperations_url\tanswers\terror\turl")
        for row, url, error in zip(rows, urls, answers, strict=True):
            this = "yes" if row.get("name") == me else ""
            fields = ("node", row.get("name"), this, url, _yes(error), error, row.get("url"))
            _line(console, _tsv(*fields))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for header in ("", "node", "operations API", "answers", "replication URL"):
        table.add_column(header, no_wrap=True, overflow="ellipsis")
    for row, url, error in zip(rows, urls, answers, strict=True):
        table.add_row(
            "*" if row.get("name") == me else "",
            Text(str(row.get("name") or "?"), style="bold" if row.get("name") == me else ""),
            Text(url or "-"),
            Text("yes", style="green") if error is None else Text("no", style="red"),
            Text(str(row.get("url") or "-")),
        )
    console.print(table)
    for row, error in zip(rows, answers, strict=True):
        if error is not None:
            console.print(Text(f"{row.get('name')} does not answer: {error}", style="red"))


def _yes(error: str | None) -> str:
    return "yes" if error is None else "no"
