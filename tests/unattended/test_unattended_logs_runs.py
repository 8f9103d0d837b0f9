"""Logging (redaction, JSON lines, no Authorization header at DEBUG), run directories, pruning, notify."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gradesync.cli.common import graph_client
from gradesync.config import Settings
from gradesync.errors import ExitCode, GuardError
from gradesync.logs import Redactor, setup_logging
from gradesync.state.runs import (
    RUN_JSON,
    create_run_dir,
    exit_code_of,
    is_run_dir,
    list_runs,
    notify,
    prune_runs,
)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_json_lines_carry_run_id_and_extras_and_redact_everything(tmp_path: Path) -> None:
    secret = "s3cret-client-value"
    log_file = tmp_path / "g.log"
    setup = setup_logging(level="DEBUG", fmt="json", file=log_file, run_id="R1", redactor=Redactor([secret]))
    try:
        log = logging.getLogger("gradesync.test")
        log.info("plan: %d rows", 3, extra={"stage": "plan", "rows": 3})
        log.debug("secret in args: %s", secret)
        log.warning("header seen", extra={"detail": f"Authorization: Bearer {secret}x"})
        logging.getLogger("msal.application").debug("token response %s", {"access_token": "Bearer abc.def"})
        try:
            raise RuntimeError(f"boom {secret}")
        except RuntimeError:
            log.exception("failed")
        logging.getLogger("httpcore.http11").debug("send_request_headers.started [(b'Authorization', b'X')]")
    finally:
        setup.close()
    logging.getLogger("gradesync.test").info("after close: not in the file")
    text = log_file.read_text(encoding="utf-8")
    assert secret not in text and "abc.def" not in text and "after close" not in text
    assert "httpcore" not in text  # wire-level loggers are held at WARNING even at DEBUG
    records = _lines(log_file)
    assert records[0] == {
        "ts": records[0]["ts"],
        "level": "INFO",
        "logger": "gradesync.test",
        "message": "plan: 3 rows",
        "run_id": "R1",
        "stage": "plan",
        "rows": 3,
    }
    assert records[1]["message"] == "secret in args: ***"
    assert records[2]["detail"] == "Authorization: ***"
    assert "RuntimeError: boom ***" in records[4]["exc"]


def test_text_format_and_levels(tmp_path: Path) -> None:
    log_file = tmp_path / "g.log"
    setup = setup_logging(level="WARNING", fmt="text", file=log_file, run_id="R2", redactor=Redactor())
    try:
        logging.getLogger("gradesync.x").info("quiet")
        logging.getLogger("gradesync.x").warning("loud %s", "one", extra={"k": "v"})
    finally:
        setup.close()
    (line,) = log_file.read_text().splitlines()
    assert line.endswith("WARNING gradesync.x: loud one [k=v]")


def test_no_authorization_header_in_a_debug_log_of_real_graph_traffic(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    log_file = tmp_path / "g.log"
    # No redactor knows the token: the log must not hold it because nothing logs headers at all.
    setup = setup_logging(level="DEBUG", fmt="json", file=log_file, run_id="R3", redactor=Redactor())
    try:
        settings = Settings.model_validate({"graph": {"base_url": emulator.base_url}})
        with graph_client(settings, token=token) as client:
            client.get_all("education/classes")
            client.get("education/classes", params={"$top": 1})
    finally:
        setup.close()
    text = log_file.read_text(encoding="utf-8")
    records = _lines(log_file)
    assert any(r["logger"] == "gradesync.http" and r.get("status") == 200 for r in records)
    assert any(r["logger"] == "httpx" for r in records)  # httpx's request line is let through at DEBUG
    assert token not in text
    assert "authorization" not in text.lower() and "bearer" not in text.lower()


def _fake_run(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / RUN_JSON).write_text("{}")
    return path


def test_prune_keeps_the_newest_and_the_current_and_nothing_else(tmp_path: Path) -> None:
    runs = [_fake_run(tmp_path, f"2025010{i}T020000Z-aaaaa{i}") for i in range(1, 7)]
    current = runs[0]  # even the oldest stays when it is the current run
    strangers = [tmp_path / "notes", tmp_path / "20250101T020000Z-zzzzzz"]  # a dir; a run-like name
    strangers[0].mkdir()
    strangers[1].mkdir()  # no run.json: not a run directory
    (tmp_path / "20250101T020000Z-bbbbbb").write_text("a file")
    (tmp_path / "20250109T020000Z-cccccc").symlink_to(runs[1])
    deleted = prune_runs(tmp_path, 3, current=current)
    assert sorted(p.name for p in deleted) == sorted(p.name for p in runs[1:4])
    assert [p.name for p in list_runs(tmp_path)] == [runs[0].name, runs[4].name, runs[5].name]
    assert all(p.exists() for p in strangers) and (tmp_path / "20250101T020000Z-bbbbbb").is_file()
    assert not is_run_dir(tmp_path / "20250109T020000Z-cccccc")


def test_create_run_dir_names_sort_by_time(tmp_path: Path) -> None:
    path, run_id = create_run_dir(tmp_path)
    assert path.name == run_id and path.is_dir()
    assert len(run_id) == len("20250101T020000123Z-abcdef")
    # two runs started within the same second still sort in the order they started
    first = datetime(2025, 1, 1, 2, 0, 0, 900_000, tzinfo=UTC)
    names = [create_run_dir(tmp_path, now=first + timedelta(milliseconds=ms))[1] for ms in (0, 50, 99)]
    assert names == sorted(names)
    assert [p.name for p in list_runs(tmp_path)] == []  # no run.json yet: not run directories


def test_notify_gets_summary_env_and_last_argument_without_our_secrets(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    script = tmp_path / "hook.sh"
    script.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" "$GRADESYNC_SUMMARY" "$GRADESYNC_RUN_DIR" "$GRADESYNC_EXIT_CODE" '
        '"${GRADESYNC_ACCESS_TOKEN:-none}" "${GRADESYNC_CLIENT_SECRET:-none}" > "$OUT"\n'
    )
    script.chmod(0o755)
    env = {**os.environ, "OUT": str(out), "GRADESYNC_ACCESS_TOKEN": "t0ken", "GRADESYNC_CLIENT_SECRET": "s3c"}
    summary = tmp_path / "run dir" / "summary.json"
    result = notify(f"{script} first", summary_path=summary, run_dir=tmp_path, exit_code=4, environ=env)
    assert result.exit_code == 0
    expected = ["first", str(summary), str(summary), str(tmp_path), "4", "none", "none"]
    assert out.read_text().splitlines() == expected


def test_notify_failure_and_timeout_are_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gradesync.run"):
        failed = notify("exit 7", summary_path=None, run_dir=tmp_path, exit_code=0)
        slow = notify(f"{sys.executable} -c 'import time; time.sleep(30)'", summary_path=None,
                      run_dir=tmp_path, exit_code=0, timeout=0.3)  # fmt: skip
    assert failed.exit_code == 7 and slow.timed_out
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed with exit status 7" in m for m in messages)
    assert any("did not finish within" in m for m in messages)


def test_exit_code_of() -> None:
    import click

    assert exit_code_of(None) == 0
    assert exit_code_of(GuardError("x")) == ExitCode.GUARD
    assert exit_code_of(click.exceptions.Exit(1)) == 1
    assert exit_code_of(KeyboardInterrupt()) == 130
    assert exit_code_of(ValueError()) == ExitCode.INTERNAL
