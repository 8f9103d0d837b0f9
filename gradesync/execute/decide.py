"""Pure decisions of the executor: what Graph holds now → what to do with one operation.

``decide(op, current, ...)`` is the heart of "no duplicates, no silent overwrites":

* before the first write (the stale-plan check) it confirms the target still holds the plan's
  before-value and ``lastModifiedDateTime``, or that a create's submission still has no points
  outcome; anything else is a ``conflict`` (``--on-conflict overwrite`` writes anyway, noted);
* after a write whose fate is unknown (timeout, dropped connection, 5xx after sending, a 409 on a
  create, a run killed while a batch was out) it is called again with ``maybe_sent=True`` on a fresh
  read: the desired value is there → done (our own write landed, its answer was lost); no points
  outcome → create again; an empty one → fill it. A create is never re-sent without such a read.

A grade that appeared or changed after gradesync read the submission is never gradesync's to
overwrite — on the first write or after a 409 alike — unless it is provably its own: the desired
value itself, or a value gradesync is known to have written there before (``ours``: the three-way
sync memory). Anything else is a ``conflict`` whose ``after`` is the teacher's value.

Points are compared as Teams stores them, as a Single (``gradesync.single``): 87.3 written comes back
87.30000305175781 and is the grade written, not a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gradesync.graph.odata import points_of, points_outcomes, published_points_of, teacher_work
from gradesync.models import DELETED_BY_EXCUSE, Action, Operation, TeacherWork
from gradesync.single import same as single_same

__all__ = [
    "POINTS_GRADE",
    "POINTS_OUTCOME",
    "SEND_KINDS",
    "Current",
    "Decision",
    "Kind",
    "decide",
    "decide_excuse",
    "decide_from_plan",
    "fmt",
    "grade_body",
    "same_points",
]

POINTS_OUTCOME = "#microsoft.graph.educationPointsOutcome"
POINTS_GRADE = "#microsoft.graph.educationAssignmentPointsGrade"


@dataclass(frozen=True, slots=True)
class Current:
    """One submission as Graph holds it now (from a ``$expand=outcomes`` listing or an outcomes GET)."""

    submission_id: str
    outcome_id: str | None  # the (first) points outcome, None when there is none
    points: float | None
    last_modified: str | None
    points_outcomes: int  # more than one would be a duplicate
    status: str | None = None  # the submission's status; None when read from its outcomes alone
    published_points: float | None = None  # what the student last saw (set by return)
    work: TeacherWork = TeacherWork.NONE  # feedback, rubric, feedback files on the submission

    @classmethod
    def from_outcomes(
        cls, submission_id: str, outcomes: list[dict[str, Any]], status: str | None = None
    ) -> Current:
        found = points_outcomes({"outcomes": outcomes})
        first = found[0] if found else None
        return cls(
            submission_id=submission_id,
            outcome_id=first.get("id") if first else None,
            points=points_of(first) if first else None,
            last_modified=first.get("lastModifiedDateTime") if first else None,
            points_outcomes=len(found),
            status=status,
            published_points=published_points_of(first) if first else None,
            work=teacher_work(outcomes),
        )

    @classmethod
    def from_submission(cls, submission: dict[str, Any]) -> Current:
        status = submission.get("status")
        return cls.from_outcomes(
            str(submission.get("id")),
            list(submission.get("outcomes") or []),
            str(status) if isinstance(status, str) else None,
        )

    @property
    def published(self) -> bool:
        """Returned, and the student sees the current grade."""
        return self.status == "returned" and same_points(self.published_points, self.points)


class Kind(StrEnum):
    PATCH = "patch"
    POST = "post"
    EXCUSE = "excuse"  # POST .../excuse
    DONE = "done"  # the target already holds the desired value
    CONFLICT = "conflict"
    FAILED = "failed"  # final: a terminal reason (the submission is gone, a 4xx)
    CARRY = "carry"  # not decided now (the read could not be made): carried over to the next run


SEND_KINDS = frozenset({Kind.PATCH, Kind.POST, Kind.EXCUSE})  # decisions that send a request


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    outcome_id: str | None = None  # the outcome to PATCH, or the one found holding the value
    status: str = ""  # for DONE: updated | created | unchanged
    after: float | None = None
    message: str = ""


def same_points(a: float | None, b: float | None) -> bool:
    """Whether Teams holds ``a`` and ``b`` as the same grade: points are a Single there, so 87.3
    written comes back as 87.30000305175781 and is the same grade (``gradesync.single``)."""
    return single_same(a, b)


def fmt(points: float | None) -> str:
    if points is None:
        return "no grade"
    return f"{points:g}"


def _done(op: Operation, cur: Current, maybe_sent: bool, note: str = "") -> Decision:
    if maybe_sent:
        status = "created" if op.action is Action.CREATE else "updated"
        return Decision(Kind.DONE, cur.outcome_id, status, cur.points, note)
    msg = note or "already at the desired value (changed in Teams since the plan)"
    return Decision(Kind.DONE, cur.outcome_id, "unchanged", cur.points, msg)


def _changed(op: Operation, cur: Current) -> str:
    was = f"{fmt(op.before_points)}" + (f" at {op.before_modified}" if op.before_modified else "")
    now = f"{fmt(cur.points)}" + (f" at {cur.last_modified}" if cur.last_modified else "")
    return f"changed in Teams since the plan: was {was}, now {now}"


def decide(
    op: Operation,
    cur: Current | None,
    *,
    overwrite: bool = False,
    maybe_sent: bool = False,
    delete_work: bool = False,
    ours: tuple[float, ...] = (),
) -> Decision:
    """What to do with ``op`` given what Graph holds now (``None``: the submission is gone).

    ``delete_work``: an excuse may delete the teacher's feedback and rubric (``[policy]
    excuse_feedback = "delete"``). ``ours``: grades gradesync is known to have written to this
    submission before (the memory's last write): one of them found where the plan saw none is
    gradesync's own, not a teacher's."""
    if cur is None:
        return Decision(Kind.FAILED, message="the submission no longer exists in Teams")
    if op.action is Action.EXCUSE:
        return decide_excuse(op, cur, maybe_sent=maybe_sent, delete_work=delete_work)
    dup = (
        f"; the submission has {cur.points_outcomes} points outcomes (expected one)"
        if cur.points_outcomes > 1
        else ""
    )
    if cur.outcome_id is not None and same_points(cur.points, op.desired_points):
        return _done(op, cur, maybe_sent, dup.lstrip("; "))

    if op.action is Action.CREATE:
        if cur.outcome_id is None:
            return Decision(Kind.POST)
        if cur.points is None:
            # an empty points outcome appeared (or the 409 told us of one): fill it, nothing is lost
            return Decision(Kind.PATCH, cur.outcome_id, message="filled an empty points outcome" + dup)
        if any(same_points(cur.points, v) for v in ours):
            return Decision(
                Kind.PATCH,
                cur.outcome_id,
                message=f"found {fmt(cur.points)}, a grade gradesync itself wrote earlier; "
                f"set to {fmt(op.desired_points)}" + dup,
            )
        if overwrite:
            return Decision(
                Kind.PATCH,
                cur.outcome_id,
                message=f"overwrote a grade given since the plan ({fmt(cur.points)})",
            )
        when = "since gradesync read it (its own create did not land)" if maybe_sent else "since the plan"
        return Decision(
            Kind.CONFLICT,
            cur.outcome_id,
            after=cur.points,
            message=f"graded in Teams {when}: now {fmt(cur.points)}, left as the teacher set it" + dup,
        )

    # UPDATE (a PATCH is idempotent, but re-sending one over a value someone else set since is not)
    if cur.outcome_id is None:
        if overwrite:
            return Decision(Kind.POST, message="the points outcome had disappeared; created a new one")
        return Decision(Kind.CONFLICT, message="the points outcome no longer exists in Teams")
    if cur.outcome_id != op.outcome_id and not overwrite:
        return Decision(
            Kind.CONFLICT,
            cur.outcome_id,
            after=cur.points,
            message="the points outcome was replaced in Teams",
        )
    unchanged = same_points(cur.points, op.before_points) and (
        op.before_modified is None or cur.last_modified == op.before_modified
    )
    if unchanged:
        return Decision(Kind.PATCH, cur.outcome_id, message=dup.lstrip("; "))
    if overwrite:
        return Decision(Kind.PATCH, cur.outcome_id, message="overwrote: " + _changed(op, cur))
    return Decision(Kind.CONFLICT, cur.outcome_id, after=cur.points, message=_changed(op, cur))


def decide_from_plan(op: Operation) -> Decision:
    """The decision when the plan's own read is the before-write check (read within the window):
    the target holds what the plan saw, so the plan's action is what to send."""
    if op.action is Action.EXCUSE:
        return Decision(Kind.EXCUSE, op.outcome_id, after=op.before_points)
    if op.action is Action.CREATE and op.outcome_id is None:
        return Decision(Kind.POST)
    return Decision(Kind.PATCH, op.outcome_id)  # an update, or a create filling an empty outcome


def decide_excuse(
    op: Operation, cur: Current, *, maybe_sent: bool = False, delete_work: bool = False
) -> Decision:
    """An excuse (a POST): done when the submission is excused, else excuse it. ``cur`` must carry
    the submission's status (a ``$expand=outcomes`` listing or a GET of the submission). Excusing
    deletes the teacher's feedback and rubric: work found on the submission now that the plan did
    not allow to delete (a teacher added it since) is a conflict, never deleted silently."""
    if cur.status == "excused":
        if maybe_sent:
            return Decision(Kind.DONE, cur.outcome_id, "excused", cur.points)
        return Decision(
            Kind.DONE, cur.outcome_id, "unchanged", cur.points, "already excused in Teams (since the plan)"
        )
    if cur.status is None:  # pragma: no cover - callers read the submission itself
        return Decision(Kind.FAILED, message="could not read the submission's status")
    lost = cur.work.describe(DELETED_BY_EXCUSE)
    if lost and not delete_work:
        return Decision(
            Kind.CONFLICT,
            cur.outcome_id,
            after=cur.points,
            message=f"not excused: excusing would now delete {lost} in Teams (added since the plan)",
        )
    message = f"excusing deleted {lost} in Teams" if lost else ""
    return Decision(Kind.EXCUSE, cur.outcome_id, after=cur.points, message=message)


def grade_body(points: float | None) -> dict[str, Any]:
    """The PATCH/POST body of a points outcome (never ``publishedPoints``); ``None`` clears."""
    grade = None if points is None else {"@odata.type": POINTS_GRADE, "points": float(points)}
    return {"@odata.type": POINTS_OUTCOME, "points": grade}
