"""Time inside an apply: the read-to-write window and the deadline, on one monotonic clock.

No grade is written on the strength of a read older than ``read_write_window``: :class:`ReadTimes`
knows when each assignment (``(class_id, assignment_id)``) was last read — the plan's own reads
(``Plan.read_at``, wall-clock ISO-8601 UTC, from resolve) or the executor's later ones — and says
which assignments of the next write wave must be read again first. ``0`` means: re-read right
before every write wave, whatever the plan read.

:class:`Deadline` says when to stop sending: before ``deadline`` minus a margin for the wave about
to go (the longest wave seen so far, at least ``margin``).

The wall clock is read once, at the start (to place the plan's read times and the deadline on the
monotonic clock); everything after that uses the monotonic clock, so a wall clock that jumps
(NTP, a suspended laptop) neither stretches nor shrinks the window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from gradesync.guards import parse_time

Pair = tuple[str, str]  # (class_id, assignment_id)


def read_key(pair: Pair) -> str:
    """The key of ``Plan.read_at``: ``"{class_id}/{assignment_id}"`` (contract 4)."""
    return f"{pair[0]}/{pair[1]}"


class ReadTimes:
    """When each assignment was last read, on the monotonic clock (absent: never, i.e. stale)."""

    def __init__(self, window: timedelta, clock: Callable[[], float]) -> None:
        self.window = window.total_seconds()
        self.clock = clock
        self._at: dict[Pair, float] = {}

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
        """These assignments were read just now (or at ``at``, e.g. when their read started: a read
        counts from its start, before any of its pages was served)."""
        when = self.clock() if at is None else at
        for pair in pairs:
            self._at[pair] = max(when, self._at.get(pair, when))

    def stale(self, pair: Pair, *, read_this_wave: bool = False) -> bool:
        """Must ``pair`` be read again before its next write wave?"""
        if read_this_wave:
            return False
        at = self._at.get(pair)
        if at is None or self.window <= 0:
            return True
        return self.clock() - at > self.window

    def last_read(self, pair: Pair) -> float | None:
        """When ``pair`` was last read (monotonic clock), or None: never."""
        return self._at.get(pair)

    def age(self, pair: Pair) -> float | None:
        at = self._at.get(pair)
        return None if at is None else self.clock() - at


class Deadline:
    """Stop sending before ``deadline`` (aware UTC), leaving room for the wave about to go."""

    def __init__(
        self,
        deadline: datetime | None,
        *,
        now: datetime,
        clock: Callable[[], float],
        margin: timedelta,
    ) -> None:
        self.clock = clock
        self.text = deadline.isoformat(timespec="seconds") if deadline is not None else ""
        self._end = None if deadline is None else clock() + (deadline - now).total_seconds()
        self._margin = margin.total_seconds()
        self._longest_wave = 0.0

    def wave_took(self, seconds: float) -> None:
        self._longest_wave = max(self._longest_wave, seconds)

    def reached(self) -> bool:
        """True once the next wave might not finish before the deadline."""
        if self._end is None:
            return False
        return self.clock() + max(self._margin, self._longest_wave) >= self._end
