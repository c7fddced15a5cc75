"""The node's one hybrid logical clock, shared by every database writer thread."""

from __future__ import annotations

import threading
import time
from typing import Callable

from agent.core.clock import HybridClock


class SharedClock:
    """Wrap the pure HybridClock with a lock and the wall clock."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._clock = HybridClock()
        self._lock = threading.Lock()
        self._wall = wall

    def now_ms(self) -> float:
        """Return wall time in epoch milliseconds (a float, as HarperDB's timestamps)."""
        return self._wall() * 1000.0

    def tick(self) -> int:
        """Stamp a local transaction."""
        with self._lock:
            return self._clock.tick(self._wall() * 1000.0)

    def observe(self, version: int) -> None:
        """Fold in a version that arrived from a peer or from disk."""
        with self._lock:
            self._clock.observe(version)

    @property
    def last(self) -> int:
        return self._clock.last
