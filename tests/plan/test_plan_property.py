"""Property: applying a plan gives every accepted row its grade, and planning again changes nothing.

For generated small tenants (classes, assignments, students, submissions in every state) and desired
grades (known and unknown keys, SIS ids and e-mails for the same student, blanks, clears, values above
the maximum, several decimals), under every policy:

* ``apply_operations(snapshot, plan)`` holds the desired value (rounded to the precision) on every
  row that is neither rejected nor blank, and no grade on every accepted clear;
* ``build_plan`` on that new snapshot gives only ``noop`` and ``reject`` rows, the rejects being
  exactly the same rows with the same reasons.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gradesync.models import Action
from gradesync.plan import apply_operations, build_plan

from .builders import CREATED_AT, GRAPH, UNSET, Tenant, desired_frame
from .builders import settings as make_settings

NAMES = ["Quiz 1", "quiz  1", "Essay", "Lab"]


@st.composite
def tenants(draw: st.DrawFn) -> tuple[Tenant, list[tuple[str, list[str], list[tuple[str, str]]]]]:
    """A tenant, and per class: (class key, assignment names, [(sis, mail)] of its students)."""
    t = Tenant()
    layout = []
    sis_counter = 0
    for ci in range(draw(st.integers(1, 3))):
        cid = t.klass(f"SEC-{ci}", f"Class {ci}", class_id=f"c{ci}")
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
        assignments = []
        for ai, name in enumerate(names):
            graded = draw(st.booleans()) or ai == 0
            max_points = draw(st.sampled_from([10.0, 50.0, 100.0])) if graded else None
            group = graded and draw(st.integers(0, 9)) == 0
            assignments.append((t.assignment(cid, name, max_points, assignment_id=f"a{ci}-{ai}"), group))
        students = []
        for si in range(draw(st.integers(1, 4))):
            sis_counter += 1
            sis = f"{sis_counter:06d}"
            mail = f"s{sis_counter}@school.test"
            student = t.student(cid, f"Student {sis}", user_id=f"u{sis_counter}", sis=sis, mail=mail)
            students.append((sis, mail))
            for a, group in assignments:
                if group:
                    continue
                state = draw(st.sampled_from(["none", "no-outcome", "null", "points", "points"]))
                if state == "none":
                    continue
                status = draw(st.sampled_from(["working", "returned", "submitted", "excused"]))
                pts = UNSET if state == "no-outcome" else None if state == "null" else draw(_points)
                t.submission(a, student, points=pts, status=status)
            del si
        for a, group in assignments:
            if group:
                t.submission(a, None, points=draw(_points), group=True)
        layout.append((f"SEC-{ci}", names, students))
    return t, layout


# a few common values (so grades often already match, and duplicates often agree), and any 2-decimal value
_points = st.one_of(
    st.sampled_from([0.0, 5.0, 10.0, 45.0, 50.0]), st.integers(0, 12000).map(lambda v: v / 100)
)


@st.composite
def cases(draw: st.DrawFn):
    tenant, layout = draw(tenants())
    rows = []
    for _ in range(draw(st.integers(0, 14))):
        class_key, names, students = draw(st.sampled_from(layout))
        if draw(st.integers(0, 9)) == 0:
            class_key = "SEC-NOPE"
        name = draw(st.sampled_from([*names, "QUIZ 1", "Nope"]))
        sis, mail = draw(st.sampled_from(students))
        other = draw(st.sampled_from([x for _, _, ss in layout for x in ss]))
        student = draw(st.sampled_from([sis, mail, mail.upper(), other[0], "999999"]))
        points = draw(
            st.one_of(
                _points.map(lambda v: f"{v:g}"),
                _points.map(lambda v: f"{v:g}"),
                st.integers(0, 120000).map(lambda v: f"{v / 1000:g}"),  # three decimals
                st.sampled_from(["", "CLEAR"]),
            )
        )
        rows.append((class_key, name, student, points))
        if draw(st.integers(0, 3)) == 0:  # the same student again, keyed the other way
            rows.append(
                (class_key, name, mail if student == sis else sis, draw(st.sampled_from([points, "45"])))
            )
    policy = {
        "precision": draw(st.sampled_from([0, 2])),
        "above_max": draw(st.sampled_from(["reject", "allow"])),
        "excused": draw(st.sampled_from(["reject", "allow"])),
        "match": {"student_by": draw(st.sampled_from([["sis_id", "mail"], ["mail", "sis_id"]]))},
    }
    return tenant, rows, policy


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_apply_then_plan_again_gives_only_noops(case) -> None:
    tenant, rows, policy = case
    s = make_settings(**policy)
    snapshot = tenant.snapshot()
    desired = desired_frame(rows)
    plan = build_plan(desired, snapshot, s, created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[])
    assert len(plan.rows) == len(rows)
    for action, reason in zip(plan.rows["action"], plan.rows["reason"], strict=True):
        event(f"{action} {reason}".strip())  # see them with --hypothesis-show-statistics

    after = apply_operations(snapshot, plan)
    points_after = dict(zip(after.submissions["submission_id"], after.submissions["points"], strict=True))
    p = s.policy.precision
    accepted = plan.rows[
        (plan.rows["action"] != Action.REJECT.value) & (plan.rows["reason"] != "blank_points")
    ]
    for r in accepted.itertuples():
        assert r.submission_id is not None, r
        got = points_after[r.submission_id]
        if r.clear:
            assert math.isnan(got), r
        else:
            assert not math.isnan(got) and np.round(got, p) == np.round(r.desired_points, p), r

    again = build_plan(desired, after, s, created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[])
    assert set(again.rows["action"]) <= {Action.NOOP.value, Action.REJECT.value}
    rejected = plan.rows["action"] == Action.REJECT.value
    assert (again.rows["action"] == Action.REJECT.value).tolist() == rejected.tolist()
    assert again.rows.loc[rejected, "reason"].tolist() == plan.rows.loc[rejected, "reason"].tolist()
    assert again.operations() == []
