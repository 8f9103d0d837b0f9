"""Stage 2, resolve: read from Graph what the input touches, as a ``Snapshot``.

Reads are quota-frugal (each sub-request counts against Graph's ~10,000/hour):

1. one class lookup per distinct class key (``$filter=externalId eq '…'``, several per ``$batch``);
2. one members listing and one assignments listing per class found (all pages, batched);
3. one ``submissions?$expand=outcomes`` listing (all pages) per *graded* assignment the input
   touches — never a GET per submission.

Matching input keys to Graph ids is the pure ``gradesync.plan.match``; this module only decides what to
read and turns Graph JSON into the Snapshot frames of ``gradesync.models``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from gradesync.config import Settings
from gradesync.graph import GraphClient, points_of
from gradesync.graph.urls import assignments_url, class_lookup_url, members_url, submissions_url
from gradesync.models import SNAPSHOT_COLUMNS, Snapshot, empty_frame
from gradesync.plan.match import match_assignments

POINTS_OUTCOME = "#microsoft.graph.educationPointsOutcome"
POINTS_GRADE_TYPE = "#microsoft.graph.educationAssignmentPointsGradeType"

Progress = Callable[[str, int, int], None]  # (step, done, total)


def _frame(name: str, records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    columns = SNAPSHOT_COLUMNS[name]
    frame = pd.DataFrame.from_records(list(records), columns=list(columns))
    return frame.astype(columns) if len(frame) else empty_frame(columns)


def _class_records(key: str, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"class_key": key, "class_id": c["id"], "class_name": c.get("displayName")} for c in found]


def _member_record(class_id: str, user: dict[str, Any]) -> dict[str, Any]:
    student = user.get("student") or {}
    return {
        "class_id": class_id,
        "user_id": user.get("id"),
        "display_name": user.get("displayName"),
        "upn": user.get("userPrincipalName"),
        "mail": user.get("mail"),
        "sis_id": student.get("externalId"),
        "external_id": user.get("externalId"),
        "student_number": student.get("studentNumber"),
        "primary_role": user.get("primaryRole"),
    }


def _assignment_record(class_id: str, a: dict[str, Any]) -> dict[str, Any]:
    grading = a.get("grading") or {}
    graded = grading.get("@odata.type") == POINTS_GRADE_TYPE or "maxPoints" in grading
    max_points = grading.get("maxPoints") if graded else None
    return {
        "class_id": class_id,
        "assignment_id": a.get("id"),
        "display_name": a.get("displayName"),
        "status": a.get("status"),
        "graded": bool(graded),
        "max_points": float(max_points) if max_points is not None else float("nan"),
    }


def _submission_record(class_id: str, assignment_id: str, s: dict[str, Any]) -> dict[str, Any]:
    recipient = s.get("recipient") or {}
    is_group = "Group" in str(recipient.get("@odata.type", "")) or "groupId" in recipient
    points_outcomes = [o for o in s.get("outcomes") or [] if o.get("@odata.type") == POINTS_OUTCOME]
    outcome = points_outcomes[0] if points_outcomes else None
    points = points_of(outcome) if outcome else None
    return {
        "class_id": class_id,
        "assignment_id": assignment_id,
        "submission_id": s.get("id"),
        "user_id": None if is_group else recipient.get("userId"),
        "recipient_type": "group" if is_group else "individual",
        "status": s.get("status"),
        "outcome_id": outcome.get("id") if outcome else None,
        "points": float("nan") if points is None else float(points),
        "last_modified": outcome.get("lastModifiedDateTime") if outcome else None,
    }


def _read_all(
    client: GraphClient, urls: list[str], *, missing_ok: bool = False
) -> dict[str, list[dict[str, Any]]]:
    """Every item of every listing, or an error: a plan built on a listing that failed would be wrong.

    With ``missing_ok`` a 404 (a class looked up by an id that does not exist) reads as empty.
    """
    if not urls:
        return {}
    pages = client.get_all_many(urls)
    for url, error in pages.errors.items():
        if missing_ok and getattr(error, "status", None) == 404:
            continue
        error.message = f"could not read {url.split('?')[0]}: {error.message}"
        raise error
    return pages


def _keys(series: pd.Series) -> list[str]:
    return sorted({k for k in series.astype(str) if k.strip()})


def resolve(
    desired: pd.DataFrame,
    settings: Settings,
    client: GraphClient,
    *,
    progress: Progress | None = None,
) -> Snapshot:
    """Read the classes, members, assignments and submissions the ``desired`` rows touch."""
    note = progress or (lambda step, done, total: None)
    by = settings.match.class_by

    # 1. classes: one lookup per distinct key, batched.
    class_keys = _keys(desired["class_key"])
    urls = {key: class_lookup_url(key, by) for key in class_keys}
    note("classes", 0, len(urls))
    found = _read_all(client, list(urls.values()), missing_ok=by == "id")
    class_records: list[dict[str, Any]] = []
    for key, url in urls.items():
        class_records += _class_records(key, found.get(url) or [])
    classes = _frame("classes", class_records)
    note("classes", len(urls), len(urls))

    # 2. members and assignments: one listing each per class found, batched together.
    class_ids = sorted(set(classes["class_id"]))
    listing = {cid: (members_url(cid), assignments_url(cid)) for cid in class_ids}
    note("rosters", 0, len(class_ids))
    pages = _read_all(client, [u for pair in listing.values() for u in pair])
    members = _frame(
        "members",
        (_member_record(cid, u) for cid, (m_url, _) in listing.items() for u in pages.get(m_url) or []),
    )
    assignments = _frame(
        "assignments",
        (_assignment_record(cid, a) for cid, (_, a_url) in listing.items() for a in pages.get(a_url) or []),
    )
    note("rosters", len(class_ids), len(class_ids))

    # 3. submissions with outcomes: one listing per graded assignment the input touches.
    touched = _touched_assignments(desired, classes, assignments, settings)
    sub_urls = {(cid, aid): submissions_url(cid, aid) for cid, aid in touched}
    note("submissions", 0, len(sub_urls))
    sub_pages = _read_all(client, list(sub_urls.values()))
    submissions = _frame(
        "submissions",
        (
            _submission_record(cid, aid, s)
            for (cid, aid), url in sub_urls.items()
            for s in sub_pages.get(url) or []
        ),
    )
    note("submissions", len(sub_urls), len(sub_urls))
    return Snapshot(classes=classes, members=members, assignments=assignments, submissions=submissions)


def _touched_assignments(
    desired: pd.DataFrame, classes: pd.DataFrame, assignments: pd.DataFrame, settings: Settings
) -> list[tuple[str, str]]:
    """(class_id, assignment_id) of every graded assignment some input row names, in a stable order."""
    if classes.empty or assignments.empty:
        return []
    unique_classes = classes.groupby("class_key")["class_id"].nunique()
    resolved = classes[classes["class_key"].isin(unique_classes[unique_classes == 1].index)]
    pairs = desired[["class_key", "assignment_key"]].drop_duplicates().astype(str)
    keys = pairs.merge(resolved[["class_key", "class_id"]], on="class_key")[["class_id", "assignment_key"]]
    matched = match_assignments(keys.drop_duplicates(), assignments, settings.match.assignment_by)
    matched = matched[matched["assignment_id"].notna()]
    graded = assignments[assignments["graded"]][["class_id", "assignment_id"]]
    touched = matched[["class_id", "assignment_id"]].drop_duplicates().merge(graded)
    return sorted(touched.itertuples(index=False, name=None))
