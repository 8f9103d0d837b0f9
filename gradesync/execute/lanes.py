"""Write envelopes streamed through lanes: up to ``width`` envelopes in flight, each lane taking the
next envelope as soon as its own is answered — no envelope waits for the slowest of a "round", nor
for the journal, which the caller's thread writes meanwhile.

::

    lanes = Lanes(max_in_flight)
    not_sent = lanes.stream(chunks, post, width, answered)   # per wave; lanes.close() at the end

* ``post(chunk)`` runs in a lane: it sends one envelope and returns its answers, or the
  AuthError/NetworkError that stopped it (:data:`Answers`);
* ``answered([(chunk, answers), ...])`` runs in the caller's thread with every answer that has come
  since the last call (so the caller can journal them in one commit);
* ``width()`` is asked when the stream starts and by each lane before each envelope: lane ``i``
  quits when ``width() <= i`` (fewer envelopes in flight from then on, e.g. while the client learns
  Graph's pace);
* **halt**: an answer that stops the run (:func:`stops`: Graph unreachable, a refused token or
  permission) halts the stream before its lane, or any other, takes one more envelope; so does an
  error in the caller's thread (:meth:`Lanes.halt`, called by the executor's clean-up). The chunks
  never taken are returned; those on their way are answered.

Nothing here knows Graph or the journal: only threads, a queue and an event.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gradesync.errors import AuthError, GradesyncError
from gradesync.graph import SubResponse

Chunk = list[int]  # the row keys of one envelope
Answers = dict[str, SubResponse] | GradesyncError  # an envelope's answers, or what stopped it
Answered = Callable[[list[tuple[Chunk, Answers]]], None]


def stops(answers: Answers) -> bool:
    """Whether an envelope's answers stop the run (Graph unreachable, a refused token or permission)."""
    if isinstance(answers, GradesyncError):
        return True
    return any(isinstance(a.error, AuthError) for a in answers.values())


@dataclass(slots=True)
class _Stream:
    """One wave's envelopes on their way through the lanes."""

    chunks: deque[Chunk]  # not yet taken by a lane
    answers: queue.SimpleQueue[tuple[Chunk, Answers] | None] = field(default_factory=queue.SimpleQueue)
    lock: threading.Lock = field(default_factory=threading.Lock)
    halt: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None

    def take(self) -> list[tuple[Chunk, Answers] | None]:
        """The next answer (waiting for it), and every other one already there (None: a lane ended)."""
        items = [self.answers.get()]
        while True:
            try:
                items.append(self.answers.get_nowait())
            except queue.Empty:
                return items

    def next_chunk(self) -> Chunk | None:
        with self.lock:
            return self.chunks.popleft() if self.chunks else None


class Lanes:
    """The worker threads of one run (``size`` = the most envelopes ever in flight)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._pool: ThreadPoolExecutor | None = None
        self._current: _Stream | None = None

    def stream(
        self,
        chunks: deque[Chunk],
        post: Callable[[Chunk], Answers],
        width: Callable[[], int],
        answered: Answered,
    ) -> list[Chunk]:
        """Send every chunk (see the module docstring); returns the chunks not sent after a halt.
        Raises what a lane raised unexpectedly (a bug), once every lane has ended."""
        stream = self._current = _Stream(chunks)
        n = max(1, min(self.size, width()))
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="gradesync-write")
        for lane in range(n):
            self._pool.submit(self._lane, stream, lane, post, width)
        ended = 0
        while ended < n:
            items = stream.take()
            ended += items.count(None)
            ready = [item for item in items if item is not None]
            if ready:
                answered(ready)
        self._current = None
        if stream.failure is not None:
            raise stream.failure
        return list(stream.chunks)

    @staticmethod
    def _lane(stream: _Stream, lane: int, post: Callable[[Chunk], Answers], width: Callable[[], int]) -> None:
        try:
            while not stream.halt.is_set() and (lane == 0 or width() > lane):
                chunk = stream.next_chunk()
                if chunk is None:
                    return
                answers = post(chunk)
                if stops(answers):
                    stream.halt.set()  # before this lane or any other takes one more envelope
                stream.answers.put((chunk, answers))
        except BaseException as exc:  # a bug: raised again in the caller's thread
            stream.failure = exc
            stream.halt.set()
        finally:
            stream.answers.put(None)

    def halt(self) -> None:
        """No lane takes another envelope of the stream under way (if any)."""
        if self._current is not None:
            self._current.halt.set()

    def close(self) -> None:
        """Halt, and wait for the lanes to end."""
        self.halt()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
