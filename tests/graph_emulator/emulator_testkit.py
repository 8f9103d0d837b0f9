"""Helpers for the emulator tests: URL builders over the sample tenant and a fake clock."""

from __future__ import annotations

from typing import Any

import httpx

from graph_emulator import points_outcome

TOKEN = "test-token"
POINTS = "#microsoft.graph.educationPointsOutcome"


class FakeClock:
    """An injectable monotonic clock the tests move by hand (no sleeping)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def client(srv: Any, token: str = TOKEN, **kw: Any) -> httpx.Client:
    return httpx.Client(base_url=srv.base_url, headers={"Authorization": f"Bearer {token}"}, **kw)


def cls_by_section(tenant: dict, section: str) -> dict:
    return next(c for c in tenant["classes"] if c["externalId"] == section)


def graded_subs(tenant: dict, with_points: bool = True) -> list[tuple[dict, dict, dict, dict | None]]:
    """(class, assignment, submission, points outcome) for individual submissions of graded assignments."""
    out = []
    for c in tenant["classes"]:
        for a in c["assignments"]:
            if a.get("grading") is None or a.get("assignTo") == "groups":
                continue
            for s in a.get("submissions", []):
                o = points_outcome(s)
                if (o is not None) == with_points and s["status"] != "excused":
                    out.append((c, a, s, o))
    return out


def sub_path(c: dict, a: dict, s: dict) -> str:
    return f"/education/classes/{c['id']}/assignments/{a['id']}/submissions/{s['id']}"


def patch_body(points: Any) -> dict:
    return {
        "@odata.type": POINTS,
        "points": {"@odata.type": "#microsoft.graph.educationAssignmentPointsGrade", "points": points},
    }
