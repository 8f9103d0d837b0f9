"""A clear that Graph carried out is reported ``updated`` with no grade after it, not ``conflict``.

Graph answers a PATCH of ``"points": null`` with the outcome holding no points; the reconciliation
must read that answer as "no grade" (what was asked), not as a missing answer.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from execute_helpers import build_plan, client_for, exit_code, status_counts

from gradesync.errors import ExitCode
from gradesync.execute.apply import ApplyOptions, apply_plan
from gradesync.state.journal import Journal
from graph_emulator.state import iter_submissions, points_outcome

LOOSE = ApplyOptions()


def test_an_applied_clear_is_updated_and_teams_holds_no_grade(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    plan = build_plan(emulator.state(), updates=3, creates=0, noops=0, rejects=0)
    clear = plan.rows["row_key"] < 2  # two of the updates become clears, as the CLEAR token makes them
    plan.rows.loc[clear, "clear"] = True
    plan.rows.loc[clear, "desired_points"] = math.nan
    plan.rows.loc[clear, "decrease"] = True
    with client_for(emulator, token) as client, Journal.in_dir(tmp_path) as journal:
        result = apply_plan(plan, client, journal=journal, options=LOOSE)
    assert exit_code(result) is ExitCode.OK
    assert status_counts(result) == {"updated": 3}
    cleared = result.rows[clear]
    assert cleared["after_points"].isna().all() and (cleared["message"] == "").all()
    held = {
        s["id"]: (points_outcome(s) or {}).get("points") for _, _, s in iter_submissions(emulator.state())
    }
    assert [held[sid] for sid in cleared["submission_id"]] == [None, None]
