"""Pure retry arithmetic: ``Retry-After`` parsing, backoff, and the attempt/time budget.

Nothing here sleeps or reads a clock by itself: the clock and the random generator are passed in,
so tests compute and assert the exact waits with zero wall time (stamina's idea).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "backoff", "next_wait", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to retry one request (or one sub-request).

    ``max_attempts`` counts sends (the first one included); ``max_total_seconds`` bounds the time
    from the first send until a retry would be sent; ``base_delay``/``max_delay`` shape the
    exponential backoff with full jitter used when Graph gives no ``Retry-After``.
    """

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 60.0
    max_total_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_total_seconds < 0:
            raise ValueError("delays and the time budget must not be negative")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or ``None`` if absent or unreadable.

    Accepts every form Graph has been seen to send: whole seconds ``"3"``, decimals ``"0.249"``,
    a list ``"30,120"`` (the first counts) and an HTTP-date (relative to ``now``, default the
    current UTC time; a date in the past means 0). Negative, NaN and infinite values → ``None``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    first = text.split(",", 1)[0].strip()
    try:
        seconds = float(first)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
        return None
    # An HTTP-date contains a comma after the weekday ("Wed, 21 Oct 2015 07:28:00 GMT"): use all of it.
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    if reference.tzinfo is None:
        reference = reference.replace(tzinfo=UTC)
    return max(0.0, (when - reference).total_seconds())


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Exponential backoff with full jitter before retry number ``attempt`` (1 = the first retry).

    Uniform in ``[0, min(max_delay, base_delay * 2 ** (attempt - 1))]``: a pure function of the
    attempt number and the generator's state.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    exponent = min(attempt - 1, 64)  # 2**64 * base is far beyond any cap; avoids overflow
    ceiling = min(policy.max_delay, policy.base_delay * (2.0**exponent))
    return rng.uniform(0.0, ceiling)


def next_wait(
    *,
    attempts_made: int,
    elapsed: float,
    retry_after: float | None,
    policy: RetryPolicy,
    rng: random.Random,
) -> float | None:
    """The wait before the next send, or ``None`` when the budget says stop.

    ``attempts_made`` sends have happened, ``elapsed`` seconds have passed since the first.
    A server's ``Retry-After`` replaces the computed backoff (it is honoured even above
    ``max_delay``: sending earlier is throttled again and costs quota); stopping happens when the
    attempts are used up or when waiting would cross ``max_total_seconds``.
    """
    if attempts_made >= policy.max_attempts:
        return None
    wait = retry_after if retry_after is not None else backoff(attempts_made, policy, rng)
    if elapsed + wait > policy.max_total_seconds:
        return None
    return wait
