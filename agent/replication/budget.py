"""A token bucket of CPU seconds: what verify work may cost this node, over time.

Tokens accrue at `share` CPU seconds per second (verifyCpuPercent of one core) up to
`capacity`; work spends them, and may overdraw (an index cannot be half built). Every index
this node builds is charged, for its own checks and for the checks of peers it answers, so
the background verify of the whole cluster cannot cost a node more than its share over
time, plus one burst. Background requests from peers are refused while the bucket is empty.
"""

from __future__ import annotations

import time


class Budget:
    def __init__(self, share: float, capacity: float, clock=time.monotonic) -> None:
        self.share = share
        self.capacity = capacity
        self.tokens = capacity
        self.spent = 0.0
        self._clock = clock
        self._at = clock()
        self.started = self._at

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.share)
        self._at = now

    def spend(self, cpu_seconds: float) -> None:
        self._refill()
        self.tokens -= cpu_seconds
        self.spent += cpu_seconds

    def available(self) -> bool:
        self._refill()
        return self.tokens > 0

    def wait_seconds(self) -> float:
        """How long until the bucket holds tokens again (0: now)."""
        self._refill()
        return 0.0 if self.tokens > 0 else -self.tokens / self.share + 0.001

    def used_share(self) -> float:
        """CPU seconds spent per second since the start."""
        return self.spent / max(1e-9, self._clock() - self.started)
