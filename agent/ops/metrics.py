"""GET /metrics: Prometheus text exposition of this node's replication and verify counters.

Numbers only (no rows, no credentials), so it answers without credentials like /health.
The replication figures come from the same places as cluster_status.
"""

from __future__ import annotations

import time
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

VERIFY = (  # (metric, antiEntropy key, type, help)
    ("harper_verify_checks_total", "checks", "counter", "Background verify checks completed."),
    ("harper_verify_divergent_keys_total", "divergentKeys", "counter", "Keys found apart."),
    ("harper_verify_repaired_rows_total", "repairedRows", "counter", "Rows repaired."),
    ("harper_verify_errors_total", "errors", "counter", "Checks that failed (peer away)."),
    ("harper_verify_deferred_total", "deferred", "counter", "Turns skipped: budget spent."),
    ("harper_verify_cpu_seconds_total", "cpuSeconds", "counter", "CPU spent on verify work."),
    ("harper_verify_bytes_total", "bytes", "counter", "Bytes exchanged by checks."),
)


def _label(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f"{k}={_label(v)}" for k, v in labels.items()) + "}"


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.declared: set[str] = set()

    def add(self, name: str, kind: str, help_: str, value: float, **labels: Any) -> None:
        if name not in self.declared:
            self.declared.add(name)
            self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
        suffix = _labels(**labels) if labels else ""
        self.lines.append(f"{name}{suffix} {float(value):g}")


def render(services, status: dict | None) -> str:
    """The exposition text; `status` is cluster_status's answer (None without replication)."""
    out = _Out()
    out.add("harper_up", "gauge", "The agent answers.", 1)
    out.add(
        "harper_uptime_seconds", "gauge", "Seconds since start.", time.time() - services.started
    )
    if status is not None:
        _links(out, status)
        _verify(out, status)
    return "\n".join(out.lines) + "\n"


def _links(out: _Out, status: dict) -> None:
    """Per link: streaming, gaps, behind per origin; per database: unserved origins."""
    for conn in status.get("connections", []):
        for s in conn.get("database_sockets", []):
            peer, database = conn.get("name"), s.get("database")
            out.add(
                "harper_replication_connected",
                "gauge",
                "1 while the link streams.",
                1 if s.get("connected") else 0,
                peer=peer,
                database=database,
            )
            out.add(
                "harper_replication_gaps_total",
                "counter",
                "Gaps refused on the link.",
                s.get("gaps") or 0,
                peer=peer,
                database=database,
            )
            for behind in s.get("behind") or []:
                labels = {"peer": peer, "database": database, "origin": behind["origin"]}
                out.add(
                    "harper_replication_records_behind",
                    "gauge",
                    "Records the peer has that this node has not applied.",
                    behind["records"],
                    **labels,
                )
                out.add(
                    "harper_replication_behind_seconds",
                    "gauge",
                    "Age of the oldest record not applied yet.",
                    behind["seconds"],
                    **labels,
                )
    for database, origins in (status.get("origins") or {}).items():
        for origin in origins:
            out.add(
                "harper_replication_origin_unserved",
                "gauge",
                "1 when no link brings this origin's writes.",
                1 if origin.get("unserved") else 0,
                database=database,
                origin=origin["origin"],
            )


def _verify(out: _Out, status: dict) -> None:
    """The background pass's counters and the last cluster_verify run here."""
    passes = status.get("antiEntropy") or {}
    for name, key, kind, help_ in VERIFY:
        out.add(name, kind, help_, passes.get(key) or 0)
    last = status.get("verify")
    if last:
        out.add(
            "harper_verify_last_agreed",
            "gauge",
            "1 if the last cluster_verify run here found every node agreeing.",
            1 if last.get("agreed") else 0,
        )
        out.add(
            "harper_verify_last_timestamp_seconds",
            "gauge",
            "When the last cluster_verify run here finished.",
            last.get("at") or 0,
        )
