"""Shared test helpers for tests/graph: a fake clock whose sleep advances it, and tenant lookups."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from graph_emulator.state import iter_submissions, points_outcome

POINTS_OUTCOME = "#microsoft.graph.educationPointsOutcome"


class FakeClock:
    """``clock()`` and ``sleep(s)``: sleeping records the wait and moves the clock, instantly."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


class RecordingSleep:
    """Real (tiny) sleeps, recorded: for tests against the emulator, whose throttle runs on real time."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)


def outcome_url(cls: dict[str, Any], asg: dict[str, Any], sub: dict[str, Any], oid: str | None = None) -> str:
    url = f"/education/classes/{cls['id']}/assignments/{asg['id']}/submissions/{sub['id']}/outcomes"
    return f"{url}/{oid}" if oid else url


def patch_targets(tenant: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(outcome url, outcome id) of every points outcome in a graded assignment."""
    for cls, asg, sub in iter_submissions(tenant):
        out = points_outcome(sub)
        if asg.get("grading") is not None and out is not None:
            yield outcome_url(cls, asg, sub, out["id"]), out["id"]


def create_targets(tenant: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(outcomes collection url, submission id) of graded submissions that have no points outcome yet."""
    for cls, asg, sub in iter_submissions(tenant):
        if asg.get("grading") is not None and points_outcome(sub) is None:
            yield outcome_url(cls, asg, sub), sub["id"]


def points_body(points: float) -> dict[str, Any]:
    return {
        "@odata.type": POINTS_OUTCOME,
        "points": {"@odata.type": "#microsoft.graph.educationAssignmentPointsGrade", "points": points},
    }


def points_in_state(state: dict[str, Any]) -> dict[str, Any]:
    """outcome id → points, for every points outcome in an emulator state snapshot."""
    found: dict[str, Any] = {}
    for _cls, _asg, sub in iter_submissions(state):
        for o in sub.get("outcomes", []):
            if o.get("type") == "points":
                found[o["id"]] = o.get("points")
    return found


def points_outcome_count(state: dict[str, Any], submission_id: str) -> int:
    for _cls, _asg, sub in iter_submissions(state):
        if sub["id"] == submission_id:
            return sum(1 for o in sub.get("outcomes", []) if o.get("type") == "points")
    raise KeyError(submission_id)
