"""resolve hands the submissions' repeated ids over coded (categoricals): the plan is the same."""

from __future__ import annotations

import dataclasses

import pandas as pd

from gradesync.plan import build_plan

from .builders import CREATED_AT, GRAPH, desired_frame, settings
from .test_plan_rules import CASES, school

CODED = ("class_id", "assignment_id", "user_id", "recipient_type", "status")


def test_a_snapshot_with_coded_ids_plans_exactly_like_one_with_text_ids() -> None:
    snapshot = school().snapshot()
    subs = snapshot.submissions.astype(dict.fromkeys(CODED, "category"))
    coded = dataclasses.replace(snapshot, submissions=subs)
    rows = desired_frame([row for row, _ in CASES])
    plain = build_plan(rows, snapshot, settings(), created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[])
    again = build_plan(rows, coded, settings(), created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[])
    pd.testing.assert_frame_equal(plain.rows, again.rows, check_exact=True)
    assert plain.roster_gaps == again.roster_gaps
    assert (plain.rows["action"] != "reject").any() and (plain.rows["action"] == "reject").any()
