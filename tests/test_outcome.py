"""The run's outcome (``gradesync.outcome``), against the README's exit-code table — the contract a
scheduler reads — and its one rule: any row a person must look at makes the run exit 1, else a row
carried over makes it 6. Pure: rows and errors in, a verdict out.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradesync.errors import (
    AuthError,
    ExitCode,
    GuardError,
    LockError,
    NetworkError,
    StorageError,
    UsageError,
)
from gradesync.outcome import Status, Tally, judge
from gradesync.report import RunSummary

ALL = [s.value for s in Status] + ["something_new"]  # a status nobody taught this module


def _reconciled(*statuses: str) -> pd.DataFrame:
    return pd.DataFrame({"action": ["update"] * len(statuses), "status": list(statuses)})


def _planned(*actions: str, reason: str = "", policy: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "action": list(actions),
            "reason": [reason] * len(actions),
            "override_policy": [policy] * len(actions),
        }
    )


# --- the README's table, row by row ------------------------------------------------------------
def test_0_every_row_is_in_its_desired_state() -> None:
    assert judge(Tally.of(_reconciled("updated", "created", "unchanged", "excused"))).exit_code is ExitCode.OK


@pytest.mark.parametrize("status", ["failed", "rejected", "conflict", "teacher_override"])
def test_1_rows_need_attention(status: str) -> None:
    verdict = judge(Tally.of(_reconciled("updated", status)))
    assert verdict.exit_code is ExitCode.ROWS_NOT_DONE and verdict.attention == 1
    assert "1 row needs attention (see the report)" in verdict.sentences


def test_1_a_return_that_failed_needs_attention_too() -> None:
    verdict = judge(Tally.of(_reconciled("updated")), return_failed=2)
    assert verdict.exit_code is ExitCode.ROWS_NOT_DONE
    assert any("could not be returned" in s for s in verdict.sentences)


def test_6_returns_the_deadline_left_are_carried_over_and_a_failed_return_still_needs_attention() -> None:
    """A return is a write: one the deadline kept from leaving is work for the next run (6), said
    apart from the rows; with a failed return beside it, attention wins (1) and both are said."""
    verdict = judge(Tally.of(_reconciled("updated")), return_carried=3)
    assert verdict.exit_code is ExitCode.CARRIED_OVER and verdict.carried_over == 3
    assert any("not returned: the deadline came first" in s for s in verdict.sentences)
    both = judge(Tally.of(_reconciled("updated")), return_carried=3, return_failed=1)
    assert both.exit_code is ExitCode.ROWS_NOT_DONE
    assert any("could not be returned" in s for s in both.sentences)
    assert any("the deadline came first" in s for s in both.sentences)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("x"), ExitCode.USAGE),
        (AuthError("x"), ExitCode.AUTH),
        (GuardError("x"), ExitCode.GUARD),
        (LockError("x"), ExitCode.LOCKED),
        (NetworkError("x"), ExitCode.NETWORK),
        (StorageError("x"), ExitCode.STORAGE),
    ],
)
def test_an_error_that_stopped_the_run_is_its_own_code(error: Exception, code: ExitCode) -> None:
    # even with rows needing attention and rows carried over: what stopped the run comes first
    rows = Tally.of(_reconciled("conflict", "carried_over"))
    assert judge(rows, error=error).exit_code is code  # type: ignore[arg-type]
    assert judge(error=error).exit_code is code  # type: ignore[arg-type]  # stopped before any row


def test_6_rows_carried_over_and_nothing_else_needs_attention() -> None:
    verdict = judge(Tally.of(_reconciled("updated", "carried_over", "carried_over")))
    assert verdict.exit_code is ExitCode.CARRIED_OVER and verdict.carried_over == 2
    # both at once: 1, and the verdict says both
    both = judge(Tally.of(_reconciled("conflict", "carried_over")))
    assert both.exit_code is ExitCode.ROWS_NOT_DONE
    assert any("need" in s for s in both.sentences) and any("carried over" in s for s in both.sentences)


def test_plan_exits_1_for_rows_needing_attention_else_4_when_apply_would_refuse_else_0() -> None:
    refused = ["plan changes 30 of 32 grades (94%), above --max-changes 50%"]
    assert judge(Tally.of(_planned("update", "reject")), refused=refused).exit_code is ExitCode.ROWS_NOT_DONE
    would = judge(Tally.of(_planned("update", "create")), refused=refused)
    assert would.exit_code is ExitCode.GUARD and would.sentences == (f"apply would be refused: {refused[0]}",)
    assert judge(Tally.of(_planned("update", "noop"))).exit_code is ExitCode.OK
    kept = _planned("noop", reason="teacher_override", policy="report")
    assert judge(Tally.of(kept)).exit_code is ExitCode.ROWS_NOT_DONE  # a teacher's grade kept for review
    teacher_wins = _planned("noop", reason="teacher_override", policy="teacher-wins")
    assert judge(Tally.of(teacher_wins)).exit_code is ExitCode.OK


def test_strict_refusal_is_1_and_a_dry_runs_pending_rows_are_no_problem() -> None:
    assert judge(Tally.of(_planned("update")), strict_refused=True).exit_code is ExitCode.ROWS_NOT_DONE
    assert judge(Tally.of(_reconciled("pending", "unchanged"))).exit_code is ExitCode.OK


# --- one rule, whatever the mix ----------------------------------------------------------------
@given(st.lists(st.sampled_from(ALL), max_size=40))
def test_the_rule_over_any_mix_of_statuses(statuses: list[str]) -> None:
    tally = Tally.of(_reconciled(*statuses))
    done_or_waiting = {"unchanged", "updated", "created", "excused", "pending", "carried_over"}
    attention = sum(s not in done_or_waiting for s in statuses)  # an unknown status is never success
    expected = (
        ExitCode.ROWS_NOT_DONE
        if attention
        else ExitCode.CARRIED_OVER
        if "carried_over" in statuses
        else ExitCode.OK
    )
    assert judge(tally).exit_code is expected
    assert tally.attention == attention and sum(tally.statuses.values()) == len(statuses)


def test_the_summary_renders_the_verdict_it_was_given_the_facts_for() -> None:
    """summary.json, report.html and the CLI all read the summary's verdict: one answer."""
    rows = _reconciled("updated", "conflict", "carried_over")
    rows["class_key"], rows["assignment_key"] = "SEC-1", "Quiz 1"
    summary = RunSummary.from_rows(rows, kind="reconciliation")
    data = summary.asdict()
    assert data["exit_code"] == 1 and data["attention"] == 1 and data["carried_over"] == 1
    assert data["verdict"]["exit_code"] == 1 and data["has_problems"] is True
    assert "1 row needs attention (see the report)" in str(summary)
    assert "1 row carried over" in str(summary)
