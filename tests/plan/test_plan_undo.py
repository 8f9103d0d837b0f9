"""The undo plan, built from data alone (``plan/undo.py``): a run's plan made by the real planner,
the journal records the executor writes for each fate a write can have, and what Teams may hold now.

One class, one assignment worth 50, a student per case; the gradebook's row for each student is
what a registrar's wrong file said. Each case is a fate the executor records (see
``execute/writes.py`` and ``execute/decide.py``) followed by what happened in Teams since.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradesync.config import ApplySettings
from gradesync.guards import GuardLimits, plan_verdict
from gradesync.models import CURRENT_COLUMNS, JOURNAL_COLUMNS, PLAN_COLUMNS, Plan
from gradesync.plan.undo import build_undo_plan, describe_undo, undo_counts, undo_rows

from .builders import UNSET, Tenant, plan_of

C = "SEC-1001"
A = "Unit 1 Quiz"
NOW = "2024-06-02T08:00:00Z"


@dataclass
class Case:
    """One student: Teams before the run, the file's cell, the journal's record, Teams now."""

    before: Any  # UNSET: no points outcome; None: an outcome with no grade; a number
    cell: str  # what the wrong file said
    status: str | None  # the journal's status for the write (None: no record)
    after: float | None = None  # the journal's after_points (default: the cell's value)
    now: Any = "wrote"  # Teams now: "wrote" (what the run wrote), "gone", "unread", or a value
    published: float | None = None
    message: str = ""


def _run(cases: dict[str, Case]) -> tuple[Plan, pd.DataFrame, pd.DataFrame, set[tuple[str, str]]]:
    t = Tenant()
    c = t.klass(C, "Algebra I - P1")
    a = t.assignment(c, A, max_points=50)
    sids = {}
    for i, (name, case) in enumerate(cases.items()):
        u = t.student(c, name, sis=f"{i + 1:06d}")
        sids[name] = t.submission(a, u, points=case.before)
    cells: list[tuple[str, ...] | dict[str, Any]] = [
        {
            "class_key": C,
            "assignment_key": A,
            "student_key": f"{i + 1:06d}",
            "points_raw": "EX",
            "excuse": True,
        }
        if case.cell == "EX"
        else (C, A, f"{i + 1:06d}", case.cell)
        for i, case in enumerate(cases.values())
    ]
    run = plan_of(t, cells)
    rows = run.rows.set_index("student_name")
    records, current = [], []
    for name, case in cases.items():
        row = rows.loc[name]
        wrote = math.nan if row["clear"] else float(row["desired_points"])
        if case.status is not None:
            after = wrote if case.after is None else case.after
            outcome = row["outcome_id"] if isinstance(row["outcome_id"], str) else f"new-{sids[name]}"
            records.append((int(row["row_key"]), case.status, outcome, after, case.message))
        if case.now in ("gone", "unread"):
            continue
        now = wrote if case.now == "wrote" else case.now
        outcome = row["outcome_id"] if isinstance(row["outcome_id"], str) else f"new-{sids[name]}"
        current.append((sids[name], outcome, math.nan if now is None else now, case.published or math.nan))
    journal = pd.DataFrame(records, columns=list(JOURNAL_COLUMNS)).astype(JOURNAL_COLUMNS)
    teams = pd.DataFrame(current, columns=list(CURRENT_COLUMNS)).astype(CURRENT_COLUMNS)
    read = set() if any(c.now == "unread" for c in cases.values()) else {(c, a[1])}
    return run, journal, teams, read


def _undo(cases: dict[str, Case]) -> pd.DataFrame:
    run, journal, teams, read = _run(cases)
    return undo_rows(run.rows, journal, teams, read=read).set_index("student_name")


def test_each_written_cell_goes_back_to_its_value_before_the_run() -> None:
    rows = _undo(
        {
            "Ada": Case(before=40, cell="45", status="updated"),
            "Ben": Case(before=UNSET, cell="30", status="created"),  # no grade before: the undo clears
            "Cy": Case(before=None, cell="12", status="updated"),  # an empty outcome filled
            "Di": Case(before=35, cell="CLEAR", status="updated"),  # the run cleared 35
        }
    )
    assert list(rows["action"]) == ["update"] * 4 and list(rows["reason"]) == [""] * 4
    # the executor's rule: write only over what the run wrote; put back what was there before
    assert rows.loc["Ada", ["before_points", "desired_points", "clear", "decrease"]].tolist() == [
        45.0,
        40.0,
        False,
        True,
    ]
    assert rows.loc["Ben", "before_points"] == 30.0 and rows.loc["Ben", "clear"]
    assert math.isnan(rows.loc["Ben", "desired_points"]) and rows.loc["Ben", "outcome_id"].startswith("new-")
    assert rows.loc["Cy", "clear"] and rows.loc["Cy", "before_points"] == 12.0
    assert math.isnan(rows.loc["Di", "before_points"]) and rows.loc["Di", "desired_points"] == 35.0
    assert not rows.loc["Di", "clear"] and not rows.loc["Di", "decrease"]
    assert rows.loc["Ada", "message"] == "undo: puts back 40 (the run wrote 45)"
    assert rows.loc["Ben", "message"].startswith("undo: clears the grade the run entered (30)")
    assert rows["before_modified"].isna().all()  # compared by value: the executor reads Teams again


def test_what_cannot_be_undone_is_refused_row_by_row_with_why() -> None:
    rows = _undo(
        {
            "Ada": Case(before=40, cell="EX", status="excused", after=40.0),  # the excuse keeps the points
            "Ben": Case(before=10, cell="15", status="updated", published=15.0),
            "Cy": Case(before=20, cell="25", status="sending"),  # maybe sent, and Teams holds 25
            "Di": Case(before=20, cell="25", status="updated", message="overwrote: changed in Teams since"),
        }
    )
    assert list(rows["action"]) == ["reject"] * 4
    assert rows.loc["Ada", "source_row"] == 2  # the row of the file the run read, for the registrar
    assert list(rows["reason"]) == [
        "undo_excused",
        "undo_published",
        "undo_unconfirmed",
        "undo_before_unknown",
    ]
    assert "no action that takes an excuse back" in rows.loc["Ada", "message"]
    assert rows.loc["Ben", "message"].startswith("the students have seen 15")
    assert "--resume" in rows.loc["Cy", "message"]
    assert "not known" in rows.loc["Di", "message"]


def test_cells_with_nothing_to_undo_say_why() -> None:
    rows = _undo(
        {
            "Ada": Case(before=40, cell="45", status="pending", now=40),  # carried over: never sent
            "Ben": Case(before=40, cell="45", status="failed", now=40),
            "Cy": Case(before=40, cell="45", status="conflict", now=44),
            "Di": Case(before=40, cell="45", status="unchanged"),
            "Ed": Case(before=40, cell="45", status=None, now=40),  # a dry run or a refused run
            "Fay": Case(before=40, cell="45", status="updated", now=40),  # put back by hand, or undone
            "Gus": Case(before=40, cell="45", status="sending", now=40),  # maybe sent, but it did not land
            "Hal": Case(before=40, cell="45", status="updated", now="gone"),
        }
    )
    assert set(rows["action"]) == {"noop"}
    assert rows["reason"].to_dict() == {
        "Ada": "undo_not_written",
        "Ben": "undo_not_written",
        "Cy": "undo_not_written",
        "Di": "undo_not_written",
        "Ed": "undo_not_written",
        "Fay": "undo_already",
        "Gus": "undo_already",
        "Hal": "undo_gone",
    }
    assert "carried over" in rows.loc["Ada", "message"] and "do not resume" in rows.loc["Ada", "message"]
    assert "failed" in rows.loc["Ben", "message"] and "conflict" in rows.loc["Cy", "message"]
    assert rows.loc["Fay", "message"] == "Teams already holds 40, the value from before the run"
    assert rows.loc["Gus", "message"].startswith("the run never confirmed this write (carried over)")


def test_a_cell_changed_since_the_run_stays_an_update_for_the_executor_to_refuse() -> None:
    """The preview says it; the executor, reading Teams just before writing, reports it ``conflict``."""
    rows = _undo({"Ada": Case(before=40, cell="45", status="updated", now=47)})
    assert rows.loc["Ada", "action"] == "update" and rows.loc["Ada", "before_points"] == 45.0
    assert rows.loc["Ada", "note"].startswith(
        "changed in Teams since the run: Teams holds 47, the run wrote 45"
    )


def test_without_a_read_of_teams_each_write_is_judged_on_the_journal() -> None:
    rows = _undo(
        {
            "Ada": Case(before=40, cell="45", status="updated", now="unread"),
            "Ben": Case(before=40, cell="45", status="sending", now="unread"),
        }
    )
    assert rows["action"].tolist() == ["update", "reject"]
    assert rows.loc["Ben", "reason"] == "undo_unconfirmed"


def test_only_the_runs_writes_are_in_the_undo_and_the_plan_says_what_it_does() -> None:
    cases = {
        "Ada": Case(before=40, cell="45", status="updated"),
        "Ben": Case(before=UNSET, cell="30", status="created"),
        "Cy": Case(before=40, cell="40", status=None),  # a noop of the run: not in the undo
        "Di": Case(before=40, cell="", status=None),  # blank cell: not in the undo
        "Ed": Case(before=10, cell="EX", status="excused", after=10.0),
    }
    run, journal, teams, read = _run(cases)
    assert run.rows.set_index("student_name")["action"].to_dict() == {
        "Ada": "update", "Ben": "create", "Cy": "noop", "Di": "noop", "Ed": "excuse"
    }  # fmt: skip
    plan = build_undo_plan(run.rows, journal, teams, undo_of="RUN-1", created_at=NOW,
                           graph_base_url=run.graph_base_url, config_hash="h", read=read)  # fmt: skip
    assert plan.undo_of == "RUN-1" and plan.roster_gaps == [] and plan.read_at == {}
    assert list(plan.rows.columns) == list(PLAN_COLUMNS)
    assert plan.rows["row_key"].tolist() == sorted(plan.rows["row_key"])
    assert sorted(plan.rows["student_name"]) == ["Ada", "Ben", "Ed"]
    counts = undo_counts(plan.rows)
    assert (counts.restores, counts.clears, counts.not_undoable) == (2, 1, 1)
    assert plan.warnings == describe_undo(plan.rows, "RUN-1")
    assert plan.warnings[0] == "undo of run RUN-1: 2 grade(s) put back"
    assert any("--allow-clear" in w for w in plan.warnings)
    # the same guards as any plan: the clear needs --allow-clear, nothing else refuses a small undo
    limits = GuardLimits.from_settings(ApplySettings(max_plan_age="off"))
    verdict = plan_verdict(plan.rows, created_at=NOW, roster_gaps=[], limits=limits,
                           now=pd.Timestamp(NOW).to_pydatetime())  # fmt: skip
    assert verdict == ["plan clears 1 grade(s); clearing needs --allow-clear"]


points = st.one_of(st.none(), st.integers(0, 100).map(float))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(points, points), min_size=1, max_size=8))
def test_undoing_the_undo_writes_the_runs_values_again(
    pairs: list[tuple[float | None, float | None]],
) -> None:
    """Apply a run, undo it, undo the undo: each cell's planned value is what the run wrote."""
    cases = {
        f"S{i}": Case(before=UNSET if b is None else b, cell="CLEAR" if w is None else f"{w:g}", status="")
        for i, (b, w) in enumerate(pairs)
        if b != w and not (b is None and w is None)
    }
    if not cases:
        return
    run = _run(cases)[0]
    writes = run.rows[run.rows["action"].isin(["update", "create"])]

    def applied(rows: pd.DataFrame, status: str) -> pd.DataFrame:
        wrote = rows["desired_points"].where(~rows["clear"].astype(bool))
        journal = pd.DataFrame({"row_key": rows["row_key"], "status": status, "outcome_id": "o",
                                "after_points": wrote, "message": ""})  # fmt: skip
        return journal.astype(JOURNAL_COLUMNS)

    undo = undo_rows(run.rows, applied(writes, "updated"))
    assert (undo["action"] == "update").all()
    redo = undo_rows(undo, applied(undo, "updated"))
    wrote_by_run = writes["desired_points"].where(~writes["clear"].astype(bool)).to_numpy()
    redone = redo["desired_points"].where(~redo["clear"].astype(bool)).to_numpy()
    assert redo["row_key"].tolist() == writes["row_key"].tolist()
    assert pd.Series(redone).equals(pd.Series(wrote_by_run))


@pytest.mark.parametrize("status", ["", "pending", "failed", "conflict", "unchanged"])
def test_an_undo_of_a_run_that_wrote_nothing_writes_nothing(status: str) -> None:
    cases = {"Ada": Case(before=40, cell="45", status=status or None, now=40)}
    run, journal, teams, read = _run(cases)
    plan = build_undo_plan(run.rows, journal, teams, undo_of="R", created_at=NOW, graph_base_url="g",
                           config_hash="h", read=read)  # fmt: skip
    assert plan.operations() == []
    assert plan.warnings[0] == "undo of run R: 0 grade(s) put back"
