"""A client-side token bucket so that Graph's 429s stay rare.

It counts *sub-requests* (each one costs quota, batched or not), with two buckets that must both
hold enough tokens, like Graph's assignment service: 350 per 10 s and 10,000 per hour per app.
Waiting uses the injected clock and sleep. A caller *reserves* its tokens under a lock (the balance
may go negative) and then sleeps outside it for exactly the deficit, so concurrent senders queue
fairly and nobody spins.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Budget per app: ``per_10s`` per 10 s and ``per_hour`` per hour; ``enabled=False``: no limit."""

    per_10s: int = 350
    per_hour: int = 10_000
    enabled: bool = True
    short_window: float = 10.0
    long_window: float = 3600.0

    @classmethod
    def graph(cls) -> RateLimit:
        """Graph's documented assignment-service limits per app per tenant."""
        return cls()

    @classmethod
    def off(cls) -> RateLimit:
        return cls(enabled=False)


class TokenBucket:
    """Two refilling buckets; :meth:`acquire` returns the seconds it slept (0 when not limited)."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._short = float(limit.per_10s)
        self._long = float(limit.per_hour)
        self._updated = clock()

    def _refill(self, now: float) -> None:
        lim = self.limit
        elapsed = max(0.0, now - self._updated)
        self._short = min(float(lim.per_10s), self._short + elapsed * lim.per_10s / lim.short_window)
        self._long = min(float(lim.per_hour), self._long + elapsed * lim.per_hour / lim.long_window)
        self._updated = now

    def reserve(self, n: int) -> float:
        """Take ``n`` tokens now (possibly into debt); return how long the caller must wait."""
        if not self.limit.enabled or n <= 0:
            return 0.0
        lim = self.limit
        with self._lock:
            self._refill(self._clock())
            self._short -= n
            self._long -= n
            wait_short = max(0.0, -self._short) * lim.short_window / lim.per_10s
            wait_long = max(0.0, -self._long) * lim.long_window / lim.per_hour
            return max(wait_short, wait_long)

    def acquire(self, n: int = 1) -> float:
        wait = self.reserve(n)
        if wait > 0:
            self._sleep(wait)
        return wait
