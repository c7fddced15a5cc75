"""Range digests: find the records on which nodes disagree, exchanging little when they agree.

Every record hashes to two 64-bit numbers: where it lives (`key_hash`, from its primary key)
and what it is (`record_hash`, from key, version, origin and document; a tombstone is a
document of its own). The key-hash space is a tree of prefixes, 16 children per level (one
hex digit). Every node cuts it the same way whatever it holds, so a prefix names the same
set of keys everywhere, and its digest (the XOR of the record hashes under it, with their
count) is equal on two nodes exactly when they hold the same records there (up to a 2**-64
chance per compared range).

A comparison asks every node for the digests of some prefixes, keeps those that differ, and
asks for their 16 children, until a differing prefix holds few enough records (`LEAF`) to
list them. Equal tables cost one digest per node; k differences cost about
k * 16 * log16(n / LEAF) digests and k leaves, whatever n is.

`Index` answers for one node from a snapshot of its records in O(log n) per digest (a
prefix-XOR array over the records sorted by key hash). `Comparison` is the coordinator's
side: it plans each round from the answers and collects the divergent keys. Neither does any
I/O: the shells move the requests and answers.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import accumulate
from operator import xor
from typing import Any, Iterable, Mapping

BITS = 64
FANOUT_BITS = 4  # 16 children per prefix
MAX_DEPTH = BITS // FANOUT_BITS
LEAF = 16  # list the records of a differing prefix holding at most this many on every node
ROOT = ""  # a prefix is a string of hex digits of the key hash; the root is empty


def key_hash(pk: Any) -> int:
    """Place a primary key in the 64-bit key-hash space (the same on every node)."""
    return int.from_bytes(hashlib.blake2b(_key_bytes(pk), digest_size=8).digest(), "big")


def record_hash(pk: Any, doc: str | None, version: int, origin: str) -> int:
    """Hash everything that makes a record what it is; a tombstone (doc None) included."""
    h = hashlib.blake2b(digest_size=8)
    h.update(_key_bytes(pk))
    h.update(b"\x00%d\x00" % version)
    h.update(origin.encode())
    h.update(b"\x01" if doc is None else b"\x02" + doc.encode())
    return int.from_bytes(h.digest(), "big")


def doc_hash(doc: str | None) -> str:
    """A short fingerprint of a document for listing (tombstones: '-')."""
    return _shown(_fingerprint(doc))


def _key_bytes(pk: Any) -> bytes:
    # the type is part of the key: 1 and "1" are different records
    if isinstance(pk, bool) or not isinstance(pk, (str, int, float)):
        raise ValueError(f"not a primary key: {pk!r:.40}")
    return f"{type(pk).__name__[0]}:{pk!r}".encode()


def bounds(prefix: str) -> tuple[int, int]:
    """Return the key-hash range [lo, hi) a prefix covers."""
    if len(prefix) > MAX_DEPTH:
        raise ValueError(f"prefix deeper than {MAX_DEPTH} digits: {prefix!r:.40}")
    if not prefix:
        return 0, 1 << BITS
    value = int(prefix, 16)  # raises ValueError for what is not hex
    shift = BITS - FANOUT_BITS * len(prefix)
    return value << shift, (value + 1) << shift


def children(prefix: str) -> list[str]:
    return [prefix + digit for digit in "0123456789abcdef"]


def prefix_of(kh: int, depth: int) -> str:
    """Return the prefix of `depth` digits holding key hash `kh`."""
    return f"{kh:016x}"[:depth]


class Index:
    """One node's records of one table, sorted by key hash, answering digests and leaves.

    Built from `(pk, doc, version, origin)` rows (any iterable: a database cursor streams);
    keeps compact columns sorted by key hash (key hash, version and document fingerprint in
    arrays, keys in a list, origins interned) and the prefix XOR of the record hashes, so a
    million records take about 130 MB while the index lives.
    """

    def __init__(self, rows: Iterable[tuple[Any, str | None, int, str]]) -> None:
        keys, hashes, versions, prints = array("Q"), array("Q"), array("q"), array("Q")
        pks: list = []
        origins: list[str] = []
        for pk, doc, version, origin in rows:
            keys.append(key_hash(pk))
            hashes.append(record_hash(pk, doc, version, origin))
            versions.append(version)
            prints.append(_fingerprint(doc))
            pks.append(pk)
            origins.append(sys.intern(origin))
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self.keys = array("Q", (keys[i] for i in order))
        self.xors = array("Q", accumulate((hashes[i] for i in order), xor, initial=0))
        self._versions = array("q", (versions[i] for i in order))
        self._prints = array("Q", (prints[i] for i in order))
        self._pks = [pks[i] for i in order]
        self._origins = [origins[i] for i in order]

    def __len__(self) -> int:
        return len(self.keys)

    def _span(self, prefix: str) -> tuple[int, int]:
        lo, hi = bounds(prefix)
        return bisect_left(self.keys, lo), bisect_left(self.keys, hi)

    def digest(self, prefix: str) -> tuple[int, int]:
        """Return (count, XOR of record hashes) under `prefix`."""
        i, j = self._span(prefix)
        return j - i, self.xors[j] ^ self.xors[i]

    def leaf(self, prefix: str) -> list[tuple]:
        """Return the records under `prefix`: (pk, version, origin, doc fingerprint)."""
        i, j = self._span(prefix)
        return [
            (self._pks[k], self._versions[k], self._origins[k], _shown(self._prints[k]))
            for k in range(i, j)
        ]


TOMBSTONE = 1 << 48  # the fingerprint of a deleted record (real ones are 48-bit)


def _fingerprint(doc: str | None) -> int:
    if doc is None:
        return TOMBSTONE
    return int.from_bytes(hashlib.blake2b(doc.encode(), digest_size=6).digest(), "big")


def _shown(fingerprint: int) -> str:
    return "-" if fingerprint == TOMBSTONE else f"{fingerprint:012x}"


Answer = tuple[int, int]  # (count, digest)


@dataclass
class Divergence:
    """One key on which nodes disagree: each node's (version, origin, fingerprint) or None."""

    key: Any
    nodes: dict[str, tuple[int, str, str] | None]

    def winner(self) -> tuple[int, str] | None:
        """The (version, origin) last-write-wins keeps; None if no node holds the key."""
        held = [(v[0], v[1]) for v in self.nodes.values() if v is not None]
        return max(held) if held else None

    def behind(self) -> list[str]:
        """The nodes that do not hold the winning write."""
        win = self.winner()
        return sorted(n for n, v in self.nodes.items() if v is None or (v[0], v[1]) != win)


@dataclass
class Comparison:
    """The coordinator's side of comparing one table across `nodes`.

    Each round: `digest_request()` names the prefixes to ask every node for; `digests()`
    takes the answers; `leaf_request()` names the prefixes whose records to list; `leaves()`
    takes those. `done` when nothing is left to ask; `divergent` holds the result.
    """

    nodes: list[str]
    leaf_size: int = LEAF
    pending: list[str] = field(default_factory=lambda: [ROOT])
    to_list: list[str] = field(default_factory=list)
    divergent: dict[Any, Divergence] = field(default_factory=dict)
    rounds: int = 0
    ranges_compared: int = 0

    @property
    def done(self) -> bool:
        return not self.pending and not self.to_list

    def digest_request(self) -> list[str]:
        return list(self.pending)

    def digests(self, answers: Mapping[str, list[Answer]]) -> None:
        """Take every node's answers to `digest_request()`, in its order."""
        self._check(answers, len(self.pending))
        self.rounds += 1
        deeper: list[str] = []
        for i, prefix in enumerate(self.pending):
            seen = {tuple(answers[node][i]) for node in self.nodes}
            self.ranges_compared += 1
            if len(seen) == 1:
                continue  # every node holds the same records here
            if max(count for count, _ in seen) <= self.leaf_size or len(prefix) >= MAX_DEPTH:
                self.to_list.append(prefix)
            else:
                deeper += children(prefix)
        self.pending = deeper

    def leaf_request(self) -> list[str]:
        return list(self.to_list)

    def leaves(self, answers: Mapping[str, list[list[tuple]]]) -> None:
        """Take every node's records under each prefix of `leaf_request()`, in its order."""
        self._check(answers, len(self.to_list))
        for i in range(len(self.to_list)):
            held: dict[Any, dict[str, tuple]] = {}
            for node in self.nodes:
                for pk, version, origin, fingerprint in answers[node][i]:
                    held.setdefault(_hashable(pk), {})[node] = (version, origin, fingerprint)
            for key, by_node in held.items():
                views = {n: by_node.get(n) for n in self.nodes}
                if len(set(views.values())) > 1 or None in views.values():
                    self.divergent[key] = Divergence(key, views)
        self.to_list = []

    def _check(self, answers: Mapping[str, list], expected: int) -> None:
        for node in self.nodes:
            got = answers.get(node)
            if not isinstance(got, list) or len(got) != expected:
                raise ValueError(f"node {node} answered {len(got or [])} of {expected} ranges")


def _hashable(pk: Any) -> Any:
    if isinstance(pk, list):  # msgpack/JSON turn tuples into lists; keys are scalars anyway
        return tuple(pk)
    return pk
