"""The one retry engine of the Graph client — single requests, ``$batch`` sub-requests and pages —
run by tenacity.

Work is sent in *rounds*: the caller's ``send_round(keys, attempt)`` sends every pending key once
(one request, or many sub-requests across envelopes) and returns the failures of that round. A
tenacity ``Retrying`` decides what happens next:

* **retry** by the error's type: the keys that failed with a
  :class:`~gradesync.errors.TransientGraphError` (429, 5xx, timeouts, a broken answer, a 401 whose
  token was just renewed, an unreachable Graph) are sent again next round; anything else (terminal
  4xx, auth) is final and returned to the caller;
* **wait** from the pure :func:`~gradesync.graph.retry.next_wait`: exponential backoff with full
  jitter, replaced by Graph's ``Retry-After`` when one was given (the longest of the round). A
  ``Retry-After`` is not slept here: the client turned it into a pause of the whole scope in its
  pacer, which holds back every request, this retry included;
* **stop** when the attempts are used up, when the wait would cross the policy's time budget, or
  when it would end past the caller's deadline (``time_left``: do not start a wait the run cannot
  afford) — the round's failures are then final;
* **before sleep**: ``on_retry(attempt, wait, errors)``, for the journal and progress.

:meth:`RetryEngine.run_each` is the same policy kept *per key*, for work whose keys go on at
different speeds (the pages of many listings): each round sends every key that is due; a key that
failed waits its own wait — the same pure ``next_wait`` from its own attempts — while the others
go on, and a key may come back for more (a listing's next page) with a fresh count. One slow key
(a page that fails three times in a row) then holds back nothing but itself. Tenacity retries one
call; these per-key clocks in one loop are not its model, so this loop is written out here, on the
same rules.

The clock, the sleep and the random generator are injected, so tests run with zero waits and the
benchmarks with real ones.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base

from gradesync.errors import AuthError, GraphError, TransientGraphError
from gradesync.graph.retry import RetryPolicy, next_wait

__all__ = ["AnyGraphError", "OnRetry", "RetryEngine", "SendEach", "SendRound", "TimeLeft"]

K = TypeVar("K", bound=Hashable)
AnyGraphError = GraphError | AuthError
SendRound = Callable[[list[K], int], Mapping[K, AnyGraphError]]
TimeLeft = Callable[[], float | None]  # seconds until the caller's deadline; None: no deadline
OnRetry = Callable[[int, float, list[AnyGraphError]], None]  # attempt made, wait, the errors retried
# run_each's round: (the keys due, each one's attempt number) → (the failures, the keys to send again
# at once with a fresh count — a listing's next page)
SendEach = Callable[[list[K], Mapping[K, int]], tuple[Mapping[K, AnyGraphError], set[K]]]


@dataclass(slots=True)
class _KeyState:
    """One key's retry state in :meth:`RetryEngine.run_each`."""

    attempts: int = 1  # the attempt the next send is
    first: float | None = None  # when this unit of work was first sent
    due: float = -math.inf  # not sent again before this time
    error: AnyGraphError | None = None  # its last transient failure


class _Retry(Exception, Generic[K]):
    """One round's transient failures: tenacity's signal to run another round for them."""

    def __init__(self, failures: dict[K, AnyGraphError]) -> None:
        super().__init__(f"{len(failures)} request(s) to send again")
        self.failures = failures


class RetryEngine:
    """Rounds of sends until every key succeeded, failed for good, or a stop condition was met."""

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

    def run(
        self,
        keys: list[K],
        send_round: SendRound[K],
        *,
        time_left: TimeLeft | None = None,
        on_retry: OnRetry | None = None,
    ) -> dict[K, AnyGraphError]:
        """Send ``keys`` in rounds; return ``key → last error`` for every key that did not succeed.

        ``send_round`` returns only the keys that failed (a key absent from its answer succeeded or
        was settled by the caller, e.g. a create whose fate is unknown)."""
        start = self._clock()
        pending: list[K] = list(dict.fromkeys(keys))
        final: dict[K, AnyGraphError] = {}
        paused = [False]  # whether the next wait is a Retry-After (the pacer holds it, not us)

        def wait(state: RetryCallState) -> float:
            errors = list(_failures(state).values())
            waits = [e.retry_after for e in errors if isinstance(e, GraphError) and e.retry_after is not None]
            paused[0] = bool(waits)
            with self._rng_lock:
                planned = next_wait(
                    attempts_made=state.attempt_number,
                    elapsed=self._clock() - start,
                    retry_after=max(waits) if waits else None,
                    policy=self.policy,
                    rng=self._rng,
                )
            return math.inf if planned is None else planned  # inf: the budget says stop

        def before_sleep(state: RetryCallState) -> None:
            if on_retry is not None:
                on_retry(state.attempt_number, state.upcoming_sleep, list(_failures(state).values()))

        def sleep(seconds: float) -> None:
            if not paused[0]:
                self._sleep(seconds)

        retrying = Retrying(
            retry=retry_if_exception_type(_Retry),
            wait=wait,
            stop=stop_after_attempt(self.policy.max_attempts) | _PastBudgetOrDeadline(time_left),
            before_sleep=before_sleep,
            sleep=sleep,
            retry_error_callback=lambda state: final.update(_failures(state)),
        )
        for attempt in retrying:
            with attempt:
                number = attempt.retry_state.attempt_number
                failures = send_round(pending, number)
                retry: dict[K, AnyGraphError] = {
                    k: e for k in pending if isinstance(e := failures.get(k), TransientGraphError)
                }
                final.update({k: e for k, e in failures.items() if k not in retry})
                if retry:
                    pending = list(retry)
                    raise _Retry(retry)
        return final

    def run_each(
        self,
        keys: list[K],
        send_round: SendEach[K],
        *,
        time_left: TimeLeft | None = None,
        on_retry: OnRetry | None = None,
    ) -> dict[K, AnyGraphError]:
        """Send ``keys`` in rounds of the keys that are due; return ``key → last error`` for every key
        that did not succeed (see the module docstring). A failure is retried by its type, after
        its own ``next_wait`` (a Retry-After is the pacer's scope-wide pause: the key is due at once
        and the pacer holds it); it is final when the attempts or the time budget are used up, or
        when its wait would end past ``time_left``."""
        pending: dict[K, _KeyState] = {k: _KeyState() for k in dict.fromkeys(keys)}
        final: dict[K, AnyGraphError] = {}
        rounds = 0
        while pending:
            now = self._clock()
            due = [k for k, st in pending.items() if st.due <= now]
            if not due:
                wait = min(st.due for st in pending.values()) - now
                left = time_left() if time_left is not None else None
                if left is not None and wait > left:  # no key can be sent before the deadline
                    final.update({k: st.error for k, st in pending.items() if st.error is not None})
                    break
                self._sleep(wait)
                continue
            rounds += 1
            for k in due:
                if pending[k].first is None:
                    pending[k].first = now
            failures, again = send_round(due, {k: pending[k].attempts for k in due})
            now = self._clock()
            retried: list[tuple[float, AnyGraphError]] = []
            for k in due:
                st = pending[k]
                err = failures.get(k)
                if k in again and err is None:
                    pending[k] = _KeyState(due=now)  # more of it: a fresh count, at once
                    continue
                if err is None or not isinstance(err, TransientGraphError):
                    del pending[k]
                    if err is not None:
                        final[k] = err
                    continue
                with self._rng_lock:
                    planned = next_wait(
                        attempts_made=st.attempts,
                        elapsed=now - (st.first if st.first is not None else now),
                        retry_after=err.retry_after,
                        policy=self.policy,
                        rng=self._rng,
                    )
                left = time_left() if time_left is not None else None
                if planned is None or (left is not None and planned > left):
                    final[k] = err
                    del pending[k]
                    continue
                st.attempts += 1
                st.error = err
                st.due = now if err.retry_after is not None else now + planned
                retried.append((planned, err))
            if retried and on_retry is not None:
                on_retry(rounds, max(w for w, _ in retried), [e for _, e in retried])
        return final


class _PastBudgetOrDeadline(stop_base):
    """Stop when the wait before the next round would cross the policy's time budget (the wait
    strategy says so with an infinite wait) or end past the caller's deadline."""

    def __init__(self, time_left: TimeLeft | None) -> None:
        self.time_left = time_left

    def __call__(self, state: RetryCallState) -> bool:
        if math.isinf(state.upcoming_sleep):
            return True
        left = self.time_left() if self.time_left is not None else None
        return left is not None and state.upcoming_sleep > left


def _failures(state: RetryCallState) -> dict[K, AnyGraphError]:
    """The transient failures of the round that just ended (tenacity keeps its exception)."""
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    return exc.failures if isinstance(exc, _Retry) else {}
