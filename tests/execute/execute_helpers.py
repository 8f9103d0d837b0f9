"""Build Plans straight from an emulator tenant (no read/resolve stage needed) for the execute tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pandas as pd

from gradesync.errors import ExitCode
from gradesync.graph import GraphClient, RateLimit, RetryPolicy
from gradesync.models import PLAN_COLUMNS, Plan
from gradesync.outcome import Tally, judge
from graph_emulator import FaultConfig
from graph_emulator.state import iter_submissions, points_outcome

FAST = RetryPolicy(max_attempts=12, base_delay=0.001, max_delay=0.02, max_total_seconds=30.0)


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def client_for(server: Any, token: str, *, timeout: float = 10.0, max_in_flight: int = 4) -> GraphClient:
    return GraphClient(
        server.base_url,
        lambda: token,
        policy=FAST,
        rate_limit=RateLimit.off(),
        timeout=timeout,
        max_in_flight=max_in_flight,
        sleep=lambda s: __import__("time").sleep(min(s, 0.05)),
    )


def lose_create_answers(client: GraphClient, server: Any) -> None:
    """Every envelope holding a create is applied and all its answers are lost (the emulator's
    applied-then-error fault on each sub-request, switched on for that envelope only): the client
    cannot tell whether its creates landed."""
    real = client.batch

    def batch(reqs: list, **kw: Any) -> Any:
        if any(r.method == "POST" for r in reqs):
            server.configure(faults=FaultConfig.only("applied_error", 1.0, seed=5, scope="sub"))
        try:
            return real(reqs, **kw)
        finally:
            server.configure(faults=None)

    client.batch = batch  # type: ignore[method-assign]


def _row(key: int, cls: dict, asg: dict, sub: dict, **kw: Any) -> dict[str, Any]:
    po = points_outcome(sub)
    before = po.get("points") if po else None
    row: dict[str, Any] = {
        "row_key": key,
        "source_file": "grades.csv",
        "source_sheet": "",
        "source_row": key + 2,
        "source_column": "Points",
        "class_key": cls.get("externalId") or cls["id"],
        "assignment_key": asg["displayName"],
        "student_key": sub["recipient"].get("userId", ""),
        "points_raw": "",
        "desired_points": np.nan,
        "clear": False,
        "excuse": False,
        "points_possible": np.nan,
        "class_id": cls["id"],
        "class_name": cls.get("displayName"),
        "assignment_id": asg["id"],
        "assignment_name": asg["displayName"],
        "max_points": float(asg["grading"]["maxPoints"]),
        "user_id": sub["recipient"].get("userId"),
        "student_name": "",
        "submission_id": sub["id"],
        "outcome_id": po["id"] if po else None,
        "before_points": np.nan if before is None else float(before),
        "before_modified": po.get("lastModifiedDateTime") if po else None,
        "action": "noop",
        "reason": "",
        "message": "",
        "note": "",
        "decrease": False,
        "last_written_points": np.nan,
        "override_policy": "",
    }
    row.update(kw)
    row["points_raw"] = "" if pd.isna(row["desired_points"]) else f"{row['desired_points']:g}"
    return row


def targets(tenant: dict) -> tuple[list[tuple], list[tuple]]:
    """(graded submissions, ungraded submissions without a points outcome) of graded assignments."""
    graded, empty = [], []
    for cls, asg, sub in iter_submissions(tenant):
        if (
            not asg.get("grading")
            or asg.get("status") != "assigned"
            or "userId" not in sub.get("recipient", {})
        ):
            continue
        if sub.get("status") == "excused":
            continue
        po = points_outcome(sub)
        if po is None:
            empty.append((cls, asg, sub))
        elif po.get("points") is not None:
            graded.append((cls, asg, sub))
    return graded, empty


def build_plan(
    tenant: dict,
    *,
    updates: int,
    creates: int,
    noops: int = 2,
    rejects: int = 1,
    decrease: bool = False,
    created_at: str | None = None,
    base_url: str = "http://127.0.0.1",
) -> Plan:
    """A Plan of ``updates`` PATCHes (raise by 1, or lower when ``decrease``), ``creates`` POSTs,
    some noop rows and rejected rows, as the planner would produce them."""
    graded, empty = targets(tenant)
    assert len(graded) >= updates + noops and len(empty) >= creates, (len(graded), len(empty))
    rows: list[dict[str, Any]] = []
    for cls, asg, sub in graded[:updates]:
        before = points_outcome(sub)["points"]
        mx = asg["grading"]["maxPoints"]
        new = before - 1 if (decrease and before >= 1) or before + 1 > mx else before + 1
        rows.append(
            _row(len(rows), cls, asg, sub, desired_points=float(new), action="update", decrease=new < before)
        )
    for cls, asg, sub in graded[updates : updates + noops]:
        rows.append(_row(len(rows), cls, asg, sub, desired_points=float(points_outcome(sub)["points"])))
    for i, (cls, asg, sub) in enumerate(empty[:creates]):
        mx = asg["grading"]["maxPoints"]
        rows.append(_row(len(rows), cls, asg, sub, desired_points=float(min(mx, 1 + i % 9)), action="create"))
    for _ in range(rejects):
        cls, asg, sub = graded[0]
        rows.append(
            _row(
                len(rows),
                cls,
                asg,
                sub,
                action="reject",
                reason="unknown_student",
                message="no such student",
                submission_id=None,
                outcome_id=None,
                user_id=None,
                desired_points=5.0,
            )
        )
    frame = pd.DataFrame(rows, columns=list(PLAN_COLUMNS)).astype(PLAN_COLUMNS)
    return Plan(
        rows=frame,
        created_at=created_at or now_iso(),
        graph_base_url=base_url,
        config_hash="test",
        roster_gaps=roster_gaps(tenant, frame),
    )


def roster_gaps(tenant: dict, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The plan's roster gaps as the planner records them: per assignment the plan writes to, the
    students with an individual submission that no row names."""
    named = {
        (r.class_id, r.assignment_id, r.user_id)
        for r in rows.itertuples()
        if isinstance(r.user_id, str) and isinstance(r.submission_id, str)
    }
    pairs = {(c, a) for c, a, _ in named}
    gaps = []
    for cls, asg, sub in iter_submissions(tenant):
        user = sub.get("recipient", {}).get("userId")
        if (cls["id"], asg["id"]) in pairs and user and (cls["id"], asg["id"], user) not in named:
            gaps.append({"class_id": cls["id"], "assignment_id": asg["id"], "user_id": user})
    return gaps


def points_outcomes_of(tenant: dict) -> dict[str, list[dict]]:
    """submission id → its points outcomes, from an emulator state dict."""
    return {
        sub["id"]: [o for o in sub.get("outcomes", []) if o.get("type") == "points"]
        for _, _, sub in iter_submissions(tenant)
    }


def assert_converged(server: Any, plan: Plan) -> None:
    """Every write row holds its desired value, once."""
    outcomes = points_outcomes_of(server.state())
    writes = plan.rows[plan.rows["action"].isin(["update", "create"])]
    for row in writes.itertuples():
        found = outcomes[row.submission_id]
        assert len(found) == 1, (row.submission_id, found)
        assert found[0]["points"] == row.desired_points, (row.row_key, found[0], row.desired_points)
    dups = {sid: o for sid, o in outcomes.items() if len(o) > 1}
    assert not dups


def graph_patch(server: Any, token: str, row: Any, points: float) -> None:
    """Change a grade in Teams behind the plan's back (real HTTP, as a teacher would)."""
    url = (
        f"{server.base_url}/education/classes/{row.class_id}/assignments/{row.assignment_id}"
        f"/submissions/{row.submission_id}/outcomes"
    )
    body = {
        "@odata.type": "#microsoft.graph.educationPointsOutcome",
        "points": {"@odata.type": "#microsoft.graph.educationAssignmentPointsGrade", "points": points},
    }
    headers = {"Authorization": f"Bearer {token}"}
    if isinstance(row.outcome_id, str) and row.outcome_id:
        r = httpx.patch(f"{url}/{row.outcome_id}", json=body, headers=headers)
    else:
        r = httpx.post(url, json=body, headers=headers)
    assert r.status_code in (200, 201), r.text


def status_counts(result: Any) -> dict[str, int]:
    """The statuses an apply's rows hold (only those some row has)."""
    return {str(k): int(v) for k, v in result.rows["status"].value_counts().items()}


def exit_code(result: Any) -> ExitCode:
    """The exit code the run's outcome gives an executor's facts (``outcome.judge``, as the pipeline
    asks it)."""
    return judge(
        Tally.of(result.rows),
        error=result.error,
        return_failed=result.return_failed,
        return_carried=result.return_carried,
    ).exit_code
