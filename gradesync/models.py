"""The data that passes between pipeline stages: column contracts, codes and plan dataclasses.

read ──DesiredFrame──▶ resolve ──Snapshot──▶ plan (pure) ──Plan──▶ execute ──▶ report

Bulk data travels as pandas DataFrames whose columns are fixed here (one row per input row keeps
1.2M-row plans cheap); each operation that reaches Graph is a frozen ``Operation`` dataclass.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from enum import IntFlag, StrEnum
from typing import Any
from urllib.parse import quote

import pandas as pd

__all__ = [
    "CARRIED_REASONS",
    "CURRENT_COLUMNS",
    "DELETED_BY_EXCUSE",
    "DESIRED_CODED",
    "DESIRED_COLUMNS",
    "JOURNAL_COLUMNS",
    "MEMORY_COLUMNS",
    "PLAN_COLUMNS",
    "REJECT_REASONS_NOOP",
    "ROSTER_GAP_KEYS",
    "SNAPSHOT_COLUMNS",
    "UNRETURNED",
    "WRITE_ACTIONS",
    "Action",
    "InputFile",
    "Operation",
    "Plan",
    "ReasonCode",
    "Snapshot",
    "TeacherWork",
    "TeamsClass",
    "ValueUnit",
    "empty_frame",
]

# ---------------------------------------------------------------------------------------------
# Stage 1, read → a "desired" frame: one row per input row (also the rows read rejects).
# ---------------------------------------------------------------------------------------------
DESIRED_COLUMNS: dict[str, str] = {
    "row_key": "int64",  # 0..n-1 over all input files, in reading order; the identity of an input row
    "source_file": "object",  # path as given on the command line
    "source_sheet": "object",  # sheet name for Excel, "" otherwise
    "source_row": "int64",  # row number as a person sees it in Excel / a text editor (header = 1)
    "source_column": "object",  # header of the points cell (for wide files: the assignment column)
    "class_key": "object",  # raw identifiers, always text, stripped; "" when missing
    "assignment_key": "object",
    "student_key": "object",
    "points_raw": "object",  # the points cell exactly as read (text)
    "desired_points": "float64",  # parsed and rounded; NaN when blank, clear or invalid
    "clear": "bool",  # the explicit clear token: remove the grade
    "excuse": "bool",  # an excused mark ([policy] excused_marks, e.g. "EX"): excuse the submission
    # the item's maximum as the file declares it (a "Points Possible" row, a maximum column, a header such
    # as "[Total Pts: 50 Score]", the mapping); NaN when it declares none. Checked against Teams' maximum
    "points_possible": "float64",
    # what the number in desired_points is (a ValueUnit): "points" (the default), "percent" (95% →
    # 95.0: a share of the assignment's maximum) or "fraction" (17/20 → 17.0 with denominator 20.0);
    # the plan converts percent and fraction to points against Teams' maximum, and says so on the row
    "points_unit": "object",
    "points_denominator": "float64",  # a fraction's denominator; NaN otherwise
    # what to do when ``points_possible`` (the maximum the file declares) differs from Teams' maximum:
    # "" refuses the row (points_possible_mismatch); "scale" (the mapping says so) scales the points
    "maximum_rule": "object",
    # the same grade in a percent display ("95.00 %", Moodle's "(Percentage)" column beside "(Real)"),
    # checked against the points and Teams' maximum; "" when the file has no such column
    "percent_twin": "object",
    # the row's student identifiers in the mapping's order, each "header\x1ekind\x1evalue", joined by
    # "\x1f" (kind: a [match] student_by kind such as sis_id or upn); "" when the file has one student
    # column, matched by [match] student_by as ``student_key``
    "student_ids": "object",
    "reason": "object",  # a ReasonCode value when read/validation rejects or notes the row, else ""
    "message": "object",  # what a registrar reads about that reason
    "note": "object",  # non-rejecting remarks (rounded, duplicate kept, cp1252 fallback)
}
# The read stage hands these DESIRED_COLUMNS over as pandas categoricals of the same stripped text
# (coded once while validating, so planning a million rows does not hash every key again). Anything
# that reads them as text still works (``==``, ``.tolist()``, ``.astype(str)``, ``.to_numpy(dtype=object)``);
# ``.astype(DESIRED_COLUMNS)`` turns them back into object columns, which the plan accepts as well.
DESIRED_CODED: tuple[str, ...] = (
    "class_key",
    "assignment_key",
    "student_key",
    # mostly one value ("") over a whole file: coded, the plan finds the few rows that carry one by
    # comparing small integers instead of a million strings
    "maximum_rule",
    "percent_twin",
    "student_ids",
)


class Action(StrEnum):
    UPDATE = "update"  # PATCH the existing points outcome
    CREATE = "create"  # POST a points outcome (the submission has none)
    NOOP = "noop"  # nothing to do (equal, blank cell, identical duplicate)
    REJECT = "reject"  # refused, with a reason
    EXCUSE = "excuse"  # POST .../submissions/{id}/excuse (an excused mark in the input)


class ReasonCode(StrEnum):
    """Why a row is rejected (or, for the ``noop`` ones, why nothing happens)."""

    # read / validate
    MISSING_IDENTIFIER = "missing_identifier"
    INVALID_POINTS = "invalid_points"
    DUPLICATE_CONFLICT = "duplicate_conflict"
    DUPLICATE_IDENTICAL = "duplicate_identical"  # noop: an identical copy of another row
    BLANK_POINTS = "blank_points"  # noop: a blank cell means "no change"
    POINTS_POSSIBLE_MISMATCH = "points_possible_mismatch"
    EXTRA_CELLS = "extra_cells"  # a text row with non-empty cells beyond the header: cells shifted
    LETTER_GRADE = "letter_grade"  # "A-": Teams holds points; map letters with an explicit table
    DATE_NOT_POINTS = "date_not_points"  # Excel turned "9/10" into a date
    IGNORED_ROW = "ignored_row"  # noop: a totals/average/test-student/points-possible row the mapping ignores
    # resolve / plan
    UNKNOWN_CLASS = "unknown_class"
    AMBIGUOUS_CLASS = "ambiguous_class"
    UNKNOWN_ASSIGNMENT = "unknown_assignment"
    AMBIGUOUS_ASSIGNMENT = "ambiguous_assignment"
    UNGRADED_ASSIGNMENT = "ungraded_assignment"
    # only an assigned assignment's submissions take grades: a draft, scheduled or inactive one
    ASSIGNMENT_NOT_ASSIGNED = "assignment_not_assigned"
    # noop, carried over: a published assignment whose submissions Teams is still creating
    ASSIGNMENT_PUBLISHING = "assignment_publishing"
    UNKNOWN_STUDENT = "unknown_student"
    AMBIGUOUS_STUDENT = "ambiguous_student"
    # two identifier columns of one row (Student ID, Username) name two different students
    IDENTIFIER_CONFLICT = "identifier_conflict"
    NOT_IN_CLASS = "not_in_class"
    NO_SUBMISSION = "no_submission"
    ABOVE_MAX_POINTS = "above_max_points"
    PERCENT_WITHOUT_MAXIMUM = "percent_without_maximum"  # a percent, but the assignment has no maximum
    FRACTION_MISMATCH = "fraction_mismatch"  # 17/20 where Teams' maximum is not 20 (and no rule converts)
    SUBMISSION_EXCUSED = "submission_excused"
    # excusing deletes the submission's feedback and rubric in Teams ([policy] excuse_feedback)
    EXCUSE_WOULD_DELETE_FEEDBACK = "excuse_would_delete_feedback"
    GROUP_SUBMISSION = "group_submission"
    ALREADY_CLEAR = "already_clear"  # noop: clear asked, nothing to clear
    ALREADY_EXCUSED = "already_excused"  # noop: excuse asked, the submission is excused already
    # a teacher changed the grade in Teams since gradesync last wrote it (three-way sync); the
    # row's ``override_policy`` says what happens: report / teacher-wins keep it (noop), sis-wins updates
    TEACHER_OVERRIDE = "teacher_override"
    # undoing a run (``plan/undo.py``): why a cell the run touched is not put back
    UNDO_EXCUSED = "undo_excused"  # the run excused the submission: Graph has no action to take it back
    UNDO_PUBLISHED = "undo_published"  # the students have seen the run's grade (returned to them)
    UNDO_UNCONFIRMED = "undo_unconfirmed"  # the run never confirmed its write (carried over, maybe sent)
    UNDO_BEFORE_UNKNOWN = "undo_before_unknown"  # the run wrote over a grade changed after its plan
    UNDO_NOT_WRITTEN = "undo_not_written"  # noop: the run wrote nothing to this cell
    UNDO_ALREADY = "undo_already"  # noop: Teams already holds the value from before the run
    UNDO_GONE = "undo_gone"  # noop: the submission no longer exists in Teams


class TeacherWork(IntFlag):
    """What a teacher has put on a submission besides the points (its feedback, rubric and feedback
    outcomes, as "List outcomes" describes them): excusing deletes it, returning publishes it."""

    NONE = 0
    FEEDBACK_DRAFT = 1  # feedback text not yet returned to the student
    FEEDBACK_RETURNED = 2  # feedback text the student has seen
    RUBRIC = 4  # a filled rubric (selected levels or quality feedback, returned or not)
    RUBRIC_DRAFT = 8  # rubric selections or quality feedback not yet returned
    FEEDBACK_FILES = 16  # feedback files (educationFeedbackResourceOutcome)

    def describe(self, parts: tuple[TeacherWork, ...] | None = None) -> str:
        """``"the feedback not yet returned, a filled rubric"``: the parts of ``parts`` present."""
        wanted = parts or (
            TeacherWork.FEEDBACK_DRAFT,
            TeacherWork.FEEDBACK_RETURNED,
            TeacherWork.RUBRIC,
            TeacherWork.FEEDBACK_FILES,
        )
        return ", ".join(_WORK_NAMES[p] for p in wanted if self & p)


_WORK_NAMES = {
    TeacherWork.FEEDBACK_DRAFT: "the feedback not yet returned",
    TeacherWork.FEEDBACK_RETURNED: "the feedback already returned",
    TeacherWork.RUBRIC: "the filled rubric",
    TeacherWork.RUBRIC_DRAFT: "the rubric not yet returned",
    TeacherWork.FEEDBACK_FILES: "the feedback files",
}
# what excusing deletes ("Grading rubrics and feedback are deleted"), and what returning publishes
# that the student has not seen yet
DELETED_BY_EXCUSE = (
    TeacherWork.FEEDBACK_DRAFT,
    TeacherWork.FEEDBACK_RETURNED,
    TeacherWork.RUBRIC,
    TeacherWork.FEEDBACK_FILES,
)
UNRETURNED = (TeacherWork.FEEDBACK_DRAFT, TeacherWork.RUBRIC_DRAFT)


class ValueUnit(StrEnum):
    """What a parsed grade cell means (``DESIRED_COLUMNS["points_unit"]``)."""

    POINTS = "points"
    PERCENT = "percent"  # a share of the assignment's maximum, in percent
    FRACTION = "fraction"  # points over ``points_denominator``


REJECT_REASONS_NOOP = {
    ReasonCode.ASSIGNMENT_PUBLISHING,  # nothing written now; the row is carried over to the next run
    ReasonCode.DUPLICATE_IDENTICAL,
    ReasonCode.BLANK_POINTS,
    ReasonCode.ALREADY_CLEAR,
    ReasonCode.ALREADY_EXCUSED,
    ReasonCode.TEACHER_OVERRIDE,  # noop unless policy sis-wins (then the row is an update)
    ReasonCode.IGNORED_ROW,
}
WRITE_ACTIONS = (Action.UPDATE.value, Action.CREATE.value, Action.EXCUSE.value)  # rows that reach Graph
# noop reasons whose rows are carried over (outcome.Status.CARRIED_OVER): the next run writes them
CARRIED_REASONS = frozenset({ReasonCode.ASSIGNMENT_PUBLISHING.value})

# ---------------------------------------------------------------------------------------------
# Stage 2, resolve → a Snapshot of what Graph holds for the classes/assignments the input touches.
# ---------------------------------------------------------------------------------------------
SNAPSHOT_COLUMNS: dict[str, dict[str, str]] = {
    # one row per (input class key, matching class); a key with 0 rows is unknown, >1 ambiguous
    "classes": {"class_key": "object", "class_id": "object", "class_name": "object"},
    "members": {
        "class_id": "object",
        "user_id": "object",
        "display_name": "object",
        "upn": "object",  # userPrincipalName
        "mail": "object",
        "sis_id": "object",  # student.externalId
        "external_id": "object",  # educationUser.externalId (fallback SIS id)
        "student_number": "object",  # student.studentNumber
        "primary_role": "object",
    },
    "assignments": {
        "class_id": "object",
        "assignment_id": "object",
        "display_name": "object",
        "status": "object",
        "graded": "bool",  # grading is a points grade type
        "max_points": "float64",  # NaN when ungraded
        # when resolve finished listing this assignment's submissions (ISO 8601 UTC, milliseconds);
        # "" for an assignment whose submissions were not read
        "read_at": "object",
    },
    "submissions": {
        "class_id": "object",
        "assignment_id": "object",
        "submission_id": "object",
        "user_id": "object",  # recipient.userId; None for a group recipient
        "recipient_type": "object",  # "individual" | "group"
        "status": "object",  # working, submitted, returned, reassigned, excused
        "outcome_id": "object",  # the points outcome's id; None when the submission has none
        "points": "float64",  # points.points; NaN when null or no points outcome
        "last_modified": "object",  # the points outcome's lastModifiedDateTime; None when none
        "teacher_work": "int8",  # TeacherWork flags: feedback, rubric, feedback files on the submission
    },
}


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What Graph holds, as read by resolve. Pure data: the plan core needs nothing else."""

    classes: pd.DataFrame
    members: pd.DataFrame
    assignments: pd.DataFrame
    submissions: pd.DataFrame

    @classmethod
    def empty(cls) -> Snapshot:
        return cls(**{name: empty_frame(cols) for name, cols in SNAPSHOT_COLUMNS.items()})


@dataclass(frozen=True, slots=True)
class TeamsClass:
    """A Teams class as people know it: what the class chooser and "did you mean" show. Read from
    Graph's class listing (``resolve.read_classes``); every text is "" when Graph has none."""

    id: str  # Graph's id (also the class group's id)
    display_name: str
    external_id: str = ""  # the SIS id School Data Sync writes (what classes are matched by, by default)
    external_name: str = ""  # the SIS's name of the course ("Algebra I")
    class_code: str = ""
    mail_nickname: str = ""
    term: str = ""  # the term's display name ("Fall 2024")
    teachers: tuple[str, ...] = ()  # display names, when they were read

    def key(self, class_by: str) -> str:
        """The value input rows name this class by under ``[match] class_by`` ("" when it has none)."""
        return {
            "externalId": self.external_id,
            "id": self.id,
            "displayName": self.display_name,
            "mailNickname": self.mail_nickname,
        }.get(class_by, self.external_id)

    def label(self) -> str:
        """``Biology - P2 (SEC-1002)``: the name, and the SIS id when there is one."""
        return f"{self.display_name} ({self.external_id})" if self.external_id else self.display_name


# ---------------------------------------------------------------------------------------------
# Stage 3+4, plan → a Plan: one row per input row (PLAN_COLUMNS) plus header data.
# ---------------------------------------------------------------------------------------------
PLAN_COLUMNS: dict[str, str] = {
    **{
        k: v
        for k, v in DESIRED_COLUMNS.items()
        if k
        not in (
            "reason",
            "message",
            "note",
            "points_unit",
            "points_denominator",
            "maximum_rule",
            "percent_twin",
            "student_ids",
        )
    },
    "class_id": "object",
    "class_name": "object",
    "assignment_id": "object",
    "assignment_name": "object",
    "max_points": "float64",
    "user_id": "object",
    "student_name": "object",
    "submission_id": "object",
    "outcome_id": "object",
    "before_points": "float64",  # current points in Teams (NaN = none)
    "before_modified": "object",  # the outcome's lastModifiedDateTime at planning time
    "action": "object",  # an Action value
    "reason": "object",  # a ReasonCode value or ""
    "message": "object",
    "note": "object",
    "decrease": "bool",  # the change lowers a grade
    # three-way sync: what gradesync last wrote to this outcome (NaN: nothing remembered, or a clear)
    "last_written_points": "float64",
    # "" or the [policy] teacher_override applied to a teacher_override row: report | teacher-wins | sis-wins
    "override_policy": "object",
}

# What the state database remembers per submission (``gradesync.state.memory``), as the plan core
# receives it: one row per submission gradesync wrote a grade to or excused; NaN points with a
# ``last_written_at`` = gradesync cleared it.
MEMORY_COLUMNS: dict[str, str] = {
    "submission_id": "object",
    "last_written_points": "float64",
    "last_written_at": "object",  # None: gradesync never wrote a grade there (only excused it)
    "excused_at": "object",  # when gradesync excused the submission; None: never
}

# What the apply journal (``gradesync.state.journal``) recorded for each write of one plan, as the
# undo of a run (``gradesync.plan.undo``) receives it; a write with no record was never started.
JOURNAL_COLUMNS: dict[str, str] = {
    "row_key": "int64",
    "status": "object",  # a final Status value, or "pending" / "sending" (carried over)
    "outcome_id": "object",  # the points outcome written (a create's new id)
    "after_points": "float64",  # the value the write left (NaN: cleared, or not written)
    "message": "object",
}
# What Teams holds now for one submission, as the undo of a run receives it (one row per submission).
CURRENT_COLUMNS: dict[str, str] = {
    "submission_id": "object",
    "outcome_id": "object",  # the points outcome; None when the submission has none
    "points": "float64",  # NaN: no grade
    "published_points": "float64",  # what the students last saw (set by a return); NaN: never returned
}

# One entry of ``Plan.roster_gaps``: a roster student with no row in the input, per assignment.
ROSTER_GAP_KEYS: tuple[str, ...] = (
    "class_id",
    "class_name",
    "assignment_id",
    "assignment_name",
    "user_id",
    "student_name",
    "sis_id",  # the student's SIS id (student.externalId), so the no-row list says who to look for
    "current_points",
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One write to Graph: an update (PATCH) or create (POST) of a points outcome, or an excuse (POST)."""

    row_key: int
    action: Action  # UPDATE, CREATE or EXCUSE
    class_id: str
    assignment_id: str
    submission_id: str
    outcome_id: str | None  # None for CREATE
    desired_points: float | None  # None clears the grade
    before_points: float | None
    before_modified: str | None

    @property
    def submission_path(self) -> str:
        """The submission's path below the Graph version root, each id URL-quoted."""
        ids = (quote(v, safe="") for v in (self.class_id, self.assignment_id, self.submission_id))
        return "/education/classes/{}/assignments/{}/submissions/{}".format(*ids)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Operation:
        def _f(v: Any) -> float | None:
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        def _s(v: Any) -> str | None:
            return None if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" else str(v)

        return cls(
            row_key=int(row["row_key"]),
            action=Action(row["action"]),
            class_id=str(row["class_id"]),
            assignment_id=str(row["assignment_id"]),
            submission_id=str(row["submission_id"]),
            outcome_id=_s(row.get("outcome_id")),
            desired_points=None if row.get("clear") else _f(row["desired_points"]),
            before_points=_f(row.get("before_points")),
            before_modified=_s(row.get("before_modified")),
        )


@dataclass(frozen=True, slots=True)
class InputFile:
    path: str
    sha256: str
    rows: int
    encoding: str | None = None  # e.g. "utf-8-sig", "cp1252 (fallback)"
    sheet: str | None = None


@dataclass(slots=True)
class Plan:
    """A reviewed plan can be applied later, exactly: everything apply needs is in here."""

    rows: pd.DataFrame  # PLAN_COLUMNS, one per input row, ordered by row_key
    created_at: str  # ISO 8601 UTC
    graph_base_url: str
    config_hash: str
    inputs: list[InputFile] = field(default_factory=list)
    # per assignment: roster students with no row in the input (the "silent gap")
    roster_gaps: list[dict[str, Any]] = field(default_factory=list)
    # the plan-file format this Plan was read from (planfile.SCHEMA_VERSION for a plan made in memory):
    # apply treats a plan read from an older file, whose digest is not keyed, more strictly
    schema_version: int = 3
    strict: bool = False
    warnings: list[str] = field(default_factory=list)  # read-stage remarks (e.g. a cp1252 fallback)
    # A random id per plan made: two plans made in the same second from the same export are
    # still two plans (the journal refuses to apply one plan twice, never a new one).
    plan_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The digest the plan file stored (``plan.digest``; "" for a plan made in memory or an older file),
    # and the id of the key that made it (``digest.key_id``; "" in a schema 1 or 2 file). ``apply``
    # compares the digest with the one it computes from the plan with its own key.
    digest: str = ""
    key_id: str = ""
    # per assignment ``"class_id/assignment_id"``: when resolve finished reading its submissions
    # (ISO 8601 UTC with milliseconds); the executor treats a missing entry as stale
    read_at: dict[str, str] = field(default_factory=dict)
    # The id of the run this plan undoes (``gradesync undo``; its run directory's name), "" for any other
    # plan. The apply of such a plan records it in its run.json as ``undo_of``.
    undo_of: str = ""

    def operations(self) -> list[Operation]:
        writes = self.rows[self.rows["action"].isin(WRITE_ACTIONS)]
        return [Operation.from_row(r) for r in writes.to_dict("records")]

    def counts(self) -> dict[str, int]:
        return {a.value: int((self.rows["action"] == a.value).sum()) for a in Action}
