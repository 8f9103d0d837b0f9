"""Write envelopes in flight: the lanes (worker threads) that post them, the envelopes ready to go
(prepared by the caller), and the queue their answers come back on, to the one thread (the
executor's) that decides and journals.

::

    lanes = Lanes(max_in_flight, post, width)   # post(envelope) runs in a lane
    lanes.offer([envelope, ...])       # ready: a free lane takes it at once
    for envelope, answers in lanes.take():   # waits for at least one answer
        ...
    lanes.close()                      # at the end: waits for the envelopes still on their way

The caller decides which envelopes are ready and in which order, so each envelope is prepared — its
read refreshed, its operations decided, the journal told — right before it leaves. A lane that has
posted an envelope takes the next ready one itself, before the caller has even seen the answer: a
lane never waits for the caller's thread (busy journalling, or deciding other answers). It takes
one only while fewer than ``width()`` envelopes are on their way (0: none more), and never after an
answer that stops the run (a refused token, Graph unreachable) or after :meth:`halt`: only the
envelopes already on their way are answered then.

``post`` returns the envelope's answers, or the AuthError/NetworkError that stopped it
(:data:`Answers`); anything else it raises is a bug, raised again in the caller's thread by
:meth:`Lanes.take`. Nothing here knows Graph or the journal: only threads and queues.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
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
    """The worker threads of one run (``size`` = the most envelopes ever in flight; ``width()`` =
    how many may be now, at most ``size``)."""

    def __init__(
        self, size: int, post: Callable[[E], Answers], width: Callable[[], int] | None = None
    ) -> None:
        self.size = max(1, size)
        self._post = post
        self._width = width or (lambda: self.size)
        self._pool: ThreadPoolExecutor | None = None
        self._answers: queue.SimpleQueue[tuple[E, Answers | _Raised]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._ready: deque[E] = deque()
        self._busy = 0  # envelopes being posted
        self._halted = False
        self.in_flight = 0  # envelopes taken by a lane whose answers the caller has not taken yet

    @property
    def waiting(self) -> int:
        """Envelopes ready, not yet taken by a lane."""
        return len(self._ready)

    def offer(self, envelopes: Iterable[E]) -> None:
        """These envelopes are ready (after any offered before): free lanes take them now."""
        with self._lock:
            self._ready.extend(envelopes)
        self.start()

    def start(self) -> None:
        """Hand ready envelopes to free lanes (after :meth:`halt`, none)."""
        with self._lock:
            while self._ready and self._may_take():
                self._take_ready()

    def unsent(self) -> list[E]:
        """Take back the ready envelopes no lane has taken (they will not leave)."""
        with self._lock:
            out = list(self._ready)
            self._ready.clear()
        return out

    def halt(self) -> None:
        """No lane takes another envelope (those on their way are still answered)."""
        with self._lock:
            self._halted = True

    def _may_take(self) -> bool:  # under the lock
        return not self._halted and self._busy < min(self.size, max(0, self._width()))

    def _take_ready(self) -> None:  # under the lock, with a ready envelope and a free lane
        envelope = self._ready.popleft()
        self._busy += 1
        self.in_flight += 1
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="gradesync-write")
        self._pool.submit(self._lane, envelope)

    def _lane(self, envelope: E) -> None:
        while True:
            try:
                answer: Answers | _Raised = self._post(envelope)
            except BaseException as exc:  # a bug: raised again in the caller's thread
                answer = _Raised(exc)
            with self._lock:
                self._busy -= 1
                if isinstance(answer, _Raised) or stops(answer):
                    self._halted = True
                nxt = None
                if self._ready and self._may_take():
                    nxt = self._ready.popleft()
                    self._busy += 1
                    self.in_flight += 1
            self._answers.put((envelope, answer))
            if nxt is None:
                return
            envelope = nxt

    def take(self) -> list[tuple[E, Answers]]:
        """The next answer (waiting for it) and every other one already there."""
        items = [self._answers.get()]
        while True:
            try:
                items.append(self._answers.get_nowait())
            except queue.Empty:
                break
        with self._lock:
            self.in_flight -= len(items)
        out: list[tuple[E, Answers]] = []
        for envelope, answer in items:
            if isinstance(answer, _Raised):
                raise answer.exc
            out.append((envelope, answer))
        return out

    def close(self) -> None:
        """No lane takes another envelope; wait for those still on their way (their answers are
        dropped: the journal keeps them ``sending``, and the next run re-reads them)."""
        self.halt()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
