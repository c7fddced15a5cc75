"""Replication over wss (mutual TLS on replication.securePort) against plain ws, in one run.

Real agents through tests/harness.py and bench/replication.py (its clusters, timings, client
and scenarios, with their transport option), on loopback addresses 127.0.0.200-230 only.
ws is the default: replication upgrades on the operations API port (aiohttp), a node proving
itself with an X-Harper-Node header. wss: each node listens on its own
replication.securePort (the `websockets` server), nodes join with add_node to
wss://host:securePort with verify_tls false and admin credentials, the peer signs a CSR,
and from then on links use mutual TLS.

Scenarios:

    pairs      PAIRS interleaved pairs, the order flipping every pair (ws wss, wss ws, ...):
               per transport, the replication bench's 2-node batch-1000 throughput run
               (THROUGHPUT_RECORDS inserted on node 0 until node 1 holds them all), then its
               2-node lag run (LAG_SAMPLES single inserts at 200 writes/s); every run on
               fresh agents. Medians per transport, their ratio wss/ws, and the median of
               the per-pair ratios.
    join       JOINS 2-node boots per transport (the pairs' boots, then bare ones,
               interleaved): the add_node request, then from its answer until both nodes'
               cluster_status show every database streaming from the other.
    handshake  one wss 2-node cluster; HANDSHAKES fresh connections of each kind to node 0,
               interleaved (kind order rotating per round), after WARMUP untimed rounds;
               node 1's identity is read from its root (keys/privateKey.pem) and from
               system.hdb_certificate (search_by_value as admin):
                 ws_credentials   ws to the operations API port, Authorization: Basic
                 ws_proof         ws to the operations API port, X-Harper-Node proof made
                                  with node 1's key (as a ws link dials); the answering
                                  proof is checked (signature and chain), as a link does
                 wss_mtls         TLS to replication.securePort presenting node 1's
                                  certificate, verifying node 0's against the CAs
                 wss_credentials  TLS without a client certificate, no verification,
                                  Authorization: Basic (what a first add_node dials)
               `upgrade_ms` is dialling until the 101, `first_answer_ms` until the answer
               to an OpRequest origin_heads sent as the first frame.

    .venv/bin/python bench/secure.py            # writes bench/results/secure.json
    BENCH_QUICK=1 .venv/bin/python bench/secure.py   # 3 pairs, 10x smaller, fewer samples
"""

from __future__ import annotations

import base64
import itertools
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT / "bench"), str(PROJECT / "tests"), str(PROJECT)]
# 127.0.0.200 .. 127.0.0.230: next_host() maps n to 127.0.{n // 250}.{n % 250 + 2}
HOSTS = range(198, 229)
os.environ["HARPER_TEST_HOST_BASE"] = str(HOSTS.start)

import common  # noqa: E402
import harness  # noqa: E402
import replication as rb  # noqa: E402
from common import BenchError, stop_agents  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from agent.certs import authority, proof  # noqa: E402
from agent.core import messages  # noqa: E402

# Cycle through the 31 addresses: a run's agents are stopped before their address comes round
# again (every agent gets a fresh free port as well).
harness._hosts = itertools.cycle(HOSTS)

PAIRS = 3 if common.QUICK else 10
JOINS = 10 if common.QUICK else 20  # join samples per transport: 2 per pair, then bare boots
JOIN_EXTRA = max(0, JOINS - 2 * PAIRS)
HANDSHAKES = 10 if common.QUICK else 20
WARMUP = 2
OPEN_TIMEOUT = 3.0  # a dial with no 101 by then is counted as a stall and dialled again
BATCH = 1000
RESULTS = common.results_path("secure")
SUBPROTOCOL = "harperctl-replication-v1"  # agent/replication/transport.py
FIRST_FRAME = messages.serialize(messages.OpRequest(1, {"operation": "origin_heads"}))
KINDS = ("ws_credentials", "ws_proof", "wss_mtls", "wss_credentials")
TP_KEYS = ("records_per_s", "insert_records_per_s", "seconds", "behind_last_ack_s")
LAG_KEYS = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "first_poll_share", "ack_p50_ms")


def order(pair: int) -> tuple[str, str]:
    """ws first on even pairs, wss first on odd ones: drift of a shared machine hits both."""
    return rb.TRANSPORTS if pair % 2 == 0 else rb.TRANSPORTS[::-1]


def median(values: list[float], ndigits: int = 3) -> float:
    return round(statistics.median(values), ndigits)


# -- scenario 1: throughput and lag, interleaved ------------------------------------------------


def run_pairs(workdir: Path, env: dict, rss: rb.FleetRss) -> dict:
    """PAIRS x (throughput run, lag run) per transport on fresh 2-node clusters."""
    runs: dict[str, list[dict]] = {t: [] for t in rb.TRANSPORTS}
    for pair in range(PAIRS):
        for transport in order(pair):
            tp = rb.throughput_run(workdir, env, rss, 2, BATCH, pair, transport)
            lag = rb.lag_run(workdir, env, rss, pair, transport)
            runs[transport].append({"pair": pair, "throughput": tp, "lag": lag})
            print(
                f"pair {pair} {transport:<3}: {common.fmt_rate(tp['records_per_s']):>7} rec/s "
                f"replicated, lag p50 {lag['p50_ms']:.2f} ms p99 {lag['p99_ms']:.2f} ms",
                flush=True,
            )
    medians = {
        t: {
            "throughput": {k: median([r["throughput"][k] for r in rs]) for k in TP_KEYS},
            "lag": {k: median([r["lag"][k] for r in rs]) for k in LAG_KEYS},
            "rss_max_mb": max(
                mb
                for r in rs
                for part in ("throughput", "lag")
                for mb in r[part]["rss_max_mb"].values()
            ),
        }
        for t, rs in runs.items()
    }
    ratio = {
        part: {k: round(medians["wss"][part][k] / medians["ws"][part][k], 3) for k in keys}
        for part, keys in (("throughput", TP_KEYS), ("lag", LAG_KEYS))
        if all(medians[t][part][k] for t in rb.TRANSPORTS for k in keys)
    }
    pair_ratios = {
        "throughput_records_per_s": [
            round(w["throughput"]["records_per_s"] / p["throughput"]["records_per_s"], 3)
            for p, w in zip(runs["ws"], runs["wss"], strict=True)
        ],
        "lag_p50_ms": [
            round(w["lag"]["p50_ms"] / p["lag"]["p50_ms"], 3)
            for p, w in zip(runs["ws"], runs["wss"], strict=True)
        ],
    }
    return {
        "method": f"{PAIRS} pairs, order flipping (ws wss, wss ws, ...); per transport a fresh "
        f"2-node cluster, {rb.THROUGHPUT_RECORDS:,} records inserted on node 0 at batch {BATCH} "
        "until node 1's COUNT(*) shows them all (bench/replication.py throughput_run), then "
        f"another fresh 2-node cluster, {rb.LAG_SAMPLES} single inserts at {rb.LAG_RATE} "
        "writes/s, lag = insert's 200 until node 1's search_by_id has it (lag_run)",
        "order": [list(order(p)) for p in range(PAIRS)],
        "median": medians,
        "ratio_wss_ws": ratio,
        "pair_ratios_wss_ws": pair_ratios,
        "median_pair_ratio_wss_ws": {k: median(v) for k, v in pair_ratios.items()},
        "runs": runs,
    }


# -- scenario 2: joins --------------------------------------------------------------------------


def run_joins(workdir: Path, env: dict, pairs: dict) -> dict:
    """JOIN_EXTRA bare 2-node boots per transport, pooled with the pairs' boots."""
    samples: dict[str, list[dict]] = {
        t: [r[part]["join"] for r in pairs["runs"][t] for part in ("throughput", "lag")]
        for t in rb.TRANSPORTS
    }
    for rep in range(JOIN_EXTRA):
        for transport in order(rep):
            cluster = rb.new_cluster(workdir / f"join-r{rep}-{transport}", 2, env, transport)
            try:
                samples[transport].append(rb.boot_cluster(cluster))
            finally:
                stop_agents(cluster.nodes)
    keys = ("add_node_ms", "connected_ms")
    medians = {t: {k: median([s[k] for s in ss], 1) for k in keys} for t, ss in samples.items()}
    return {
        "method": "fresh 2-node cluster, db.t created on node 0, node 1 runs add_node to it "
        "(wss: verify_tls false and credentials); add_node_ms = that request; connected_ms = "
        "from its answer until both nodes' cluster_status (polled every "
        f"{rb.LINK_INTERVAL * 1000:.0f} ms) show the system and db sockets connected. Samples: "
        f"the pairs' boots plus {JOIN_EXTRA} bare boots per transport",
        "median": medians,
        "ratio_wss_ws": {k: round(medians["wss"][k] / medians["ws"][k], 3) for k in keys},
        "samples": samples,
    }


# -- scenario 3: one connection's handshake -----------------------------------------------------


class Dialer:
    """Fresh replication connections to `hub` as `node` (a joined wss cluster), four ways."""

    def __init__(self, hub: harness.Agent, node: harness.Agent, folder: Path) -> None:
        self.hub, self.node = hub, node
        self.wss_url = hub.extra_config["replication"]["url"]
        rows = node.op(
            {
                "operation": "search_by_value",
                "database": "system",
                "table": "hdb_certificate",
                "attribute": "name",
                "value": "*",
            }
        )
        cas = "".join(r["certificate"] for r in rows if r["is_authority"])
        self.cas = authority.parse_certificates(cas)
        # the certificate node 1 replicates with: the one node 0 signed at add_node
        own = [r for r in rows if f"CN={node.host}" in r["details"]["subject"].split(",")]
        chosen = next((r for r in own if "replication" in (r["uses"] or [])), None)
        if chosen is None:
            raise BenchError(
                f"no certificate signed for {node.host} in {[r['name'] for r in rows]}"
            )
        self.certificate_row = chosen["name"]
        self.chain_pem = chosen["certificate"]
        key_path = node.root / "keys" / "privateKey.pem"
        self.key = authority.load_key(key_path.read_bytes())
        cert_path = folder / "client-certificate.pem"
        cert_path.write_text(self.chain_pem)
        self.mtls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname, CERT_REQUIRED
        self.mtls.load_verify_locations(cadata=cas)
        self.mtls.load_cert_chain(cert_path, key_path)
        self.blind = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.blind.check_hostname = False
        self.blind.verify_mode = ssl.CERT_NONE
        token = base64.b64encode(f"admin:{hub.password}".encode()).decode("ascii")
        self.basic = {"Authorization": f"Basic {token}"}

    def dial(self, kind: str) -> tuple[float, float]:
        """One fresh connection of `kind`; return (seconds to the 101, to the first answer)."""
        clock = time.perf_counter
        start = clock()
        nonce = None
        if kind == "ws_credentials":
            url, tls, headers = self.hub.ws_url, None, self.basic
        elif kind == "ws_proof":
            nonce = proof.new_nonce()
            value = proof.make(
                self.key,
                self.chain_pem,
                self.node.host,
                self.hub.host,
                nonce,
                int(time.time() * 1000),
            )
            url, tls, headers = self.hub.ws_url, None, {proof.HEADER: value}
        elif kind == "wss_mtls":
            url, tls, headers = self.wss_url, self.mtls, {}
        else:
            url, tls, headers = self.wss_url, self.blind, self.basic
        with connect(
            url,
            ssl=tls,
            additional_headers=headers,
            subprotocols=[SUBPROTOCOL],
            compression=None,
            proxy=None,
            open_timeout=OPEN_TIMEOUT,
            ping_interval=None,
            close_timeout=2,
        ) as ws:  # the close, on leaving, is not timed
            if nonce is not None:
                self.check_answer(ws.response.headers.get(proof.HEADER), nonce)
            upgraded = clock()
            ws.send(FIRST_FRAME)
            answer = messages.parse(ws.recv(timeout=10))
            answered = clock()
        if not isinstance(answer, messages.OpResult) or answer.status != 200:
            raise BenchError(f"{kind}: origin_heads answered {answer!r}")
        return upgraded - start, answered - start

    def check_answer(self, value: str | None, nonce: str) -> None:
        """What a ws link checks of node 0's answering proof: signature, nonce, chain."""
        if not value:
            raise BenchError("ws_proof: no answering proof")
        claim = proof.read(value)
        if claim.nonce != nonce or claim.node != self.hub.host:
            raise BenchError(f"ws_proof: the answer is for {claim.nonce} from {claim.node}")
        authority.verify_chain(claim.chain, self.cas)


def dial_again(dialer: Dialer, kind: str, stalls: list[dict]) -> tuple[float, float]:
    """`dialer.dial(kind)`, dialled again (at most 3 times) after a dial got no 101 in time.

    Now and then (1 in 150-600 wss dials in trials) a websockets.sync client's wss dial waits for
    the 101 until its timeout while the agent keeps answering /health; a raw ssl socket sending
    the same upgrade did not stall in 1,200 dials. Stalls are recorded, not timed.
    """
    for _ in range(3):
        try:
            return dialer.dial(kind)
        except TimeoutError as exc:
            stalls.append({"kind": kind, "error": str(exc)})
            print(f"  {kind}: no 101 within {OPEN_TIMEOUT:.0f} s, dialling again", flush=True)
    raise BenchError(f"{kind}: three dials in a row got no 101")


def run_handshakes(workdir: Path, env: dict) -> dict:
    """WARMUP untimed and HANDSHAKES timed rounds of every kind, kind order rotating."""
    cluster = rb.new_cluster(workdir / "handshake", 2, env, "wss")
    samples: dict[str, dict[str, list[float]]] = {
        k: {"upgrade_ms": [], "first_answer_ms": []} for k in KINDS
    }
    stalls: list[dict] = []
    try:
        join = rb.boot_cluster(cluster)
        folder = Path(tempfile.mkdtemp(prefix="client-", dir=workdir))
        dialer = Dialer(cluster[0], cluster[1], folder)
        for rnd in range(WARMUP + HANDSHAKES):
            shift = rnd % len(KINDS)
            for kind in KINDS[shift:] + KINDS[:shift]:
                upgraded, answered = dial_again(dialer, kind, stalls)
                if rnd >= WARMUP:
                    samples[kind]["upgrade_ms"].append(round(upgraded * 1000, 3))
                    samples[kind]["first_answer_ms"].append(round(answered * 1000, 3))
        security = {
            c["name"]: c["security"]
            for c in cluster[0].op({"operation": "cluster_status"})["connections"]
        }
    finally:
        stop_agents(cluster.nodes)
    medians = {k: {m: median(v) for m, v in s.items()} for k, s in samples.items()}
    return {
        "method": f"one wss 2-node cluster; {HANDSHAKES} fresh connections of each kind to node "
        f"0 after {WARMUP} untimed rounds, interleaved, kind order rotating every round; client "
        "identity = node 1's keys/privateKey.pem and its hdb_certificate row "
        "(websockets.sync.client; contexts built once, a ws proof made per dial); "
        "upgrade_ms = dialling until the 101 (ws_proof: and the answering proof checked), "
        "first_answer_ms = until the OpResult of an origin_heads OpRequest sent first",
        "client_certificate_row": dialer.certificate_row,
        "stalls": stalls,
        "cluster_join": join,
        "link_security_at_node0": security,
        "median": medians,
        "ratio_wss_mtls_to_ws_proof": {
            m: round(medians["wss_mtls"][m] / medians["ws_proof"][m], 3)
            for m in medians["ws_proof"]
        },
        "ratio_wss_mtls_to_ws_credentials": {
            m: round(medians["wss_mtls"][m] / medians["ws_credentials"][m], 3)
            for m in medians["ws_credentials"]
        },
        "samples": samples,
    }


# -- output -------------------------------------------------------------------------------------


def print_summary(result: dict) -> None:
    m = result["machine"]
    mode = "QUICK (10x smaller)" if result["quick"] else "full"
    print(f"\nwss against ws, {mode}, {result['when']}")
    print(
        f"machine: {m['cpu_count']} CPUs, load average {m['loadavg_at_start'][0]} at start, "
        f"{m['loadavg_at_end'][0]} at end\n"
    )
    pairs = result["pairs"]
    print(f"2 nodes, {rb.THROUGHPUT_RECORDS:,} records at batch {BATCH}, {PAIRS} interleaved pairs")
    for t in rb.TRANSPORTS:
        tp, lag = pairs["median"][t]["throughput"], pairs["median"][t]["lag"]
        runs = " ".join(common.fmt_rate(r["throughput"]["records_per_s"]) for r in pairs["runs"][t])
        p50s = " ".join(f"{r['lag']['p50_ms']:.2f}" for r in pairs["runs"][t])
        print(
            f"  {t:<4} replicated {common.fmt_rate(tp['records_per_s']):>7} rec/s [{runs}]  "
            f"lag p50 {lag['p50_ms']:.2f} [{p50s}] p99 {lag['p99_ms']:.2f} ms  "
            f"RSS max {pairs['median'][t]['rss_max_mb']} MB"
        )
    ratio = pairs["ratio_wss_ws"]
    print(
        f"  wss/ws: throughput {ratio['throughput']['records_per_s']:.3f}, lag p50 "
        f"{ratio['lag']['p50_ms']:.3f}, p99 {ratio['lag']['p99_ms']:.3f}; median of per-pair "
        f"ratios: throughput {pairs['median_pair_ratio_wss_ws']['throughput_records_per_s']:.3f}, "
        f"lag p50 {pairs['median_pair_ratio_wss_ws']['lag_p50_ms']:.3f}"
    )
    join = result["join"]
    n = {t: len(v) for t, v in join["samples"].items()}
    print(f"\njoin (2 nodes; ws {n['ws']}, wss {n['wss']} samples), medians:")
    for t in rb.TRANSPORTS:
        med = join["median"][t]
        print(
            f"  {t:<4} add_node {med['add_node_ms']:.1f} ms, then connected after "
            f"{med['connected_ms']:.1f} ms"
        )
    hs = result["handshake"]
    print(f"\none fresh connection to node 0, median of {HANDSHAKES}:")
    for kind in KINDS:
        med = hs["median"][kind]
        print(
            f"  {kind:<16} 101 after {med['upgrade_ms']:.2f} ms, first answer after "
            f"{med['first_answer_ms']:.2f} ms"
        )
    if hs["stalls"]:
        kinds = ", ".join(s["kind"] for s in hs["stalls"])
        print(f"  stalled dials (no 101 within {OPEN_TIMEOUT:.0f} s, dialled again): {kinds}")


def main() -> int:
    load_at_start = common.loadavg()
    workdir = common.make_workdir("harper-secure-")
    env = common.agent_env(workdir)
    rss = rb.FleetRss()
    print(f"workdir {workdir}", flush=True)
    try:
        common.warm_bytecode(rb.new_agent(workdir / "warmup", env))
        rss.start()
        print(f"pairs: {PAIRS} x (throughput, lag) per transport ...", flush=True)
        pairs = run_pairs(workdir, env, rss)
        print(f"joins: {JOIN_EXTRA} more per transport ...", flush=True)
        joins = run_joins(workdir, env, pairs)
        print(f"handshakes: {HANDSHAKES} of each kind ...", flush=True)
        handshakes = run_handshakes(workdir, env)
    finally:
        rss.stop()
        stop_agents(rb.SPAWNED)
        common.remove_workdir(workdir)
    result = {
        **common.result_head(load_at_start),
        "timings": rb.TIMINGS,
        "hosts": "127.0.0.200-127.0.0.230",
        "pairs": pairs,
        "join": joins,
        "handshake": handshakes,
    }
    print_summary(result)
    common.write_results(result, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
