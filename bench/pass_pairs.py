"""Replicated throughput with the background verify pass on and off, in interleaved pairs.

The replication bench's 3-node, batch-1000 run (100k records), alternately with
replication.verifyInterval = INTERVAL and 0, PAIRS times (the order flips every pair, so
drift of a shared machine falls on both sides); prints the runs, medians and their ratio.

    .venv/bin/python bench/pass_pairs.py 1s 6      # the pass working during the runs
    .venv/bin/python bench/pass_pairs.py 1m 6      # at its default
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT / "bench"), str(PROJECT / "tests")]
os.environ.setdefault("HARPER_TEST_HOST_BASE", "700")

import common  # noqa: E402
import replication as rb  # noqa: E402


def main(interval: str, pairs: int) -> int:
    workdir = common.make_workdir("harper-pairs-")
    env = common.agent_env(workdir)
    rss = rb.FleetRss()
    rss.start()
    runs: dict[str, list[int]] = {"on": [], "off": []}
    try:
        for rep in range(pairs):
            for label in ("on", "off") if rep % 2 == 0 else ("off", "on"):
                rb.TIMINGS["replication"]["verifyInterval"] = interval if label == "on" else "0"
                result = rb.throughput_run(workdir / f"{label}{rep}", env, rss, 3, 1000, rep)
                runs[label].append(round(result["records_per_s"]))
                print(label, rep, runs[label][-1], flush=True)
    finally:
        rss.stop()
        rb.stop_agents(rb.SPAWNED)
        common.remove_workdir(workdir)
    medians = {k: statistics.median(v) for k, v in runs.items()}
    ratio = round(medians["on"] / medians["off"], 3)
    print(json.dumps({"interval": interval, "runs": runs, "median": medians, "ratio": ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(
        main(sys.argv[1] if len(sys.argv) > 1 else "1m", int(sys.argv[2:3] and sys.argv[2] or 6))
    )
