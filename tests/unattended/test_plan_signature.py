"""A plan cannot be edited and re-signed: ``gradesync apply plan.json`` (no flags) refuses any plan
whose content is not what the state directory's key signed, as a registrar would meet it on the
command line, against the emulator over real HTTP.

The edits are the ones a person could make with a text editor and the documented file format: a
grade, the creation time (to get past ``--max-plan-age``), an input file's sha256, the Graph URL,
each followed by recomputing "the digest" as a plain sha256 (what the digest was before it was
keyed). A plan file written by the earlier version (schema 2) still applies, with the digest its
reviewer approved.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gradesync.cli import cli
from gradesync.errors import StorageError
from gradesync.plan.digest import key_id, legacy_digest, short_digest
from gradesync.plan.planfile import loads_plan, read_plan
from gradesync.state import plankey

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "sis_long.csv"
SCHEMA_2 = REPO / "tests" / "plan" / "data" / "plan_schema2.json"
LOOSE = ["--max-changes", "100%", "--max-decreases", "100%", "--min-coverage", "off"]


def _env(emulator: Any, token: str, **extra: str) -> dict[str, str]:
    return {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token, **extra}


def _plan(tmp: Path, emulator: Any, token: str, state: str = "state") -> tuple[Path, str]:
    """``gradesync plan`` of the sample: the plan file and the digest it printed."""
    out = tmp / "plan.json"
    argv = ["plan", str(SAMPLE), "--out", str(out), "--report-dir", str(tmp / "preview")]
    result = CliRunner().invoke(cli, [*argv, "--state-dir", str(tmp / state)], env=_env(emulator, token))
    assert result.exit_code == 1, result.output  # the sample's deliberate problems
    shown = next(ln.split()[-1] for ln in result.output.splitlines() if ln.strip().startswith("plan digest:"))
    return out, shown


def _apply(
    tmp: Path, emulator: Any, token: str, plan: Path, *args: str, state: str = "state", **env: str
) -> Any:
    argv = ["apply", str(plan), "--state-dir", str(tmp / state), "--report-dir", str(tmp / "rep"), *LOOSE]
    return CliRunner().invoke(cli, [*argv, *args], env=_env(emulator, token, **env))


def _set_cell(doc: dict[str, Any], column: str, row: int, value: Any) -> None:
    """Change one row's value of a column as a person editing the file would."""
    col = doc["columns"][column]
    if "values" in col:
        col["values"][row] = value
        return
    if value not in col["dictionary"]:
        col["dictionary"].append(value)
    codes = col.get("codes") or [0] * doc["row_count"]
    codes[row] = col["dictionary"].index(value)
    col["codes"] = codes


def _forge(path: Path, edit: Any) -> None:
    """Edit the plan file, then put in the digest anyone can recompute: the plain sha256 of what
    the plan says (the digest's definition before it was keyed)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    doc["digest"] = legacy_digest(read_plan(path))
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")


def _first_update(doc: dict[str, Any]) -> int:
    plan = loads_plan(json.dumps(doc))
    return int(plan.rows.index[plan.rows["action"] == "update"][0])


def _lower_a_grade(doc: dict[str, Any]) -> None:
    row = _first_update(doc)
    _set_cell(doc, "desired_points", row, 0.5)


EDITS = {
    "a grade": _lower_a_grade,
    "the creation time": lambda d: d.update(
        created_at=(datetime.now(UTC) - timedelta(seconds=1))
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    ),
    "an input file's sha256": lambda d: d["inputs"][0].update(
        sha256=hashlib.sha256(b"another export").hexdigest()
    ),
    "the Graph URL": lambda d: d.update(graph_base_url=d["graph_base_url"].replace("127.0.0.1", "localhost")),
    "the read times": lambda d: d["read_at"].update(dict.fromkeys(d["read_at"], "2099-01-01T00:00:00.000Z")),
    "the settings hash": lambda d: d.update(config_hash="0" * 16),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_an_edited_plan_with_its_digest_recomputed_is_refused(
    emulator: Any, token: str, tmp_path: Path, what: str
) -> None:
    plan, shown = _plan(tmp_path, emulator, token)
    _forge(plan, EDITS[what])
    before = emulator.stats()["writes_applied"]
    result = _apply(tmp_path, emulator, token, plan)  # the README's own command: no --digest
    assert result.exit_code == 4, result.output
    assert "[plan-digest-mismatch]" in result.output and "changed after it was made" in result.output
    assert "never edit a plan by hand" in result.output  # the hint says what to do
    assert emulator.stats()["writes_applied"] == before  # nothing written
    (run_json,) = (tmp_path / "runs").glob("*/run.json")
    record = json.loads(run_json.read_text(encoding="utf-8"))
    assert record["exit_code"] == 4 and record["error"]["code"] == "plan-digest-mismatch"
    assert shown not in result.output.split("plan digest:")[-1][:13]  # not the digest that was reviewed


def test_the_plan_as_made_applies_and_shows_the_digest_plan_showed(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    plan, shown = _plan(tmp_path, emulator, token)
    assert shown == json.loads(plan.read_text(encoding="utf-8"))["digest"][:12]
    result = _apply(tmp_path, emulator, token, plan, "--dry-run")
    assert result.exit_code == 1, result.output  # only the sample's rejected rows need attention
    assert f"plan digest: {shown}" in result.output
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text(encoding="utf-8"))
    assert summary["digest"] == shown


def test_a_plan_signed_in_another_state_directory_needs_that_key(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Made on one machine (state ``a``), applied on another (state ``b``): refused with a hint, and
    accepted once ``[apply] plan_key_file`` names the key that signed it."""
    plan, shown = _plan(tmp_path, emulator, token, state="a")
    refused = _apply(tmp_path, emulator, token, plan, "--dry-run", state="b")
    assert refused.exit_code == 4 and "[plan-key-mismatch]" in refused.output, refused.output
    assert "plan_key_file" in refused.output and "GRADESYNC_APPLY_PLAN_KEY_FILE" in refused.output
    with_digest = _apply(tmp_path, emulator, token, plan, "--dry-run", "--digest", shown, state="b")
    assert with_digest.exit_code == 4  # the 12 digits cannot stand in for the key
    key_file = str(tmp_path / "a" / "plan.key")
    shared = _apply(
        tmp_path, emulator, token, plan, "--dry-run", state="b", GRADESYNC_APPLY_PLAN_KEY_FILE=key_file
    )
    assert shared.exit_code == 1, shared.output
    assert f"plan digest: {shown}" in shared.output


def test_a_schema_2_plan_file_still_applies_with_its_approved_digest(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """tests/plan/data/plan_schema2.json was written by the schema-2 writer against the sample tenant;
    its Graph URL is that emulator's, so it is pointed at this one (and its plain digest recomputed,
    as it covers the URL). Its digest is not keyed: no flags → refused, saying what to run;
    ``--digest`` with the digest its reviewer approved → applied."""
    doc = json.loads(SCHEMA_2.read_text(encoding="utf-8"))
    doc["graph_base_url"] = emulator.base_url
    path = tmp_path / "old-plan.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    doc["digest"] = legacy_digest(read_plan(path))
    path.write_text(json.dumps(doc), encoding="utf-8")
    approved = short_digest(doc["digest"])
    old = ["--max-plan-age", "off"]  # the fixture was made when it was made
    refused = _apply(tmp_path, emulator, token, path, *old)
    assert refused.exit_code == 4 and "[plan-unsigned]" in refused.output, refused.output
    assert f"--digest {approved}" in refused.output
    before = emulator.stats()["writes_applied"]
    applied = _apply(tmp_path, emulator, token, path, *old, "--digest", approved)
    assert applied.exit_code == 1, applied.output  # the 4 rejected rows; every write went through
    assert f"plan digest: {approved}" in applied.output
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text(encoding="utf-8"))
    assert summary["status_counts"]["updated"] + summary["status_counts"].get("created", 0) == 89
    assert emulator.stats()["writes_applied"] - before == 89
    wrong = _apply(
        tmp_path, emulator, token, path, *old, "--digest", "0" * 12, "--state-dir", str(tmp_path / "s2")
    )
    assert wrong.exit_code == 4 and "[plan-digest-mismatch]" in wrong.output


def test_a_schema_2_plan_whose_rows_no_longer_give_its_digest_is_refused(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    doc = json.loads(SCHEMA_2.read_text(encoding="utf-8"))
    doc["graph_base_url"] = emulator.base_url  # the stored digest no longer matches: never recomputed
    path = tmp_path / "old-plan.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = _apply(tmp_path, emulator, token, path, "--max-plan-age", "off", "--digest", doc["digest"][:12])
    assert result.exit_code == 4 and "[plan-digest-mismatch]" in result.output, result.output


# ---------------------------------------------------------------------------------------------
# the key itself
# ---------------------------------------------------------------------------------------------
def test_the_key_is_made_at_first_use_private_and_kept(tmp_path: Path) -> None:
    path = plankey.plan_key_path(tmp_path / "state")
    assert path == tmp_path / "state" / "plan.key" and not path.exists()
    key = plankey.load_plan_key(path)
    assert len(key) == plankey.KEY_BYTES and path.read_text(encoding="ascii").strip() == key.hex()
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert plankey.load_plan_key(path) == key  # the same key from then on
    assert [p.name for p in path.parent.iterdir()] == ["plan.key"]  # no temporary file left
    assert (
        plankey.plan_key_path(tmp_path / "state", "~/elsewhere.key") == Path("~/elsewhere.key").expanduser()
    )


def test_two_processes_making_the_key_at_once_share_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other process publishes its key between this one's write and its link: this one's link
    fails and both use the key that is in place."""
    path = tmp_path / "plan.key"
    theirs = "ab" * plankey.KEY_BYTES
    real_link = os.link

    def link_after_the_other(src: str, dst: str) -> None:
        Path(dst).write_text(theirs + "\n", encoding="ascii")
        Path(dst).chmod(0o600)
        real_link(src, dst)

    monkeypatch.setattr(plankey.os, "link", link_after_the_other)
    assert plankey.load_plan_key(path) == bytes.fromhex(theirs)
    assert [p.name for p in tmp_path.iterdir()] == ["plan.key"]


def test_a_damaged_key_is_a_named_storage_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "plan.key"
    path.write_text("not hex\n", encoding="ascii")
    with pytest.raises(StorageError) as e:
        plankey.load_plan_key(path)
    assert e.value.code == "plan-key-damaged" and e.value.exit_code == 8 and str(path) in e.value.message
    assert "delete it" in (e.value.hint or "")
    if os.name == "posix":
        path.write_text("cd" * plankey.KEY_BYTES, encoding="ascii")
        path.chmod(0o644)
        assert plankey.load_plan_key(path) == bytes.fromhex("cd" * plankey.KEY_BYTES)
        assert "can be read by other accounts" in caplog.text and "cd" * 4 not in caplog.text


def test_the_key_never_leaves_the_state_directory(emulator: Any, token: str, tmp_path: Path) -> None:
    plan, _ = _plan(tmp_path, emulator, token)
    key = (tmp_path / "state" / "plan.key").read_text(encoding="ascii").strip()
    doc = plan.read_text(encoding="utf-8")
    assert key not in doc and json.loads(doc)["key_id"] == key_id(bytes.fromhex(key))
    for report in (tmp_path / "preview").iterdir():
        assert key not in report.read_text(encoding="utf-8-sig")


def test_a_run_signs_its_copy_of_a_plan_only_once_it_passed(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """A plan handed to ``Pipeline.apply`` in memory gets a copy in the run directory: signed with the
    key when the plan passed the check (so ``apply RUN_DIR/plan.json --resume`` takes it), left with
    the digest it came with when it was refused (the copy never vouches for it)."""
    from gradesync.config import Settings
    from gradesync.pipeline import Pipeline, make_client
    from gradesync.plan.digest import plan_digest

    settings = Settings().override("graph", base_url=emulator.base_url, max_attempts=1)
    settings = settings.override(
        "apply", state_dir=str(tmp_path / "state"), max_changes="off", max_decreases="off"
    )
    with make_client(settings, token=token) as client:
        pipeline = Pipeline(settings, client, argv=["test"])
        passed = pipeline.apply(pipeline.plan([SAMPLE]).plan, dry_run=True)
        assert passed.error is None and passed.run_dir is not None
        copy = read_plan(passed.run_dir / "plan.json")
        assert copy.digest == plan_digest(copy, pipeline.plan_key()) == passed.digest
        row = int(copy.rows.index[copy.rows["action"] == "update"][0])
        copy.rows.loc[row, "desired_points"] = 0.5  # edited after it was read: its digest no longer fits
        refused = pipeline.apply(copy, dry_run=True)
        assert refused.error is not None and refused.error.code == "plan-digest-mismatch"
        assert refused.run_dir is not None
        kept = read_plan(refused.run_dir / "plan.json")
        assert kept.rows.loc[row, "desired_points"] == 0.5 and kept.digest == copy.digest
        assert kept.digest != plan_digest(kept, pipeline.plan_key())
