"""Time inside an apply: the read-to-write window, the deadline and how long an envelope takes, on
one monotonic clock.

No grade is written on the strength of a read older than ``read_write_window`` at the moment the
write reaches Graph: :class:`ReadTimes` knows when each assignment (``(class_id, assignment_id)``)
and each submission was last read — the plan's own reads (``Plan.read_at``, wall-clock ISO-8601
UTC, from resolve) or the executor's later ones — and :meth:`ReadTimes.fresh` says whether a write
sent now and answered within the time an envelope takes would still rest on a read within the
window. ``0`` means: read right before each envelope, whatever the plan read.

:class:`Deadline` says how long is left before the deadline (aware UTC, placed on the monotonic
clock once). :class:`EnvelopeTimes` is what the run has learnt about how long an envelope takes
(the longest of the recent ones): nothing is sent that would not be answered before the deadline,
and no write goes out whose read would leave the window before the write lands.

The wall clock is read once, at the start (to place the plan's read times and the deadline on the
monotonic clock); everything after that uses the monotonic clock, so a wall clock that jumps
(NTP, a suspended laptop) neither stretches nor shrinks the window.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from gradesync.guards import parse_time

__all__ = ["Deadline", "EnvelopeTimes", "Pair", "ReadTimes", "read_key"]

Pair = tuple[str, str]  # (class_id, assignment_id)


def read_key(pair: Pair) -> str:
    """The key of ``Plan.read_at``: ``"{class_id}/{assignment_id}"``."""
    return f"{pair[0]}/{pair[1]}"


class ReadTimes:
    """When each assignment and each submission was last read, on the monotonic clock (absent:
    never, i.e. stale). A submission's read time is the newer of its assignment's listing and its
    own GET."""

    def __init__(self, window: timedelta, clock: Callable[[], float]) -> None:
        self.window = window.total_seconds()
        self.clock = clock
        self._at: dict[Pair, float] = {}
        self._sub: dict[str, float] = {}

    @classmethod
    def from_plan(
        cls,
        read_at: Mapping[str, str] | None,
        pairs: Iterable[Pair],
        *,
        window: timedelta,
        now: datetime,
        clock: Callable[[], float],
    ) -> ReadTimes:
        """The plan's read times of ``pairs``; a missing or unreadable entry counts as stale."""
        times = cls(window, clock)
        mono = clock()
        for pair in pairs:
            text = (read_at or {}).get(read_key(pair))
            if not text:
                continue
            try:
                age = (now - parse_time(text)).total_seconds()
            except (TypeError, ValueError):
                continue
            if age >= 0:  # a read "in the future" is a clock we cannot trust: stale
                times._at[pair] = mono - age
        return times

    def mark(self, pairs: Iterable[Pair], *, at: float | None = None) -> None:
        """These assignments were listed at ``at`` (default now) — a read counts from its start,
        before any of its pages was served."""
        when = self.clock() if at is None else at
        for pair in pairs:
            self._at[pair] = max(when, self._at.get(pair, when))

    def mark_submissions(self, submission_ids: Iterable[str], *, at: float) -> None:
        """These submissions were read one by one at ``at``."""
        for sid in submission_ids:
            self._sub[sid] = max(at, self._sub.get(sid, at))

    def last_read(self, pair: Pair, submission_id: str | None = None) -> float | None:
        """When ``pair`` (or that submission of it) was last read, or None: never."""
        at = self._at.get(pair)
        own = self._sub.get(submission_id) if submission_id is not None else None
        if at is None or own is None:
            return own if at is None else at
        return max(at, own)

    def fresh(self, pair: Pair, submission_id: str | None = None, *, lead: float = 0.0) -> bool:
        """Would a write sent ``lead`` seconds from now still rest on a read within the window? With a
        window of 0 nothing is fresh: each envelope is read right before it goes."""
        at = self.last_read(pair, submission_id)
        if at is None or self.window <= 0:
            return False
        return self.clock() + lead - at <= self.window

    def age(self, pair: Pair) -> float | None:
        at = self._at.get(pair)
        return None if at is None else self.clock() - at


class Deadline:
    """The moment to stop sending (aware UTC), on the monotonic clock; None: no deadline."""

    def __init__(self, deadline: datetime | None, *, now: datetime, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.text = deadline.isoformat(timespec="seconds") if deadline is not None else ""
        self._end = None if deadline is None else clock() + (deadline - now).total_seconds()

    @property
    def end(self) -> float | None:
        """The deadline on the monotonic clock (None: no deadline)."""
        return self._end

    def left(self) -> float | None:
        """Seconds until the deadline (negative once past it); None without one."""
        return None if self._end is None else self._end - self.clock()

    def allows(self, seconds: float) -> bool:
        """Whether something taking ``seconds`` from now would end before the deadline."""
        return self._end is None or self.clock() + seconds <= self._end


class EnvelopeTimes:
    """How long an envelope takes, from leaving to its answer: the longest of the last ``keep``
    measured in this run (``initial`` until one was). Thread-safe (the lanes measure)."""

    def __init__(self, initial: float, keep: int = 20) -> None:
        self._initial = initial
        self._recent: deque[float] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._recent.append(max(0.0, seconds))

    @property
    def measured(self) -> bool:
        """Whether an envelope has been timed yet (else :attr:`expected` is the initial guess)."""
        with self._lock:
            return bool(self._recent)

    @property
    def expected(self) -> float:
        with self._lock:
            return max(self._recent) if self._recent else self._initial
