"""The one retry engine of the Graph client: single requests, ``$batch`` sub-requests and pages.

Work is sent in *rounds*: the caller's ``send_round(keys, attempt)`` sends every pending key once
(one request, or many sub-requests across envelopes) and returns the failures of that round. The
engine alone decides what happens next, by the error's **type**:

* :class:`~gradesync.errors.TransientGraphError` (429, 5xx, timeouts, a broken answer, a 401 whose
  token was just renewed, an unreachable Graph) → sent again next round, if the budget allows;
* anything else (terminal 4xx, auth) → final, returned to the caller.

Waits come from the pure :func:`~gradesync.graph.retry.next_wait`: exponential backoff with full
jitter as a function of the attempt number, replaced by Graph's ``Retry-After`` when one was given
(the longest of the round). A ``Retry-After`` is not slept here: the caller turned it into a
scope-wide pause of the pacer, which holds back every request of the scope, this retry included.
The clock, the sleep and the random generator are injected, so tests run with zero waits.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Hashable, Mapping
from typing import TypeVar

from gradesync.errors import AuthError, GraphError, TransientGraphError
from gradesync.graph.retry import RetryPolicy, next_wait

K = TypeVar("K", bound=Hashable)
AnyGraphError = GraphError | AuthError
SendRound = Callable[[list[K], int], Mapping[K, AnyGraphError]]


class RetryEngine:
    """Rounds of sends until every key succeeded, failed for good, or the policy's budget ran out."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        rng: random.Random,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._rng_lock = threading.Lock()

    def run(self, keys: list[K], send_round: SendRound[K]) -> dict[K, AnyGraphError]:
        """Send ``keys`` in rounds; return ``key → last error`` for every key that did not succeed.

        ``send_round`` returns only the keys that failed (a key absent from its answer succeeded or
        was settled by the caller, e.g. a create whose fate is unknown).
        """
        start = self._clock()
        pending = list(dict.fromkeys(keys))
        final: dict[K, AnyGraphError] = {}
        attempt = 0
        while pending:
            attempt += 1
            failures = send_round(pending, attempt)
            retry = [k for k in pending if isinstance(failures.get(k), TransientGraphError)]
            final.update({k: e for k, e in failures.items() if k not in retry})
            if not retry:
                break
            wait, paused = self.wait_before(attempt, start, [failures[k] for k in retry])
            if wait is None:
                final.update({k: failures[k] for k in retry})
                break
            if not paused:
                self._sleep(wait)
            pending = retry
        return final

    def wait_before(
        self, attempt: int, start: float, errors: list[AnyGraphError]
    ) -> tuple[float | None, bool]:
        """(the wait before the next round or ``None`` to stop, whether a Retry-After decided it)."""
        waits = [e.retry_after for e in errors if isinstance(e, GraphError) and e.retry_after is not None]
        retry_after = max(waits) if waits else None
        with self._rng_lock:
            wait = next_wait(
                attempts_made=attempt,
                elapsed=self._clock() - start,
                retry_after=retry_after,
                policy=self.policy,
                rng=self._rng,
            )
        return wait, retry_after is not None
