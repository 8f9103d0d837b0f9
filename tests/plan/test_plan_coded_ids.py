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


def test_desired_keys_coded_as_the_read_stage_hands_them_plan_exactly_like_text_keys() -> None:
    """read hands class/assignment/student keys as categoricals (``DESIRED_CODED``); a missing key
    (code -1) reads as "" like a text column's NaN does, with or without a "" category."""
    from gradesync.models import DESIRED_CODED

    snapshot = school().snapshot()
    rows = desired_frame([row for row, _ in CASES])
    holed = rows.copy()
    holed.loc[0, "student_key"] = None  # missing: "" as text, code -1 when coded (no "" category)
    both = holed.copy()
    both.loc[1, "student_key"] = ""  # missing and "" in one column: one key
    for frame in (rows, holed, both):
        text = frame.assign(student_key=frame["student_key"].fillna(""))
        coded = frame.astype(dict.fromkeys(DESIRED_CODED, "category"))
        want = build_plan(text, snapshot, settings(), created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[])
        got = build_plan(coded, snapshot, settings(), created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[])
        pd.testing.assert_frame_equal(want.rows, got.rows, check_exact=True)
        assert want.roster_gaps == got.roster_gaps
    assert (coded["student_key"].cat.codes.iloc[0] == -1) and "" in coded["student_key"].cat.categories
    pair = want.rows.loc[[0, 1], ["action", "reason"]].to_numpy().tolist()
    assert pair[0] == pair[1] and pair[0][0] == "reject"  # the missing and the blank key: the same verdict
