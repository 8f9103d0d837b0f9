"""The SQLite journal and the run lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradesync.errors import LockError
from gradesync.models import Action, Operation
from gradesync.state.journal import Journal, OpRecord, Outcome
from gradesync.state.lock import RunLock


def op(k: int, action: Action = Action.UPDATE) -> Operation:
    return Operation(
        k, action, "c", "a", f"s{k}", None if action is Action.CREATE else f"o{k}", 5.0, None, None
    )


def test_journal_statuses_survive_reopen(tmp_path: Path) -> None:
    with Journal.in_dir(tmp_path) as j:
        j.start("h1", "2024-01-01T00:00:00Z", [op(1), op(2, Action.CREATE), op(3)])
        j.mark_sending("h1", [1, 2])
        j.record("h1", [Outcome(1, "updated", after_points=5.0, http_status=200, request_id="r1")])
    with Journal.in_dir(tmp_path) as j:
        ops = j.ops("h1")
        assert {k: r.status for k, r in ops.items()} == {1: "updated", 2: "sending", 3: "pending"}
        assert ops[1].final and not ops[2].final
        assert OpRecord(9, "excuse", "excused").final  # an excused row is done: resume leaves it
        assert not OpRecord(9, "update", "pending").final
        assert ops[2].attempts == 1
        assert [a["status"] for a in j.attempts("h1", 1)] == ["sending", "updated"]
        # start again (resume): existing records are kept
        j.start("h1", "2024-01-01T00:00:00Z", [op(1), op(2, Action.CREATE), op(3)])
        assert j.ops("h1")[1].status == "updated"
        assert j.run_state("h1")["state"] == "running"
        j.finish_run("h1")
        assert j.run_state("h1")["state"] == "finished"
        assert j.run_state("other") is None
        mode = j._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_lock_second_holder_is_refused_and_named(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        with pytest.raises(LockError) as e:
            RunLock(tmp_path).acquire()
        assert f"pid={os.getpid()}" in e.value.message
        assert int(e.value.exit_code) == 5
    # released: a new run proceeds
    RunLock(tmp_path).acquire().release()


def test_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from gradesync.state.lock import RunLock\n"
        f"held = RunLock({str(tmp_path)!r}).acquire()\n"  # kept: a collected RunLock lets go
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockError) as e:
            RunLock(tmp_path).acquire()
        assert f"pid={proc.pid}" in e.value.message
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 5
    while True:
        try:
            lock = RunLock(tmp_path).acquire()
            break
        except LockError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert f"pid={os.getpid()}" in (tmp_path / "lock.holder").read_text()
    lock.release()
    assert not (tmp_path / "lock.holder").exists()  # released: nobody is named any more
