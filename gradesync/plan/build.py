"""Stage 3+4, the pure diff/plan core: desired grades + Snapshot → Plan. No I/O.

Every input row becomes exactly one plan row (``PLAN_COLUMNS``, ordered by ``row_key``) with an
action — ``update`` (PATCH the points outcome), ``create`` (POST one), ``noop`` or ``reject`` — a
``ReasonCode`` (``""`` for a plain change or an unchanged grade) and a message a registrar can act on.

The pipeline, first reason wins (a read-stage reason is never overwritten):

1. read stage: ``missing_identifier``, ``invalid_points``, ``duplicate_conflict`` → reject;
   ``blank_points``, ``duplicate_identical`` → noop;
2. class: ``unknown_class`` (no Graph class for the key), ``ambiguous_class`` (more than one);
3. assignment: ``unknown_assignment``, ``ambiguous_assignment`` (see ``gradesync.plan.match``),
   ``ungraded_assignment`` (no points grading);
4. student: ``unknown_student``, ``ambiguous_student``, ``not_in_class``;
5. submission, by ``(class, assignment, recipient.userId)``: none → ``group_submission`` when the
   assignment has group submissions (a group recipient carries no ``userId``, so a student with no
   individual submission on an assignment that has group submissions is taken to be in a group),
   else ``no_submission``;
6. ``submission_excused`` (status ``excused``) unless ``policy.excused == "allow"``;
7. ``points_possible_mismatch``: a wide file's "Points Possible" differs from Teams' maximum
   (checked before the maximum itself, because it explains every over-maximum row of the column);
8. ``above_max_points`` unless ``policy.above_max == "allow"`` (then the row only gets a note);
9. two rows reaching the same submission (e.g. one keyed by SIS id, one by e-mail): different values
   → both ``duplicate_conflict``; the same value → the first by ``row_key`` is kept, the others are
   ``noop``/``duplicate_identical``;
10. diff against the current points, both rounded to ``policy.precision``: equal → ``noop``; the
    submission has a points outcome → ``update`` (also when its points are null), else ``create``;
    a clear → ``update`` to null when there is a grade, else ``noop``/``already_clear``;
    an excused mark (``[policy] excused_marks``) → ``excuse``, or ``noop``/``already_excused`` when
    the submission is excused already (checked before ``submission_excused``, step 6);
11. three-way sync: an ``update`` whose current points differ from what gradesync last wrote to that
    submission (``memory``, loaded by the pipeline from the state database) was changed by a teacher
    in Teams since → ``teacher_override``; ``policy.teacher_override`` decides: ``report`` and
    ``teacher-wins`` keep the teacher's grade (``noop``), ``sis-wins`` updates anyway. The row's
    ``override_policy`` records which. Without a remembered value every difference is an ordinary
    change (first runs).

``decrease`` marks an update that lowers a grade, a clear of an existing grade included.

Everything runs on whole columns: keys are factorized, matching runs once per *distinct* key pair
(``gradesync.plan.match``), and rows pick their results up with integer ``take``s — no per-row Python on
the hot path. Messages are only formatted for the rows that carry a reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas._libs import lib

from gradesync.config import Settings
from gradesync.models import (
    MEMORY_COLUMNS,
    PLAN_COLUMNS,
    REJECT_REASONS_NOOP,
    ROSTER_GAP_KEYS,
    SNAPSHOT_COLUMNS,
    Action,
    InputFile,
    Plan,
    ReasonCode,
    Snapshot,
)
from gradesync.plan.match import eligible_members, match_assignments, match_students

R = ReasonCode
NOOP_REASONS = frozenset(r.value for r in REJECT_REASONS_NOOP)
MESSAGE_UPDATE = "the grade in Teams will be changed"
MESSAGE_CREATE = "the grade will be entered in Teams (no points yet)"
MESSAGE_SAME = "Teams already has this grade"
MESSAGE_EXCUSE = "the submission will be excused in Teams"
_OVERRIDE_OUTCOME = {
    "report": "; the teacher's grade is kept and listed for review: settle it in the gradebook or in Teams "
    '([policy] teacher_override = "report")',
    "teacher-wins": '; the teacher\'s grade is kept ([policy] teacher_override = "teacher-wins")',
    "sis-wins": "; it will be overwritten with the gradebook's value "
    '([policy] teacher_override = "sis-wins")',
}


# ---------------------------------------------------------------------------------------------
# small vectorised helpers
# ---------------------------------------------------------------------------------------------
def _obj(values: Any) -> np.ndarray:
    """An object array of Python values with every missing value as ``None`` (copied only if needed)."""
    arr = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    missing = pd.isna(arr)
    if missing.any():
        arr = arr.copy()
        arr[missing] = None
    return arr


def _text(values: Any) -> np.ndarray:
    """An object array of ``str`` with missing values as ``""`` (copied only if needed)."""
    arr = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    if len(arr) and lib.is_string_array(arr, skipna=False):  # all text: nothing to replace (fast path)
        return arr
    missing = pd.isna(arr)
    if missing.any():
        arr = arr.copy()
        arr[missing] = ""
    return arr


def _pass(values: pd.Series) -> np.ndarray:
    """A column carried through unchanged: zero-copy when it already is ``object`` (the contract)."""
    return values.to_numpy() if values.dtype == object else _obj(values)


class _Lazy:
    """Labels for messages, computed only for the rows that get one: ``label[idx]``."""

    def __init__(self, build: Any) -> None:
        self.build = build

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.build(idx), dtype=object)


def _class_key_pairs(
    c_codes: np.ndarray, keys: np.ndarray, class_ids: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Code the distinct (class, key) pairs of the rows: matching then runs once per pair.

    Returns each row's pair code and, per pair, its class id (None for an unresolved class), its
    key, and whether the class resolved.
    """
    k_codes, k_uniq = pd.factorize(keys)
    k_uniq = np.asarray(k_uniq, dtype=object)
    nk = max(len(k_uniq), 1)
    pair_codes, pair_uniq = pd.factorize(c_codes.astype("int64") * nk + k_codes)
    pair_uniq = np.asarray(pair_uniq, dtype="int64")
    pair_class_id = _take(class_ids, pair_uniq // nk, None)
    pair_key = k_uniq[pair_uniq % nk] if len(k_uniq) else np.empty(0, dtype=object)
    return pair_codes, pair_class_id, pair_key, pd.notna(pair_class_id)


def _take(values: npt.ArrayLike, pos: np.ndarray, fill: Any) -> np.ndarray:
    """``values[pos]`` where ``pos >= 0``, ``fill`` elsewhere."""
    arr = np.asarray(values)
    if len(arr) == 0:
        out = np.empty(len(pos), dtype=arr.dtype if arr.dtype != object else object)
        out[...] = fill
        return out
    out = arr[np.where(pos >= 0, pos, 0)]
    out = out.copy()
    out[pos < 0] = fill
    return out


def format_points(value: float, precision: int = 6) -> str:
    """``87.0`` → ``"87"``, ``87.50`` → ``"87.5"``: points as a registrar writes them."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "no grade"
    text = format(float(value), f".{precision}f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt(values: np.ndarray, precision: int) -> pd.Series:
    """``format_points`` of each value, formatted once per distinct value."""
    floats = np.asarray(values, dtype="float64")  # None → NaN: both read "no grade"
    codes, uniq = pd.factorize(floats.view("int64"))  # by bit pattern: -0.0 stays "-0"
    shown = np.array(
        [format_points(v, precision) for v in np.asarray(uniq, dtype="int64").view("float64").tolist()]
        or [""],
        dtype=object,
    )
    return pd.Series(shown[codes] if len(codes) else shown[:0], dtype=object)


def _s(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype=object).fillna("").astype(object)


def _quoted(values: np.ndarray) -> pd.Series:
    return '"' + _s(values) + '"'


def _class_label(keys: np.ndarray, names: np.ndarray) -> pd.Series:
    """``SEC-1001 (Algebra I - P1)``, or just the key when the name is unknown."""
    k, n = _s(keys), _s(names)
    return k.where(n == "", k + " (" + n + ")")


def _student_label(keys: np.ndarray, names: np.ndarray) -> pd.Series:
    """``"000123" (Ada Lovelace)``."""
    q, n = _quoted(keys), _s(names)
    return q.where(n == "", q + " (" + n + ")")


def _lost_zeros_hint(keys: np.ndarray, members: pd.DataFrame) -> pd.Series:
    """For an all-digit key that is a member id without its leading zeros (Excel turned ``000123``
    into the number ``123``): a hint naming the id it probably was; "" otherwise. Per distinct key."""
    out = pd.Series("", index=range(len(keys)), dtype=object)
    k = _s(keys)
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


def _round(values: np.ndarray, precision: int) -> np.ndarray:
    return np.round(values.astype("float64"), precision)


@dataclasses.dataclass
class _Rows:
    """The working columns of the pipeline (numpy arrays, one entry per input row)."""

    reason: np.ndarray
    message: np.ndarray
    note: np.ndarray
    _open: np.ndarray = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self._open = self.reason == ""

    def open(self) -> np.ndarray:
        """Rows without a reason yet (a copy: use ``set`` to give one)."""
        return self._open.copy()

    def set(self, mask: np.ndarray, code: ReasonCode, build: Any) -> np.ndarray:
        """Give ``code`` to the rows of ``mask`` that have no reason yet; ``build(idx)`` → messages."""
        idx = np.flatnonzero(mask & self._open)
        if len(idx):
            self.reason[idx] = code.value
            self.message[idx] = np.asarray(build(idx), dtype=object)
            self._open[idx] = False
        return idx

    def at(self, idx: np.ndarray) -> np.ndarray:
        """A row mask from row positions."""
        mask = np.zeros(len(self.reason), dtype=bool)
        mask[idx] = True
        return mask

    def add_note(self, idx: np.ndarray, text: Any) -> None:
        if not len(idx):
            return
        old = _s(self.note[idx])
        new = pd.Series(np.asarray(text, dtype=object), dtype=object)
        self.note[idx] = np.asarray(new.where(old == "", old + "; " + new), dtype=object)


# ---------------------------------------------------------------------------------------------
# build_plan
# ---------------------------------------------------------------------------------------------
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
    rows, gaps = plan_rows(desired, snapshot, settings, memory=memory)
    return Plan(
        rows=rows,
        created_at=created_at,
        graph_base_url=graph_base_url,
        config_hash=settings.config_hash(),
        inputs=list(inputs),
        roster_gaps=gaps,
        strict=settings.policy.strict,
    )


def plan_rows(
    desired: pd.DataFrame, snapshot: Snapshot, settings: Settings, *, memory: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The plan rows (``PLAN_COLUMNS``, ordered by ``row_key``) and the roster gaps."""
    precision = settings.policy.precision
    d = desired
    if len(d) and not d["row_key"].is_monotonic_increasing:
        d = d.sort_values("row_key", kind="stable")
    d = d.reset_index(drop=True)
    n = len(d)

    class_key, assignment_key, student_key = (
        _text(d[c]) for c in ("class_key", "assignment_key", "student_key")
    )
    w = _Rows(
        reason=_text(d["reason"]).copy(), message=_pass(d["message"]).copy(), note=_text(d["note"]).copy()
    )
    desired_points = d["desired_points"].to_numpy(dtype="float64")
    points_possible = d["points_possible"].to_numpy(dtype="float64")
    clear = d["clear"].to_numpy(dtype=bool)
    excuse = d["excuse"].to_numpy(dtype=bool) if "excuse" in d else np.zeros(n, dtype=bool)
    source_file = _pass(d["source_file"])
    source_row = d["source_row"].to_numpy(dtype="int64")

    # --- 2. classes: one answer per distinct class key --------------------------------------
    c_codes, c_uniq = pd.factorize(class_key)
    c_uniq = np.asarray(c_uniq, dtype=object)
    classes = snapshot.classes
    cl = pd.DataFrame(
        {k: _text(classes[k]) for k in ("class_key", "class_id", "class_name")}, dtype=object
    ).drop_duplicates(["class_key", "class_id"])
    by_key = cl.groupby("class_key", sort=False).agg(
        n=("class_id", "size"), class_id=("class_id", "first"), class_name=("class_name", "first")
    )
    by_key = by_key.reindex(pd.Index(c_uniq, dtype=object))
    cu_n = by_key["n"].fillna(0).to_numpy(dtype="int64")
    cu_id = np.where(cu_n == 1, by_key["class_id"].to_numpy(dtype=object), None)
    cu_name = np.where(cu_n == 1, by_key["class_name"].to_numpy(dtype=object), None)
    class_id = _take(cu_id, c_codes, None)
    class_name = _take(cu_name, c_codes, None)
    row_cn = _take(cu_n, c_codes, 0)

    by = settings.match.class_by
    w.set(
        row_cn == 0,
        R.UNKNOWN_CLASS,
        lambda i: "class " + _quoted(class_key[i]) + f" was not found in Teams (looked up by {by})",
    )
    if (row_cn > 1).any():
        names = cl.groupby("class_key", sort=False)["class_name"].agg(lambda s: ", ".join(sorted(s)))
        w.set(
            row_cn > 1,
            R.AMBIGUOUS_CLASS,
            lambda i: (
                "class "
                + _quoted(class_key[i])
                + " matches "
                + pd.Series(row_cn[i]).astype(str).astype(object)
                + " classes in Teams: "
                + pd.Series(class_key[i], dtype=object).map(names).fillna("").astype(object)
            ),
        )
    class_label = _Lazy(lambda i: _class_label(class_key[i], class_name[i]))

    # --- 3. assignments: match distinct (class, assignment key) pairs ------------------------
    pa_codes, pa_class_id, pa_key, pa_ok = _class_key_pairs(c_codes, assignment_key, cu_id)
    asg = snapshot.assignments
    a_frame = pd.DataFrame(
        {
            "class_id": _text(asg["class_id"]),
            "assignment_id": _text(asg["assignment_id"]),
            "display_name": _obj(asg["display_name"]),
            "graded": asg["graded"].to_numpy(dtype=bool),
            "max_points": asg["max_points"].to_numpy(dtype="float64"),
        }
    ).drop_duplicates(["class_id", "assignment_id"])
    matched = match_assignments(
        pd.DataFrame({"class_id": pa_class_id[pa_ok], "assignment_key": pa_key[pa_ok]}, dtype=object),
        a_frame,
        settings.match.assignment_by,
    )
    details = matched.merge(a_frame, on=["class_id", "assignment_id"], how="left")
    pa_n = len(pa_key)
    pa_aid = np.full(pa_n, None, dtype=object)
    pa_reason = np.full(pa_n, "", dtype=object)
    pa_name = np.full(pa_n, None, dtype=object)
    pa_graded = np.zeros(pa_n, dtype=bool)
    pa_max = np.full(pa_n, np.nan)
    pa_aid[pa_ok] = _obj(details["assignment_id"])
    pa_reason[pa_ok] = _text(details["reason"])
    pa_name[pa_ok] = _obj(details["display_name"])
    pa_graded[pa_ok] = details["graded"].fillna(False).to_numpy(dtype=bool)
    pa_max[pa_ok] = details["max_points"].to_numpy(dtype="float64")

    pa_has_aid = pd.notna(pa_aid)
    assignment_id = pa_aid[pa_codes]
    assignment_name = pa_name[pa_codes]
    max_points = pa_max[pa_codes]
    row_areason = pa_reason[pa_codes]
    w.set(
        row_areason == R.UNKNOWN_ASSIGNMENT.value,
        R.UNKNOWN_ASSIGNMENT,
        lambda i: "no assignment " + _quoted(assignment_key[i]) + " in " + class_label[i],
    )
    w.set(
        row_areason == R.AMBIGUOUS_ASSIGNMENT.value,
        R.AMBIGUOUS_ASSIGNMENT,
        lambda i: (
            "assignment "
            + _quoted(assignment_key[i])
            + " matches more than one assignment in "
            + class_label[i]
            + "; give them different names in Teams or use the assignment id"
        ),
    )
    w.set(
        (pa_has_aid & ~pa_graded)[pa_codes],
        R.UNGRADED_ASSIGNMENT,
        lambda i: _quoted(assignment_name[i]) + " in " + class_label[i] + " is not graded with points",
    )
    asg_label = _Lazy(
        lambda i: _quoted(np.where(pd.notna(assignment_name[i]), assignment_name[i], assignment_key[i]))
    )

    # --- 4. students: match distinct (class, student key) pairs ------------------------------
    ps_codes, ps_class_id, ps_key, ps_ok = _class_key_pairs(c_codes, student_key, cu_id)
    members = snapshot.members
    smatch = match_students(
        pd.DataFrame({"class_id": ps_class_id[ps_ok], "student_key": ps_key[ps_ok]}, dtype=object),
        members,
        settings.match.student_by,
    )
    names = pd.DataFrame(
        {
            "class_id": _text(members["class_id"]),
            "user_id": _text(members["user_id"]),
            "display_name": _obj(members["display_name"]),
        }
    ).drop_duplicates(["class_id", "user_id"])
    sdetails = smatch.merge(names, on=["class_id", "user_id"], how="left")
    ps_n = len(ps_key)
    ps_uid = np.full(ps_n, None, dtype=object)
    ps_reason = np.full(ps_n, "", dtype=object)
    ps_name = np.full(ps_n, None, dtype=object)
    ps_uid[ps_ok] = _obj(sdetails["user_id"])
    ps_reason[ps_ok] = _text(sdetails["reason"])
    ps_name[ps_ok] = _obj(sdetails["display_name"])

    ps_has_uid = pd.notna(ps_uid)
    user_id = ps_uid[ps_codes]
    student_name = ps_name[ps_codes]
    row_sreason = ps_reason[ps_codes]
    student_label = _Lazy(lambda i: _student_label(student_key[i], student_name[i]))
    order = ", ".join(settings.match.student_by)
    w.set(
        row_sreason == R.UNKNOWN_STUDENT.value,
        R.UNKNOWN_STUDENT,
        lambda i: (
            "student "
            + _quoted(student_key[i])
            + f" was not found in Teams (looked up by {order})"
            + _lost_zeros_hint(student_key[i], members)
        ),
    )
    w.set(
        row_sreason == R.AMBIGUOUS_STUDENT.value,
        R.AMBIGUOUS_STUDENT,
        lambda i: (
            "student " + _quoted(student_key[i]) + " matches more than one student in " + class_label[i]
        ),
    )
    w.set(
        row_sreason == R.NOT_IN_CLASS.value,
        R.NOT_IN_CLASS,
        lambda i: "student " + _quoted(student_key[i]) + " is not on the roster of " + class_label[i],
    )

    # --- 5. submissions, by integer keys (class+assignment code, user code) ------------------
    subs = snapshot.submissions
    sub_class, sub_aid, sub_uid = (
        subs[c].to_numpy(dtype=object) for c in ("class_id", "assignment_id", "user_id")
    )
    sc_codes, sc_uniq = pd.factorize(sub_class)
    sa_codes, sa_uniq = pd.factorize(sub_aid)
    su_codes, su_uniq = pd.factorize(sub_uid)
    nsa, nsu = max(len(sa_uniq), 1), max(len(su_uniq), 1)
    # dense codes of the (class, assignment) pairs of the submissions: 0..n_ca-1, -1 = missing
    raw_ca = np.where((sc_codes >= 0) & (sa_codes >= 0), sc_codes.astype("int64") * nsa + sa_codes, -1)
    sub_ca, ca_uniq = pd.factorize(raw_ca, use_na_sentinel=True)
    ca_index = pd.Index(np.asarray(ca_uniq, dtype="int64"))
    sub_ca = np.where(raw_ca >= 0, sub_ca, -1)
    n_ca = len(ca_uniq)
    pa_sc = pd.Index(np.asarray(sc_uniq, dtype=object), dtype=object).get_indexer(pa_class_id)
    pa_sa = pd.Index(np.asarray(sa_uniq, dtype=object), dtype=object).get_indexer(pa_aid)
    pa_raw = np.where(pa_has_aid & (pa_sc >= 0) & (pa_sa >= 0), pa_sc.astype("int64") * nsa + pa_sa, -1)
    pa_ca = np.where(pa_raw >= 0, ca_index.get_indexer(pa_raw), -1) if n_ca else np.full(len(pa_raw), -1)
    ps_su = pd.Index(np.asarray(su_uniq, dtype=object), dtype=object).get_indexer(ps_uid)
    ps_su = np.where(ps_has_uid, ps_su, -1)

    is_group = subs["recipient_type"].to_numpy(dtype=object) == "group"
    individual = ~is_group & (sub_ca >= 0) & (su_codes >= 0)
    sub_key = np.where(individual, sub_ca * nsu + su_codes, -1)
    first = individual & ~pd.Series(sub_key).duplicated().to_numpy()
    key_index = pd.Index(sub_key[first])
    key_pos = np.flatnonzero(first)
    row_ca = pa_ca[pa_codes]
    row_su = ps_su[ps_codes]
    row_key_sub = np.where((row_ca >= 0) & (row_su >= 0), row_ca * nsu + row_su, -1)
    found = key_index.get_indexer(row_key_sub) if len(key_index) else np.full(n, -1)
    sub_pos = np.where((row_key_sub >= 0) & (found >= 0), _take(key_pos, found, -1), -1)

    submission_id = _take(_obj(subs["submission_id"]), sub_pos, None)
    outcome_id = _take(_obj(subs["outcome_id"]), sub_pos, None)
    before_points = _take(subs["points"].to_numpy(dtype="float64"), sub_pos, np.nan)
    before_modified = _take(_obj(subs["last_modified"]), sub_pos, None)
    sub_status = _take(subs["status"].to_numpy(dtype=object), sub_pos, "")

    ca_group = np.zeros(n_ca + 1, dtype=bool)  # last slot: "no pair" (-1)
    ca_group[sub_ca[is_group & (sub_ca >= 0)]] = True
    row_group = ca_group[row_ca]
    resolved = pa_has_aid[pa_codes] & ps_has_uid[ps_codes]
    where = lambda i: asg_label[i] + " in " + class_label[i]  # noqa: E731
    w.set(
        resolved & (sub_pos < 0) & row_group,
        R.GROUP_SUBMISSION,
        lambda i: (
            where(i) + " is a group assignment; its grades belong to the group's submission, "
            "which gradesync does not write"
        ),
    )
    w.set(
        resolved & (sub_pos < 0),
        R.NO_SUBMISSION,
        lambda i: (
            "student "
            + student_label[i]
            + " has no submission for "
            + where(i)
            + "; the assignment may not be assigned to them"
        ),
    )

    # --- 6-8. policy and points checks -----------------------------------------------------
    excused = (sub_pos >= 0) & (sub_status == "excused")
    w.set(
        excuse & excused,
        R.ALREADY_EXCUSED,
        lambda i: "student " + student_label[i] + " is already excused from " + where(i),
    )
    if settings.policy.excused == "reject":
        w.set(
            excused,
            R.SUBMISSION_EXCUSED,
            lambda i: (
                "student "
                + student_label[i]
                + " is excused from "
                + where(i)
                + ' (policy.excused = "reject")'
            ),
        )
    else:
        w.add_note(np.flatnonzero(excused & w.open()), "the submission is excused; graded anyway by policy")

    has_max = ~np.isnan(max_points)
    mismatch = (
        has_max
        & ~np.isnan(points_possible)
        & (_round(points_possible, precision) != _round(max_points, precision))
    )
    w.set(
        mismatch,
        R.POINTS_POSSIBLE_MISMATCH,
        lambda i: (
            "the file gives "
            + _fmt(points_possible[i], precision)
            + " points possible for "
            + asg_label[i]
            + ", but Teams has a maximum of "
            + _fmt(max_points[i], precision)
            + " points"
        ),
    )
    above = has_max & ~clear & (_round(desired_points, precision) > _round(max_points, precision))

    def above_msg(i: np.ndarray) -> pd.Series:
        return (
            _fmt(desired_points[i], precision)
            + " is above the maximum of "
            + _fmt(max_points[i], precision)
            + " points for "
            + asg_label[i]
        )

    if settings.policy.above_max == "reject":
        w.set(above, R.ABOVE_MAX_POINTS, above_msg)
    else:
        i = np.flatnonzero(above & w.open())
        w.add_note(i, above_msg(i) + '; allowed by policy.above_max = "allow"' if len(i) else [])
    w.set(
        ~clear & ~excuse & np.isnan(desired_points),
        R.BLANK_POINTS,
        lambda i: pd.Series(["blank points: no change"] * len(i), dtype=object),
    )

    # --- 9. two rows reaching the same submission ---------------------------------------------
    value = np.where(clear, -np.inf, np.where(excuse, np.inf, _round(desired_points, precision)))
    live = w.open() & (sub_pos >= 0)
    live_idx = np.flatnonzero(live)
    dup = pd.Series(sub_pos[live_idx]).duplicated(keep=False).to_numpy()
    if dup.any():
        _duplicates(
            w,
            live_idx[dup],
            sub_pos,
            value,
            clear,
            source_file,
            source_row,
            student_label,
            asg_label,
            precision,
            excuse,
        )

    # --- 10. diff --------------------------------------------------------------------------
    open_ = w.open()
    cur = _round(before_points, precision)
    has_grade = ~np.isnan(before_points)
    has_outcome = pd.notna(outcome_id)
    w.set(
        clear & ~has_grade,
        R.ALREADY_CLEAR,
        lambda i: "no grade to clear for " + student_label[i] + " on " + asg_label[i],
    )
    same = open_ & ~clear & ~excuse & (value == cur)
    write = w.open() & ~same

    # --- 11. three-way sync: changed by a teacher since gradesync last wrote it -------------
    mem_points, mem_at, has_mem = _remembered(memory, submission_id)
    mem_round = _round(mem_points, precision)
    differs = ~((np.isnan(cur) & np.isnan(mem_round)) | (cur == mem_round))
    policy = settings.policy.teacher_override
    override_idx = w.set(
        write & ~excuse & has_outcome & has_mem & differs,
        R.TEACHER_OVERRIDE,
        lambda i: (
            "a teacher changed this grade in Teams since gradesync last wrote "
            + _fmt(mem_points[i], precision)
            + pd.Series(mem_at[i], dtype=object).map(lambda t: f" ({t})" if t else "").astype(object)
            + ": Teams holds "
            + _fmt(before_points[i], precision)
            + ", the gradebook says "
            + pd.Series(np.where(clear[i], "no grade (clear)", _fmt(desired_points[i], precision)))
            + _OVERRIDE_OUTCOME[policy]
        ),
    )
    write[override_idx] = False
    action = np.full(n, Action.NOOP.value, dtype=object)
    reasoned = np.flatnonzero(w.reason != "")
    action[reasoned] = np.where(
        pd.Series(w.reason[reasoned], dtype=object).isin(NOOP_REASONS).to_numpy(dtype=bool),
        Action.NOOP.value,
        Action.REJECT.value,
    )
    action[write & excuse] = Action.EXCUSE.value
    action[write & ~excuse & has_outcome] = Action.UPDATE.value
    action[write & ~excuse & ~has_outcome] = Action.CREATE.value
    override_policy = np.full(n, "", dtype=object)
    override_policy[override_idx] = policy
    if policy == "sis-wins":
        action[override_idx] = Action.UPDATE.value
    plain = w.reason == ""
    w.message[plain & same] = MESSAGE_SAME
    w.message[plain & (action == Action.UPDATE.value)] = MESSAGE_UPDATE
    w.message[plain & (action == Action.CREATE.value)] = MESSAGE_CREATE
    w.message[plain & (action == Action.EXCUSE.value)] = MESSAGE_EXCUSE
    decrease = (action == Action.UPDATE.value) & has_grade & (clear | (value < cur))

    out = {
        "row_key": d["row_key"].to_numpy(dtype="int64"),
        "source_file": source_file,
        "source_sheet": _pass(d["source_sheet"]),
        "source_row": source_row,
        "source_column": _pass(d["source_column"]),
        "class_key": class_key,
        "assignment_key": assignment_key,
        "student_key": student_key,
        "points_raw": _pass(d["points_raw"]),
        "desired_points": desired_points,
        "clear": clear,
        "excuse": excuse,
        "points_possible": points_possible,
        "class_id": class_id,
        "class_name": class_name,
        "assignment_id": assignment_id,
        "assignment_name": assignment_name,
        "max_points": max_points,
        "user_id": user_id,
        "student_name": student_name,
        "submission_id": submission_id,
        "outcome_id": outcome_id,
        "before_points": before_points,
        "before_modified": before_modified,
        "action": action,
        "reason": w.reason,
        "message": w.message,
        "note": w.note,
        "decrease": decrease,
        "last_written_points": mem_points,
        "override_policy": override_policy,
    }
    # one block per column: no consolidation copy of 1.2M-row object columns
    rows = pd.DataFrame(
        {k: pd.Series(np.asarray(out[k], dtype=dt), dtype=dt, copy=False) for k, dt in PLAN_COLUMNS.items()},
        copy=False,
    )
    gaps = _roster_gaps(snapshot, sub_pos, row_ca, sub_ca, individual)
    return rows, gaps


def _duplicates(
    w: _Rows,
    idx: np.ndarray,
    sub_pos: np.ndarray,
    value: np.ndarray,
    clear: np.ndarray,
    source_file: np.ndarray,
    source_row: np.ndarray,
    student_label: _Lazy,
    asg_label: _Lazy,
    precision: int,
    excuse: np.ndarray,
) -> None:
    """Rows ``idx`` share a submission with another row: conflict (different values) or identical."""
    special = clear[idx] | excuse[idx]
    shown = np.where(
        clear[idx],
        "clear",
        np.where(excuse[idx], "excuse", _fmt(np.where(special, np.nan, value[idx]), precision)),
    )
    where = (
        pd.Series(source_file[idx], dtype=object)
        + " row "
        + pd.Series(source_row[idx]).astype(str).astype(object)
    )
    g = pd.DataFrame({"row": idx, "sub": sub_pos[idx], "value": value[idx], "shown": shown, "where": where})
    g["n_values"] = g.groupby("sub")["value"].transform("nunique")
    conflict = g[g["n_values"] > 1]
    if len(conflict):
        listing = (conflict["shown"] + " (" + conflict["where"] + ")").groupby(conflict["sub"]).agg(", ".join)
        ci = conflict["row"].to_numpy()
        w.set(
            w.at(ci),
            R.DUPLICATE_CONFLICT,
            lambda i: (
                "conflicting grades for "
                + student_label[i]
                + " on "
                + asg_label[i]
                + ": "
                + pd.Series(sub_pos[i]).map(listing).astype(object)
                + "; none is applied"
            ),
        )
    same = g[g["n_values"] == 1]
    if len(same):
        first = same.groupby("sub")["row"].transform("min")
        later = same[same["row"] != first]
        first_where = same.set_index("row")["where"]
        kept = pd.Series(first[same["row"] != first].to_numpy(), index=later["row"].to_numpy()).map(
            first_where
        )
        w.set(
            w.at(later["row"].to_numpy()),
            R.DUPLICATE_IDENTICAL,
            lambda i: (
                "the same grade as "
                + pd.Series(kept.reindex(i).to_numpy(), dtype=object)
                + " for "
                + student_label[i]
                + " on "
                + asg_label[i]
                + "; applied once"
            ),
        )


def _remembered(memory: pd.DataFrame | None, submission_id: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row: (last written points, when, whether anything is remembered) for its submission."""
    n = len(submission_id)
    if memory is None or memory.empty:
        return np.full(n, np.nan), np.full(n, None, dtype=object), np.zeros(n, dtype=bool)
    m = memory[list(MEMORY_COLUMNS)].drop_duplicates("submission_id", keep="last")
    index = pd.Index(_text(m["submission_id"]), dtype=object)
    keys = np.where(pd.isna(submission_id), "\x00", submission_id).astype(object)  # "\x00": no submission
    pos = index.get_indexer(keys)
    has = pos >= 0
    points = _take(m["last_written_points"].to_numpy(dtype="float64"), pos, np.nan)
    at = _take(_obj(m["last_written_at"]), pos, None)
    return points, at, has


def _roster_gaps(
    snapshot: Snapshot,
    sub_pos: np.ndarray,
    row_ca: np.ndarray,
    sub_ca: np.ndarray,
    individual: np.ndarray,
) -> list[dict[str, Any]]:
    """Roster students (class members with a submission) of each touched assignment with no input row."""
    subs = snapshot.submissions
    if subs.empty:
        return []
    touched = np.zeros(int(sub_ca.max(initial=-1)) + 2, dtype=bool)  # last slot: -1
    touched[row_ca[row_ca >= 0]] = True
    present = np.zeros(len(subs), dtype=bool)
    present[sub_pos[sub_pos >= 0]] = True
    gap = individual & touched[sub_ca] & ~present
    if not gap.any():
        return []
    g = subs[gap]
    g = pd.DataFrame(
        {
            "class_id": _text(g["class_id"]),
            "assignment_id": _text(g["assignment_id"]),
            "user_id": _text(g["user_id"]),
            "current_points": g["points"].to_numpy(dtype="float64"),
        }
    )
    m = snapshot.members
    roster = pd.DataFrame(
        {
            "class_id": _text(m["class_id"]),
            "user_id": _text(m["user_id"]),
            "student_name": _obj(m["display_name"]),
        }
    )
    roster = roster[roster.index.isin(eligible_members(m).index)] if len(m) else roster
    roster = roster.drop_duplicates(["class_id", "user_id"])
    c = snapshot.classes
    cnames = pd.DataFrame(
        {"class_id": _text(c["class_id"]), "class_name": _obj(c["class_name"])}
    ).drop_duplicates("class_id")
    a = snapshot.assignments
    anames = pd.DataFrame(
        {
            "class_id": _text(a["class_id"]),
            "assignment_id": _text(a["assignment_id"]),
            "assignment_name": _obj(a["display_name"]),
        }
    ).drop_duplicates(["class_id", "assignment_id"])
    g = g.merge(roster, on=["class_id", "user_id"]).merge(cnames, on="class_id", how="left")
    g = g.merge(anames, on=["class_id", "assignment_id"], how="left")
    g = g.sort_values(
        ["class_name", "class_id", "assignment_name", "assignment_id", "student_name", "user_id"],
        na_position="last",
        kind="stable",
    )
    cols = ROSTER_GAP_KEYS
    columns = []
    for col in cols:
        values = g[col].to_numpy(dtype=object)  # float64 → Python floats
        missing = pd.isna(values)
        if missing.any():
            values = values.copy()
            values[missing] = None
        columns.append(values.tolist())
    return [dict(zip(cols, vals, strict=True)) for vals in zip(*columns, strict=True)]


# ---------------------------------------------------------------------------------------------
# after planning
# ---------------------------------------------------------------------------------------------
def plan_is_refused(plan: Plan) -> bool:
    """True when the plan was made in strict mode and any row is rejected: apply nothing."""
    return bool(plan.strict and (plan.rows["action"] == Action.REJECT.value).any())


def summarize(plan: Plan) -> dict[str, Any]:
    """Counts per action, per reason, per class and per assignment (JSON-ready, stable order)."""
    rows = plan.rows
    actions = [a.value for a in Action]
    reasons = rows.loc[rows["reason"] != "", "reason"].value_counts()

    def per(keys: list[str]) -> list[dict[str, Any]]:
        if rows.empty:
            return []
        frame = rows[[*keys, "action"]].astype(dict.fromkeys(keys, object)).fillna(dict.fromkeys(keys, ""))
        table = pd.crosstab([frame[k] for k in keys], frame["action"]).reindex(columns=actions, fill_value=0)
        out = []
        for idx, counts in zip(table.index, table.to_numpy(), strict=True):
            key = idx if isinstance(idx, tuple) else (idx,)
            entry: dict[str, Any] = {k: (v if v != "" else None) for k, v in zip(keys, key, strict=True)}
            entry.update({a: int(c) for a, c in zip(actions, counts, strict=True)})
            entry["rows"] = int(counts.sum())
            out.append(entry)
        return out

    return {
        "rows": len(rows),
        "actions": {a: int((rows["action"] == a).sum()) for a in actions},
        "reasons": {str(k): int(v) for k, v in sorted(reasons.items())},
        "decreases": int(rows["decrease"].sum()),
        "by_class": per(["class_key", "class_name"]),
        "by_assignment": per(["class_key", "class_name", "assignment_key", "assignment_name"]),
        "roster_gaps": len(plan.roster_gaps),
        "strict": plan.strict,
        "refused": plan_is_refused(plan),
    }


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
    index = pd.MultiIndex.from_arrays([_text(subs[k]) for k in keys])
    pos = index.get_indexer(pd.MultiIndex.from_arrays([_text(writes[k]) for k in keys]))
    if (pos < 0).any():
        missing = writes.loc[pos < 0, "submission_id"].tolist()[:5]
        raise ValueError(f"plan writes submissions the snapshot does not hold: {missing}")
    new_points = np.where(writes["clear"].to_numpy(dtype=bool), np.nan, writes["desired_points"].to_numpy())
    points = subs["points"].to_numpy(dtype="float64").copy()
    outcome = _obj(subs["outcome_id"]).copy()
    modified = _obj(subs["last_modified"]).copy()
    points[pos] = new_points
    created = writes["action"].to_numpy() == Action.CREATE.value
    outcome[pos[created]] = "created-" + _s(writes["submission_id"].to_numpy(dtype=object)[created])
    modified[pos] = plan.created_at
    subs["points"] = pd.Series(points, index=subs.index, dtype="float64")
    subs["outcome_id"] = pd.Series(outcome, index=subs.index, dtype=object)
    subs["last_modified"] = pd.Series(modified, index=subs.index, dtype=object)
    return dataclasses.replace(snapshot, submissions=subs.astype(SNAPSHOT_COLUMNS["submissions"]))
