"""Write envelopes stream through ``max_in_flight`` lanes: the next envelope leaves as soon as one in
flight is answered, so no envelope waits for the slowest of a "round". Shown with events, no timing."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from execute_helpers import assert_converged, build_plan, client_for, status_counts

from gradesync.errors import StorageError
from gradesync.execute.apply import ApplyOptions, apply_plan
from gradesync.state.journal import Journal

LOOSE = ApplyOptions()


def test_a_slow_envelope_does_not_hold_back_the_next_ones(emulator: Any, token: str, tmp_path: Path) -> None:
    """Two lanes; the first envelope is answered only once the third has been sent. Sent in rounds of
    two (the third after both of the first round), this would never happen."""
    plan = build_plan(emulator.state(), updates=80, creates=0, noops=0, rejects=0)  # 4 envelopes
    third_sent = threading.Event()
    waited: list[bool] = []
    calls: list[int] = []
    lock = threading.Lock()
    with client_for(emulator, token, max_in_flight=2) as client, Journal.in_dir(tmp_path) as journal:
        real = client.batch

        def batch(reqs: Any, **kw: Any) -> Any:
            with lock:
                calls.append(len(calls) + 1)
                n = calls[-1]
            if n == 3:
                third_sent.set()
            answers = real(list(reqs), **kw)
            if n == 1:
                waited.append(third_sent.wait(timeout=60))
            return answers

        client.batch = batch  # type: ignore[method-assign]
        result = apply_plan(plan, client, journal=journal, options=LOOSE)
    assert waited == [True]
    assert len(calls) == 4
    assert status_counts(result) == {"updated": 80}
    assert_converged(emulator, plan)


def test_a_lane_takes_the_next_ready_envelope_itself(emulator: Any, token: str, tmp_path: Path) -> None:
    """Two lanes; the executor's thread is held in the journal (marking the fifth envelope
    ``sending``) until the fourth envelope — already journalled, ready — has been sent. Only a lane
    coming free can send it then: a lane never waits for the executor's thread to hand it over."""
    plan = build_plan(emulator.state(), updates=200, creates=0, noops=0, rejects=0)  # 10 envelopes
    fourth_sent = threading.Event()
    waited: list[bool] = []
    calls: list[int] = []
    marked: list[int] = []  # keys journalled ``sending``
    lock = threading.Lock()
    with client_for(emulator, token, max_in_flight=2) as client, Journal.in_dir(tmp_path) as journal:
        real_batch, real_record, real_mark = client.batch, journal.record, journal.mark_sending

        def batch(reqs: Any, **kw: Any) -> Any:
            with lock:
                calls.append(1)
                if len(calls) == 4:
                    fourth_sent.set()
            return real_batch(list(reqs), **kw)

        def held(keys: list[int]) -> None:
            if len(marked) <= 80 < len(marked) + len(keys):  # the fifth envelope's keys
                waited.append(fourth_sent.wait(timeout=30))
            marked.extend(keys)

        def record(phash: str, outcomes: Any, *, sending: Any = ()) -> None:
            held(list(sending))
            real_record(phash, outcomes, sending=sending)

        def mark_sending(phash: str, keys: Any) -> None:
            held(list(keys))
            real_mark(phash, keys)

        client.batch = batch  # type: ignore[method-assign]
        journal.record = record  # type: ignore[method-assign]
        journal.mark_sending = mark_sending  # type: ignore[method-assign]
        result = apply_plan(plan, client, journal=journal, options=LOOSE)
    assert waited == [True]
    assert status_counts(result) == {"updated": 200}
    assert_converged(emulator, plan)


def test_an_error_while_recording_stops_the_lanes(emulator: Any, token: str, tmp_path: Path) -> None:
    """The journal fails on the first answers (a full disk): no lane takes another envelope — at most
    the one each lane had already taken goes — and the error is raised, never swallowed."""
    plan = build_plan(emulator.state(), updates=160, creates=0, noops=0, rejects=0)  # 8 envelopes
    raised = threading.Event()
    calls: list[int] = []
    with client_for(emulator, token, max_in_flight=2) as client, Journal.in_dir(tmp_path) as journal:
        real_batch, real_record = client.batch, journal.record

        def batch(reqs: Any, **kw: Any) -> Any:
            calls.append(1)
            if len(calls) > 2:  # the lanes' next envelopes wait until the journal has failed
                raised.wait(timeout=60)
            return real_batch(list(reqs), **kw)

        def record(phash: str, outcomes: Any, **kw: Any) -> None:
            if any(o.status == "updated" for o in outcomes):
                raised.set()
                raise StorageError("disk full", code="storage-disk-full")
            real_record(phash, outcomes, **kw)

        client.batch = batch  # type: ignore[method-assign]
        journal.record = record  # type: ignore[method-assign]
        with pytest.raises(StorageError):
            apply_plan(plan, client, journal=journal, options=LOOSE)
    assert raised.is_set()
    assert len(calls) <= 4  # 2 answered + at most one more per lane, of 8
