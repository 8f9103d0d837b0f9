"""The pipeline library driven directly (no click), against the emulator over real HTTP.

The pipeline is a library a script can drive: a preview carries its
digest and the guards' verdict; apply refuses a hand-edited plan (exit 4, plan-digest-mismatch) and a
plan dated in the future; Graph unreachable is exit 7, an unwritable report dir exit 8, and run.json
records the error and only this run's files; the demo gives the same result every time.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gradesync.config import Settings
from gradesync.errors import ExitCode
from gradesync.pipeline import Event, Pipeline, make_client
from gradesync.plan.planfile import read_plan, write_plan

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "sis_long.csv"


def _settings(base_url: str, tmp: Path, **apply: Any) -> Settings:
    settings = Settings().override("graph", base_url=base_url, max_attempts=1, max_retry_seconds=5.0)
    return settings.override("apply", state_dir=str(tmp / "state"), **apply)


_CLIENTS: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def _pipeline(settings: Settings, token: str, events: list[Event] | None = None) -> Pipeline:
    listener = events.append if events is not None else None
    _CLIENTS.append(client := make_client(settings, token=token))
    return Pipeline(settings, client, listener=listener, argv=["test"])


def _run_json(result: Any) -> dict[str, Any]:
    return json.loads((result.run_dir / "run.json").read_text())


def test_plan_returns_digest_and_the_guards_verdict(emulator: Any, token: str, tmp_path: Path) -> None:
    events: list[Event] = []
    pipeline = _pipeline(_settings(emulator.base_url, tmp_path), token, events)
    preview = pipeline.plan([SAMPLE], report_dir=tmp_path / "rep", out=tmp_path / "plan.json")
    assert len(preview.digest) == 64 and preview.summary.digest == preview.digest[:12]
    # the sample rewrites most grades: apply (default guards) would refuse it, and the preview says so
    assert any("--max-changes" in reason for reason in preview.guard_verdict), preview.guard_verdict
    result = preview.result()
    assert result.kind == "plan" and result.exit_code == ExitCode.ROWS_NOT_DONE  # rejected rows come first
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["digest"] == preview.digest[:12] and summary["apply_refused"] is True
    assert summary["guard_verdict"] == preview.guard_verdict
    assert "Apply would be refused" in (tmp_path / "rep" / "report.html").read_text()
    assert read_plan(tmp_path / "plan.json").digest == preview.digest  # the plan file stores it
    assert {e.stage for e in events if e.kind == "stage"} >= {"read", "resolve", "plan", "guards", "report"}


def test_apply_refuses_a_hand_edited_plan(emulator: Any, token: str, tmp_path: Path) -> None:
    settings = _settings(
        emulator.base_url, tmp_path, max_changes="off", max_decreases="off", min_coverage="off"
    )
    pipeline = _pipeline(settings, token)
    pipeline.plan([SAMPLE], out=tmp_path / "plan.json")
    plan = read_plan(tmp_path / "plan.json")
    row = int(plan.rows.index[plan.rows["action"] == "update"][0])
    plan.rows.loc[row, "desired_points"] += 1  # one grade changed, the file rewritten with its old digest
    write_plan(plan, tmp_path / "plan.json", digest=plan.digest, key_id=plan.key_id)
    tampered = read_plan(tmp_path / "plan.json")  # the file is well formed: only the digest tells
    before = emulator.stats()["writes_applied"]
    result = pipeline.apply(tampered, plan_file=tmp_path / "plan.json")
    assert result.exit_code == ExitCode.GUARD and result.error is not None
    assert result.error.code == "plan-digest-mismatch"
    assert emulator.stats()["writes_applied"] == before  # nothing written
    record = _run_json(result)
    assert record["exit_code"] == 4 and record["error"]["code"] == "plan-digest-mismatch"
    assert record["error"]["hint"]
    # a digest the reviewer approved that is not this plan's is refused the same way
    fresh = pipeline.plan([SAMPLE]).plan
    other = pipeline.apply(fresh, approved_digest="0123456789ab", dry_run=True)
    assert other.error is not None and other.error.code == "plan-digest-mismatch"


def test_a_plan_dated_in_the_future_is_refused_with_its_report(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    settings = _settings(
        emulator.base_url, tmp_path, max_changes="off", max_decreases="off", max_plan_age="off"
    )
    pipeline = _pipeline(settings, token)
    plan = pipeline.plan([SAMPLE]).plan
    plan.created_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    result = pipeline.apply(plan, dry_run=True)
    assert result.exit_code == ExitCode.GUARD
    assert any("in the future" in reason for reason in result.guard_verdict)
    # a refused dry run still writes its report, and run.json points at this run's files only
    record = _run_json(result)
    assert Path(record["summary"]) == result.run_dir / "summary.json"
    assert all(Path(p).parent == result.run_dir for p in record["reports"].values())
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["apply_refused"] and "in the future" in summary["guard_verdict"][0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_graph_unreachable_is_exit_7_and_recorded(token: str, tmp_path: Path) -> None:
    settings = _settings(f"http://127.0.0.1:{_closed_port()}/v1.0", tmp_path)
    result = _pipeline(settings, token).sync([SAMPLE])
    assert result.exit_code == ExitCode.NETWORK, result.error
    record = _run_json(result)
    assert record["exit_code"] == 7 and record["error"]["code"] == "graph-unreachable"
    assert record["status"] == "failed" and record["summary"] is None and record["reports"] == {}


def test_an_unwritable_report_dir_is_exit_8_not_a_bug(emulator: Any, token: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # as root, modes do not stop us: a file as the parent does
    settings = _settings(emulator.base_url, tmp_path)
    pipeline = _pipeline(settings, token)
    first = pipeline.sync([SAMPLE], report_dir=tmp_path / "rep", dry_run=True)  # a previous run's summary
    assert (tmp_path / "rep" / "summary.json").is_file() and first.exit_code != ExitCode.STORAGE
    result = pipeline.sync([SAMPLE], report_dir=blocker / "rep")
    assert result.exit_code == ExitCode.STORAGE and result.error is not None
    assert result.error.code == "storage-unwritable" and result.error.hint
    record = _run_json(result)
    assert record["exit_code"] == 8 and record["error"]["code"] == "storage-unwritable"
    assert record["summary"] is None and record["reports"] == {}  # never another run's files


def test_the_demo_gives_the_same_result_twice(tmp_path: Path) -> None:
    from gradesync.cli.demo import SAMPLE_DIR, run_demo
    from graph_emulator import ThrottleConfig

    assert SAMPLE_DIR == REPO / "sample_data"  # `gradesync demo`'s default (it pointed into gradesync/)

    outcomes = []
    for _ in range(2):  # a fresh emulator each time, the same output folder
        code = run_demo(REPO / "sample_data", tmp_path, say=lambda line: None, throttle=ThrottleConfig.off())
        summary = json.loads((tmp_path / "reports" / "summary.json").read_text())
        outcomes.append((code, summary["status_counts"], summary["counts"], summary["teacher_overrides"]))
    assert outcomes[0] == outcomes[1], outcomes
    assert outcomes[1][3] == 0  # no false teacher_override alarms on the second run
    assert outcomes[0][0] == ExitCode.ROWS_NOT_DONE  # the samples' deliberate problems


def test_disk_failures_get_their_named_codes() -> None:
    import errno
    import sqlite3

    from gradesync.errors import storage_error

    cases = {
        OSError(errno.ENOSPC, "No space left on device"): "storage-disk-full",
        OSError(errno.EROFS, "Read-only file system"): "storage-read-only",
        OSError(errno.ENOTDIR, "Not a directory"): "storage-unwritable",
        sqlite3.DatabaseError("file is not a database"): "storage-journal-corrupt",
        sqlite3.OperationalError("database or disk is full"): "storage-disk-full",
    }
    for exc, code in cases.items():
        err = storage_error(exc, "journal", "/x/journal.sqlite")
        assert (err.code, err.exit_code) == (code, ExitCode.STORAGE) and err.hint, exc
        assert "/x/journal.sqlite" in err.message
