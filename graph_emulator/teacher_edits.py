"""Teacher edits during a run: grades a teacher changes in Teams while a client is writing.

``POST /_emulator/teacher-edits`` with ``{"edits": [{"class_id", "assignment_id", "submission_id",
"points"}], "after_writes": N}`` schedules the edits just before the emulator handles its N-th grade
write (PATCH or POST of an outcome, or ``excuse``; single requests and ``$batch`` sub-requests alike,
counted from this call, only writes that reach their handler — not ones throttled or faulted first);
``after_writes`` 0 or absent applies them at once. With ``"on_read": true`` instead, each edit waits
for a read: it lands right after the emulator has served a read that shows its submission (a page of
the assignment's submissions listing, or a GET of the submission) — so that read does not show it,
and any later read does: "a teacher grades just after the client looked".

An edit grades the submission's points outcome (creating one if it has none) as the class's
teacher: ``gradedBy``/``lastModifiedBy`` the teacher, a new ``lastModifiedDateTime``; ``points:
null`` clears the grade. ``GET /_emulator/teacher-edits`` lists the pending and applied edits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from graph_emulator import state as st
from graph_emulator.common import Json, new_id, now_iso
from graph_emulator.handlers import set_points

_KEYS = ("class_id", "assignment_id", "submission_id")


class TeacherEdits:
    """``store`` maps the points a teacher gives to the value Graph keeps (Single by default)."""

    def __init__(self, store: Callable[[float | None], float | None] = lambda p: p) -> None:
        self.store = store
        self.writes_seen = 0
        self.reads_seen = 0
        self.pending: list[Json] = []
        self.on_read: list[Json] = []  # edits that land right after a read shows their submission
        self.applied: list[Json] = []

    def schedule(self, payload: Any, tenant: st.Tenant) -> Json:
        """Check and schedule a ``POST /_emulator/teacher-edits`` payload; ValueError when bad."""
        if not isinstance(payload, dict) or not isinstance(payload.get("edits"), list):
            raise ValueError("teacher-edits needs {'edits': [...], 'after_writes': N}")
        after = payload.get("after_writes") or 0
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValueError("after_writes must be a whole number, 0 or more")
        on_read = payload.get("on_read", False)
        if not isinstance(on_read, bool) or (on_read and after):
            raise ValueError("on_read is true or false, and cannot be combined with after_writes")
        edits = [_checked(e, tenant) for e in payload["edits"]]
        if on_read:
            self.on_read.extend(edits)
            return {"scheduled": len(edits)}
        for e in edits:
            e["due_at_write"] = self.writes_seen + after
        if after == 0:
            for e in edits:
                self._apply(e, tenant)
        else:
            self.pending.extend(edits)
        return {"scheduled": len(edits)}

    def before_write(self, tenant: st.Tenant) -> None:
        """Called just before the emulator handles a grade write: apply the edits now due."""
        self.writes_seen += 1
        due = [e for e in self.pending if e["due_at_write"] <= self.writes_seen]
        if due:
            self.pending = [e for e in self.pending if e["due_at_write"] > self.writes_seen]
            for e in due:
                self._apply(e, tenant)

    def after_read(self, tenant: st.Tenant, served: set[str]) -> None:
        """Called right after the emulator served a read showing the submissions ``served``: the
        edits waiting for a read of one of them land now."""
        self.reads_seen += 1
        due = [e for e in self.on_read if e["submission_id"] in served]
        if due:
            self.on_read = [e for e in self.on_read if e["submission_id"] not in served]
            for e in due:
                self._apply(e, tenant)

    def listing(self) -> Json:
        return {
            "writes_seen": self.writes_seen,
            "pending": list(self.pending) + list(self.on_read),
            "applied": list(self.applied),
        }

    def _apply(self, edit: Json, tenant: st.Tenant) -> None:
        cls = tenant.classes[edit["class_id"]]
        sub = tenant.submission(edit["class_id"], edit["assignment_id"], edit["submission_id"])
        assert sub is not None  # checked when scheduled; tenants lose no submissions
        teacher = next(iter(cls.get("teachers", [])), None) or "teacher"
        now = now_iso()
        outcome = st.points_outcome(sub)
        if outcome is None:
            outcome = {"id": new_id(), "type": "points", "publishedPoints": None}
            sub.setdefault("outcomes", []).append(outcome)
        set_points(outcome, self.store(edit["points"]), teacher, now)
        outcome["lastModifiedBy"] = teacher
        outcome["lastModifiedDateTime"] = now
        when = {"applied_at_write": self.writes_seen, "applied_at_read": self.reads_seen}
        self.applied.append({**edit, **when, "applied_at": now})


def _checked(edit: Any, tenant: st.Tenant) -> Json:
    if not isinstance(edit, dict) or any(not isinstance(edit.get(k), str) for k in _KEYS):
        raise ValueError(f"every edit needs string {', '.join(_KEYS)} and 'points'")
    if "points" not in edit:
        raise ValueError("every edit needs 'points' (a number, or null to clear the grade)")
    points = edit["points"]
    if points is not None and (
        isinstance(points, bool)
        or not isinstance(points, int | float)
        or not math.isfinite(points)
        or points < 0
    ):
        raise ValueError(f"points must be a number 0 or more, or null, not {points!r}")
    asg = tenant.assignment(edit["class_id"], edit["assignment_id"])
    if asg is None or asg.get("grading") is None:
        raise ValueError(
            f"no points-graded assignment {edit['assignment_id']!r} in class {edit['class_id']!r}"
        )
    if tenant.submission(edit["class_id"], edit["assignment_id"], edit["submission_id"]) is None:
        raise ValueError(f"no submission {edit['submission_id']!r} in assignment {edit['assignment_id']!r}")
    return {**{k: edit[k] for k in _KEYS}, "points": None if points is None else float(points)}
