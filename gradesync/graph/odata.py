"""Tolerant readers for Graph's education JSON (pure; no I/O).

Graph's shapes drift (beta pages showed ``points`` as a bare number) and new ``@odata.type``
values appear (``unknownFutureValue``): readers accept the known variants and return ``None``
for anything else rather than crash.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from gradesync.models import TeacherWork

__all__ = [
    "FEEDBACK_OUTCOME",
    "FEEDBACK_RESOURCE_OUTCOME",
    "POINTS_GRADE",
    "POINTS_OUTCOME",
    "PUBLISHED_RUBRIC_LISTS",
    "RUBRIC_LISTS",
    "RUBRIC_OUTCOME",
    "feedback_text",
    "grade_points",
    "is_points_kind",
    "is_points_outcome",
    "odata_type",
    "outcome_work",
    "points_of",
    "points_outcomes",
    "published_points_of",
    "teacher_work",
]

POINTS_OUTCOME = "#microsoft.graph.educationPointsOutcome"
FEEDBACK_OUTCOME = "#microsoft.graph.educationFeedbackOutcome"
RUBRIC_OUTCOME = "#microsoft.graph.educationRubricOutcome"
FEEDBACK_RESOURCE_OUTCOME = "#microsoft.graph.educationFeedbackResourceOutcome"
POINTS_GRADE = "#microsoft.graph.educationAssignmentPointsGrade"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def grade_points(value: Any) -> float | None:
    """``{"points": x, ...}`` or a bare number ``x`` → ``float(x)``; ``null``/other shapes → ``None``."""
    if isinstance(value, dict):
        return _number(value.get("points"))
    return _number(value)


def points_of(outcome: Any) -> float | None:
    """The teacher's current points of a points outcome, or ``None`` if not graded or not readable.

    Accepts ``"points": {"points": 85.0, ...}`` (v1.0) and ``"points": 85`` (older beta shape);
    ``null``, a missing key, booleans, strings, NaN/infinity and non-dict outcomes give ``None``.
    """
    if not isinstance(outcome, dict):
        return None
    return grade_points(outcome.get("points"))


def published_points_of(outcome: Any) -> float | None:
    """What the student last saw (``publishedPoints``), read as tolerantly as :func:`points_of`."""
    if not isinstance(outcome, dict):
        return None
    return grade_points(outcome.get("publishedPoints"))


_FEEDBACK_KIND = FEEDBACK_OUTCOME.lstrip("#").lower()
_RUBRIC_KIND = RUBRIC_OUTCOME.lstrip("#").lower()
_FEEDBACK_FILES_KIND = FEEDBACK_RESOURCE_OUTCOME.lstrip("#").lower()
RUBRIC_LISTS = ("rubricQualitySelectedLevels", "rubricQualityFeedback")
PUBLISHED_RUBRIC_LISTS = ("publishedRubricQualitySelectedLevels", "publishedRubricQualityFeedback")


def feedback_text(feedback: Any) -> str:
    """An ``educationFeedback``'s text (``{"text": {"content": ...}}``), stripped; "" for none."""
    if not isinstance(feedback, dict):
        return ""
    text = feedback.get("text")
    content = text.get("content") if isinstance(text, dict) else text
    return content.strip() if isinstance(content, str) else ""


def outcome_work(kind: Any, text: Callable[[str], str], field: Callable[[str], Any]) -> TeacherWork:
    """The teacher work one outcome holds: ``kind`` its ``@odata.type``, ``text(name)`` the text of
    its ``feedback``/``publishedFeedback``, ``field(name)`` its other values (a dict's, or a typed
    outcome's decoded fields). Unknown kinds hold none."""
    if not isinstance(kind, str):
        return TeacherWork.NONE
    k = kind.lstrip("#").lower()
    if k == _FEEDBACK_KIND:
        draft, shown = text("feedback"), text("publishedFeedback")
        work = TeacherWork.FEEDBACK_RETURNED if shown else TeacherWork.NONE
        return (work | TeacherWork.FEEDBACK_DRAFT) if draft and draft != shown else work
    if k == _RUBRIC_KIND:
        current = [field(n) or [] for n in RUBRIC_LISTS]
        published = [field(n) or [] for n in PUBLISHED_RUBRIC_LISTS]
        if not any(current) and not any(published):
            return TeacherWork.NONE
        return TeacherWork.RUBRIC | (TeacherWork.RUBRIC_DRAFT if current != published else TeacherWork.NONE)
    if k == _FEEDBACK_FILES_KIND:
        return TeacherWork.FEEDBACK_FILES
    return TeacherWork.NONE


def teacher_work(outcomes: Iterable[Any]) -> TeacherWork:
    """The teacher work on a submission, from its ``outcomes`` (dicts, as ``$expand=outcomes`` lists
    them; anything else is skipped)."""
    work = TeacherWork.NONE
    for o in outcomes:
        if isinstance(o, dict):
            work |= outcome_work(o.get("@odata.type"), _texts_of(o), o.get)
    return work


def _texts_of(outcome: dict[str, Any]) -> Callable[[str], str]:
    def text(name: str) -> str:
        return feedback_text(outcome.get(name))

    return text


def odata_type(obj: Any) -> str | None:
    """``@odata.type`` of a JSON object, or ``None``."""
    if isinstance(obj, dict):
        value = obj.get("@odata.type")
        return value if isinstance(value, str) else None
    return None


_POINTS_KIND = POINTS_OUTCOME.lstrip("#").lower()


def is_points_kind(kind: Any) -> bool:
    """True for an ``@odata.type`` naming an ``educationPointsOutcome`` (any case, ``#`` or not)."""
    return kind == POINTS_OUTCOME or (isinstance(kind, str) and kind.lstrip("#").lower() == _POINTS_KIND)


def is_points_outcome(outcome: Any) -> bool:
    """True for an ``educationPointsOutcome``; unknown or missing types are simply not points outcomes."""
    return is_points_kind(odata_type(outcome))


def points_outcomes(submission: Any) -> list[dict[str, Any]]:
    """The points outcomes of a submission listed with ``$expand=outcomes``, skipping unknown kinds."""
    if not isinstance(submission, dict):
        return []
    outcomes = submission.get("outcomes")
    if not isinstance(outcomes, list):
        return []
    return [o for o in outcomes if isinstance(o, dict) and is_points_outcome(o)]
