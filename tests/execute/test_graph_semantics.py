"""gradesync against Graph v1.0's real semantics (the emulator's defaults), through ``gradesync sync``.

Each behaviour is tried as a district would meet it, both ways where a setting changes it:

* excusing deletes the teacher's feedback and rubric ("educationSubmission: excuse"): refused by
  default and named; with ``[policy] excuse_feedback = "delete"`` done, and the row says what went;
* returning publishes points, feedback and rubric from any status ("educationSubmission: return",
  the submission status-transition table): only what a teacher would return, saying so per row;
* assignment states: only assigned assignments take grades; a published one is carried over; a
  draft copy does not make its assigned namesake ambiguous;
* actions are asynchronous: an excuse read back too early is not a conflict, and the next run never
  sends it again; a 400 for excusing an excused submission is "already done";
* points are Single: 87.3 comes back as 87.30000305175781, which is the grade written.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from test_threeway import LOOSE, pick, points_now, recon, summary, sync, write_csv

from graph_emulator.behaviour import as_single
from graph_emulator.state import iter_submissions, points_outcome

EXCUSE = '[policy]\nexcused_marks = ["EX"]\n'
RETURN_ALL = '[publish]\nassignments = ["*"]\n'
RUBRIC = {
    "id": "rubric-outcome",
    "type": "rubric",
    "rubricQualitySelectedLevels": [{"qualityId": "q1", "columnId": "c2"}],
    "rubricQualityFeedback": [],
    "publishedRubricQualitySelectedLevels": [],
    "publishedRubricQualityFeedback": [],
}


def stored(tenant: dict[str, Any], sid: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(class, assignment, submission) of a submission in a tenant dict (changes there are real)."""
    return next((c, a, s) for c, a, s in iter_submissions(tenant) if s["id"] == sid)


def feedback(sub: dict[str, Any]) -> dict[str, Any]:
    found = next((o for o in sub["outcomes"] if o["type"] == "feedback"), None)
    if found is None:
        found = {"id": f"fb-{sub['id']}", "type": "feedback", "feedback": None, "publishedFeedback": None}
        sub["outcomes"].append(found)
    return found


def graph_requests(server: Any, route: str) -> int:
    return int(server.stats()["by_route"].get(route, 0))


EXCUSE_ROUTE = "POST /education/classes/{id}/assignments/{id}/submissions/{id}/excuse"
PATCH_ROUTE = "PATCH /education/classes/{id}/assignments/{id}/submissions/{id}/outcomes/{id}"


# --- excusing never destroys teacher work silently ------------------------------------------------
def test_excuse_of_submissions_holding_teacher_work_is_refused_and_named(
    emulator: Any, token: str, tmp_path: Path, sample_tenant: dict[str, Any]
) -> None:
    draft, returned, rubric, plain = pick(sample_tenant, 4, status="submitted", quiet=True)
    feedback(stored(sample_tenant, draft["submission_id"])[2])["feedback"] = "Revise the conclusion"
    feedback(stored(sample_tenant, returned["submission_id"])[2])["publishedFeedback"] = "Well argued"
    stored(sample_tenant, rubric["submission_id"])[2]["outcomes"].append(copy.deepcopy(RUBRIC))
    emulator.reset(sample_tenant)
    rows = [(t, "EX") for t in (draft, returned, rubric, plain)]
    result = sync(tmp_path, emulator, token, write_csv(tmp_path / "g.csv", rows), config=EXCUSE)
    assert result.exit_code == 1, result.output
    got = recon(tmp_path)
    assert [(r["status"], r["reason"]) for r in got] == [
        ("rejected", "excuse_would_delete_feedback"),
        ("rejected", "excuse_would_delete_feedback"),
        ("rejected", "excuse_would_delete_feedback"),
        ("excused", ""),
    ]
    assert "would delete the feedback not yet returned" in got[0]["message"]
    assert "would delete the feedback already returned" in got[1]["message"]
    assert "would delete the filled rubric" in got[2]["message"]
    assert 'excuse_feedback = "delete"' in got[0]["message"]
    state = emulator.state()
    assert feedback(stored(state, draft["submission_id"])[2])["feedback"] == "Revise the conclusion"
    assert stored(state, rubric["submission_id"])[2]["status"] == "submitted"
    assert graph_requests(emulator, EXCUSE_ROUTE) == 1


def test_excuse_allowed_to_delete_says_what_it_deleted(
    emulator: Any, token: str, tmp_path: Path, sample_tenant: dict[str, Any]
) -> None:
    (t,) = pick(sample_tenant, 1, status="submitted", quiet=True)
    _, _, sub = stored(sample_tenant, t["submission_id"])
    feedback(sub)["feedback"] = "See me after class"
    sub["outcomes"].append(copy.deepcopy(RUBRIC))
    emulator.reset(sample_tenant)
    config = EXCUSE + 'excuse_feedback = "delete"\n'
    result = sync(tmp_path, emulator, token, write_csv(tmp_path / "g.csv", [(t, "EX")]), config=config)
    assert result.exit_code == 0, result.output
    (row,) = recon(tmp_path)
    assert row["status"] == "excused"
    assert "excusing deletes the feedback not yet returned, the filled rubric" in row["note"]
    _, _, after = stored(emulator.state(), t["submission_id"])
    assert after["status"] == "excused" and feedback(after)["feedback"] is None


def test_feedback_added_between_plan_and_apply_stops_the_excuse(
    emulator: Any, token: str, tmp_path: Path, sample_tenant: dict[str, Any]
) -> None:
    """A teacher writes feedback after the plan was reviewed: apply re-reads it and does not excuse."""
    from click.testing import CliRunner

    from gradesync.cli import cli

    (t,) = pick(sample_tenant, 1, status="submitted", quiet=True)
    cfg = tmp_path / "gradesync.toml"
    cfg.write_text(EXCUSE + '[apply]\nread_write_window = "0s"\n', encoding="utf-8")
    env = {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}
    common = ["--config", str(cfg), "--state-dir", str(tmp_path / "state")]
    planned = CliRunner().invoke(
        cli,
        ["plan", str(write_csv(tmp_path / "g.csv", [(t, "EX")])), "--out", str(tmp_path / "p.json"), *common],
        env=env,
    )
    assert planned.exit_code == 0, planned.output
    _, _, sub = stored(sample_tenant, t["submission_id"])
    feedback(sub)["feedback"] = "Written after the plan"
    emulator.reset(sample_tenant)
    applied = CliRunner().invoke(
        cli,
        ["apply", str(tmp_path / "p.json"), "--report-dir", str(tmp_path / "rep"), *common, *LOOSE],
        env=env,
    )
    assert applied.exit_code == 1, applied.output
    (row,) = recon(tmp_path)
    assert row["status"] == "conflict" and "would now delete the feedback not yet returned" in row["message"]
    assert graph_requests(emulator, EXCUSE_ROUTE) == 0


# --- return does what a teacher would --------------------------------------------------------------
def test_return_publishes_only_what_a_teacher_would(
    emulator: Any, token: str, tmp_path: Path, sample_tenant: dict[str, Any]
) -> None:
    submitted, returned = pick(sample_tenant, 2, status="submitted", quiet=True)
    (reassigned,) = pick(sample_tenant, 1, status="reassigned", quiet=True)
    (working,) = pick(sample_tenant, 1, status="working", quiet=True)
    _, _, was_returned = stored(sample_tenant, returned["submission_id"])
    was_returned["status"] = "returned"
    points_outcome(was_returned)["publishedPoints"] = points_outcome(was_returned)["points"]
    _, _, revising = stored(sample_tenant, reassigned["submission_id"])
    published_before = points_outcome(revising)["publishedPoints"]
    emulator.reset(sample_tenant)
    targets = [submitted, returned, reassigned, working]
    rows = [(t, f"{t['max'] - 1:g}") for t in targets]
    inputs = write_csv(tmp_path / "g.csv", rows)
    result = sync(tmp_path, emulator, token, inputs, "--return", config=RETURN_ALL)
    assert result.exit_code == 0, result.output  # left alone on purpose: nothing failed
    got = recon(tmp_path)
    assert [r["returned"] for r in got] == ["yes", "yes", "no", "no"]
    assert "not returned: the submission is reassigned (returned for revision)" in got[2]["message"]
    assert "not returned: the submission is working" in got[3]["message"]
    state = emulator.state()
    after = [stored(state, t["submission_id"])[2] for t in targets]
    assert [s["status"] for s in after] == ["returned", "returned", "reassigned", "working"]
    assert points_outcome(after[1])["publishedPoints"] == returned["max"] - 1  # the changed grade
    assert points_outcome(after[2])["publishedPoints"] == published_before  # the revision stays open
    assert summary(tmp_path)["returned"] == 2


def test_return_statuses_can_be_widened(emulator: Any, token: str, tmp_path: Path) -> None:
    (t,) = pick(emulator.state(), 1, status="reassigned", quiet=True)
    config = RETURN_ALL + 'statuses = ["submitted", "returned", "reassigned"]\n'
    inputs = write_csv(tmp_path / "g.csv", [(t, f"{t['max'] - 1:g}")])
    result = sync(tmp_path, emulator, token, inputs, "--return", config=config)
    assert result.exit_code == 0, result.output
    assert recon(tmp_path)[0]["returned"] == "yes"
    assert stored(emulator.state(), t["submission_id"])[2]["status"] == "returned"


def test_a_return_that_publishes_unreturned_feedback_says_so_or_is_refused(
    emulator: Any, token: str, tmp_path: Path, sample_tenant: dict[str, Any]
) -> None:
    a, b = pick(sample_tenant, 2, status="submitted", quiet=True)
    for t in (a, b):
        feedback(stored(sample_tenant, t["submission_id"])[2])["feedback"] = "Not yet shown"
    emulator.reset(sample_tenant)
    first = sync(
        tmp_path,
        emulator,
        token,
        write_csv(tmp_path / "a.csv", [(a, f"{a['max'] - 1:g}")]),
        "--return",
        config=RETURN_ALL,
    )
    assert first.exit_code == 0, first.output
    row = recon(tmp_path)[0]
    assert row["returned"] == "yes"
    assert "returning also published the feedback not yet returned to the student" in row["message"]
    assert feedback(stored(emulator.state(), a["submission_id"])[2])["publishedFeedback"] == "Not yet shown"
    refuse = RETURN_ALL + 'unreturned_feedback = "refuse"\n'
    inputs = write_csv(tmp_path / "b.csv", [(b, f"{b['max'] - 1:g}")])
    second = sync(tmp_path, emulator, token, inputs, "--return", config=refuse)
    assert second.exit_code == 0, second.output
    row = recon(tmp_path)[0]
    assert row["returned"] == "no" and 'unreturned_feedback = "refuse"' in row["message"]
    assert feedback(stored(emulator.state(), b["submission_id"])[2])["publishedFeedback"] is None


# --- assignment states --------------------------------------------------------------------------------
def test_only_assigned_assignments_are_written(
    emulator: Any, token: str, tmp_path: Path, sample_tenant: dict[str, Any]
) -> None:
    draft, scheduled, inactive = pick(sample_tenant, 3, status="submitted")
    for t, status in ((draft, "draft"), (scheduled, "scheduled"), (inactive, "inactive")):
        stored(sample_tenant, t["submission_id"])[1]["status"] = status
    emulator.reset(sample_tenant)
    rows = [(t, "1") for t in (draft, scheduled, inactive)]
    result = sync(tmp_path, emulator, token, write_csv(tmp_path / "g.csv", rows))
    assert result.exit_code == 1, result.output
    got = recon(tmp_path)
    assert [r["reason"] for r in got] == ["assignment_not_assigned"] * 3
    assert "is a draft in Teams" in got[0]["message"] and "assign it in Teams" in got[0]["message"]
    assert "is scheduled in Teams" in got[1]["message"]
    assert "is inactive (closed) in Teams" in got[2]["message"] and "Activate" in got[2]["message"]
    assert emulator.stats()["writes_applied"] == 0


def test_a_published_assignment_is_carried_over_then_written(
    emulator: Any, token: str, tmp_path: Path, sample_tenant: dict[str, Any]
) -> None:
    (t,) = pick(sample_tenant, 1, status="submitted")
    stored(sample_tenant, t["submission_id"])[1]["status"] = "published"
    emulator.reset(sample_tenant)
    inputs = write_csv(tmp_path / "g.csv", [(t, f"{t['max'] - 1:g}")])
    first = sync(tmp_path, emulator, token, inputs)
    assert first.exit_code == 6, first.output  # carried over, not no_submission
    (row,) = recon(tmp_path)
    assert (row["status"], row["reason"]) == ("carried_over", "assignment_publishing")
    second = sync(tmp_path, emulator, token, inputs)  # Teams has finished publishing it since
    assert second.exit_code == 0, second.output
    assert recon(tmp_path)[0]["status"] == "updated" and points_now(emulator, t) == t["max"] - 1


def test_a_draft_copy_does_not_make_its_assigned_namesake_ambiguous(
    emulator: Any, token: str, tmp_path: Path, sample_tenant: dict[str, Any]
) -> None:
    (t,) = pick(sample_tenant, 1, status="submitted")
    cls, asg, _ = stored(sample_tenant, t["submission_id"])
    copy_of = copy.deepcopy(asg)
    copy_of.update(id="draft-copy", status="draft", submissions=[])
    cls["assignments"].append(copy_of)
    emulator.reset(sample_tenant)
    result = sync(tmp_path, emulator, token, write_csv(tmp_path / "g.csv", [(t, f"{t['max'] - 1:g}")]))
    assert result.exit_code == 0, result.output
    (row,) = recon(tmp_path)
    assert row["status"] == "updated" and row["assignment_id"] == t["assignment_id"]
    assert "the assigned one is used (the other: draft)" in row["note"]


# --- asynchronous actions ---------------------------------------------------------------------------
def test_an_excuse_read_back_too_early_is_no_conflict_and_is_never_sent_again(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    a, b = pick(emulator.state(), 2, status="submitted", quiet=True)
    inputs = write_csv(tmp_path / "g.csv", [(a, "EX"), (b, "EX")])
    emulator.configure(action_lag=2)  # the read-back and the next plan's read still show the old status
    first = sync(tmp_path, emulator, token, inputs, "--verify", "all", config=EXCUSE)
    assert first.exit_code == 0, first.output
    got = recon(tmp_path)
    assert [r["status"] for r in got] == ["excused", "excused"]
    assert "excusing takes effect after a while" in got[0]["message"]
    second = sync(tmp_path, emulator, token, inputs, config=EXCUSE)
    assert second.exit_code == 0, second.output
    again = recon(tmp_path)
    assert [(r["reason"], r["status"]) for r in again] == [("already_excused", "unchanged")] * 2
    assert "Teams does not show it yet" in again[0]["message"]
    assert graph_requests(emulator, EXCUSE_ROUTE) == 2  # the first run's two, and no more


def test_a_400_for_excusing_an_excused_submission_is_already_done(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """Another tool (or a run whose memory was lost) excused it just before: Graph refuses the
    second excuse with 400, which means the submission is excused already."""
    (t,) = pick(emulator.state(), 1, status="submitted", quiet=True)
    inputs = write_csv(tmp_path / "g.csv", [(t, "EX")])
    one, other = tmp_path / "one", tmp_path / "other"  # two state directories: no shared memory
    one.mkdir(), other.mkdir()
    first = sync(one, emulator, token, inputs, config=EXCUSE)
    assert first.exit_code == 0, first.output
    second = sync(other, emulator, token, inputs, config=EXCUSE)
    assert second.exit_code == 0, second.output
    (row,) = recon(other)
    assert row["status"] == "unchanged" and "already excused in Teams" in row["message"]


# --- points are Single ---------------------------------------------------------------------------
def test_a_grade_teams_keeps_as_single_is_no_conflict_and_no_rewrite(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    targets = pick(emulator.state(), 3, status="submitted")
    grades = [round(t["max"] - 0.7, 1) for t in targets]  # 9.3, 19.3 ...: no exact Single
    inputs = write_csv(tmp_path / "g.csv", [(t, f"{g:g}") for t, g in zip(targets, grades, strict=True)])
    config = "[policy]\nprecision = 4\n"
    first = sync(tmp_path, emulator, token, inputs, "--verify", "all", config=config)
    assert first.exit_code == 0, first.output
    assert [r["status"] for r in recon(tmp_path)] == ["updated"] * 3
    assert [points_now(emulator, t) for t in targets] == [as_single(g) for g in grades]
    patches = graph_requests(emulator, PATCH_ROUTE)
    second = sync(tmp_path, emulator, token, inputs, config=config)
    assert second.exit_code == 0, second.output
    assert [(r["action"], r["status"]) for r in recon(tmp_path)] == [("noop", "unchanged")] * 3
    assert graph_requests(emulator, PATCH_ROUTE) == patches  # no rewrite the next night, no teacher_override
