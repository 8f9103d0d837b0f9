"""Stage 2, resolve: read from Graph what the input touches, as a ``Snapshot``.

Reads are quota-frugal (each sub-request counts against Graph's ~10,000/hour):

1. one class lookup per distinct class key (``$filter=externalId eq '…'``, several per ``$batch``);
2. one members listing and one assignments listing per class found (all pages, batched);
3. one ``submissions?$expand=outcomes`` listing (all pages) per *graded*, *assigned* assignment the
   input touches — never a GET per submission. Each submission keeps, besides its points, what
   teacher work it holds (feedback, rubric, feedback files: ``models.TeacherWork``), which excusing
   would delete.

Matching input keys to Graph ids is the pure ``gradesync.plan.match``; this module only decides what to
read and turns Graph JSON into the Snapshot frames of ``gradesync.models``, reading it through the
tolerant ``gradesync.graph.odata``.

Memory is bounded by the columns, not by Graph's JSON: the submissions listings are read
``SUBMISSION_LISTINGS_PER_READ`` at a time and each batch of pages becomes columns right away (its
dicts are dropped before the next is read). The submissions' ``class_id``, ``assignment_id``,
``user_id``, ``recipient_type`` and ``status`` are handed to the plan *coded* (pandas categoricals:
the same values, each distinct id stored once), so planning a million rows does not hash a million
id strings again. Each assignment whose submissions were read gets ``read_at`` (where the
executor's read-to-write window starts): the moment before its listing's first request, ISO 8601
UTC with milliseconds.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from msgspec import UNSET

from gradesync.config import Settings
from gradesync.errors import AuthError
from gradesync.graph import GraphClient, odata_type, points_of, points_outcomes
from gradesync.graph.client import PageDecoder
from gradesync.graph.decode import Submission, submissions_page
from gradesync.graph.odata import FEEDBACK_OUTCOME, grade_points, is_points_kind, outcome_work, teacher_work
from gradesync.graph.urls import (
    assignments_url,
    class_lookup_url,
    classes_url,
    members_url,
    submissions_url,
    teachers_url,
)
from gradesync.models import SNAPSHOT_COLUMNS, Snapshot, TeamsClass, empty_frame
from gradesync.plan.match import match_assignments

__all__ = [
    "POINTS_GRADE_TYPE",
    "SUBMISSION_LISTINGS_PER_READ",
    "Clock",
    "Progress",
    "SubmissionColumns",
    "read_classes",
    "read_teachers",
    "resolve",
    "utc_ms",
]

# odata.py has no reader for a grading's type; compared case-insensitively, like its outcome types
POINTS_GRADE_TYPE = "#microsoft.graph.educationAssignmentPointsGradeType"
# submissions listings read per get_all_many call: enough to keep every $batch envelope full
# (20 sub-requests, max_in_flight at once), few enough that one call's pages stay small
SUBMISSION_LISTINGS_PER_READ = 400

Progress = Callable[[str, int, int], None]  # (step, done, total)
Clock = Callable[[], datetime]


def utc_ms(moment: datetime) -> str:
    """``2024-06-01T11:59:58.123Z``: a read time as the plan file stores it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


def _is_points_grading(grading: Any) -> bool:
    kind = odata_type(grading)
    points_type = kind is not None and kind.lstrip("#").lower() == POINTS_GRADE_TYPE.lstrip("#").lower()
    return points_type or (isinstance(grading, dict) and "maxPoints" in grading)


def _max_points(grading: Any) -> float:
    value = grading.get("maxPoints") if isinstance(grading, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return float("nan")


def _assignment_record(class_id: str, a: dict[str, Any]) -> dict[str, Any]:
    grading = a.get("grading")
    graded = _is_points_grading(grading)
    return {
        "class_id": class_id,
        "assignment_id": a.get("id"),
        "display_name": a.get("displayName"),
        "status": a.get("status"),
        "graded": graded,
        "max_points": _max_points(grading) if graded else float("nan"),
        "read_at": "",
    }


def _is_group(recipient: Any) -> bool:
    if not isinstance(recipient, dict):
        return False
    return _group_recipient(odata_type(recipient), "groupId" in recipient)


def _group_recipient(kind: Any, has_group_id: bool) -> bool:
    """A group submission's recipient: a ``groupId``, or an ``@odata.type`` naming a group."""
    return has_group_id or (isinstance(kind, str) and "group" in kind.lower())


class SubmissionColumns:
    """The submissions frame, built page batch by page batch: per row only the values that differ
    between submissions are kept (ids, status, points); class and assignment are one code per listing."""

    def __init__(self) -> None:
        self.listings: list[tuple[str, str]] = []  # (class_id, assignment_id) per listing read
        self.listing_rows: list[int] = []
        self.submission_id: list[Any] = []
        self.user_id: list[Any] = []
        self.group: list[bool] = []
        self.status: list[Any] = []
        self.outcome_id: list[Any] = []
        self.points: list[float] = []
        self.last_modified: list[Any] = []
        self.work: list[int] = []  # models.TeacherWork flags

    def add(self, class_id: str, assignment_id: str, items: list[Any]) -> None:
        """One assignment's listing: its submissions become column values (and can be dropped).

        Items are typed :class:`~gradesync.graph.decode.Submission` structs (pages the typed decoder
        fitted) or dicts (pages it did not fit); both are read to the same values."""
        self.listings.append((class_id, assignment_id))
        self.listing_rows.append(len(items))
        for s in items:
            if type(s) is Submission:
                self._add_typed(s)
                continue
            recipient = s.get("recipient")
            group = _is_group(recipient)
            outcomes = points_outcomes(s)
            outcome = outcomes[0] if outcomes else None
            points = points_of(outcome)
            self.submission_id.append(s.get("id"))
            self.user_id.append(None if group or not isinstance(recipient, dict) else recipient.get("userId"))
            self.group.append(group)
            self.status.append(s.get("status"))
            self.outcome_id.append(outcome.get("id") if outcome else None)
            self.points.append(float("nan") if points is None else points)
            self.last_modified.append(outcome.get("lastModifiedDateTime") if outcome else None)
            outcomes_listed = s.get("outcomes")
            self.work.append(int(teacher_work(outcomes_listed if isinstance(outcomes_listed, list) else ())))

    def _add_typed(self, s: Submission) -> None:
        """One typed submission, read as :meth:`add` reads its dict (``_is_group``, ``points_outcomes``,
        ``points_of``, ``teacher_work``): the first outcome whose ``@odata.type`` is a points outcome,
        any case; the feedback and rubric outcomes are decoded only when they hold something."""
        recipient = s.recipient
        if recipient is None:
            group, user_id = False, None
        else:
            group = _group_recipient(recipient.odata_type, recipient.groupId is not UNSET)
            user_id = None if group else recipient.userId
        outcome = None
        work = 0
        for o in s.outcomes or ():
            kind = o.odata_type
            if kind == FEEDBACK_OUTCOME and o.feedback is None and o.publishedFeedback is None:
                continue  # the usual feedback outcome, empty: no teacher work
            if is_points_kind(kind):
                outcome = outcome or o
            else:
                work |= int(outcome_work(kind, o.text, o.field))
        self.work.append(work)
        self.submission_id.append(s.id)
        self.user_id.append(user_id)
        self.group.append(group)
        self.status.append(s.status)
        if outcome is None:
            self.outcome_id.append(None)
            self.points.append(float("nan"))
            self.last_modified.append(None)
            return
        points = grade_points(outcome.points)
        self.outcome_id.append(outcome.id)
        self.points.append(float("nan") if points is None else points)
        self.last_modified.append(outcome.lastModifiedDateTime)

    def frame(self) -> pd.DataFrame:
        """``SNAPSHOT_COLUMNS["submissions"]``, with the repeated ids as categoricals."""
        if not self.submission_id:
            return empty_frame(SNAPSHOT_COLUMNS["submissions"])
        listing = np.repeat(np.arange(len(self.listings)), self.listing_rows)
        class_ids = pd.Categorical([c for c, _ in self.listings])
        assignment_ids = pd.Categorical([a for _, a in self.listings])
        group = np.array(self.group, dtype=bool)

        def coded(values: Any) -> pd.Categorical:
            return pd.Categorical(values)

        def by_listing(cat: pd.Categorical) -> pd.Categorical:
            return pd.Categorical.from_codes(np.asarray(cat.codes)[listing], categories=cat.categories)

        def objects(values: list[Any]) -> pd.Series:
            out = np.empty(len(values), dtype=object)
            out[:] = values
            return pd.Series(out, dtype=object, copy=False)  # kept as object (no str inference)

        return pd.DataFrame(
            {
                "class_id": by_listing(class_ids),
                "assignment_id": by_listing(assignment_ids),
                "submission_id": objects(self.submission_id),
                "user_id": coded(self.user_id),
                "recipient_type": coded(np.where(group, "group", "individual")),
                "status": coded(self.status),
                "outcome_id": objects(self.outcome_id),
                "points": np.array(self.points, dtype="float64"),
                "last_modified": objects(self.last_modified),
                "teacher_work": np.array(self.work, dtype="int8"),
            },
            copy=False,
        )


def _read_all(
    client: GraphClient, urls: list[str], *, missing_ok: bool = False, page: PageDecoder | None = None
) -> dict[str, list[Any]]:
    """Every item of every listing, or an error: a plan built on a listing that failed would be wrong.

    With ``missing_ok`` a 404 (a class looked up by an id that does not exist) reads as empty.
    ``page``: the listings' typed page decoder (items are then typed where it fits, else dicts).
    """
    if not urls:
        return {}
    pages = client.get_all_many(urls, page=page)
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
    clock: Clock | None = None,
) -> Snapshot:
    """Read the classes, members, assignments and submissions the ``desired`` rows touch.

    ``clock`` (UTC now, for the read times) is for tests.
    """
    note = progress or (lambda step, done, total: None)
    now = clock or (lambda: datetime.now(UTC))
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
    del pages
    note("rosters", len(class_ids), len(class_ids))

    # 3. submissions with outcomes: one listing per graded assignment the input touches, read a
    #    slice of listings at a time; each slice's pages become columns before the next is read.
    touched = _touched_assignments(desired, classes, assignments, settings)
    with _cyclic_gc_paused():
        columns, read_at = _read_submissions(client, touched, now, note)
    if read_at:
        keys = list(zip(assignments["class_id"], assignments["assignment_id"], strict=True))
        assignments["read_at"] = pd.Series(
            [read_at.get(k, "") for k in keys], index=assignments.index, dtype=object
        )
    return Snapshot(classes=classes, members=members, assignments=assignments, submissions=columns.frame())


def _read_submissions(
    client: GraphClient, touched: list[tuple[str, str]], now: Clock, note: Progress
) -> tuple[SubmissionColumns, dict[tuple[str, str], str]]:
    """The touched assignments' submissions as columns, a slice of listings at a time, and each
    listing's read time (when its slice's read began)."""
    columns = SubmissionColumns()
    read_at: dict[tuple[str, str], str] = {}
    note("submissions", 0, len(touched))
    for start in range(0, len(touched), SUBMISSION_LISTINGS_PER_READ):
        part = touched[start : start + SUBMISSION_LISTINGS_PER_READ]
        sub_urls = {pair: submissions_url(*pair) for pair in part}
        # a listing's pages are read one after another, retries included: what its first page
        # shows may be seconds older than its last, so the read counts from before its first
        # request (a later time would let a write land more than the window after a page's read)
        began = utc_ms(now())
        sub_pages = _read_all(client, list(sub_urls.values()), page=submissions_page)
        for (cid, aid), url in sub_urls.items():
            columns.add(cid, aid, sub_pages.get(url) or [])
            read_at[(cid, aid)] = began
        del sub_pages
        note("submissions", start + len(part), len(touched))
    return columns, read_at


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while the submissions are read (reference counting still frees
    everything that is not in a cycle, i.e. nearly everything).

    Each full collection walks every object the growing columns and the slice's pages refer to; on
    285k submissions that was ~1.4 s of a 14 s plan, for nothing: decoded JSON holds no cycles. What
    cyclic garbage the reads leave (an exception's traceback, an HTTP response) is bounded by the
    number of requests and collected once the collector is back on. Process-wide, so it only ever
    turns the collector back on if it was on when this began.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _touched_assignments(
    desired: pd.DataFrame, classes: pd.DataFrame, assignments: pd.DataFrame, settings: Settings
) -> list[tuple[str, str]]:
    """(class_id, assignment_id) of every graded, assigned assignment some input row names, in a stable
    order. Only an assigned assignment's submissions can be graded: a draft or scheduled one has
    none yet, a published one is still creating them, an inactive one takes no grades (the plan
    rejects or carries over their rows without reading them)."""
    if classes.empty or assignments.empty:
        return []
    unique_classes = classes.groupby("class_key")["class_id"].nunique()
    resolved = classes[classes["class_key"].isin(unique_classes[unique_classes == 1].index)]
    pairs = desired[["class_key", "assignment_key"]].drop_duplicates().astype(str)
    keys = pairs.merge(resolved[["class_key", "class_id"]], on="class_key")[["class_id", "assignment_key"]]
    matched = match_assignments(keys.drop_duplicates(), assignments, settings.match.assignment_by)
    matched = matched[matched["assignment_id"].notna()]
    graded = assignments[assignments["graded"] & (assignments["status"] == "assigned")]
    graded = graded[["class_id", "assignment_id"]]
    touched = matched[["class_id", "assignment_id"]].drop_duplicates().merge(graded)
    return sorted(touched.itertuples(index=False, name=None))


# --- the class chooser: what people call each class ---------------------------------------------
def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _teams_class(item: dict[str, Any]) -> TeamsClass | None:
    """A class of Graph's listing as :class:`~gradesync.models.TeamsClass` (None without an id)."""
    class_id = _text(item.get("id"))
    if not class_id:
        return None
    term = item.get("term")
    return TeamsClass(
        id=class_id,
        display_name=_text(item.get("displayName")) or class_id,
        external_id=_text(item.get("externalId")),
        external_name=_text(item.get("externalName")),
        class_code=_text(item.get("classCode")),
        mail_nickname=_text(item.get("mailNickname")),
        term=_text(term.get("displayName")) if isinstance(term, dict) else "",
    )


def read_classes(client: GraphClient) -> list[TeamsClass]:
    """Every class of the tenant, sorted by name: one listing (``GET /education/classes``, all pages).
    Teachers are not in the listing; :func:`read_teachers` reads them for the classes shown."""
    found = (_teams_class(item) for item in _read_all(client, [classes_url()])[classes_url()])
    return sorted((c for c in found if c is not None), key=lambda c: (c.display_name.casefold(), c.id))


def read_teachers(client: GraphClient, class_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``class id → teachers' display names`` (one ``/teachers`` listing per class, batched). A class
    whose listing fails (gone, not allowed) maps to no teachers: names help a person choose, nothing
    is decided on them."""
    urls = {cid: teachers_url(cid) for cid in dict.fromkeys(class_ids)}
    if not urls:
        return {}
    try:
        pages = client.get_all_many(list(urls.values()))
    except AuthError:  # an app allowed the rosters but not the teachers: the chooser shows none
        return {}
    return {
        cid: tuple(
            sorted({_text(t.get("displayName")) for t in pages.get(url, []) if _text(t.get("displayName"))})
        )
        for cid, url in urls.items()
    }
