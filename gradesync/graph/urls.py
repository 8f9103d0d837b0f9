"""Every Graph URL gradesync builds, in one place: paths below the version root, ids URL-quoted.

Listings ask only for the fields gradesync reads (``$select``) and for pages as large as Graph will
serve (``$top``, :data:`TOP`): every page costs one request of the quota. Paths are relative to the
version root (``/education/...``), as ``GraphClient`` and ``$batch`` sub-requests take them.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

__all__ = [
    "ASSIGNMENT_SELECT",
    "CATALOG_SELECT",
    "CLASS_SELECT",
    "MEMBER_SELECT",
    "TOP",
    "assignments_url",
    "class_lookup_url",
    "classes_url",
    "limit_kind",
    "members_url",
    "outcome_url",
    "outcomes_url",
    "submission_path",
    "submissions_url",
    "teachers_url",
]

CLASS_SELECT = "id,displayName,externalId,mailNickname"
# what people call a class (the class chooser): its names, SIS id, code and term
CATALOG_SELECT = "id,displayName,externalId,externalName,classCode,mailNickname,term"
MEMBER_SELECT = "id,displayName,userPrincipalName,mail,externalId,primaryRole,student"
ASSIGNMENT_SELECT = "id,classId,displayName,status,grading"
# $top asked of every listing. Graph documents no maximum for the education listings; 999 is the
# largest page Graph documents anywhere ("Paging Microsoft Graph data in your app": directory
# listings such as /users accept 1 to 999). $top is a request, not a promise: Graph may serve fewer
# (the client follows @odata.nextLink whatever the page size), and a server that caps lower just
# caps. The emulator honours $top only to make pages smaller, so its small pages stay small.
TOP = 999


def _q(value: str) -> str:
    return quote(value, safe="")


def _odata_literal(value: str) -> str:
    """A string literal for ``$filter``: single quotes doubled, then URL-encoded."""
    return quote("'" + value.replace("'", "''") + "'", safe="")


def class_lookup_url(key: str, by: str) -> str:
    if by == "id":
        return f"/education/classes/{quote(key, safe='')}?$select={CLASS_SELECT}"
    return f"/education/classes?$filter={by}%20eq%20{_odata_literal(key)}&$select={CLASS_SELECT}&$top={TOP}"


def classes_url() -> str:
    """Every class of the tenant (the class chooser's list): one listing, pages as large as served."""
    return f"/education/classes?$select={CATALOG_SELECT}&$top={TOP}"


def teachers_url(class_id: str) -> str:
    return f"/education/classes/{quote(class_id, safe='')}/teachers?$select=id,displayName&$top={TOP}"


def members_url(class_id: str) -> str:
    return f"/education/classes/{quote(class_id, safe='')}/members?$select={MEMBER_SELECT}&$top={TOP}"


def assignments_url(class_id: str) -> str:
    return f"/education/classes/{quote(class_id, safe='')}/assignments?$select={ASSIGNMENT_SELECT}&$top={TOP}"


def submissions_url(class_id: str, assignment_id: str) -> str:
    return (
        f"/education/classes/{quote(class_id, safe='')}/assignments/{quote(assignment_id, safe='')}"
        f"/submissions?$expand=outcomes&$top={TOP}"
    )


def submission_path(class_id: str, assignment_id: str, submission_id: str) -> str:
    """One submission: the base of its outcomes, ``/excuse`` and ``/return``."""
    return (
        f"/education/classes/{_q(class_id)}/assignments/{_q(assignment_id)}/submissions/{_q(submission_id)}"
    )


def outcomes_url(class_id: str, assignment_id: str, submission_id: str) -> str:
    return submission_path(class_id, assignment_id, submission_id) + "/outcomes"


def outcome_url(class_id: str, assignment_id: str, submission_id: str, outcome_id: str) -> str:
    return outcomes_url(class_id, assignment_id, submission_id) + f"/{_q(outcome_id)}"


# Paths whose requests count against Graph's education *rostering* limit ("Microsoft Graph
# service-specific throttling limits", Education service limits: educationClass, educationUser ...
# 35,000 requests per 10 s per app per tenant): classes, their members, users. Everything below a
# class's assignments (assignments, submissions, outcomes) is the assignment service's.
_ROSTERING = re.compile(r"/education/(users(/[^/]+)?|classes(/[^/]+(/members)?)?)/?$")
ROSTERING, ASSIGNMENTS = "rostering", "assignments"


def limit_kind(url: str) -> str:
    """Which of Graph's limits a request counts against: ``"rostering"`` or ``"assignments"``.
    ``url``: relative to the version root, or absolute."""
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    return ROSTERING if _ROSTERING.search(path) else ASSIGNMENTS
