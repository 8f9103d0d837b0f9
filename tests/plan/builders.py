"""Build Snapshots and desired frames for plan tests in a few lines.

t = Tenant()
c = t.klass("SEC-1001", "Algebra I - P1")
a = t.assignment(c, "Unit 1 Quiz", max_points=50)
u = t.student(c, "Ada Lovelace", sis="000123")
t.submission(a, u, points=40)             # a points outcome holding 40
desired = desired_frame([("SEC-1001", "Unit 1 Quiz", "000123", "45")])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gradesync.config import Settings
from gradesync.models import DESIRED_COLUMNS, SNAPSHOT_COLUMNS, Snapshot, empty_frame
from gradesync.plan import build_plan

CREATED_AT = "2024-06-01T12:00:00Z"
GRAPH = "https://graph.example.test/v1.0"
UNSET = object()


def settings(**policy: Any) -> Settings:
    match = policy.pop("match", {})
    return Settings.model_validate({"policy": policy, "match": match})


@dataclass
class Tenant:
    classes: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    assignments: list[dict[str, Any]] = field(default_factory=list)
    submissions: list[dict[str, Any]] = field(default_factory=list)

    def klass(self, key: str, name: str, class_id: str | None = None) -> str:
        cid = class_id or f"cls-{len(self.classes) + 1}"
        self.classes.append({"class_key": key, "class_id": cid, "class_name": name})
        return cid

    def assignment(
        self,
        class_id: str,
        name: str,
        max_points: float | None = 100.0,
        assignment_id: str | None = None,
        status: str = "assigned",
    ) -> tuple[str, str]:
        aid = assignment_id or f"asg-{len(self.assignments) + 1}"
        self.assignments.append(
            {
                "class_id": class_id,
                "assignment_id": aid,
                "display_name": name,
                "status": status,
                "graded": max_points is not None,
                "max_points": math.nan if max_points is None else float(max_points),
            }
        )
        return class_id, aid

    def student(
        self,
        class_id: str,
        name: str,
        *,
        sis: str | None = None,
        user_id: str | None = None,
        upn: str | None = None,
        mail: str | None = None,
        number: str | None = None,
        external_id: str | None = None,
        role: str | None = "student",
    ) -> tuple[str, str]:
        uid = user_id or f"usr-{len(self.members) + 1}"
        self.members.append(
            {
                "class_id": class_id,
                "user_id": uid,
                "display_name": name,
                "upn": upn,
                "mail": mail,
                "sis_id": sis,
                "external_id": external_id,
                "student_number": number,
                "primary_role": role,
            }
        )
        return class_id, uid

    def submission(
        self,
        assignment: tuple[str, str],
        student: tuple[str, str] | None,
        *,
        points: Any = UNSET,
        status: str = "working",
        group: bool = False,
        work: int = 0,
    ) -> str:
        """``points`` unset → no points outcome; ``None`` → an outcome with null points; ``work``: the
        submission's ``models.TeacherWork`` flags (feedback, rubric)."""
        class_id, aid = assignment
        sid = f"sub-{len(self.submissions) + 1}"
        has_outcome = points is not UNSET
        self.submissions.append(
            {
                "class_id": class_id,
                "assignment_id": aid,
                "submission_id": sid,
                "user_id": None if group or student is None else student[1],
                "recipient_type": "group" if group else "individual",
                "status": status,
                "outcome_id": f"out-{sid}" if has_outcome else None,
                "points": math.nan if not has_outcome or points is None else float(points),
                "last_modified": "2024-05-01T10:00:00Z" if has_outcome else None,
                "teacher_work": work,
            }
        )
        return sid

    def snapshot(self) -> Snapshot:
        frames = {}
        for name, cols in SNAPSHOT_COLUMNS.items():
            records = getattr(self, name)
            frames[name] = (
                pd.DataFrame(
                    {c: pd.Series([r.get(c, "") for r in records], dtype=t) for c, t in cols.items()}
                )
                if records
                else empty_frame(cols)
            )
        return Snapshot(**frames)


def desired_frame(rows: list[tuple | dict[str, Any]], clear_token: str = "CLEAR") -> pd.DataFrame:  # noqa: S107
    """Rows as ``(class, assignment, student, points_raw)`` tuples or dicts of DESIRED_COLUMNS overrides.

    Points are parsed like the read stage would: blank → ``blank_points`` noop, the clear token → clear,
    text that is not a number → ``invalid_points`` reject.
    """
    records = []
    for i, row in enumerate(rows):
        spec = dict(zip(("class_key", "assignment_key", "student_key", "points_raw"), row, strict=False))
        if isinstance(row, dict):
            spec = dict(row)
        raw = str(spec.get("points_raw", ""))
        rec: dict[str, Any] = {
            "row_key": i,
            "source_file": "grades.csv",
            "source_sheet": "",
            "source_row": i + 2,
            "source_column": "points",
            "class_key": "",
            "assignment_key": "",
            "student_key": "",
            "points_raw": raw,
            "desired_points": math.nan,
            "clear": False,
            "excuse": False,
            "points_possible": math.nan,
            "points_unit": "points",
            "points_denominator": math.nan,
            "reason": "",
            "message": "",
            "note": "",
        }
        if raw.strip() == "":
            rec["reason"], rec["message"] = "blank_points", "blank points cell: no change"
        elif raw.strip() == clear_token:
            rec["clear"] = True
        elif spec.get("excuse"):
            pass  # an excused mark: the read stage found it, desired_points stays NaN
        else:
            try:
                rec["desired_points"] = float(raw)
            except ValueError:
                rec["reason"], rec["message"] = "invalid_points", f'"{raw}" is not a number'
        rec.update(spec)
        records.append(rec)
    if not records:
        return empty_frame(DESIRED_COLUMNS)
    return pd.DataFrame(
        {c: pd.Series([r.get(c, "") for r in records], dtype=t) for c, t in DESIRED_COLUMNS.items()}
    )


def plan_of(tenant: Tenant | Snapshot, rows: list[tuple | dict[str, Any]], **policy: Any):
    snap = tenant.snapshot() if isinstance(tenant, Tenant) else tenant
    return build_plan(
        desired_frame(rows), snap, settings(**policy), created_at=CREATED_AT, graph_base_url=GRAPH, inputs=[]
    )


def outcome(plan, row_key: int = 0) -> tuple[str, str, str]:
    """``(action, reason, message)`` of one row."""
    r = plan.rows.iloc[row_key]
    return r["action"], r["reason"], r["message"]
