"""The CLI as a user meets it: real subprocesses, real HTTP to the emulator, exit codes and files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradesync.cli import cli
from gradesync.plan.planfile import read_plan

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [str(ROOT / "sample_data" / n) for n in ("sis_long.csv", "gradebook_wide.csv", "gradebook.xlsx")]


def run(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRADESYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "gradesync", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def graph_env(emulator, token) -> dict[str, str]:
    return {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}


def test_plan_writes_a_plan_and_reports_for_every_input_row(tmp_path, graph_env, emulator, token):
    before = emulator.state()
    result = run(
        ["plan", *SAMPLES, "--out", str(tmp_path / "plan.json"), "--report-dir", str(tmp_path / "r")],
        env=graph_env,
        cwd=tmp_path,
    )
    # the samples hold deliberate problems: rejected rows make the exit status 1
    assert result.returncode == 1, result.stderr
    assert f"plan: {tmp_path / 'plan.json'}" in result.stdout
    plan = json.loads((tmp_path / "plan.json").read_text())
    with (tmp_path / "r" / "plan.csv").open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == plan["row_count"] == sum(i["rows"] for i in plan["inputs"]) == 361
    assert {r["action"] for r in rows} == {"update", "create", "noop", "reject"}
    assert (tmp_path / "r" / "report.html").stat().st_size > 0
    assert token not in (tmp_path / "plan.json").read_text()
    assert emulator.state() == before, "planning must not write"
    assert emulator.stats()["by_method"].keys() == {"GET"}


def test_a_warning_is_shown_once(tmp_path, graph_env):
    """A registrar planning a Canvas export sees each warning once: the CLI prints it, and logging
    (with no log configured outside an unattended run) does not print it a second time."""
    export = ROOT / "sample_data" / "exports" / "canvas_gradebook.csv"
    result = run(["plan", str(export), "--class", "SEC-1001", "--out", str(tmp_path / "p.json")],
                 env=graph_env, cwd=tmp_path)  # fmt: skip
    said = result.stdout + result.stderr
    assert said.count("format detected from the header") == 1, said
    assert said.count("columns that are not grades were ignored") == 1, said


def test_strict_refuses_the_plan_but_still_explains(tmp_path, graph_env):
    result = run(
        [
            "plan",
            SAMPLES[0],
            "--strict",
            "--out",
            str(tmp_path / "plan.json"),
            "--report-dir",
            str(tmp_path / "r"),
        ],
        env=graph_env,
        cwd=tmp_path,  # the default state directory (and its plan key) is made there
    )
    assert result.returncode == 1
    assert "plan refused" in result.stdout
    assert not (tmp_path / "plan.json").exists()
    assert (tmp_path / "r" / "plan.csv").exists()


def test_a_clean_input_plans_with_exit_0(tmp_path, graph_env, sample_tenant):
    cls = sample_tenant["classes"][0]
    assignment = next(a for a in cls["assignments"] if a.get("grading") and a["submissions"])
    users = {u["id"]: u for u in sample_tenant["users"]}
    sub = next(
        s
        for s in assignment["submissions"]
        if "userId" in s["recipient"]
        and (users[s["recipient"]["userId"]].get("student") or {}).get("externalId")
        and s["status"] != "excused"
    )
    sis_id = users[sub["recipient"]["userId"]]["student"]["externalId"]
    path = tmp_path / "one.csv"
    path.write_text(
        f"section_id,assignment,student_id,points\n{cls['externalId']},{assignment['displayName']},{sis_id},1\n"
    )
    result = run(
        ["plan", str(path), "--out", str(tmp_path / "plan.json"), "--report-dir", str(tmp_path / "r")],
        env=graph_env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert read_plan(tmp_path / "plan.json").rows["action"][0] in ("update", "create")


def test_no_token_is_exit_3_with_a_hint(tmp_path, emulator):
    result = run(["plan", SAMPLES[0]], env={"GRADESYNC_GRAPH_URL": emulator.base_url}, cwd=tmp_path)
    assert result.returncode == 3
    assert "GRADESYNC_ACCESS_TOKEN" in result.stderr


def test_wrong_token_is_exit_3_and_never_echoed(tmp_path, emulator):
    result = run(
        ["plan", SAMPLES[0]],
        env={"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": "not-the-token-s3cr3t"},
        cwd=tmp_path,
    )
    assert result.returncode == 3, result.stderr
    assert "not-the-token-s3cr3t" not in result.stdout + result.stderr


def test_unreadable_input_is_exit_2_naming_the_file(tmp_path, graph_env):
    missing = tmp_path / "nope.csv"
    result = run(["plan", str(missing)], env=graph_env, cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.csv" in result.stderr
    headerless = tmp_path / "bad.csv"
    headerless.write_text("a,b,c\n1,2,3\n")
    result = run(["plan", str(headerless)], env=graph_env, cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.csv" in result.stderr and "row 1" in result.stderr


def test_every_command_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in cli.commands:
        assert f"gradesync {name}" in readme, f"README does not show `gradesync {name}`"


def test_readme_cron_line_is_the_one_the_scheduling_test_runs():
    """tests/unattended runs docs/scheduling/crontab as written; the README must show that same line."""
    readme = (ROOT / "README.md").read_text()
    lines = [
        line
        for line in (ROOT / "docs/scheduling/crontab").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#") and "=" not in line.split()[0]
    ]
    assert lines, "docs/scheduling/crontab has no schedule line"
    for line in lines:
        assert line in readme


def test_sync_strict_refuses_and_writes_nothing(tmp_path, graph_env, emulator):
    before = emulator.state()
    result = run(
        ["sync", SAMPLES[0], "--strict", "--state-dir", str(tmp_path / "state")], env=graph_env, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "sync refused: --strict" in result.stderr + result.stdout
    assert emulator.state() == before
    assert emulator.stats()["by_method"].keys() == {"GET"}


def test_plan_shows_its_digest_and_apply_refuses_another(tmp_path, graph_env):
    from click.testing import CliRunner

    loose = ["--max-changes", "100%", "--max-decreases", "100%", "--min-coverage", "off"]
    runner = CliRunner()
    planned = runner.invoke(
        cli, ["plan", SAMPLES[0], "--out", str(tmp_path / "p.json"), "--report-dir", str(tmp_path / "r"),
              "--state-dir", str(tmp_path / "s")],
        env=graph_env,
    )  # fmt: skip
    assert planned.exit_code == 1, planned.output  # the sample's rejected rows
    digest = json.loads((tmp_path / "p.json").read_text())["digest"][:12]
    assert f"plan digest: {digest}" in planned.output
    assert "apply would be refused: plan changes" in planned.output  # default guards, shown in the preview
    args = ["apply", str(tmp_path / "p.json"), "--state-dir", str(tmp_path / "s"), *loose, "--dry-run"]
    refused = runner.invoke(cli, [*args, "--digest", "0" * 12], env=graph_env)
    assert refused.exit_code == 4 and "plan-digest-mismatch" in refused.output
    approved = runner.invoke(cli, [*args, "--digest", digest], env=graph_env)
    assert approved.exit_code == 1, approved.output  # the same rejected rows; nothing refused
    assert f"plan digest: {digest}" in approved.output  # the digest plan showed is the one apply checks
