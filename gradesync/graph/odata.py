"""Tolerant readers for Graph's education JSON (pure; no I/O).

Graph's shapes drift (beta pages showed ``points`` as a bare number) and new ``@odata.type``
values appear (``unknownFutureValue``): readers accept the known variants and return ``None``
for anything else rather than crash.
"""

from __future__ import annotations

import math
from typing import Any

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
