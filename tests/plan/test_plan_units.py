"""Rule 7, value units: percents and fractions become points against Teams' maximum, always noted.

The read stage hands over the number as written (``points_unit``/``points_denominator``);
these frames set those columns directly, as the read stage would.
"""

from __future__ import annotations

import math

import pytest

from gradesync.models import Action, ReasonCode
from gradesync.plan import build_plan

from .builders import CREATED_AT, GRAPH, Tenant, desired_frame, settings


def tenant(maximum: float | None = 20.0) -> Tenant:
    t = Tenant()
    c = t.klass("SEC-1", "Algebra", class_id="c1")
    a = t.assignment(c, "Quiz", max_points=20.0 if maximum is None else maximum, assignment_id="a1")
    if maximum is None:  # graded with points, but Teams has no maximum
        t.assignments[-1]["max_points"] = math.nan
    ada = t.student(c, "Ada", user_id="u1", sis="001")
    t.submission(a, ada, points=10)
    return t


def plan(t: Tenant, raw: str, number: float, unit: str, denominator: float = math.nan, **input_rule: str):
    row = {
        "class_key": "SEC-1",
        "assignment_key": "Quiz",
        "student_key": "001",
        "points_raw": raw,
        "desired_points": number,
        "points_unit": unit,
        "points_denominator": denominator,
        "reason": "",  # the read stage understood the cell
        "message": "",
    }
    base = settings()
    s = base.model_copy(update={"input": base.input.model_copy(update=input_rule)})  # never the shared one
    p = build_plan(
        desired_frame([row]), t.snapshot(), s, created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[]
    )
    return p.rows.iloc[0]


def test_a_percent_is_that_share_of_the_maximum_and_says_so():
    r = plan(tenant(20), "95%", 95.0, "percent")
    assert (r["action"], r["reason"], r["desired_points"]) == (Action.UPDATE, "", 19.0)
    assert r["note"] == "95% of 20 → 19"
    assert r["points_raw"] == "95%"


def test_a_percent_cell_is_never_written_as_its_fraction():
    """Excel's 0.55 with a percent format reaches plan as 55.0 percent: 55% of 51, not 0.55."""
    r = plan(tenant(51), "55%", 55.0, "percent")
    assert r["desired_points"] == pytest.approx(28.05) and r["desired_points"] != 0.55
    assert r["note"] == "55% of 51 → 28.05"


def test_the_above_max_check_runs_after_the_conversion():
    r = plan(tenant(20), "120%", 120.0, "percent")
    assert (r["action"], r["reason"]) == (Action.REJECT, ReasonCode.ABOVE_MAX_POINTS)
    assert r["message"] == '24 is above the maximum of 20 points for "Quiz"'
    assert r["note"] == "120% of 20 → 24"


def test_a_fraction_out_of_the_maximum_is_points():
    r = plan(tenant(20), "17/20", 17.0, "fraction", 20.0)
    assert (r["action"], r["desired_points"], r["note"]) == (Action.UPDATE, 17.0, "17/20 → 17 points")


def test_a_fraction_out_of_another_denominator_is_refused_by_default():
    r = plan(tenant(50), "17/20", 17.0, "fraction", 20.0)
    assert (r["action"], r["reason"]) == (Action.REJECT, ReasonCode.FRACTION_MISMATCH)
    assert r["message"].startswith('17/20 is out of 20, but Teams has a maximum of 50 points for "Quiz"')
    assert 'fractions = "scale"' in r["message"]


def test_fractions_scale_converts_and_says_so():
    r = plan(tenant(50), "17/20", 17.0, "fraction", 20.0, fractions="scale")
    assert (r["action"], r["reason"], r["desired_points"]) == (Action.UPDATE, "", 42.5)
    assert r["note"] == '17/20 of 50 → 42.5 ([input] fractions = "scale")'


@pytest.mark.parametrize(
    ("raw", "number", "unit", "den"), [("95%", 95.0, "percent", math.nan), ("17/20", 17.0, "fraction", 20.0)]
)
def test_a_percent_or_fraction_without_a_maximum_is_refused(raw, number, unit, den):
    r = plan(tenant(None), raw, number, unit, den)
    assert (r["action"], r["reason"]) == (Action.REJECT, ReasonCode.PERCENT_WITHOUT_MAXIMUM)
    assert r["message"].startswith(f'"{raw}" is a {unit}, but "Quiz" has no maximum in Teams')


def test_a_converted_value_equal_to_teams_is_unchanged():
    r = plan(tenant(20), "50%", 50.0, "percent")  # 10 points: what Teams holds
    assert (r["action"], r["reason"], r["desired_points"], r["note"]) == (
        Action.NOOP,
        "",
        10.0,
        "50% of 20 → 10",
    )
