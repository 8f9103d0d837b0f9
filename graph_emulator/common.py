"""The emulator's bottom floor: the tenant format tag, Graph type names, ids and timestamps.

Everything else in :mod:`graph_emulator` may import this module; it imports nothing of the package
(so ``state`` and ``generate`` share it without importing each other back).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]

FORMAT = "gradesync-emulator-tenant/1"

POINTS_OUTCOME = "#microsoft.graph.educationPointsOutcome"
FEEDBACK_OUTCOME = "#microsoft.graph.educationFeedbackOutcome"
RUBRIC_OUTCOME = "#microsoft.graph.educationRubricOutcome"
# an educationRubricOutcome's lists: the teacher's current selections and quality feedback, and what
# was last returned to the student ("List outcomes")
RUBRIC_FIELDS = (
    "rubricQualitySelectedLevels",
    "rubricQualityFeedback",
    "publishedRubricQualitySelectedLevels",
    "publishedRubricQualityFeedback",
)
POINTS_GRADE = "#microsoft.graph.educationAssignmentPointsGrade"
POINTS_GRADE_TYPE = "#microsoft.graph.educationAssignmentPointsGradeType"
INDIVIDUAL_RECIPIENT = "#microsoft.graph.educationSubmissionIndividualRecipient"
GROUP_RECIPIENT = "#microsoft.graph.educationSubmissionGroupRecipient"

_DERIVED = uuid.UUID("5b0f2c1e-9d3a-4e57-8a61-0c4d2e7f9b13")


def now_iso() -> str:
    """The wall-clock time as Graph writes it: ISO-8601 UTC with milliseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_id() -> str:
    return str(uuid.uuid4())


def derived_id(*parts: str) -> str:
    """A stable GUID-looking id derived from ``parts`` (no random draw: generated tenants keep
    every other id when an optional item is added)."""
    return str(uuid.uuid5(_DERIVED, "/".join(parts)))
