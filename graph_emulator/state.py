"""The emulator's tenant: a plain JSON document, indexed for lookups and rendered as Graph JSON.

Tenant format (``sample_data/tenant.json``; ``generate_tenant`` makes the same shape)::

    {
      "format": "gradesync-emulator-tenant/1",
      "users": [                                  # educationUser, stored as Graph renders it
        {"id": "...", "displayName": "Ada Ito", "givenName": "Ada", "surname": "Ito",
         "userPrincipalName": "ada.ito@contoso.edu", "mail": "ada.ito@contoso.edu",
         "primaryRole": "student", "externalSource": "sis",
         "student": {"externalId": "000123", "studentNumber": "S-000123", "grade": "9",
                     "graduationYear": "2028", "birthDate": null, "gender": null},
         "teacher": null}
      ],
      "classes": [
        {"id": "...", "displayName": "Algebra I - P1", "mailNickname": "algebra1-p1",
         "externalId": "SEC-1001", "externalName": "Algebra I", "classCode": "ALG1-P1",
         "members": ["<user id>", ...],           # students and teachers (GET .../members)
         "teachers": ["<user id>", ...],
         "assignments": [
           {"id": "...", "displayName": "Unit 1 Quiz", "status": "assigned",  # or draft, scheduled,
                                                                               # published, inactive
            "grading": {"maxPoints": 20} | null,     # null = ungraded (credit) assignment
            "dueDateTime": "...", "createdDateTime": "...", "assignTo": "students" | "groups",
            "submissions": [
              {"id": "...", "status": "working",     # working|submitted|returned|reassigned|excused
               "recipient": {"userId": "..."}        # or {"groupId": "...", "userIds": [...]}
               "submittedDateTime": null, "returnedDateTime": null, "excusedDateTime": null,
               "outcomes": [
                 {"id": "...", "type": "points", "points": 17.5 | null, "publishedPoints": 15.0 | null,
                  "gradedBy": "<user id>" | null, "gradedDateTime": "..." | null,
                  "lastModifiedBy": "<user id>" | null, "lastModifiedDateTime": "..."},
                 {"id": "...", "type": "feedback", "feedback": "Well done" | null,
                  "publishedFeedback": null, "lastModifiedBy": "...", "lastModifiedDateTime": "..."},
                 {"id": "...", "type": "rubric",           # optional: an assignment with a rubric
                  "rubricQualitySelectedLevels": [{"qualityId": "...", "columnId": "..."}],
                  "rubricQualityFeedback": [{"qualityId": "...", "feedback": {"content": "...",
                                             "contentType": "text"}}],
                  "publishedRubricQualitySelectedLevels": [], "publishedRubricQualityFeedback": [],
                  "lastModifiedBy": "...", "lastModifiedDateTime": "..."}
               ]}
            ]}
         ]}
      ]
    }

A generated tenant may carry ``"generated": {"seed": ..., "teacher": ..., "index": ...}`` instead of
``"submissions"`` on an assignment: a recipe the emulator expands (always identically) the first time
that assignment's submissions are touched (see :mod:`graph_emulator.generate`).

Missing optional keys take defaults (``outcomes`` → ``[]``, dates → ``null``). The emulator mutates
this document in place; ``EmulatorServer.state()`` returns a deep copy of it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from graph_emulator.common import (
    FEEDBACK_OUTCOME,
    FORMAT,
    GROUP_RECIPIENT,
    INDIVIDUAL_RECIPIENT,
    POINTS_GRADE,
    POINTS_GRADE_TYPE,
    POINTS_OUTCOME,
    RUBRIC_FIELDS,
    RUBRIC_OUTCOME,
    Json,
    new_id,
    now_iso,
)
from graph_emulator.generate import class_students, materialize_assignment

__all__ = [  # the names other modules (and tests) import from here, including the re-exported ones
    "FEEDBACK_OUTCOME",
    "FORMAT",
    "POINTS_OUTCOME",
    "Tenant",
    "find_submission",
    "iter_submissions",
    "load_tenant",
    "new_id",
    "now_iso",
    "points_outcome",
    "render_assignment",
    "render_class",
    "render_outcome",
    "render_submission",
    "render_user",
    "save_tenant",
    "validate_tenant",
]


def load_tenant(path: str | Path) -> Json:
    """Read a tenant JSON file (format in this module's docstring)."""
    with Path(path).open(encoding="utf-8") as fh:
        data = json.load(fh)
    validate_tenant(data)
    return data


def save_tenant(tenant: Json, path: str | Path) -> None:
    Path(path).write_text(json.dumps(tenant, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def validate_tenant(data: Any) -> None:
    """Fail early, with a readable message, on a document that is not a tenant."""
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        raise ValueError("a tenant is a JSON object with a 'classes' list (and a 'users' list)")
    if not isinstance(data.get("users", []), list):
        raise ValueError("tenant 'users' must be a list")


def submissions_in(cls: Json, asg: Json) -> list[Json]:
    """The submissions of an assignment dict, expanding a generator recipe in place if needed."""
    if "generated" in asg:
        return materialize_assignment(asg, class_students(cls))
    return asg.setdefault("submissions", [])


def iter_submissions(tenant: Json) -> Iterator[tuple[Json, Json, Json]]:
    """Yield ``(class, assignment, submission)`` for every submission in a tenant dict."""
    for cls in tenant["classes"]:
        for asg in cls.get("assignments", []):
            for sub in submissions_in(cls, asg):
                yield cls, asg, sub


def points_outcome(submission: Json) -> Json | None:
    """The points outcome of a tenant submission dict, or None."""
    return next((o for o in submission.get("outcomes", []) if o.get("type") == "points"), None)


def find_submission(tenant: Json, class_id: str, assignment_id: str, user_id: str) -> Json | None:
    """The submission of ``user_id`` (individual recipient) in one assignment, or None."""
    for cls in tenant["classes"]:
        if cls["id"] != class_id:
            continue
        for asg in cls.get("assignments", []):
            if asg["id"] != assignment_id:
                continue
            for sub in submissions_in(cls, asg):
                if sub.get("recipient", {}).get("userId") == user_id:
                    return sub
    return None


class Tenant:
    """Indexes over a tenant document. Ids are globally unique, parents are checked on lookup."""

    def __init__(self, data: Json) -> None:
        validate_tenant(data)
        self.data = data
        data.setdefault("users", [])
        self.users: dict[str, Json] = {u["id"]: u for u in data["users"]}
        self.classes: dict[str, Json] = {c["id"]: c for c in data["classes"]}
        self._assignments: dict[str, dict[str, Json]] = {}
        self._parent: dict[str, str] = {}  # assignment id → class id
        self._submissions: dict[str, dict[str, Json]] = {}

    def snapshot(self) -> Json:
        return json.loads(json.dumps(self.data))

    # --- lookups (None when unknown or under another parent) --------------------------------
    def assignments_of(self, class_id: str) -> dict[str, Json]:
        idx = self._assignments.get(class_id)
        if idx is None:
            idx = {a["id"]: a for a in self.classes[class_id].setdefault("assignments", [])}
            self._assignments[class_id] = idx
            self._parent.update(dict.fromkeys(idx, class_id))
        return idx

    def submissions_of(self, assignment: Json) -> dict[str, Json]:
        idx = self._submissions.get(assignment["id"])
        if idx is None:
            cls = self.classes[self._parent[assignment["id"]]]
            idx = {s["id"]: s for s in submissions_in(cls, assignment)}
            self._submissions[assignment["id"]] = idx
        return idx

    def assignment(self, class_id: str, assignment_id: str) -> Json | None:
        if class_id not in self.classes:
            return None
        return self.assignments_of(class_id).get(assignment_id)

    def submission(self, class_id: str, assignment_id: str, submission_id: str) -> Json | None:
        asg = self.assignment(class_id, assignment_id)
        return None if asg is None else self.submissions_of(asg).get(submission_id)


# --- rendering as Graph JSON --------------------------------------------------------------------
def identity(user_id: str | None, tenant: Tenant | None = None) -> Json | None:
    if not user_id:
        return None
    if user_id.startswith("app:"):  # an application wrote it (app-only token)
        return {"application": {"id": user_id[4:], "displayName": "gradesync"}, "device": None, "user": None}
    name = None
    if tenant is not None and user_id in tenant.users:
        name = tenant.users[user_id].get("displayName")
    return {"application": None, "device": None, "user": {"id": user_id, "displayName": name}}


def render_class(c: Json) -> Json:
    return {
        "id": c["id"],
        "displayName": c.get("displayName"),
        "mailNickname": c.get("mailNickname"),
        "description": c.get("description"),
        "classCode": c.get("classCode"),
        "externalId": c.get("externalId"),
        "externalName": c.get("externalName"),
        "externalSource": c.get("externalSource", "sis"),
        "externalSourceDetail": c.get("externalSourceDetail"),
        "grade": c.get("grade"),
        "createdBy": None,
        "term": c.get("term"),
    }


def render_user(u: Json) -> Json:
    out = {
        "id": u["id"],
        "displayName": u.get("displayName"),
        "givenName": u.get("givenName"),
        "surname": u.get("surname"),
        "userPrincipalName": u.get("userPrincipalName"),
        "mail": u.get("mail"),
        "accountEnabled": u.get("accountEnabled", True),
        "externalSource": u.get("externalSource", "sis"),
        "externalSourceDetail": u.get("externalSourceDetail"),
        "primaryRole": u.get("primaryRole", "student"),
        "student": u.get("student"),
        "teacher": u.get("teacher"),
    }
    return copy.deepcopy(out)


def render_assignment(a: Json, class_id: str) -> Json:
    grading = a.get("grading")
    if grading is not None:
        grading = {"@odata.type": POINTS_GRADE_TYPE, "maxPoints": grading.get("maxPoints")}
    assign_to = "#microsoft.graph.educationAssignmentClassRecipient"
    if a.get("assignTo") == "groups":
        assign_to = "#microsoft.graph.educationAssignmentGroupRecipient"
    return {
        "id": a["id"],
        "classId": class_id,
        "displayName": a.get("displayName"),
        "status": a.get("status", "assigned"),
        "grading": grading,
        "dueDateTime": a.get("dueDateTime"),
        "assignDateTime": a.get("assignDateTime"),
        "assignedDateTime": a.get("assignedDateTime"),
        "createdDateTime": a.get("createdDateTime"),
        "lastModifiedDateTime": a.get("lastModifiedDateTime", a.get("createdDateTime")),
        "allowLateSubmissions": a.get("allowLateSubmissions", True),
        "allowStudentsToAddResourcesToSubmission": True,
        "assignTo": {"@odata.type": assign_to},
        "instructions": None,
        "webUrl": None,
    }


def render_recipient(r: Json) -> Json:
    if "groupId" in r:
        return {"@odata.type": GROUP_RECIPIENT, "groupId": r["groupId"]}
    return {"@odata.type": INDIVIDUAL_RECIPIENT, "userId": r.get("userId")}


def render_submission(s: Json) -> Json:
    return {
        "id": s["id"],
        "status": s.get("status", "working"),
        "recipient": render_recipient(s.get("recipient", {})),
        "submittedDateTime": s.get("submittedDateTime"),
        "returnedDateTime": s.get("returnedDateTime"),
        "excusedDateTime": s.get("excusedDateTime"),
        "reassignedDateTime": s.get("reassignedDateTime"),
        "unsubmittedDateTime": None,
        "resourcesFolderUrl": None,
    }


def _grade(points: float | None, by: str | None, when: str | None, tenant: Tenant | None) -> Json | None:
    if points is None:
        return None
    return {
        "@odata.type": POINTS_GRADE,
        "points": float(points),
        "gradedBy": identity(by, tenant),
        "gradedDateTime": when,
    }


def _same(points: float | None) -> float | None:
    return points


def render_outcome(
    o: Json, tenant: Tenant | None = None, points: Callable[[float | None], float | None] = _same
) -> Json:
    """One stored outcome as Graph renders it; ``points`` maps a stored value to the one served
    (the emulator serves points as Single)."""
    base = {
        "id": o["id"],
        "lastModifiedBy": identity(o.get("lastModifiedBy"), tenant),
        "lastModifiedDateTime": o.get("lastModifiedDateTime"),
    }
    if o.get("type") == "points":
        return {
            "@odata.type": POINTS_OUTCOME,
            **base,
            "points": _grade(points(o.get("points")), o.get("gradedBy"), o.get("gradedDateTime"), tenant),
            "publishedPoints": _grade(
                points(o.get("publishedPoints")),
                o.get("publishedBy", o.get("gradedBy")),
                o.get("publishedDateTime"),
                tenant,
            ),
        }
    if o.get("type") == "rubric":
        return {
            "@odata.type": RUBRIC_OUTCOME,
            **base,
            **{k: copy.deepcopy(o.get(k) or []) for k in RUBRIC_FIELDS},
        }

    def fb(text: str | None) -> Json | None:
        if text is None:
            return None
        return {
            "feedbackDateTime": o.get("lastModifiedDateTime"),
            "feedbackBy": identity(o.get("lastModifiedBy"), tenant),
            "text": {"content": text, "contentType": "text"},
        }

    return {
        "@odata.type": FEEDBACK_OUTCOME,
        **base,
        "feedback": fb(o.get("feedback")),
        "publishedFeedback": fb(o.get("publishedFeedback")),
    }
