"""A run whose state directory cannot be written still records why: the error on stderr, and a
``run.json`` in the runs directory, or — when that cannot be written either — in the fallback folder
``<temp>/gradesync-runs-<uid>/``.

Runs as root in CI, where file modes do not stop writes: the state directory is put below a regular
file (``ENOTDIR``, ``storage-unwritable``), the way a missing mount or a mistyped path fails; a
read-only one fails at the same step (taking the lock) with ``storage-read-only``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "sis_long.csv"


def _sync(tmp_path: Path, *extra: str, temp: Path | None = None) -> tuple[int, str, str]:
    import subprocess

    env = {**os.environ, "GRADESYNC_GRAPH_URL": "http://127.0.0.1:9/v1.0", "GRADESYNC_ACCESS_TOKEN": "t"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])  # this checkout's code
    if temp is not None:
        env["TMPDIR"] = str(temp)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state directory's parent should be")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gradesync",
            "sync",
            str(SAMPLE),
            "--state-dir",
            str(blocker / "state"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    return result.returncode, result.stdout, result.stderr


def _records(root: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/run.json"))]


def test_the_error_is_recorded_in_the_runs_dir(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    code, out, err = _sync(tmp_path, "--runs-dir", str(runs))
    assert code == 8, err
    assert "error [storage-unwritable]" in err and "state directory" in err
    (record,) = _records(runs)
    assert record["exit_code"] == 8 and record["status"] == "failed"
    assert record["error"]["code"] == "storage-unwritable"  # type: ignore[index]
    assert record["command"] == "sync" and record["summary"] is None
    assert f"run: {runs}" in out


def test_without_a_writable_runs_dir_it_goes_to_the_fallback(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    code, out, err = _sync(tmp_path, temp=temp)  # runs dir: beside the state dir, below the file too
    assert code == 8, err
    assert "error [storage-unwritable]" in err
    uid = os.getuid() if hasattr(os, "getuid") else None
    fallback = temp / f"gradesync-runs-{uid}"
    (record,) = _records(fallback)
    assert record["error"]["code"] == "storage-unwritable"  # type: ignore[index]
    assert f"run: {fallback}" in out
    assert (fallback.stat().st_mode & 0o777) == 0o700


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership")
def test_the_fallback_is_never_a_folder_of_someone_else(tmp_path: Path) -> None:
    """A link planted where the fallback would be is not followed (another user could read it)."""
    temp = tmp_path / "temp"
    temp.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (temp / f"gradesync-runs-{os.getuid()}").symlink_to(elsewhere)
    code, _, err = _sync(tmp_path, temp=temp)
    assert code == 8 and "error [storage-unwritable]" in err  # the error still reaches stderr
    assert not list(elsewhere.iterdir())


def test_the_pipeline_result_points_at_the_record(tmp_path: Path) -> None:
    from gradesync.config import ApplySettings, RunSettings, Settings
    from gradesync.pipeline import Pipeline, make_client

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    settings = Settings(
        apply=ApplySettings(state_dir=str(blocker / "state")),
        run=RunSettings(runs_dir=str(tmp_path / "runs")),
    )
    result = Pipeline(settings, make_client(settings, token="t")).sync([SAMPLE])
    assert result.exit_code == 8 and result.error is not None
    assert result.run_dir is not None and (result.run_dir / "run.json").is_file()
    assert json.loads((result.run_dir / "run.json").read_text())["error"]["code"] == result.error.code
