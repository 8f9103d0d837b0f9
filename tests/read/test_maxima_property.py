"""Hypothesis: a maximum the file declares is never dropped.

Over random wide files — each item's maximum declared by a Blackboard header, a Brightspace header,
a header a person wrote ("(out of 50)", taken off by the mapping's decoration), the Points Possible
row, the mapping's [columns.maxima], or not at all — random cells and random Teams maxima, read and
planned: no cell is planned with points whose file-declared maximum differs from Teams' unless the
mapping says scale and the row says it was scaled; then the points are exactly scaled.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gradesync.config import Settings
from gradesync.plan import build_plan
from gradesync.read import read_inputs
from gradesync.read.mapping import ColumnRules, Mapping, StudentRule, ValueRules
from tests.plan.builders import CREATED_AT, GRAPH, Tenant


def _scaled(raw: str, teams_max: float, file_max: float) -> float:
    """The grade the README promises: the file's number scaled to Teams' maximum, computed exactly
    in decimal and rounded half up at the default precision (2), as the reader rounds a grade."""
    exact = Decimal(raw) * Decimal(repr(teams_max)) / Decimal(repr(file_max))
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


MAXIMA = [5.0, 10.0, 12.5, 20.0, 50.0, 100.0]
FORMS = ["none", "blackboard", "brightspace", "written", "row", "mapping"]
CLASS = "SEC-1"


def _header(name: str, form: str, declared: float) -> str:
    n = f"{declared:g}"
    return {
        "none": name,
        "blackboard": f"{name} [Total Pts: {n} Score] |12{len(name)}",
        "brightspace": f"{name} Points Grade <Numeric MaxPoints:{n} Weight:10 Category:Tests>",
        "written": f"{name} (out of {n})",
        "row": name,
        "mapping": name,
    }[form]


items = st.lists(
    st.tuples(st.sampled_from(FORMS), st.sampled_from(MAXIMA), st.sampled_from(MAXIMA)),  # form, file, Teams
    min_size=1,
    max_size=3,
)
cells = st.lists(
    st.lists(st.one_of(st.just(""), st.integers(0, 200).map(lambda x: f"{x / 2:g}")), min_size=3, max_size=3),
    min_size=1,
    max_size=4,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=items, grid=cells, scale=st.booleans())
# 0.5 of 100 scaled to 5 is 0.025: half up, 0.03 (numpy's half-to-even on the binary value gave 0.02)
@example(spec=[("none", 5.0, 5.0), ("blackboard", 100.0, 5.0)], grid=[["", "0.5", ""]], scale=True)
def test_no_cell_is_planned_against_a_different_maximum_unless_scaled(
    spec: list[tuple[str, float, float]], grid: list[list[str]], scale: bool
) -> None:
    names = [f"Item {k + 1}" for k in range(len(spec))]
    header = ["Student ID", *(_header(n, form, fm) for n, (form, fm, _) in zip(names, spec, strict=True))]
    rows = [header]
    if any(form == "row" for form, _, _ in spec):
        rows.append(["Points Possible", *(f"{fm:g}" if form == "row" else "" for form, fm, _ in spec)])
    students = [f"{100 + i:06d}" for i in range(len(grid))]
    for sid, line in zip(students, grid, strict=True):
        rows.append([sid, *line[: len(spec)]])
    mapping = Mapping(
        layout="wide",
        student=StudentRule(column="Student ID"),
        columns=ColumnRules(
            decoration=r" \(out of [\d.]+\)$",
            maxima={n: fm for n, (form, fm, _) in zip(names, spec, strict=True) if form == "mapping"},
        ),
        values=ValueRules(maximum_mismatch="scale" if scale else "reject"),
    )
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grades.csv"
        path.write_text(out.getvalue(), encoding="utf-8")
        read = read_inputs([path], Settings(), class_key=CLASS, mapping=mapping)

    tenant = Tenant()
    cid = tenant.klass(CLASS, "Class")
    assignments = [
        tenant.assignment(cid, n, max_points=tm) for n, (_, _, tm) in zip(names, spec, strict=True)
    ]
    for sid in students:
        student = tenant.student(cid, sid, sis=sid)
        for a in assignments:
            tenant.submission(a, student, points=None)  # an outcome with no grade yet: any value is an update
    plan = build_plan(
        read.frame, tenant.snapshot(), Settings(), created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[]
    )

    declared = {n: (None if form == "none" else fm) for n, (form, fm, _) in zip(names, spec, strict=True)}
    teams = {n: tm for n, (_, _, tm) in zip(names, spec, strict=True)}
    for r in plan.rows.to_dict("records"):
        name, raw = r["assignment_key"], str(r["points_raw"]).strip()
        if not raw:
            continue
        file_max, teams_max, value = declared[name], teams[name], float(raw)
        assert r["points_possible"] == file_max or (file_max is None and math.isnan(r["points_possible"]))
        differs = file_max is not None and file_max != teams_max
        if r["action"] in ("update", "create"):
            if differs:
                assert scale and "scaled to" in r["note"], r
                assert r["desired_points"] == _scaled(raw, teams_max, file_max)
            else:
                assert "scaled" not in r["note"] and r["desired_points"] == value, r
        elif differs and not scale:
            assert (r["action"], r["reason"]) == ("reject", "points_possible_mismatch"), r
        else:  # the only other refusal: more points than Teams' maximum (after scaling)
            scaled = value * teams_max / file_max if differs else value
            assert (r["reason"], scaled > teams_max) == ("above_max_points", True), r
