"""Every text the plan core writes on a row: reject messages, notes, and the plain-change messages.

One function per reason code (or note), each building the texts of many rows at once from arrays
already taken for those rows (``pd.Series`` of ``str``). The rules in ``gradesync.plan.rules`` decide
*which* rows get a reason; this module only says it. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import pandas as pd

__all__ = [
    "ASSIGNMENT_STATES",
    "BLANK_POINTS",
    "MESSAGE_CREATE",
    "MESSAGE_EXCUSE",
    "MESSAGE_SAME",
    "MESSAGE_UPDATE",
    "NOTE_EXCUSED_ALLOWED",
    "OVERRIDE_OUTCOME",
    "OVERWRITE_MESSAGE_STARTS",
    "UNDO_BEFORE_UNKNOWN",
    "UNDO_EXCUSED",
    "UNDO_GONE",
    "UNDO_NOTHING_WRITTEN",
    "UNDO_UNCONFIRMED",
    "Text",
    "above_max_allowed",
    "above_max_points",
    "already_clear",
    "already_excused",
    "ambiguous_assignment",
    "ambiguous_class",
    "ambiguous_student",
    "assigned_namesake_chosen",
    "assignment_label",
    "assignment_not_assigned",
    "assignment_publishing",
    "class_label",
    "duplicate_conflict",
    "duplicate_identical",
    "excuse_deletes_feedback",
    "excuse_on_its_way",
    "excuse_would_delete_feedback",
    "format_points",
    "fraction_converted",
    "fraction_mismatch",
    "fraction_scaled",
    "group_submission",
    "identifier_conflict",
    "lost_zeros_hint",
    "matched_by_fallback",
    "maximum_scaled",
    "no_submission",
    "not_in_class",
    "percent_converted",
    "percent_twin_mismatch",
    "percent_without_maximum",
    "points",
    "points_possible_mismatch",
    "quoted",
    "single_kept",
    "student_label",
    "submission_excused",
    "teacher_override",
    "text",
    "undo_already",
    "undo_changed_since",
    "undo_never_landed",
    "undo_nothing_written",
    "undo_published",
    "undo_restore",
    "ungraded_assignment",
    "unknown_assignment",
    "unknown_by_identifiers",
    "unknown_class",
    "unknown_student",
]

MESSAGE_UPDATE = "the grade in Teams will be changed"
MESSAGE_CREATE = "the grade will be entered in Teams (no points yet)"
MESSAGE_SAME = "Teams already has this grade"
MESSAGE_EXCUSE = "the submission will be excused in Teams"
NOTE_EXCUSED_ALLOWED = "the submission is excused; graded anyway by policy"
BLANK_POINTS = "blank points: no change"
OVERRIDE_OUTCOME = {
    "report": "; the teacher's grade is kept and listed for review: settle it in the gradebook or in Teams "
    '([policy] teacher_override = "report")',
    "teacher-wins": '; the teacher\'s grade is kept ([policy] teacher_override = "teacher-wins")',
    "sis-wins": "; it will be overwritten with the gradebook's value "
    '([policy] teacher_override = "sis-wins")',
}

Text: TypeAlias = pd.Series  # a Series of str, one per row being described


# ---------------------------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------------------------
def format_points(value: float, precision: int = 6) -> str:
    """``87.0`` → ``"87"``, ``87.50`` → ``"87.5"``: points as a registrar writes them."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "no grade"
    text = format(float(value), f".{precision}f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def points(values: Any, precision: int) -> Text:
    """``format_points`` of each value, formatted once per distinct value (NaN reads "no grade")."""
    floats = np.asarray(values, dtype="float64")
    codes, uniq = pd.factorize(floats.view("int64"))  # by bit pattern: -0.0 stays "-0"
    shown = np.array(
        [format_points(v, precision) for v in np.asarray(uniq, dtype="int64").view("float64").tolist()]
        or [""],
        dtype=object,
    )
    return pd.Series(shown[codes] if len(codes) else shown[:0], dtype=object)


def text(values: Any) -> Text:
    """Values as a Series of ``str``; missing → ``""``."""
    return pd.Series(values, dtype=object).fillna("").astype(object)


def quoted(values: Any) -> Text:
    return '"' + text(values) + '"'


def class_label(keys: Any, names: Any) -> Text:
    """``SEC-1001 (Algebra I - P1)``, or just the key when the name is unknown."""
    k, n = text(keys), text(names)
    return k.where(n == "", k + " (" + n + ")")


def student_label(keys: Any, names: Any) -> Text:
    """``"000123" (Ada Lovelace)``."""
    q, n = quoted(keys), text(names)
    return q.where(n == "", q + " (" + n + ")")


def assignment_label(keys: Any, names: Any) -> Text:
    """The Teams name of the assignment when known, else the key as written, quoted."""
    names = np.asarray(names, dtype=object)
    return quoted(np.where(pd.notna(names), names, np.asarray(keys, dtype=object)))


def _counts(values: Any) -> Text:
    return pd.Series(values).astype(str).astype(object)


# ---------------------------------------------------------------------------------------------
# classes, assignments, students, submissions
# ---------------------------------------------------------------------------------------------
def unknown_class(key: Any, by: str) -> Text:
    return "class " + quoted(key) + f" was not found in Teams (looked up by {by})"


def ambiguous_class(key: Any, count: Any, names: Text) -> Text:
    return "class " + quoted(key) + " matches " + _counts(count) + " classes in Teams: " + names


def unknown_assignment(key: Any, klass: Text) -> Text:
    return "no assignment " + quoted(key) + " in " + klass


def ambiguous_assignment(key: Any, klass: Text) -> Text:
    return (
        "assignment "
        + quoted(key)
        + " matches more than one assignment in "
        + klass
        + "; give them different names in Teams or use the assignment id"
    )


def assigned_namesake_chosen(assignment: Text, status: Any, others: Any) -> Text:
    """The note of an assignment chosen over namesakes students do not have (a draft copy)."""
    return (
        "Teams has more than one assignment named "
        + assignment
        + "; the "
        + text(status)
        + " one is used (the other: "
        + text(others)
        + ")"
    )


ASSIGNMENT_STATES = {
    "draft": "is a draft in Teams: students have no submissions to grade until a teacher assigns it; "
    "assign it in Teams, then run again",
    "scheduled": "is scheduled in Teams: its submissions are created when it is assigned; run again "
    "after the date it is scheduled for",
    "inactive": "is inactive (closed) in Teams: it takes no grades; a teacher can reopen it "
    "(Activate) if this grade must still change",
    # what Graph shows an inactive assignment to a caller without the Prefer header
    "unknownFutureValue": "has a status Graph did not name (unknownFutureValue: most likely inactive, "
    "read without the Prefer: include-unknown-enum-members header); gradesync writes only assigned "
    "assignments; check it in Teams",
}


def assignment_not_assigned(where: Text, status: Any) -> Text:
    """Why an assignment that is not ``assigned`` takes no grade, by its status."""
    states = pd.Series(status, dtype=object).fillna("").astype(str)
    other = 'has the status "' + states + '" in Teams; gradesync writes grades only to assigned assignments'
    said = states.map(ASSIGNMENT_STATES).where(states.isin(list(ASSIGNMENT_STATES)), other)
    return where + " " + said.astype(object)


def assignment_publishing(where: Text) -> Text:
    return (
        where + " is being assigned in Teams (status published: its submissions are still being "
        "created); nothing is written now: carried over, the next run writes it"
    )


def ungraded_assignment(name: Any, klass: Text) -> Text:
    return quoted(name) + " in " + klass + " is not graded with points"


def unknown_student(key: Any, order: str, hint: Text) -> Text:
    return "student " + quoted(key) + f" was not found in Teams (looked up by {order})" + hint


def unknown_by_identifiers(listing: Text) -> Text:
    """No identifier of the row finds a student: each is named with the Teams attribute it was tried by."""
    return (
        "no student in Teams has "
        + listing
        + "; check the ids, or match another column ([student] identifiers)"
    )


def identifier_conflict(
    header: Any, value: Any, name: Any, other_header: Any, other_value: Any, other_name: Any, klass: Text
) -> Text:
    """Two identifiers of one row name two students: ``Student ID "000101" is Ana Moreau but …``."""
    return (
        text(header)
        + " "
        + quoted(value)
        + " is "
        + text(name)
        + " but "
        + text(other_header)
        + " "
        + quoted(other_value)
        + " is "
        + text(other_name)
        + " in "
        + klass
        + ": the row's identifiers name different students, so none is guessed; correct the row in the "
        "gradebook"
    )


def matched_by_fallback(header: Any, kind: Any, value: Any, before: list[list[tuple[str, str]]]) -> Text:
    """The note of a student found through a later identifier: what found them, and why the ones
    before it did not (``before``: per row, the earlier identifiers' headers and values)."""
    why = pd.Series(
        [
            "; ".join(f'{h} "{v}" found nobody' if v else f"{h} is blank" for h, v in earlier)
            for earlier in before
        ],
        dtype=object,
    )
    return "student matched by " + text(header) + " " + quoted(value) + " (" + text(kind) + "); " + why


def ambiguous_student(key: Any, klass: Text) -> Text:
    return "student " + quoted(key) + " matches more than one student in " + klass


def not_in_class(key: Any, klass: Text) -> Text:
    return "student " + quoted(key) + " is not on the roster of " + klass


def lost_zeros_hint(keys: Any, members: pd.DataFrame) -> Text:
    """For an all-digit key that is a member id without its leading zeros (Excel turned ``000123``
    into the number ``123``): a hint naming the id it probably was; "" otherwise. Per distinct key."""
    out = pd.Series("", index=range(len(keys)), dtype=object)
    k = text(keys)
    digits = k.str.fullmatch(r"[1-9][0-9]*").fillna(False).to_numpy(dtype=bool)
    if not digits.any() or members.empty:
        return out
    ids = pd.concat([members[c] for c in ("sis_id", "student_number") if c in members]).dropna().astype(str)
    padded = ids[ids.str.fullmatch(r"0+[1-9][0-9]*").fillna(False)].drop_duplicates()
    if padded.empty:
        return out
    by_stripped = pd.Series(padded.to_numpy(), index=padded.str.lstrip("0").to_numpy())
    by_stripped = by_stripped[~by_stripped.index.duplicated()]
    found = k[digits].map(by_stripped)
    hit = found.notna()
    out.loc[found.index[hit]] = (
        "; did Excel drop its leading zeros? "
        + found[hit].map(lambda v: f'"{v}"')
        + " is an id in Teams (format the id column as Text before exporting)"
    )
    return out


def group_submission(where: Text) -> Text:
    return (
        where + " is a group assignment; its grades belong to the group's submission, "
        "which gradesync does not write"
    )


def no_submission(student: Text, where: Text) -> Text:
    return (
        "student "
        + student
        + " has no submission for "
        + where
        + "; the assignment may not be assigned to them"
    )


def already_excused(student: Text, where: Text) -> Text:
    return "student " + student + " is already excused from " + where


def submission_excused(student: Text, where: Text) -> Text:
    return "student " + student + " is excused from " + where + ' (policy.excused = "reject")'


def excuse_on_its_way(student: Text, where: Text, when: Any) -> Text:
    """An excuse gradesync sent that Teams does not show yet (excusing is asynchronous)."""
    at = pd.Series(when, dtype=object).fillna("").astype(str)
    return (
        "gradesync excused student "
        + student
        + " from "
        + where
        + " at "
        + at
        + "; Teams does not show it yet (excusing takes effect after a while): not sent again"
    )


def excuse_would_delete_feedback(student: Text, where: Text, lost: Any) -> Text:
    return (
        "excusing student "
        + student
        + " from "
        + where
        + " would delete "
        + text(lost)
        + " in Teams; keep the teacher's work (grade or clear the row instead), or set "
        + '[policy] excuse_feedback = "delete"'
    )


def excuse_deletes_feedback(lost: Any) -> Text:
    """The note of an excuse allowed to delete the teacher's work: what it deletes."""
    return "excusing deletes " + text(lost) + ' in Teams ([policy] excuse_feedback = "delete")'


# ---------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------
def percent_converted(percent: Any, maximum: Any, converted: Any, precision: int) -> Text:
    """The note of a converted percent: ``95% of 20 → 19``."""
    p, m, c = points(percent, 6), points(maximum, precision), points(converted, precision)
    return p + "% of " + m + " → " + c


def fraction_converted(numerator: Any, denominator: Any, precision: int) -> Text:
    """The note of a fraction out of the maximum: ``17/20 → 17 points``."""
    return (
        points(numerator, 6) + "/" + points(denominator, 6) + " → " + points(numerator, precision) + " points"
    )


def fraction_scaled(numerator: Any, denominator: Any, maximum: Any, converted: Any, precision: int) -> Text:
    """The note of a fraction scaled to the maximum: ``17/20 of 50 → 42.5 ([input] fractions = "scale")``."""
    return (
        points(numerator, 6)
        + "/"
        + points(denominator, 6)
        + " of "
        + points(maximum, precision)
        + " → "
        + points(converted, precision)
        + ' ([input] fractions = "scale")'
    )


def fraction_mismatch(
    numerator: Any, denominator: Any, maximum: Any, assignment: Text, precision: int
) -> Text:
    return (
        points(numerator, 6)
        + "/"
        + points(denominator, 6)
        + " is out of "
        + points(denominator, 6)
        + ", but Teams has a maximum of "
        + points(maximum, precision)
        + " points for "
        + assignment
        + '; write the points, or set [input] fractions = "scale" to scale fractions to the maximum'
    )


def percent_without_maximum(raw: Any, unit: Any, assignment: Text) -> Text:
    kind = pd.Series(np.where(np.asarray(unit, dtype=object) == "percent", "a percent", "a fraction"))
    return (
        quoted(raw)
        + " is "
        + kind.astype(object)
        + ", but "
        + assignment
        + " has no maximum in Teams to take it of; write the points instead"
    )


def points_possible_mismatch(possible: Any, maximum: Any, assignment: Text, precision: int) -> Text:
    """A declared maximum that is not Teams': both maxima, and the ways to settle it."""
    return (
        "the file gives "
        + points(possible, precision)
        + " points possible for "
        + assignment
        + ", but Teams has a maximum of "
        + points(maximum, precision)
        + " points; make the two maxima agree (in Teams or in the gradebook), or let the mapping scale "
        'the points ([values] maximum_mismatch = "scale")'
    )


def maximum_scaled(raw: Any, possible: Any, maximum: Any, converted: Any, precision: int) -> Text:
    """The note of points scaled to Teams' maximum: ``45 of 50 → 90 of 100 (…)``."""
    return (
        points(raw, 6)
        + " of "
        + points(possible, precision)
        + " (the file's maximum) scaled to "
        + points(converted, precision)
        + " of "
        + points(maximum, precision)
        + ' (Teams\' maximum), as the mapping says ([values] maximum_mismatch = "scale")'
    )


def percent_twin_mismatch(
    value: Any, twin: Any, implied: Any, maximum: Any, assignment: Text, precision: int
) -> Text:
    """A value and its percent twin that disagree against Teams' maximum: both, and the maximum they imply."""
    return (
        points(value, precision)
        + " points and its percent column's "
        + quoted(twin)
        + " disagree for "
        + assignment
        + ": against Teams' maximum of "
        + points(maximum, precision)
        + " they imply a maximum of about "
        + points(implied, precision)
        + " in the file; make the item's maximum in the gradebook and in Teams agree"
    )


def above_max_points(value: Any, maximum: Any, assignment: Text, precision: int) -> Text:
    return (
        points(value, precision)
        + " is above the maximum of "
        + points(maximum, precision)
        + " points for "
        + assignment
    )


def single_kept(value: Any, kept: Any, precision: int) -> Text:
    """The note of a grade Teams cannot keep exactly at the precision (points are a Single)."""
    return (
        points(value, precision)
        + " is kept as "
        + points(kept, precision)
        + " in Teams (points are a 32-bit float there)"
    )


def above_max_allowed(value: Any, maximum: Any, assignment: Text, precision: int) -> Text:
    return above_max_points(value, maximum, assignment, precision) + '; allowed by policy.above_max = "allow"'


# ---------------------------------------------------------------------------------------------
# duplicates, clears, three-way sync
# ---------------------------------------------------------------------------------------------
def duplicate_conflict(student: Text, assignment: Text, listing: Text) -> Text:
    return "conflicting grades for " + student + " on " + assignment + ": " + listing + "; none is applied"


def duplicate_identical(kept_where: Text, student: Text, assignment: Text) -> Text:
    return "the same grade as " + kept_where + " for " + student + " on " + assignment + "; applied once"


def already_clear(student: Text, assignment: Text) -> Text:
    return "no grade to clear for " + student + " on " + assignment


def teacher_override(
    remembered: Any, remembered_at: Any, current: Any, desired: Any, clear: Any, policy: str, precision: int
) -> Text:
    when = pd.Series(remembered_at, dtype=object).map(lambda t: f" ({t})" if t else "").astype(object)
    wanted = pd.Series(np.where(clear, "no grade (clear)", points(desired, precision)))
    return (
        "a teacher changed this grade in Teams since gradesync last wrote "
        + points(remembered, precision)
        + when
        + ": Teams holds "
        + points(current, precision)
        + ", the gradebook says "
        + wanted
        + OVERRIDE_OUTCOME[policy]
    )


# ---------------------------------------------------------------------------------------------
# undoing a run (plan/undo.py): what happens to each cell the run touched, and why
# ---------------------------------------------------------------------------------------------
# Messages that an apply's journal keeps for a write whose value before it is not the plan's: the
# executor wrote over a grade that changed after the plan was made (``--on-conflict overwrite``),
# or a points outcome appeared during the run. The undo cannot know what Teams held before those.
OVERWRITE_MESSAGE_STARTS = ("overwrote", "a points outcome appeared", "the points outcome had disappeared")
# A row of the undone run whose journal status says nothing was written, and what that means.
UNDO_NOTHING_WRITTEN = {
    "": "the run wrote nothing to this grade (it was refused, a dry run, or stopped before it): nothing "
    "to undo",
    "pending": "the run did not send this grade (carried over): nothing to undo; do not resume the undone "
    "run (`apply --resume`), or it will be sent",
    "unchanged": "Teams already held the run's value when the run checked it: the run wrote nothing here",
    "conflict": "the run left this grade as the teacher had set it (conflict): nothing to undo",
    "failed": "Graph refused the run's write (failed): nothing was written, nothing to undo",
}
UNDO_EXCUSED = (
    "the run excused this submission, and Graph has no action that takes an excuse back (excusing also "
    "deleted its feedback and rubric): a teacher must grade it again in Teams"
)
UNDO_UNCONFIRMED = (
    "the run never confirmed this write (carried over): it may or may not have reached Teams; finish the "
    "run first (`gradesync apply RUN_DIR/plan.json --resume`), then undo it"
)
UNDO_BEFORE_UNKNOWN = (
    "the run wrote over a grade that had changed in Teams after its plan was made, so the grade before "
    "the run is not known: check it in Teams"
)
UNDO_GONE = "the submission no longer exists in Teams: nothing to put back"


def undo_restore(restore: Any, wrote: Any, clear: Any, precision: int) -> Text:
    """The rows the undo writes: what goes back, over what the run wrote."""
    run_wrote = points(wrote, precision)
    back = "undo: puts back " + points(restore, precision) + " (the run wrote " + run_wrote + ")"
    cleared = "undo: clears the grade the run entered (" + run_wrote + "); there was no grade before the run"
    return pd.Series(np.where(np.asarray(clear, dtype=bool), cleared, back), dtype=object)


def undo_published(seen: Any, precision: int) -> Text:
    return (
        "the students have seen "
        + points(seen, precision)
        + " (the grade was returned to them) and a return cannot be taken back: change the grade in "
        "Teams and return it again, so that what they see and what Teams holds agree"
    )


def undo_changed_since(now: Any, wrote: Any, precision: int) -> Text:
    return (
        "changed in Teams since the run: Teams holds "
        + points(now, precision)
        + ", the run wrote "
        + points(wrote, precision)
        + "; the undo leaves it as it is and reports it as a conflict"
    )


def undo_nothing_written(status: Any) -> Text:
    found = pd.Series(status, dtype=object).fillna("").astype(str)
    known = found.map(UNDO_NOTHING_WRITTEN)
    other = "the run's write ended " + found + ": nothing was written, nothing to undo"
    return known.where(known.notna(), other).astype(object)


def undo_already(restore: Any, precision: int) -> Text:
    return "Teams already holds " + points(restore, precision) + ", the value from before the run"


def undo_never_landed(restore: Any, precision: int) -> Text:
    """A write the run never confirmed (carried over) that Teams shows did not happen."""
    return (
        "the run never confirmed this write (carried over), and Teams holds "
        + points(restore, precision)
        + ", the value from before the run: it did not land, nothing to undo"
    )
