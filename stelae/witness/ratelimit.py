"""Each log's add-checkpoint budget: the ``qpd`` (requests per day) of its log-list entry.

A token bucket per log that refills at ``qpd / 86400`` tokens a second and holds at most a
minute's worth (at least one request), so a log may burst briefly but not spend a day's budget at
once. The clock is injected. Counting happens in memory: a restart forgives, which is fine for
abuse protection (the witness's safety never depends on it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]

DAY = 86400.0


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # origin -> (tokens, last refill)
        self._lock = threading.Lock()

    def allow(self, origin: str, qpd: int) -> bool:
        """Spend one request of ``origin``'s budget; False when it has none left."""
        rate = qpd / DAY
        capacity = max(1.0, rate * 60)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(origin, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[origin] = (tokens, now)
                return False
            self._buckets[origin] = (tokens - 1.0, now)
            return True
