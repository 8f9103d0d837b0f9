"""Write envelopes in flight: the lanes (worker threads) that post them, and the queue their answers
come back on, to the one thread (the executor's) that decides and journals.

::

    lanes = Lanes(max_in_flight)
    lanes.submit(envelope, post)       # post(envelope) runs in a lane
    for envelope, answers in lanes.take():   # waits for at least one answer
        ...
    lanes.close()                      # at the end: waits for the envelopes still on their way

The caller decides how many envelopes are in flight (``in_flight``) and which goes next, so each
envelope is prepared — its read refreshed, its operations decided, the journal told — right before
it leaves, and after a refusal (a refused token, Graph unreachable) the caller simply submits no
more: only the envelopes already on their way are answered.

``post`` returns the envelope's answers, or the AuthError/NetworkError that stopped it
(:data:`Answers`); anything else it raises is a bug, raised again in the caller's thread by
:meth:`Lanes.take`. Nothing here knows Graph or the journal: only threads and a queue.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from gradesync.errors import AuthError, GradesyncError
from gradesync.graph import SubResponse

__all__ = ["Answers", "Lanes", "stops"]

E = TypeVar("E")
Answers = dict[str, SubResponse] | GradesyncError  # an envelope's answers, or what stopped it


def stops(answers: Answers) -> bool:
    """Whether an envelope's answers stop the run (Graph unreachable, a refused token or permission)."""
    if isinstance(answers, GradesyncError):
        return True
    return any(isinstance(a.error, AuthError) for a in answers.values())


class _Raised:
    """What a lane's ``post`` raised (a bug), carried to the caller's thread."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Lanes(Generic[E]):
    """The worker threads of one run (``size`` = the most envelopes ever in flight)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._pool: ThreadPoolExecutor | None = None
        self._answers: queue.SimpleQueue[tuple[E, Answers | _Raised]] = queue.SimpleQueue()
        self.in_flight = 0

    def submit(self, envelope: E, post: Callable[[E], Answers]) -> None:
        """Post ``envelope`` in a free lane (the caller keeps ``in_flight`` within ``size``)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="gradesync-write")
        self.in_flight += 1
        self._pool.submit(self._lane, envelope, post)

    def _lane(self, envelope: E, post: Callable[[E], Answers]) -> None:
        try:
            answer: Answers | _Raised = post(envelope)
        except BaseException as exc:  # a bug: raised again in the caller's thread
            answer = _Raised(exc)
        self._answers.put((envelope, answer))

    def take(self) -> list[tuple[E, Answers]]:
        """The next answer (waiting for it) and every other one already there."""
        items = [self._answers.get()]
        while True:
            try:
                items.append(self._answers.get_nowait())
            except queue.Empty:
                break
        self.in_flight -= len(items)
        out: list[tuple[E, Answers]] = []
        for envelope, answer in items:
            if isinstance(answer, _Raised):
                raise answer.exc
            out.append((envelope, answer))
        return out

    def close(self) -> None:
        """Wait for the envelopes still on their way (their answers are dropped: the journal keeps
        them ``sending``, and the next run re-reads them)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
