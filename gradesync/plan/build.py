"""Stage 3+4, the pure diff/plan core: desired grades + Snapshot → Plan. No I/O.

Every input row becomes exactly one plan row (``PLAN_COLUMNS``, ordered by ``row_key``) with an
action — ``update`` (PATCH the points outcome), ``create`` (POST one), ``excuse``, ``noop`` or
``reject`` — a ``ReasonCode`` (``""`` for a plain change or an unchanged grade) and a message a
registrar can act on (the texts: ``gradesync.plan.messages``).

The rules run in this order, one function each in ``gradesync.plan.rules``; the first reason a row
gets wins (a read-stage reason is never overwritten):

1. read stage: ``missing_identifier``, ``invalid_points``, ``letter_grade``, ``date_not_points``,
   ``duplicate_conflict`` → reject; ``blank_points``, ``duplicate_identical``, ``ignored_row`` → noop;
2. class (``match_classes``): ``unknown_class`` (no Graph class for the key), ``ambiguous_class``;
3. assignment (``match_assignments_of``, ``reject_ungraded``, ``check_assignment_state``):
   ``unknown_assignment``, ``ambiguous_assignment`` (see ``gradesync.plan.match``: among namesakes the
   assigned one wins, noted), ``ungraded_assignment`` (no points grading), ``assignment_publishing``
   (published: Teams is still creating its submissions; noop, carried over), ``assignment_not_assigned``
   (draft, scheduled, inactive: only assigned assignments take grades);
4. student (``match_students_of``): ``unknown_student``, ``ambiguous_student``, ``not_in_class``, and
   for a row with several identifiers (Student ID, then Username…) ``identifier_conflict`` when two
   of them name different students; a match through a later identifier is noted on the row;
5. submission (``find_submissions``, ``reject_missing_submission``), by ``(class, assignment,
   recipient.userId)``: none → ``group_submission`` when the assignment has group submissions (a group
   recipient carries no ``userId``, so a student with no individual submission on an assignment that
   has group submissions is taken to be in a group), else ``no_submission``;
6. excused (``check_excused``): an excused mark on an excused submission, or on one gradesync excused
   lately that Teams does not show yet (asynchronous) → ``already_excused`` (noop); otherwise
   ``submission_excused`` unless ``policy.excused == "allow"``; an excuse that would delete the
   teacher's feedback or rubric → ``excuse_would_delete_feedback`` unless ``policy.excuse_feedback ==
   "delete"`` (then noted);
7. value units (``convert_units``): a percent → max × p / 100; a fraction whose denominator is the
   maximum → its points; another fraction → ``fraction_mismatch`` unless ``[input] fractions =
   "scale"``; either on an assignment without a maximum → ``percent_without_maximum``. Every
   conversion is noted on the row ("95% of 20 → 19");
8. points (``check_percent_twins``, ``check_points``): ``points_possible_mismatch`` when a grade's
   percent twin (Moodle's "(Percentage)" beside "(Real)") disagrees with it against Teams' maximum, or
   when the maximum the file declares (a Points Possible row, a maximum column, a header such as
   ``[Total Pts: 50 Score]``, the mapping) differs from Teams' — unless the row's mapping says scale,
   and then the points are scaled and the note says so; checked before the maximum itself, because it
   explains every over-maximum row of the column; ``above_max_points`` (after the conversion) unless
   ``policy.above_max == "allow"`` (then the row only gets a note), ``blank_points``;
9. duplicates (``check_duplicates``): two rows reaching the same submission (e.g. one keyed by SIS
   id, one by e-mail): different values → both ``duplicate_conflict``; the same value → the first by
   ``row_key`` is kept, the others are ``noop``/``duplicate_identical``;
10. diff (``diff``) against the current points, both as Teams stores them (a Single) rounded to
    ``policy.precision`` (``gradesync.single``): equal → ``noop``;
    a clear → ``update`` to null when there is a grade, else ``noop``/``already_clear``; an excused
    mark (``[policy] excused_marks``) → ``excuse``;
11. three-way sync (``teacher_override``): an ``update`` whose current points differ from what
    gradesync last wrote to that submission (``memory``, loaded by the pipeline from the state
    database) was changed by a teacher in Teams since → ``teacher_override``;
    ``policy.teacher_override`` decides: ``report`` and ``teacher-wins`` keep the teacher's grade
    (``noop``), ``sis-wins`` updates anyway. The row's ``override_policy`` records which. Without a
    remembered value every difference is an ordinary change (first runs);
12. actions (``decide_actions``): a write is ``excuse``, ``update`` (the submission has a points
    outcome, also when its points are null) or ``create``. ``decrease`` marks an update that lowers a
    grade, a clear of an existing grade included.

Everything runs on whole columns: keys are factorized, matching runs once per *distinct* key pair
(``gradesync.plan.match``), and rows pick their results up with integer ``take``s — no per-row Python on
the hot path. Messages are only formatted for the rows that carry a reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from gradesync.config import Settings
from gradesync.groups import counts_per_group, group_rows
from gradesync.models import (
    PLAN_COLUMNS,
    ROSTER_GAP_KEYS,
    SNAPSHOT_COLUMNS,
    Action,
    InputFile,
    Plan,
    Snapshot,
)
from gradesync.plan import rules
from gradesync.plan.arrays import (
    first_match,
    first_positions,
    lookup_sorted,
    objects,
    passthrough,
    take,
    taken,
    texts,
)
from gradesync.plan.encoding import Column, column_codes, encode_column
from gradesync.plan.match import Roster, eligible_members
from gradesync.plan.messages import format_points, text

__all__ = ["apply_operations", "build_plan", "format_points", "plan_is_refused", "plan_rows", "summarize"]


def build_plan(
    desired: pd.DataFrame,
    snapshot: Snapshot,
    settings: Settings,
    *,
    created_at: str,
    graph_base_url: str,
    inputs: Sequence[InputFile],
    memory: pd.DataFrame | None = None,
) -> Plan:
    """Plan every desired row against ``snapshot``. Pure: the same inputs give the same plan.

    ``memory`` (``MEMORY_COLUMNS``): what gradesync last wrote per submission (three-way sync, rule 11);
    ``None`` or empty: nothing remembered, every difference is an ordinary change.
    """
    rows, gaps = plan_rows(desired, snapshot, settings, memory=memory, now=_instant(created_at))
    return Plan(
        rows=rows,
        created_at=created_at,
        graph_base_url=graph_base_url,
        config_hash=settings.config_hash(),
        inputs=list(inputs),
        roster_gaps=gaps,
        strict=settings.policy.strict,
        read_at=read_times(snapshot),
    )


def read_times(snapshot: Snapshot) -> dict[str, str]:
    """``{"class_id/assignment_id": read_at}`` of every assignment whose submissions resolve read."""
    a = snapshot.assignments
    if "read_at" not in a or a.empty:
        return {}
    at = texts(a["read_at"])
    keep = at != ""
    keys = texts(a["class_id"])[keep] + "/" + texts(a["assignment_id"])[keep]
    return dict(zip(keys.tolist(), at[keep].tolist(), strict=True))


def _instant(created_at: str) -> datetime | None:
    """The plan's time (ISO 8601), or None when it cannot be read."""
    try:
        return datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def plan_rows(
    desired: pd.DataFrame,
    snapshot: Snapshot,
    settings: Settings,
    *,
    memory: pd.DataFrame | None = None,
    now: datetime | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The plan rows (``PLAN_COLUMNS``, ordered by ``row_key``) and the roster gaps: the rules in order.
    ``now`` (aware): the plan's time, for what gradesync remembers excusing lately (rule 6)."""
    precision = settings.policy.precision
    d, v = rules.read_desired(desired)
    classes = rules.match_classes(d, v, snapshot, settings)
    assignments = rules.match_assignments_of(d, v, classes, snapshot, settings)
    rules.reject_ungraded(v, classes, assignments)
    rules.check_assignment_state(v, classes, assignments)
    students = rules.match_students_of(d, v, classes, snapshot, settings)
    subs = rules.find_submissions(d, assignments, students, snapshot)
    rules.reject_missing_submission(v, classes, assignments, students, subs)
    memo = rules.remembered(memory, subs.submission_id, now)
    rules.check_excused(d, v, classes, assignments, students, subs, memo, settings)
    rules.convert_units(d, v, assignments, settings)
    rules.check_percent_twins(d, v, assignments, settings)
    rules.check_points(d, v, assignments, settings)
    rules.check_duplicates(d, v, assignments, students, subs, precision)
    change = rules.diff(d, v, assignments, students, subs, precision)
    overridden = rules.teacher_override(d, v, subs, change, memo, settings)
    decided = rules.decide_actions(d, v, change, overridden, settings)
    out = {
        "row_key": d.frame["row_key"].to_numpy(dtype="int64"),
        "source_file": d.source_file,
        "source_sheet": passthrough(d.frame["source_sheet"]),
        "source_row": d.source_row,
        "source_column": passthrough(d.frame["source_column"]),
        "class_key": d.class_key,
        "assignment_key": d.assignment_key,
        "student_key": d.student_key,
        "points_raw": passthrough(d.frame["points_raw"]),
        "desired_points": d.points,
        "clear": d.clear,
        "excuse": d.excuse,
        "points_possible": d.points_possible,
        "class_id": classes.class_id,
        "class_name": classes.class_name,
        "assignment_id": assignments.assignment_id,
        "assignment_name": assignments.assignment_name,
        "max_points": assignments.max_points,
        "user_id": students.user_id,
        "student_name": students.student_name,
        "submission_id": subs.submission_id,
        "outcome_id": subs.outcome_id,
        "before_points": subs.before_points,
        "before_modified": subs.before_modified,
        "action": decided.action,
        "reason": v.reason,
        "message": v.message,
        "note": v.note,
        "decrease": decided.decrease,
        "last_written_points": memo.points,
        "override_policy": decided.override_policy,
    }
    # one block per column: no consolidation copy of 1.2M-row object columns
    frame = pd.DataFrame(
        {k: pd.Series(np.asarray(out[k], dtype=dt), dtype=dt, copy=False) for k, dt in PLAN_COLUMNS.items()},
        copy=False,
    )
    return frame, roster_gaps(snapshot, subs, students.roster)


def roster_gaps(snapshot: Snapshot, found: rules.Submissions, coded: Roster) -> list[dict[str, Any]]:
    """Roster students (class members with a submission) of each touched assignment with no input row,
    ordered by class name, class id, assignment name, assignment id, student name, user id (missing
    names last; equal keys in the submissions' order)."""
    subs = snapshot.submissions
    sub_pos, row_ca, sub_ca, individual = found.pos, found.row_pair, found.sub_pair, found.individual
    if subs.empty:
        return []
    touched = np.zeros(int(sub_ca.max(initial=-1)) + 2, dtype=bool)  # last slot: -1
    touched[row_ca[row_ca >= 0]] = True
    present = np.zeros(len(subs), dtype=bool)
    present[sub_pos[sub_pos >= 0]] = True
    gap = np.flatnonzero(individual & touched[sub_ca] & ~present)
    if not len(gap):
        return []
    class_id, assignment_id, user_id = (
        texts(taken(subs[k], gap, None)) for k in ("class_id", "assignment_id", "user_id")
    )
    m = snapshot.members
    at = _on_roster(m, coded, class_id, user_id)
    on_roster = at >= 0  # a submission of nobody on the class's roster is no gap
    keep = np.flatnonzero(on_roster)
    c, a = snapshot.classes, snapshot.assignments
    columns = {
        "class_id": class_id[keep],
        "class_name": _class_names(c, class_id[keep]),
        "assignment_id": assignment_id[keep],
        "assignment_name": take(
            objects(a["display_name"]),
            first_match(
                (texts(a["class_id"]), texts(a["assignment_id"])), (class_id[keep], assignment_id[keep])
            ),
            None,
        ),
        "user_id": user_id[keep],
        "student_name": take(objects(m["display_name"]), at[keep], None),
        "sis_id": take(objects(m["sis_id"]), at[keep], None),
        "current_points": take(subs["points"].to_numpy(dtype="float64"), gap[keep], np.nan),
    }
    order = _sort_order(
        [
            columns[k]
            for k in ("class_name", "class_id", "assignment_name", "assignment_id", "student_name", "user_id")
        ]
    )
    values = []
    for col in ROSTER_GAP_KEYS:
        v = columns[col][order].astype(object)  # float64 → Python floats
        missing = pd.isna(v)
        if missing.any():
            v[missing] = None
        values.append(v.tolist())
    return [dict(zip(ROSTER_GAP_KEYS, vals, strict=True)) for vals in zip(*values, strict=True)]


def _on_roster(members: pd.DataFrame, coded: Roster, class_id: np.ndarray, user_id: np.ndarray) -> np.ndarray:
    """Per (class id, user id): the member row of its first eligible member, -1 for none."""
    if not len(members):
        return np.full(len(class_id), -1, dtype="int64")
    eligible = members.index.isin(eligible_members(members).index)
    # the few users and classes asked about, and each member's code among them (-1: not asked)
    gc, gc_uniq = pd.factorize(class_id)
    gu, gu_uniq = pd.factorize(user_id)
    m_class = pd.Index(np.asarray(gc_uniq, dtype=object), dtype=object).get_indexer(coded.class_uniq)
    m_user = pd.Index(np.asarray(gu_uniq, dtype=object), dtype=object).get_indexer(coded.user_uniq)
    mc, mu = take(m_class, coded.class_codes, -1), take(m_user, coded.user_codes, -1)
    rows = np.flatnonzero(eligible & (mc >= 0) & (mu >= 0))
    nu = max(len(gu_uniq), 1)
    space, first = first_positions(mc[rows].astype("int64") * nu + mu[rows])
    return lookup_sorted(
        space, rows[first], np.where((gc >= 0) & (gu >= 0), gc.astype("int64") * nu + gu, -1)
    )


def _class_names(classes: pd.DataFrame, class_ids: np.ndarray) -> np.ndarray:
    """The name of each class id (its first row in ``classes``; None for an id it does not hold)."""
    ids = pd.Index(texts(classes["class_id"]), dtype=object)
    first = ~ids.duplicated()
    at = ids[first].get_indexer(class_ids) if len(ids) else np.full(len(class_ids), -1)
    return take(objects(classes["class_name"])[first], at, None)


def _sort_order(keys: list[np.ndarray]) -> np.ndarray:
    """A stable sort by ``keys`` (text columns, the first the most significant; missing values last)."""
    codes = []
    for values in keys:
        found, _ = pd.factorize(values, sort=True)
        codes.append(np.where(found < 0, found.max(initial=-1) + 1, found))
    return np.lexsort(codes[::-1])


# ---------------------------------------------------------------------------------------------
# after planning
# ---------------------------------------------------------------------------------------------
def plan_is_refused(plan: Plan) -> bool:
    """True when the plan was made in strict mode and any row is rejected: apply nothing."""
    return bool(plan.strict and (plan.rows["action"] == Action.REJECT.value).any())


SUMMARY_COLUMNS = ("action", "reason", "class_key", "class_name", "assignment_key", "assignment_name")


def summarize(plan: Plan, columns: Mapping[str, Column] | None = None) -> dict[str, Any]:
    """Counts per action, per reason, per class and per assignment (JSON-ready, stable order).
    ``columns``: the plan's rows as ``encoding.encode_columns`` gives them, when the caller has them
    (the plan file does): each count then works on the columns' codes, not on every row's text."""
    rows = plan.rows
    if columns is None:
        columns = {name: encode_column(rows[name], PLAN_COLUMNS[name]) for name in SUMMARY_COLUMNS}
    actions = [a.value for a in Action]
    codes, dictionary = column_codes(columns["action"])
    known = np.array([actions.index(v) if v in actions else -1 for v in dictionary.tolist()], dtype=np.intp)
    action_codes = known[codes] if len(known) else np.full(len(rows), -1, dtype=np.intp)
    return {
        "rows": len(rows),
        "actions": dict(
            zip(
                actions,
                np.bincount(action_codes[action_codes >= 0], minlength=len(actions)).tolist(),
                strict=True,
            )
        ),
        "reasons": _reason_counts(columns["reason"]),
        "decreases": int(rows["decrease"].sum()),
        "by_class": _counts_by(columns, ["class_key", "class_name"], action_codes, actions),
        "by_assignment": _counts_by(
            columns, ["class_key", "class_name", "assignment_key", "assignment_name"], action_codes, actions
        ),
        "roster_gaps": len(plan.roster_gaps),
        "strict": plan.strict,
        "refused": plan_is_refused(plan),
    }


def _reason_counts(column: Column) -> dict[str, int]:
    """Rows per reason (a text that is not empty), in the reasons' order."""
    codes, dictionary = column_codes(column)
    counts = np.bincount(codes, minlength=len(dictionary)).tolist()
    found: dict[str, int] = {}
    for value, count in zip(dictionary.tolist(), counts, strict=True):
        if isinstance(value, str) and value and count:
            found[value] = found.get(value, 0) + count
    return dict(sorted(found.items()))


def _sorted_codes(column: Column, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a code per row of ``rows``, the distinct texts they point into, sorted): a missing value
    counts as ""."""
    codes, dictionary = column_codes(column)
    shown = texts(["" if v is None or (isinstance(v, float) and v != v) else v for v in dictionary.tolist()])  # noqa: PLR0124
    if not len(shown):
        return np.zeros(len(rows), dtype=np.intp), texts([""])
    rank, distinct = pd.factorize(shown, sort=True)
    return rank[codes[rows]], np.asarray(distinct, dtype=object)


def _counts_by(
    columns: Mapping[str, Column], keys: list[str], action_codes: np.ndarray, actions: list[str]
) -> list[dict[str, Any]]:
    """Rows per action for each distinct ``keys`` tuple, in sorted order (a missing key sorts and
    shows as ""/None), only tuples with a row of a known action. Each key's distinct texts are
    sorted, so the tuples' codes sort as the tuples do."""
    known = np.flatnonzero(action_codes >= 0)
    if not len(known):
        return []
    key_values = [_sorted_codes(columns[key], known) for key in keys]
    group, first = group_rows([c for c, _ in key_values], [len(d) for _, d in key_values], sort=True)
    table = counts_per_group(group, len(first), action_codes[known], len(actions)).tolist()
    shown = [distinct[codes[first]].tolist() for codes, distinct in key_values]
    out = []
    for g, row in enumerate(table):
        entry: dict[str, Any] = {}
        for key, values in zip(keys, shown, strict=True):
            entry[key] = values[g] if values[g] != "" else None
        entry.update(zip(actions, row, strict=True))
        entry["rows"] = sum(row)
        out.append(entry)
    return out


def apply_operations(snapshot: Snapshot, plan: Plan) -> Snapshot:
    """What Graph would hold after every update/create of ``plan`` succeeded (pure simulation).

    An update sets the outcome's points (a clear sets them to null); a create adds a points outcome
    with id ``created-<submission_id>``. Modified outcomes get ``last_modified`` = ``plan.created_at``.
    """
    rows = plan.rows
    writes = rows[rows["action"].isin([Action.UPDATE.value, Action.CREATE.value])]
    subs = snapshot.submissions.copy()
    if writes.empty:
        return dataclasses.replace(snapshot, submissions=subs)
    keys = ["class_id", "assignment_id", "submission_id"]
    index = pd.MultiIndex.from_arrays([texts(subs[k]) for k in keys])
    pos = index.get_indexer(pd.MultiIndex.from_arrays([texts(writes[k]) for k in keys]))
    if (pos < 0).any():
        missing = writes.loc[pos < 0, "submission_id"].tolist()[:5]
        raise ValueError(f"plan writes submissions the snapshot does not hold: {missing}")
    new_points = np.where(writes["clear"].to_numpy(dtype=bool), np.nan, writes["desired_points"].to_numpy())
    points = subs["points"].to_numpy(dtype="float64").copy()
    outcome = objects(subs["outcome_id"]).copy()
    modified = objects(subs["last_modified"]).copy()
    points[pos] = new_points
    created = writes["action"].to_numpy() == Action.CREATE.value
    outcome[pos[created]] = "created-" + text(writes["submission_id"].to_numpy(dtype=object)[created])
    modified[pos] = plan.created_at
    subs["points"] = pd.Series(points, index=subs.index, dtype="float64")
    subs["outcome_id"] = pd.Series(outcome, index=subs.index, dtype=object)
    subs["last_modified"] = pd.Series(modified, index=subs.index, dtype=object)
    return dataclasses.replace(snapshot, submissions=subs.astype(SNAPSHOT_COLUMNS["submissions"]))
