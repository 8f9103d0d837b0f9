"""The client-side pacer: :mod:`~gradesync.graph.pacing`'s arithmetic behind a lock, a clock and a sleep.

Why token buckets (not the sliding windows of earlier versions): Graph documents its limits as
rates ("350 requests per 10 seconds, 10,000 per hour per app per tenant") and the emulator models
them as buckets; a sliding window of one hour stalls a run that passed 10,000 requests until its
first requests are an hour old (a 10,000-change apply: ~3,640 s where a bucket allows ~503 s).
Buckets are the ceiling; the pace below it learns from Graph's 429s (see ``pacing.py``).

A caller *reserves* its slot under the lock (first come, first served) and sleeps outside it, so
concurrent senders queue fairly and nobody spins. After the reserved time it also waits out any
Retry-After pause that arrived meanwhile: no request of the scope is sent inside a Retry-After
window, including envelopes that were about to go.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from gradesync.graph.pacing import Pacer, RateLimit

__all__ = ["RateLimit", "RateLimiter", "WaitTooLong"]


class WaitTooLong(Exception):
    """The slot is further away than the caller can wait (its deadline): nothing was slept."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"the next slot is {wait:.2f} s away")
        self.wait = wait


class RateLimiter:
    """One scope's pacing; :meth:`acquire` returns the seconds it slept (0 when not held back)."""

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
        self.pacer = Pacer(limit, clock())
        self.reserved = 0  # requests reserved so far (every one, paced or not)

    @property
    def rate(self) -> float:
        """The current pace (requests per second of the short bucket)."""
        with self._lock:
            return self.pacer.rate

    def reserve(self, n: int) -> float:
        """Reserve ``n`` requests at the earliest allowed time; return the wait until then."""
        with self._lock:
            now = self._clock()
            self.reserved += max(0, n)
            if self.limit.enabled and n > 0:
                when = self.pacer.reserve(now, n)
            else:
                when = max(now, self.pacer.pause_until)
            return when - now

    def acquire(self, n: int = 1, *, max_wait: float | None = None) -> float:
        """Wait for the slot of ``n`` requests, then for any pause of the scope; return the wait.

        ``max_wait``: raise :class:`WaitTooLong` instead of starting a wait that would end later than
        that many seconds from now (a run's deadline: never start waiting past it)."""
        waited = 0.0
        wait = self.reserve(n)
        while wait > 0:
            if max_wait is not None and waited + wait > max_wait:
                raise WaitTooLong(waited + wait)
            self._sleep(wait)
            waited += wait
            with self._lock:
                wait = self.pacer.pause_until - self._clock()
        return waited

    def pause(self, seconds: float) -> None:
        """A Retry-After of ``seconds`` from now pauses every request of the scope."""
        with self._lock:
            self.pacer.pause(self._clock(), seconds)

    def throttled(self, count: int = 1, retry_after: float | None = None) -> None:
        """``count`` requests were answered 429 (with ``retry_after``, if Graph gave one)."""
        with self._lock:
            now = self._clock()
            if self.limit.enabled:
                self.pacer.throttled(now, count, retry_after)
            elif retry_after is not None:
                self.pacer.pause(now, retry_after)
