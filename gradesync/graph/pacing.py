"""Pure pacing arithmetic: token buckets at Graph's documented limits, a pace that learns, pauses.

Nothing here reads a clock or sleeps: every method takes ``now`` (seconds, monotonic) and returns
times, so tests drive it with a fake clock and no waiting (``ratelimit.RateLimiter`` adds the lock,
the clock and the sleep).

The model, per throttling scope (the app in the tenant) and per limit — one :class:`Pacer` for the
assignment service and one for the education rostering APIs, each request counted against its own
(``graph.urls.limit_kind`` says which):

* **Two token buckets, the ceiling.** Graph's assignment service documents 350 requests per 10 s
  and 10,000 per hour per app per tenant ("Microsoft Graph service-specific throttling limits",
  *Assignment service limits*); reading classes, users and class members is the education
  rostering APIs', 35,000 per 10 s per app per tenant (*Education service limits*), so a run's
  rostering reads never spend the assignments budget (:meth:`RateLimit.for_rostering`). Each is a
  bucket of that capacity refilling at capacity/window (35/s, 2.78/s), full at the start, like the
  emulator's. Every sub-request costs one token
  (batching saves round trips, not quota). A sender *reserves* ``n`` tokens and learns when it may
  send; reservations are first come, first served.
* **A pace that learns (AIMD).** Graph is known to throttle below its published limits. A 429 that
  opens a new throttling episode lowers the short bucket's refill rate to ``decrease`` × the rate
  Graph actually admitted over the last window (never below ``floor`` × the ceiling): a tenant whose
  real limit is lower settles just under it. While nothing is throttled the rate creeps back up by
  ``increase`` × the ceiling per second, never above the ceiling. The burst capacity and the
  hourly bucket stay at the documented values (a long Retry-After, e.g. an hourly quota used by
  another app, is handled by the pause below, not by the pace).
* **Stray 429s only pause.** A limit below the published one answers 429 to most of what is sent
  above it; a flaky Graph answers 429 to a few requests here and there, whatever the pace. So 429s
  count as throttling only when, within the last window, there are at least ``noise`` × ``per_10s``
  of them and at least ``noise_share`` of the requests sent then. Fewer are stray: their
  Retry-After is honoured, nothing else changes (a stray 429 neither empties the bucket nor lowers
  the pace: one request in twenty answered 429 would otherwise hold every envelope back for a
  bucket's refill, and a handful early in a run, when little was sent, would cut the pace to a
  fraction of Graph's).
* **Retry-After pauses the whole scope.** Any Retry-After (whole response or one sub-response)
  moves ``pause_until``; no reservation starts before it, including envelopes about to be sent. A
  429 that counts as throttling also empties the short bucket: Graph said it had no token left.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["Bucket", "Pacer", "RateLimit"]

LEARN_WINDOWS = 6  # the admitted rate a cut is based on is measured over up to this many windows


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The ceiling per app: ``per_10s`` per ``short_window`` s and ``per_hour`` per ``long_window`` s.

    ``enabled=False`` (:meth:`off`) never waits and never learns; ``adaptive=False`` keeps the pace
    fixed at the ceiling (Retry-After pauses still apply). ``decrease``/``increase``/``floor`` shape
    the learning (see the module docstring).
    """

    per_10s: int = 350
    per_hour: int = 10_000
    enabled: bool = True
    short_window: float = 10.0
    long_window: float = 3600.0
    adaptive: bool = True
    decrease: float = 0.85  # new rate = decrease x the rate Graph admitted over the last window
    increase: float = 0.005  # fraction of the ceiling regained per second without a 429
    floor: float = 0.02  # the pace never falls below this fraction of the ceiling
    noise: float = 0.05  # fewer 429s than this x per_10s within a window are stray
    # the education rostering APIs' own limit (classes, users, members), per short_window
    rostering_per_10s: int = 35_000
    noise_share: float = 0.1  # nor fewer than this share of the requests sent within the window

    def __post_init__(self) -> None:
        if (
            self.per_10s < 1
            or self.per_hour < 1
            or self.rostering_per_10s < 1
            or self.short_window <= 0
            or self.long_window <= 0
        ):
            raise ValueError("rate limits and windows must be positive")
        if not (0 < self.decrease < 1 and self.increase >= 0 and 0 < self.floor <= 1 and self.noise >= 0):
            raise ValueError("decrease must be in (0, 1), increase >= 0 and floor in (0, 1]")
        if not 0 <= self.noise_share <= 1:
            raise ValueError("noise_share must be in [0, 1]")

    @classmethod
    def graph(cls) -> RateLimit:
        """Graph's documented assignment-service limits per app per tenant."""
        return cls()

    @classmethod
    def off(cls) -> RateLimit:
        return cls(enabled=False)

    def for_rostering(self) -> RateLimit:
        """The limit rostering reads are paced on: ``rostering_per_10s`` per short window, the same
        learning. Graph documents no hourly rostering limit: the hourly bucket is one that never
        binds before the short one (360 windows' worth)."""
        return dataclasses.replace(
            self,
            per_10s=self.rostering_per_10s,
            per_hour=self.rostering_per_10s * math.ceil(self.long_window / self.short_window),
        )

    @property
    def ceiling(self) -> float:
        """The short bucket's documented refill rate (requests per second)."""
        return self.per_10s / self.short_window


@dataclass(slots=True)
class Bucket:
    """``level`` tokens at time ``updated``; refills at ``rate`` per second up to ``capacity``."""

    capacity: float
    rate: float
    level: float
    updated: float

    def level_at(self, when: float) -> float:
        return min(self.capacity, self.level + max(0.0, when - self.updated) * self.rate)

    def ready_at(self, when: float, n: float) -> float:
        """The first time ``t >= when`` at which ``n`` tokens are in the bucket."""
        short = n - self.level_at(when)
        return when if short <= 0 else when + short / self.rate

    def take(self, when: float, n: float) -> None:
        self.level = self.level_at(when) - n
        self.updated = max(self.updated, when)

    def set_rate(self, when: float, rate: float) -> None:
        self.level = self.level_at(when)
        self.updated = max(self.updated, when)
        self.rate = rate


@dataclass
class Pacer:
    """The pacing state of one scope. Not thread-safe by itself (the RateLimiter holds a lock)."""

    limit: RateLimit
    start: float
    short: Bucket = field(init=False)
    long: Bucket = field(init=False)
    pause_until: float = -math.inf
    next_free: float = -math.inf  # when the latest reservation starts: FIFO order
    episode_until: float = -math.inf  # 429s before this belong to the episode already learnt from
    episodes: int = 0
    _crept_at: float = -math.inf
    _sent: deque[tuple[float, int]] = field(default_factory=deque)
    _throttled: deque[tuple[float, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        lim = self.limit
        self.short = Bucket(lim.per_10s, lim.ceiling, lim.per_10s, self.start)
        self.long = Bucket(lim.per_hour, lim.per_hour / lim.long_window, lim.per_hour, self.start)

    @property
    def rate(self) -> float:
        """The current pace of the short bucket (requests per second)."""
        return self.short.rate

    def reserve(self, now: float, n: int) -> float:
        """Take ``n`` tokens at the earliest allowed time ``>= now``; return that time."""
        if n > self.limit.per_10s or n > self.limit.per_hour:
            raise ValueError(f"{n} requests at once exceed the rate limit {self.limit}")
        self._creep(now)
        when = max(now, self.pause_until, self.next_free)
        while True:  # the later of the two buckets' times; recheck until both agree
            later = max(self.short.ready_at(when, n), self.long.ready_at(when, n))
            if later <= when:
                break
            when = later
        self.short.take(when, n)
        self.long.take(when, n)
        self.next_free = when
        self._sent.append((when, n))
        return when

    def pause(self, now: float, seconds: float) -> None:
        """A Retry-After: nothing of this scope starts before ``now + seconds``."""
        self.pause_until = max(self.pause_until, now + seconds)

    def throttled(self, now: float, count: int = 1, retry_after: float | None = None) -> bool:
        """``count`` requests were answered 429 at ``now``; returns True when the pace was lowered.

        Stray 429s (see the module docstring) only pause. Otherwise the short bucket is emptied; a
        429 inside the current episode (before its pause has passed: envelopes already in flight)
        does nothing more, the first 429 after it opens a new episode and lowers the pace.
        """
        self._throttled.append((now, count))
        if retry_after is not None:
            self.pause(now, retry_after)
        if self.limit.adaptive and self.stray(now):
            return False  # Graph's own hiccups: paused for their Retry-After, nothing else
        self.short.take(now, 0.0)  # Graph said it had no token left (the hourly bucket is left alone:
        self.short.level = min(self.short.level, 0.0)  # a long Retry-After pauses for that case)
        if not self.limit.adaptive or now < self.episode_until:
            return False
        lim = self.limit
        self.episodes += 1
        self.episode_until = max(self.pause_until, now)
        admitted = self.admitted_rate(now)
        new_rate = max(lim.floor * lim.ceiling, min(self.short.rate, lim.decrease * admitted))
        self.short.set_rate(now, new_rate)
        return True

    def throttled_in_window(self, now: float) -> int:
        return sum(n for t, n in self._throttled if t >= now - self.limit.short_window)

    def stray(self, now: float) -> bool:
        """Whether the 429s of the last window are too few to be a limit: fewer than ``noise`` x
        ``per_10s``, or than ``noise_share`` of what was sent meanwhile."""
        lim = self.limit
        sent = sum(n for t, n in self._sent if now - lim.short_window <= t <= now)
        return self.throttled_in_window(now) < max(lim.noise * lim.per_10s, lim.noise_share * sent)

    def admitted_rate(self, now: float) -> float:
        """Requests per second Graph let through lately (sent minus 429s), over up to
        ``LEARN_WINDOWS`` short windows: a longer horizon dilutes the burst Graph's bucket allowed
        after a quiet spell, which a single window would mistake for its rate."""
        span = max(self.limit.short_window, min(LEARN_WINDOWS * self.limit.short_window, now - self.start))
        horizon = now - span
        for log in (self._sent, self._throttled):
            while log and log[0][0] < horizon:
                log.popleft()
        sent = sum(n for t, n in self._sent if t <= now)
        throttled = sum(n for _, n in self._throttled)
        # over a whole window even early on: Graph counts "per 10 s", and a burst at the start
        # (the full bucket) spread over 10 s is what the window really allowed
        return max(0.0, sent - throttled) / span

    def _creep(self, now: float) -> None:
        """Additive increase: regain ``increase`` x ceiling per second since the last update."""
        lim = self.limit
        if not lim.adaptive or self.short.rate >= lim.ceiling:
            return
        since = max(self.episode_until, self._crept_at)
        self._crept_at = now
        if now <= since or since == -math.inf:
            return
        rate = min(lim.ceiling, self.short.rate + lim.increase * lim.ceiling * (now - since))
        self.short.set_rate(now, rate)
