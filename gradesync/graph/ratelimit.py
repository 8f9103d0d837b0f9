"""A client-side rate limiter so that Graph's 429s stay rare.

It counts *sub-requests* (each one costs quota, batched or not) against two sliding windows that
must both have room, like Graph's assignment service: 350 per 10 s and 10,000 per hour per app.

Why sliding windows and not a token bucket: a bucket of 350 refilling at 35/s lets 700 requests
through in some 10-second window (a full burst, then the refill), which a server that counts per
window would throttle. A stream with at most N in *every* window of W seconds also never empties
a token bucket of N refilling at N/W, so it satisfies either server model (the emulator's is a
bucket). The long-run rate is the same: N per W.

Waiting uses the injected clock and sleep. A caller *reserves* its slot under a lock (at the
earliest time both windows have room, never before an earlier reservation: first come, first
served) and then sleeps outside it, so concurrent senders queue fairly and nobody spins.
"""

from __future__ import annotations

import threading
from collections import deque
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

    def __post_init__(self) -> None:
        if self.per_10s < 1 or self.per_hour < 1 or self.short_window <= 0 or self.long_window <= 0:
            raise ValueError("rate limits and windows must be positive")

    @classmethod
    def graph(cls) -> RateLimit:
        """Graph's documented assignment-service limits per app per tenant."""
        return cls()

    @classmethod
    def off(cls) -> RateLimit:
        return cls(enabled=False)


class _Window:
    """Reservations ``(time, n)`` in time order; at most ``limit`` within any ``length`` seconds."""

    def __init__(self, limit: int, length: float) -> None:
        self.limit = limit
        self.length = length
        self.entries: deque[tuple[float, int]] = deque()
        self.total = 0

    def prune(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - self.length:
            self.total -= self.entries.popleft()[1]

    def earliest(self, start: float, n: int) -> float:
        """The first time ``t >= start`` with room for ``n`` more in ``(t - length, t]``."""
        t, total = start, self.total
        for when, count in self.entries:
            if total + n <= self.limit:
                break
            if when > t - self.length:  # still inside the window at t: wait until it leaves
                t = when + self.length
            total -= count
        return t

    def add(self, when: float, n: int) -> None:
        self.entries.append((when, n))
        self.total += n


class RateLimiter:
    """Two sliding windows; :meth:`acquire` returns the seconds it slept (0 when not limited)."""

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
        self._windows = (
            _Window(limit.per_10s, limit.short_window),
            _Window(limit.per_hour, limit.long_window),
        )
        self._last = -float("inf")

    def reserve(self, n: int) -> float:
        """Reserve room for ``n`` requests at the earliest possible time; return the wait until then."""
        if not self.limit.enabled or n <= 0:
            return 0.0
        if any(n > w.limit for w in self._windows):
            raise ValueError(f"{n} requests at once exceed the rate limit {self.limit}")
        with self._lock:
            now = self._clock()
            when = max(now, self._last)
            for window in self._windows:
                window.prune(now)
            # the later of the two windows' earliest times; recheck until both agree
            while True:
                later = max(w.earliest(when, n) for w in self._windows)
                if later == when:
                    break
                when = later
            for window in self._windows:
                window.add(when, n)
            self._last = when
            return when - now

    def acquire(self, n: int = 1) -> float:
        wait = self.reserve(n)
        if wait > 0:
            self._sleep(wait)
        return wait
