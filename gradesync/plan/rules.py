"""The plan rules, one function per rule, in the order they run (the first reason a row gets wins).

Each rule reads whole columns (numpy arrays, one entry per input row), gives reasons through
``Verdicts.give`` and returns what later rules need. The texts are in ``gradesync.plan.messages``;
the order is documented in ``gradesync.plan.build``. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from gradesync.config import Settings
from gradesync.models import (
    DELETED_BY_EXCUSE,
    MEMORY_COLUMNS,
    REJECT_REASONS_NOOP,
    Action,
    ReasonCode,
    Snapshot,
    TeacherWork,
    ValueUnit,
)
from gradesync.plan import messages as say
from gradesync.plan.arrays import (
    Lazy,
    Verdicts,
    codes,
    equals,
    filled,
    first_positions,
    lookup_sorted,
    objects,
    pair_codes,
    passthrough,
    rounded,
    take,
    taken,
    taken_or_none,
    text_codes,
    texts,
)
from gradesync.plan.match import (
    FallbackMatch,
    Identifiers,
    Roster,
    match_assignment_rows,
    match_student_codes,
    match_student_fallbacks,
)
from gradesync.single import decimal, key, lost

__all__ = [
    "ACTIONS",
    "EXCUSE_SETTLING",
    "NOOP_REASONS",
    "Assignments",
    "Classes",
    "Decisions",
    "Desired",
    "Diff",
    "Remembered",
    "Students",
    "Submissions",
    "check_assignment_state",
    "check_duplicates",
    "check_excused",
    "check_percent_twins",
    "check_points",
    "comparable_values",
    "convert_units",
    "decide_actions",
    "diff",
    "find_submissions",
    "match_assignments_of",
    "match_classes",
    "match_students_of",
    "read_desired",
    "reject_missing_submission",
    "reject_ungraded",
    "remembered",
    "teacher_override",
]

NOOP_REASONS = frozenset(r.value for r in REJECT_REASONS_NOOP)
ACTIONS = (Action.NOOP, Action.REJECT, Action.EXCUSE, Action.UPDATE, Action.CREATE)


@dataclass
class Desired:
    """The input columns the rules read, ordered by ``row_key``."""

    frame: pd.DataFrame
    class_key: np.ndarray  # text per row
    assignment_key: np.ndarray
    student_key: np.ndarray
    class_coded: tuple[np.ndarray, np.ndarray]  # (codes per row, the distinct keys): ``text_codes``
    assignment_coded: tuple[np.ndarray, np.ndarray]
    student_coded: tuple[np.ndarray, np.ndarray]
    points: np.ndarray  # the number as written; ``convert_units`` turns percents and fractions to points
    points_possible: np.ndarray
    clear: np.ndarray
    excuse: np.ndarray
    unit: np.ndarray  # ValueUnit values
    denominator: np.ndarray
    source_file: np.ndarray
    source_row: np.ndarray
    scale: np.ndarray  # bool: the mapping scales a declared maximum that differs from Teams' (maximum_rule)
    # (codes per row, distinct texts): the same grade as a percent ("95.00 %"), "" for none
    percent_twin: tuple[np.ndarray, np.ndarray]
    # (codes per row, distinct texts): the row's identifier list (``models.DESIRED_COLUMNS``), "" for one
    student_ids: tuple[np.ndarray, np.ndarray]

    def carries(self, coded: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Rows whose coded text column holds something (not ``""``)."""
        codes_, uniq = coded
        return (uniq != "")[codes_] if len(uniq) else np.zeros(self.n, dtype=bool)

    @staticmethod
    def text_of(coded: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> np.ndarray:
        """The coded column's text at ``rows``."""
        codes_, uniq = coded
        out: np.ndarray = uniq[codes_[rows]]
        return out

    @property
    def n(self) -> int:
        return len(self.frame)


def read_desired(desired: pd.DataFrame) -> tuple[Desired, Verdicts]:
    """The desired frame in ``row_key`` order as arrays, and the verdicts the read stage already gave."""
    d = desired
    if len(d) and not d["row_key"].is_monotonic_increasing:
        d = d.sort_values("row_key", kind="stable")
    d = d.reset_index(drop=True)
    n = len(d)
    # compared with the units' values only (a missing one is none of them): no text check needed
    unit = d["points_unit"].to_numpy(dtype=object) if "points_unit" in d else filled(n, "")
    (class_key, class_coded), (assignment_key, assignment_coded), (student_key, student_coded) = (
        text_codes(d[k]) for k in ("class_key", "assignment_key", "student_key")
    )
    rows = Desired(
        frame=d,
        class_key=class_key,
        assignment_key=assignment_key,
        student_key=student_key,
        class_coded=class_coded,
        assignment_coded=assignment_coded,
        student_coded=student_coded,
        points=d["desired_points"].to_numpy(dtype="float64").copy(),
        points_possible=d["points_possible"].to_numpy(dtype="float64"),
        clear=d["clear"].to_numpy(dtype=bool),
        excuse=d["excuse"].to_numpy(dtype=bool) if "excuse" in d else np.zeros(n, dtype=bool),
        unit=unit,
        denominator=(
            d["points_denominator"].to_numpy(dtype="float64")
            if "points_denominator" in d
            else np.full(n, np.nan)
        ),
        source_file=passthrough(d["source_file"]),
        source_row=d["source_row"].to_numpy(dtype="int64"),
        scale=_is(_coded_text(d, "maximum_rule"), "scale"),
        percent_twin=_coded_text(d, "percent_twin"),
        student_ids=_coded_text(d, "student_ids"),
    )
    verdicts = Verdicts(
        reason=texts(d["reason"]).copy(),
        message=passthrough(d["message"]).copy(),
        note=texts(d["note"]).copy(),
    )
    return rows, verdicts


def _is(coded: tuple[np.ndarray, np.ndarray], value: str) -> np.ndarray:
    codes_, uniq = coded
    out: np.ndarray = (uniq == value)[codes_]
    return out


def _coded_text(d: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A mostly-empty text column as (codes per row, distinct texts), a missing value reading ``""``.
    The read stage hands it over coded (a categorical: nothing is hashed here); a hand-built frame may
    hold plain text, or lack the column (all ``""`` then)."""
    if name not in d:
        return np.zeros(len(d), dtype="int8"), np.array([""], dtype=object)
    col = d[name]
    if isinstance(col.dtype, pd.CategoricalDtype):
        found = np.asarray(col.array.codes)
        uniq = np.append(np.asarray(col.array.categories, dtype=object), np.array([""], dtype=object))
        return (np.where(found < 0, len(uniq) - 1, found) if (found < 0).any() else found), uniq
    found, uniq = pd.factorize(texts(col))
    return found, np.asarray(uniq, dtype=object) if len(uniq) else np.array([""], dtype=object)


# ---------------------------------------------------------------------------------------------
# rule 2: classes
# ---------------------------------------------------------------------------------------------
@dataclass
class Classes:
    codes: np.ndarray  # row → distinct class key
    key_class_id: np.ndarray  # distinct class key → its class id (None unless exactly one class)
    class_id: np.ndarray  # per row
    class_name: np.ndarray
    label: Lazy  # "SEC-1001 (Algebra I - P1)"


def match_classes(d: Desired, v: Verdicts, snapshot: Snapshot, settings: Settings) -> Classes:
    """Rule 2: ``unknown_class`` (no Graph class for the key), ``ambiguous_class`` (more than one)."""
    c_codes, c_uniq = d.class_coded
    classes = snapshot.classes
    cl = pd.DataFrame(
        {k: texts(classes[k]) for k in ("class_key", "class_id", "class_name")}, dtype=object
    ).drop_duplicates(["class_key", "class_id"])
    by_key = cl.groupby("class_key", sort=False).agg(
        n=("class_id", "size"), class_id=("class_id", "first"), class_name=("class_name", "first")
    )
    by_key = by_key.reindex(pd.Index(c_uniq, dtype=object))
    count = by_key["n"].fillna(0).to_numpy(dtype="int64")
    key_id = np.asarray(np.where(count == 1, by_key["class_id"].to_numpy(dtype=object), None), dtype=object)
    key_name = np.where(count == 1, by_key["class_name"].to_numpy(dtype=object), None)
    class_id, class_name = take(key_id, c_codes, None), take(key_name, c_codes, None)
    row_count = take(count, c_codes, 0)

    by = settings.match.class_by
    v.give(row_count == 0, ReasonCode.UNKNOWN_CLASS, lambda i: say.unknown_class(d.class_key[i], by))
    if (row_count > 1).any():
        names = cl.groupby("class_key", sort=False)["class_name"].agg(lambda s: ", ".join(sorted(s)))
        v.give(
            row_count > 1,
            ReasonCode.AMBIGUOUS_CLASS,
            lambda i: say.ambiguous_class(
                d.class_key[i],
                row_count[i],
                pd.Series(d.class_key[i], dtype=object).map(names).fillna("").astype(object),
            ),
        )
    label = Lazy(lambda i: say.class_label(d.class_key[i], class_name[i]))
    return Classes(c_codes, key_id, class_id, class_name, label)


# ---------------------------------------------------------------------------------------------
# rule 3: assignments
# ---------------------------------------------------------------------------------------------
@dataclass
class Assignments:
    codes: np.ndarray  # row → distinct (class, assignment key) pair
    pair_class_id: np.ndarray
    pair_id: np.ndarray  # pair → assignment id (None: unmatched)
    pair_graded: np.ndarray
    assignment_id: np.ndarray  # per row
    assignment_name: np.ndarray
    max_points: np.ndarray
    label: Lazy  # the Teams name, quoted
    pair_status: np.ndarray  # pair → the matched assignment's status in Teams ("" when unmatched)

    @property
    def found(self) -> np.ndarray:
        """Per row: the assignment was matched."""
        found: np.ndarray = np.asarray(pd.notna(self.pair_id), dtype=bool)
        return np.asarray(found[self.codes], dtype=bool)


def _assignment_details(snapshot: Snapshot) -> pd.DataFrame:
    asg = snapshot.assignments
    return pd.DataFrame(
        {
            "class_id": texts(asg["class_id"]),
            "assignment_id": texts(asg["assignment_id"]),
            "display_name": objects(asg["display_name"]),
            "status": texts(asg["status"]) if "status" in asg else filled(len(asg), "assigned"),
            "graded": asg["graded"].to_numpy(dtype=bool),
            # Graph keeps maxPoints as a Single (87.3 → 87.30000305175781): the decimal the teacher
            # typed is what a percent is taken of and what messages show
            "max_points": decimal(asg["max_points"].to_numpy(dtype="float64")),
        }
    ).drop_duplicates(["class_id", "assignment_id"])


def match_assignments_of(
    d: Desired, v: Verdicts, c: Classes, snapshot: Snapshot, settings: Settings
) -> Assignments:
    """Rule 3: ``unknown_assignment``, ``ambiguous_assignment`` (see ``gradesync.plan.match``); a
    namesake passed over for the assigned one (a draft copy) is noted on the row."""
    codes_, pair_class_id, pair_key, pair_ok = pair_codes(c.codes, d.assignment_coded, c.key_class_id)
    details_of = _assignment_details(snapshot)
    at, ids, reason, passed = match_assignment_rows(
        pair_class_id[pair_ok], pair_key[pair_ok], details_of, settings.match.assignment_by
    )
    n = len(pair_key)
    pair_id, pair_name = np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    pair_reason, pair_graded, pair_max = (
        np.full(n, "", dtype=object),
        np.zeros(n, dtype=bool),
        np.full(n, np.nan),
    )
    pair_id[pair_ok] = ids
    pair_reason[pair_ok] = reason
    pair_passed = np.zeros(n, dtype="int64")
    pair_passed[pair_ok] = passed
    pair_status = np.full(n, "", dtype=object)
    pair_status[pair_ok] = take(details_of["status"].to_numpy(dtype=object), at, "")
    # the matched assignment's details: its row of the (class, assignment) table
    pair_name[pair_ok] = take(details_of["display_name"].to_numpy(), at, None)
    pair_graded[pair_ok] = take(details_of["graded"].to_numpy(dtype=bool), at, False)
    pair_max[pair_ok] = take(details_of["max_points"].to_numpy(dtype="float64"), at, np.nan)

    name = pair_name[codes_]
    v.give(
        (pair_reason == ReasonCode.UNKNOWN_ASSIGNMENT.value)[codes_],
        ReasonCode.UNKNOWN_ASSIGNMENT,
        lambda i: say.unknown_assignment(d.assignment_key[i], c.label[i]),
    )
    v.give(
        (pair_reason == ReasonCode.AMBIGUOUS_ASSIGNMENT.value)[codes_],
        ReasonCode.AMBIGUOUS_ASSIGNMENT,
        lambda i: say.ambiguous_assignment(d.assignment_key[i], c.label[i]),
    )
    label = Lazy(lambda i: say.assignment_label(d.assignment_key[i], name[i]))
    chosen = np.flatnonzero((pair_passed > 0)[codes_] & v.open())
    if len(chosen):
        others = _namesake_statuses(details_of, pair_class_id, pair_id, pair_passed)
        v.add_note(
            chosen,
            say.assigned_namesake_chosen(label[chosen], pair_status[codes_[chosen]], others[codes_[chosen]]),
        )
    return Assignments(
        codes_,
        pair_class_id,
        pair_id,
        pair_graded,
        pair_id[codes_],
        name,
        pair_max[codes_],
        label,
        pair_status,
    )


def _namesake_statuses(
    details: pd.DataFrame, pair_class_id: np.ndarray, pair_id: np.ndarray, passed: np.ndarray
) -> np.ndarray:
    """Per pair that passed namesakes over: their statuses (``"draft"``, ``"draft, inactive"``), from
    the assignments of its class with the chosen one's name ignoring case and spaces; "" elsewhere."""
    out = np.full(len(pair_id), "", dtype=object)
    names = details["display_name"].astype(object).where(details["display_name"].notna(), "").astype(str)
    folded = names.str.replace(r"\s+", " ", regex=True).str.strip().str.casefold()
    for i in np.flatnonzero(passed > 0).tolist():  # few pairs: a Python loop is fine
        in_class = details["class_id"] == pair_class_id[i]
        chosen = in_class & (details["assignment_id"] == pair_id[i])
        name = folded[chosen].iloc[0] if chosen.any() else None
        rest = details[in_class & ~chosen & (folded == name)]
        out[i] = ", ".join(sorted({str(x) or "no status" for x in rest["status"]}))
    return out


def check_assignment_state(v: Verdicts, c: Classes, a: Assignments) -> None:
    """Rule 3 (cont.): only an ``assigned`` assignment's submissions are written ("Assignment states
    transition": submissions can be edited only while it is assigned). ``published`` (Teams is still
    creating its submissions) → ``assignment_publishing`` (nothing written now, carried over to the
    next run); draft, scheduled, inactive or a status Graph did not name → ``assignment_not_assigned``,
    naming the state and what to do."""
    found = pd.notna(a.pair_id)
    status = a.pair_status[a.codes]
    where = Lazy(lambda i: a.label[i] + " in " + c.label[i])
    v.give(
        (found & (a.pair_status == "published"))[a.codes],
        ReasonCode.ASSIGNMENT_PUBLISHING,
        lambda i: say.assignment_publishing(where[i]),
    )
    v.give(
        (found & (a.pair_status != "assigned"))[a.codes],
        ReasonCode.ASSIGNMENT_NOT_ASSIGNED,
        lambda i: say.assignment_not_assigned(where[i], status[i]),
    )


def reject_ungraded(v: Verdicts, c: Classes, a: Assignments) -> None:
    """Rule 3 (cont.): ``ungraded_assignment``, an assignment without points grading."""
    v.give(
        (pd.notna(a.pair_id) & ~a.pair_graded)[a.codes],
        ReasonCode.UNGRADED_ASSIGNMENT,
        lambda i: say.ungraded_assignment(a.assignment_name[i], c.label[i]),
    )


# ---------------------------------------------------------------------------------------------
# rule 4: students
# ---------------------------------------------------------------------------------------------
@dataclass
class Students:
    codes: np.ndarray  # row → distinct (class, student key) pair
    pair_user_id: np.ndarray
    user_id: np.ndarray  # per row
    student_name: np.ndarray
    label: Lazy  # '"000123" (Ada Lovelace)'
    roster: Roster  # the members, coded


def match_students_of(
    d: Desired, v: Verdicts, c: Classes, snapshot: Snapshot, settings: Settings
) -> Students:
    """Rule 4: ``unknown_student``, ``ambiguous_student``, ``not_in_class``, ``identifier_conflict``.

    A row with one identifier is matched by ``[match] student_by``; a row with a list of identifiers
    (a mapping's ``student.identifiers``) by each in turn (``match_student_fallbacks``), and a match
    through a later identifier says so in the row's note."""
    codes_, pair_class_id, pair_key, pair_ok = pair_codes(c.codes, d.student_coded, c.key_class_id)
    members = snapshot.members
    roster = Roster.of(members)
    listed = d.carries(d.student_ids)  # rows with identifier lists get pairs of their own below
    user, reason = match_student_codes(
        pair_class_id[pair_ok], pair_key[pair_ok], members, roster, settings.match.student_by
    )
    n = len(pair_key)
    pair_user, pair_reason = np.full(n, -1, dtype="int64"), np.full(n, "", dtype=object)
    pair_user[pair_ok], pair_reason[pair_ok] = user, reason
    fallback: _ListedMatch | None = None
    if listed.any():
        fallback = _match_listed(d, c, listed, members, roster)
        codes_ = codes_.copy()
        codes_[listed] = n + fallback.codes
        pair_user = np.concatenate([pair_user, fallback.found.user])
        pair_reason = np.concatenate([pair_reason, fallback.found.reason])
        pair_class_id = np.concatenate([pair_class_id, fallback.class_id])
    pair_uid = take(roster.user_uniq, pair_user, None)
    # the matched member's name: the first member row of that (class, user)
    space, first_row = roster.first_rows()
    pair_class = pd.Index(roster.class_uniq, dtype=object).get_indexer(pair_class_id)
    nu = max(len(roster.user_uniq), 1)
    at = lookup_sorted(
        space, first_row, np.where((pair_class >= 0) & (pair_user >= 0), pair_class * nu + pair_user, -1)
    )
    pair_name = take(objects(members["display_name"]), at, None)
    name = pair_name[codes_]
    key = d.student_key
    order = ", ".join(settings.match.student_by)

    def rows_with(reason: ReasonCode) -> np.ndarray:  # compared per pair, then taken per row
        out: np.ndarray = (pair_reason == reason.value)[codes_]
        return out

    v.give(
        rows_with(ReasonCode.UNKNOWN_STUDENT) & ~listed,
        ReasonCode.UNKNOWN_STUDENT,
        lambda i: say.unknown_student(key[i], order, say.lost_zeros_hint(key[i], members)),
    )
    if fallback is not None:
        fallback.give(v, c, rows_with, members, roster)
    v.give(
        rows_with(ReasonCode.AMBIGUOUS_STUDENT),
        ReasonCode.AMBIGUOUS_STUDENT,
        lambda i: say.ambiguous_student(key[i], c.label[i]),
    )
    v.give(
        rows_with(ReasonCode.NOT_IN_CLASS),
        ReasonCode.NOT_IN_CLASS,
        lambda i: say.not_in_class(key[i], c.label[i]),
    )
    label = Lazy(lambda i: say.student_label(key[i], name[i]))
    return Students(codes_, pair_uid, pair_uid[codes_], name, label, roster)


@dataclass
class _ListedMatch:
    """Rows matched by identifier lists: their own (class, list) pairs and what each pair found."""

    rows: np.ndarray  # the rows with a list
    codes: np.ndarray  # per such row: its pair
    class_id: np.ndarray  # per pair
    ids: Identifiers  # per pair
    found: FallbackMatch  # per pair

    def give(
        self,
        v: Verdicts,
        c: Classes,
        rows_with: Callable[[ReasonCode], np.ndarray],
        members: pd.DataFrame,
        roster: Roster,
    ) -> None:
        """The list rows' reasons (unknown, conflict) and the note of a match through a fallback."""
        pair = np.full(len(v), -1, dtype="int64")
        pair[self.rows] = self.codes
        ids, found = self.ids, self.found

        def slot_text(part: list[np.ndarray], slot: np.ndarray, i: np.ndarray) -> np.ndarray:
            return np.array(
                [part[s][p] if s >= 0 else "" for s, p in zip(slot[pair[i]], pair[i], strict=True)]
            )

        v.give(
            (pair >= 0) & rows_with(ReasonCode.UNKNOWN_STUDENT),
            ReasonCode.UNKNOWN_STUDENT,
            lambda i: say.unknown_by_identifiers(_identifier_listing(ids, pair[i])),
        )
        user_names = _user_names(members, roster)
        v.give(
            (pair >= 0) & rows_with(ReasonCode.IDENTIFIER_CONFLICT),
            ReasonCode.IDENTIFIER_CONFLICT,
            lambda i: say.identifier_conflict(
                slot_text(ids.headers, found.via, i),
                slot_text(ids.values, found.via, i),
                take(user_names, found.via_user[pair[i]], None),
                slot_text(ids.headers, found.other, i),
                slot_text(ids.values, found.other, i),
                take(user_names, found.other_user[pair[i]], None),
                c.label[i],
            ),
        )
        through = np.flatnonzero((pair >= 0) & v.open() & (found.reason == "")[np.maximum(pair, 0)])
        through = through[found.via[pair[through]] > 0]
        before = {
            p: [(ids.headers[k][p], ids.values[k][p]) for k in range(found.via[p])]
            for p in np.unique(pair[through]).tolist()
        }
        v.add_note(
            through,
            say.matched_by_fallback(
                slot_text(ids.headers, found.via, through),
                slot_text(ids.kinds, found.via, through),
                slot_text(ids.values, found.via, through),
                [before[p] for p in pair[through].tolist()],
            ),
        )


def _identifier_listing(ids: Identifiers, pairs: np.ndarray) -> pd.Series:
    """Per pair: 'Student ID "000101" (sis_id), Username "ana" (upn)' — the identifiers it has."""
    out = []
    for p in pairs.tolist():
        parts = [
            f'{ids.headers[k][p]} "{ids.values[k][p]}" ({ids.kinds[k][p]})'
            for k in range(len(ids.values))
            if ids.values[k][p]
        ]
        out.append(", ".join(parts))
    return pd.Series(out, dtype=object)


def _user_names(members: pd.DataFrame, roster: Roster) -> np.ndarray:
    """Per user code: a display name (the first member row's)."""
    names = np.full(len(roster.user_uniq), None, dtype=object)
    if len(members):
        first = ~pd.Series(roster.user_codes).duplicated().to_numpy()
        names[roster.user_codes[first]] = objects(members["display_name"])[first]
    return names


def _match_listed(
    d: Desired, c: Classes, listed: np.ndarray, members: pd.DataFrame, roster: Roster
) -> _ListedMatch:
    """Rule 4 for rows with identifier lists: each distinct (class, list) pair matched once."""
    rows = np.flatnonzero(listed)
    list_codes, list_uniq = pd.factorize(d.text_of(d.student_ids, rows))
    nl = max(len(list_uniq), 1)
    pair_codes_, pair_uniq = pd.factorize(c.codes[rows].astype("int64") * nl + list_codes)
    pair_uniq = np.asarray(pair_uniq, dtype="int64")
    class_id = take(c.key_class_id, pair_uniq // nl, None)
    ids = Identifiers.parse(np.asarray(list_uniq, dtype=object)[pair_uniq % nl])
    ok = pd.notna(class_id)
    full = FallbackMatch.none(len(pair_uniq))
    full.put(ok, match_student_fallbacks(texts(class_id[ok]), _subset(ids, ok), members, roster))
    return _ListedMatch(rows, pair_codes_, class_id, ids, full)


def _subset(ids: Identifiers, keep: np.ndarray) -> Identifiers:
    return Identifiers(
        [h[keep] for h in ids.headers], [k[keep] for k in ids.kinds], [v[keep] for v in ids.values]
    )


# ---------------------------------------------------------------------------------------------
# rule 5: submissions
# ---------------------------------------------------------------------------------------------
@dataclass
class Submissions:
    pos: np.ndarray  # per row: its submission's position in snapshot.submissions, -1 for none
    row_pair: np.ndarray  # per row: its (class, assignment) code in the submissions, -1 for none
    sub_pair: np.ndarray  # per submission: its (class, assignment) code
    individual: np.ndarray  # per submission: an individual recipient
    row_group: np.ndarray  # per row: its assignment has group submissions
    submission_id: np.ndarray  # per row
    outcome_id: np.ndarray
    has_outcome: np.ndarray  # per row: its submission has a points outcome (``outcome_id`` not None)
    before_points: np.ndarray
    before_modified: np.ndarray
    excused: np.ndarray  # per row: its submission's status is ``excused``
    teacher_work: np.ndarray  # per row: its submission's ``models.TeacherWork`` flags (0: none)


def find_submissions(d: Desired, a: Assignments, s: Students, snapshot: Snapshot) -> Submissions:
    """Rule 5 (lookup): each row's submission by ``(class, assignment, recipient.userId)``, by codes."""
    subs = snapshot.submissions
    sc_codes, sc_uniq = codes(subs["class_id"])
    sa_codes, sa_uniq = codes(subs["assignment_id"])
    su_codes, su_uniq = codes(subs["user_id"])
    nsa, nsu = max(len(sa_uniq), 1), max(len(su_uniq), 1)
    # dense codes of the (class, assignment) pairs of the submissions: 0..n_pairs-1, -1 = missing
    raw = np.where((sc_codes >= 0) & (sa_codes >= 0), sc_codes.astype("int64") * nsa + sa_codes, -1)
    sub_pair, pair_uniq = pd.factorize(raw, use_na_sentinel=True)
    pair_index = pd.Index(np.asarray(pair_uniq, dtype="int64"))
    sub_pair = np.where(raw >= 0, sub_pair, -1)
    n_pairs = len(pair_uniq)
    pa_has = pd.notna(a.pair_id)
    pa_sc = pd.Index(sc_uniq, dtype=object).get_indexer(a.pair_class_id)
    pa_sa = pd.Index(sa_uniq, dtype=object).get_indexer(a.pair_id)
    pa_raw = np.where(pa_has & (pa_sc >= 0) & (pa_sa >= 0), pa_sc.astype("int64") * nsa + pa_sa, -1)
    pa_pair = (
        np.where(pa_raw >= 0, pair_index.get_indexer(pa_raw), -1) if n_pairs else np.full(len(pa_raw), -1)
    )
    ps_su = pd.Index(su_uniq, dtype=object).get_indexer(s.pair_user_id)
    ps_su = np.where(pd.notna(s.pair_user_id), ps_su, -1)

    is_group = equals(subs["recipient_type"], "group")
    individual = ~is_group & (sub_pair >= 0) & (su_codes >= 0)
    # each (pair, user) key at its first individual submission, then each row's key looked up
    ind_pos = np.flatnonzero(individual)
    key_space, key_at = first_positions(sub_pair[ind_pos].astype("int64") * nsu + su_codes[ind_pos])
    row_pair = pa_pair[a.codes]
    row_su = ps_su[s.codes]
    row_key = np.where((row_pair >= 0) & (row_su >= 0), row_pair * nsu + row_su, -1)
    pos = lookup_sorted(key_space, ind_pos[key_at], row_key)

    pair_group = np.zeros(n_pairs + 1, dtype=bool)  # last slot: "no pair" (-1)
    pair_group[sub_pair[is_group & (sub_pair >= 0)]] = True
    outcome_id, no_outcome = taken_or_none(subs["outcome_id"], pos)
    return Submissions(
        pos=pos,
        row_pair=row_pair,
        sub_pair=sub_pair,
        individual=individual,
        row_group=pair_group[row_pair],
        submission_id=taken(subs["submission_id"], pos, None),
        outcome_id=outcome_id,
        has_outcome=~no_outcome,
        before_points=take(subs["points"].to_numpy(dtype="float64"), pos, np.nan),
        before_modified=taken(subs["last_modified"], pos, None),
        excused=take(equals(subs["status"], "excused"), pos, False),
        teacher_work=(
            take(subs["teacher_work"].to_numpy(dtype="int64"), pos, 0)
            if "teacher_work" in subs
            else np.zeros(len(pos), dtype="int64")
        ),
    )


def _where(a: Assignments, c: Classes) -> Lazy:
    """'"Unit 1 Quiz" in SEC-1001 (Algebra I - P1)'."""
    return Lazy(lambda i: a.label[i] + " in " + c.label[i])


def reject_missing_submission(v: Verdicts, c: Classes, a: Assignments, s: Students, sub: Submissions) -> None:
    """Rule 5: no submission → ``group_submission`` when the assignment has group submissions (a group
    recipient carries no ``userId``, so a student with no individual submission there is taken to be in
    a group), else ``no_submission``."""
    resolved = a.found & pd.notna(s.pair_user_id)[s.codes]
    missing = resolved & (sub.pos < 0)
    where = _where(a, c)
    v.give(missing & sub.row_group, ReasonCode.GROUP_SUBMISSION, lambda i: say.group_submission(where[i]))
    v.give(missing, ReasonCode.NO_SUBMISSION, lambda i: say.no_submission(s.label[i], where[i]))


# ---------------------------------------------------------------------------------------------
# rules 6-8: excused submissions, value units, points checks
# ---------------------------------------------------------------------------------------------
def check_excused(
    d: Desired,
    v: Verdicts,
    c: Classes,
    a: Assignments,
    s: Students,
    sub: Submissions,
    memo: Remembered,
    settings: Settings,
) -> None:
    """Rule 6: an excused mark on an excused submission → ``already_excused`` (noop), and so is one
    on a submission gradesync excused less than ``EXCUSE_SETTLING`` ago that Teams does not show
    excused yet (excusing is asynchronous: it is never sent twice); any other row on an excused
    submission → ``submission_excused`` unless ``policy.excused == "allow"`` (then a note). An
    excuse that would delete the teacher's feedback or rubric ("Grading rubrics and feedback are
    deleted") → ``excuse_would_delete_feedback`` unless ``policy.excuse_feedback == "delete"`` (then
    the row says what it deletes)."""
    excused = sub.excused
    where = _where(a, c)
    v.give(
        d.excuse & excused, ReasonCode.ALREADY_EXCUSED, lambda i: say.already_excused(s.label[i], where[i])
    )
    v.give(
        d.excuse & memo.excusing,
        ReasonCode.ALREADY_EXCUSED,
        lambda i: say.excuse_on_its_way(s.label[i], where[i], memo.excused_at[i]),
    )
    if settings.policy.excused == "reject":
        v.give(excused, ReasonCode.SUBMISSION_EXCUSED, lambda i: say.submission_excused(s.label[i], where[i]))
    else:
        v.add_note(np.flatnonzero(excused & v.open()), say.NOTE_EXCUSED_ALLOWED)
    deleted = sub.teacher_work & sum(int(part) for part in DELETED_BY_EXCUSE)
    deleting = d.excuse & (deleted != 0)
    lost = Lazy(lambda i: [TeacherWork(int(w)).describe(DELETED_BY_EXCUSE) for w in deleted[i]])
    if settings.policy.excuse_feedback == "refuse":
        v.give(
            deleting,
            ReasonCode.EXCUSE_WOULD_DELETE_FEEDBACK,
            lambda i: say.excuse_would_delete_feedback(s.label[i], where[i], lost[i]),
        )
    else:
        idx = np.flatnonzero(deleting & v.open())
        v.add_note(idx, say.excuse_deletes_feedback(lost[idx]))


def convert_units(d: Desired, v: Verdicts, a: Assignments, settings: Settings) -> None:
    """Rule 7: percents and fractions become points against Teams' maximum, noted on the row.

    percent p → max × p / 100; a fraction x/den → x when den equals the maximum, else
    ``fraction_mismatch`` unless ``[input] fractions = "scale"`` (then x / den × max); either
    without a maximum → ``percent_without_maximum``. Rounded to ``policy.precision``; updates
    ``d.points`` in place (the above-maximum check runs after this).
    """
    precision = settings.policy.precision
    other = np.flatnonzero(d.unit != ValueUnit.POINTS.value)  # usually few rows: compare only those
    percent, fraction = np.zeros(d.n, dtype=bool), np.zeros(d.n, dtype=bool)
    percent[other] = d.unit[other] == ValueUnit.PERCENT.value
    fraction[other] = d.unit[other] == ValueUnit.FRACTION.value
    percent &= v.open() & ~np.isnan(d.points)
    fraction &= v.open() & ~np.isnan(d.points)
    if not (percent.any() or fraction.any()):
        return
    maximum = a.max_points
    no_max = np.isnan(maximum)
    v.give(
        (percent | fraction) & no_max,
        ReasonCode.PERCENT_WITHOUT_MAXIMUM,
        lambda i: say.percent_without_maximum(passthrough(d.frame["points_raw"])[i], d.unit[i], a.label[i]),
    )
    idx = np.flatnonzero(percent & v.open())
    if len(idx):
        converted = rounded(maximum[idx] * d.points[idx] / 100.0, precision)
        v.add_note(idx, say.percent_converted(d.points[idx], maximum[idx], converted, precision))
        d.points[idx] = converted
    fraction &= v.open()
    den = d.denominator
    out_of_max = fraction & (key(den, precision) == key(maximum, precision))
    idx = np.flatnonzero(out_of_max)
    v.add_note(idx, say.fraction_converted(d.points[idx], den[idx], precision))
    d.points[idx] = rounded(d.points[idx], precision)
    other = fraction & ~out_of_max
    scaled = np.zeros(d.n, dtype=bool)
    if getattr(settings.input, "fractions", "reject") == "scale":
        scaled = other & (den > 0)
        idx = np.flatnonzero(scaled)
        converted = rounded(d.points[idx] / den[idx] * maximum[idx], precision)
        v.add_note(idx, say.fraction_scaled(d.points[idx], den[idx], maximum[idx], converted, precision))
        d.points[idx] = converted
    v.give(
        other & ~scaled,
        ReasonCode.FRACTION_MISMATCH,
        lambda i: say.fraction_mismatch(d.points[i], den[i], maximum[i], a.label[i], precision),
    )


_PERCENT_TEXT = re.compile(r"^\s*([+-]?(?:\d+(?:\.(\d*))?|\.(\d+)))\s*%\s*$")


def check_percent_twins(d: Desired, v: Verdicts, a: Assignments, settings: Settings) -> None:
    """Rule 8a: a grade shown twice, as points and as a percent (Moodle's "(Real)" and "(Percentage)"
    columns), must agree against Teams' maximum: points / maximum × 100 equals the percent to the
    percent's own decimals. A disagreement means the file's maximum for the item is not Teams' (or the
    columns disagree): ``points_possible_mismatch``, naming both values. Checked once per distinct
    percent text; rows without a twin, a number or a maximum are not checked."""
    rows = np.flatnonzero(d.carries(d.percent_twin))
    if not len(rows):
        return
    rows = rows[v.open()[rows] & (d.unit[rows] == ValueUnit.POINTS.value) & ~np.isnan(d.points[rows])]
    rows = rows[~np.isnan(a.max_points[rows]) & (a.max_points[rows] > 0)]
    if not len(rows):
        return
    codes_, uniq = pd.factorize(d.text_of(d.percent_twin, rows))
    parsed = [_PERCENT_TEXT.match(str(u)) for u in uniq]
    value = np.array([float(m.group(1)) if m else np.nan for m in parsed])
    decimals = np.array([len(m.group(2) or m.group(3) or "") if m else 0 for m in parsed])
    twin, tolerance = value[codes_], 0.5 * 10.0 ** -decimals[codes_.clip(0)] + 1e-9
    maximum = a.max_points[rows]
    share = d.points[rows] / maximum * 100.0
    bad = ~np.isnan(twin) & (np.abs(share - twin) > tolerance)
    if not bad.any():
        return
    bad_rows = rows[bad]
    with np.errstate(divide="ignore", invalid="ignore"):
        implied = np.where(twin[bad] > 0, d.points[bad_rows] * 100.0 / twin[bad], np.nan)
    by_row = dict(zip(bad_rows.tolist(), implied.tolist(), strict=True))
    v.give(
        v.mask(bad_rows),
        ReasonCode.POINTS_POSSIBLE_MISMATCH,
        lambda i: say.percent_twin_mismatch(
            d.points[i],
            d.text_of(d.percent_twin, i),
            np.array([by_row[int(r)] for r in i]),
            a.max_points[i],
            a.label[i],
            settings.policy.precision,
        ),
    )


def check_points(d: Desired, v: Verdicts, a: Assignments, settings: Settings) -> None:
    """Rules 8: a maximum the file declares (``points_possible``: a Points Possible row, a maximum
    column, a header such as ``[Total Pts: 50 Score]``, the mapping) must be Teams' maximum, for every
    row: else ``points_possible_mismatch`` (checked first, because it explains every over-maximum row of
    the column), unless the row's mapping says scale (``maximum_rule``): then a number in points
    becomes points × Teams' maximum / the file's, and the note says so. Then ``above_max_points``
    unless ``policy.above_max == "allow"`` (then a note), then ``blank_points``."""
    precision = settings.policy.precision
    maximum, possible = a.max_points, d.points_possible
    has_max = ~np.isnan(maximum)
    max_key = key(maximum, precision)  # compared as Teams stores points (a Single), at the precision
    stated = np.flatnonzero(has_max & ~np.isnan(possible))  # only rows whose file states one
    mismatch = np.zeros(d.n, dtype=bool)
    mismatch[stated] = key(possible[stated], precision) != max_key[stated]
    scale = mismatch & d.scale & (possible > 0) & v.open()
    if scale.any():
        numbers = np.flatnonzero(scale & (d.unit == ValueUnit.POINTS.value) & ~np.isnan(d.points))
        converted = rounded(d.points[numbers] * maximum[numbers] / possible[numbers], precision)
        v.add_note(
            numbers,
            say.maximum_scaled(d.points[numbers], possible[numbers], maximum[numbers], converted, precision),
        )
        d.points[numbers] = converted
    v.give(
        mismatch & ~scale,
        ReasonCode.POINTS_POSSIBLE_MISMATCH,
        lambda i: say.points_possible_mismatch(possible[i], maximum[i], a.label[i], precision),
    )
    above = has_max & ~d.clear & (key(d.points, precision) > max_key)
    if settings.policy.above_max == "reject":
        v.give(
            above,
            ReasonCode.ABOVE_MAX_POINTS,
            lambda i: say.above_max_points(d.points[i], maximum[i], a.label[i], precision),
        )
    else:
        i = np.flatnonzero(above & v.open())
        v.add_note(i, say.above_max_allowed(d.points[i], maximum[i], a.label[i], precision))
    v.give(
        ~d.clear & ~d.excuse & np.isnan(d.points),
        ReasonCode.BLANK_POINTS,
        lambda i: pd.Series([say.BLANK_POINTS] * len(i), dtype=object),
    )


# ---------------------------------------------------------------------------------------------
# rule 9: two rows reaching the same submission
# ---------------------------------------------------------------------------------------------
def comparable_values(d: Desired, precision: int, idx: np.ndarray | None = None) -> np.ndarray:
    """One float per row (of ``idx``, else of all) that two rows share exactly when they ask for the
    same: -inf a clear, +inf an excuse, else the points as Teams would store them (a Single), rounded
    to ``precision`` (``single.key``)."""
    clear, excuse, points = (
        (d.clear, d.excuse, d.points) if idx is None else (d.clear[idx], d.excuse[idx], d.points[idx])
    )
    return np.where(clear, -np.inf, np.where(excuse, np.inf, key(points, precision)))


def check_duplicates(
    d: Desired, v: Verdicts, a: Assignments, s: Students, sub: Submissions, precision: int
) -> None:
    """Rule 9: rows reaching the same submission (e.g. one keyed by SIS id, one by e-mail): different
    values → all ``duplicate_conflict``; the same value → the first by ``row_key`` is kept, the others
    are ``duplicate_identical`` (noop)."""
    live_idx = np.flatnonzero(v.open() & (sub.pos >= 0))
    live_pos = sub.pos[live_idx]
    # a submission two live rows reach: counted per submission (no hash of the positions)
    dup = np.bincount(live_pos, minlength=int(live_pos.max(initial=-1)) + 1)[live_pos] > 1
    if not dup.any():
        return
    idx = live_idx[dup]
    value = np.full(d.n, np.nan)
    value[idx] = comparable_values(d, precision, idx)
    special = d.clear[idx] | d.excuse[idx]
    shown = np.where(
        d.clear[idx],
        "clear",
        np.where(d.excuse[idx], "excuse", say.points(np.where(special, np.nan, value[idx]), precision)),
    )
    where = (
        pd.Series(d.source_file[idx], dtype=object)
        + " row "
        + pd.Series(d.source_row[idx]).astype(str).astype(object)
    )
    g = pd.DataFrame({"row": idx, "sub": sub.pos[idx], "value": value[idx], "shown": shown, "where": where})
    g["n_values"] = g.groupby("sub")["value"].transform("nunique")
    conflict = g[g["n_values"] > 1]
    if len(conflict):
        listing = (conflict["shown"] + " (" + conflict["where"] + ")").groupby(conflict["sub"]).agg(", ".join)
        v.give(
            v.mask(conflict["row"].to_numpy()),
            ReasonCode.DUPLICATE_CONFLICT,
            lambda i: say.duplicate_conflict(
                s.label[i], a.label[i], pd.Series(sub.pos[i]).map(listing).astype(object)
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
        v.give(
            v.mask(later["row"].to_numpy()),
            ReasonCode.DUPLICATE_IDENTICAL,
            lambda i: say.duplicate_identical(
                pd.Series(kept.reindex(i).to_numpy(), dtype=object), s.label[i], a.label[i]
            ),
        )


# ---------------------------------------------------------------------------------------------
# rules 10-11: the diff, clears, excuses and the three-way teacher_override
# ---------------------------------------------------------------------------------------------
@dataclass
class Diff:
    same: np.ndarray  # Teams already holds the value
    write: np.ndarray  # the row writes (update, create or excuse) unless rule 11 keeps the teacher's grade
    current: np.ndarray  # Teams' points rounded to the precision
    has_grade: np.ndarray
    has_outcome: np.ndarray
    value: np.ndarray  # the rows' ``comparable_values``


def diff(d: Desired, v: Verdicts, a: Assignments, s: Students, sub: Submissions, precision: int) -> Diff:
    """Rule 10: against the current points, both as Teams stores them (a Single) rounded to
    ``policy.precision`` (``single.key``): equal → unchanged; a clear with no grade →
    ``already_clear`` (noop); everything else open writes. A value Teams cannot keep at that
    precision (a large grade with many decimals) is noted on the row."""
    open_ = v.open()
    current = key(sub.before_points, precision)
    has_grade = ~np.isnan(sub.before_points)
    v.give(
        d.clear & ~has_grade,
        ReasonCode.ALREADY_CLEAR,
        lambda i: say.already_clear(s.label[i], a.label[i]),
    )
    value = comparable_values(d, precision)
    same = open_ & ~d.clear & ~d.excuse & (value == current)
    write = v.open() & ~same
    points = write & ~d.clear & ~d.excuse
    kept = np.flatnonzero(points)[lost(d.points[points], precision)]
    v.add_note(kept, say.single_kept(d.points[kept], key(d.points[kept], precision), precision))
    return Diff(same, write, current, has_grade, sub.has_outcome, value)


@dataclass
class Remembered:
    points: np.ndarray  # what gradesync last wrote (NaN: nothing, or a clear)
    at: np.ndarray
    known: np.ndarray
    excused_at: np.ndarray  # when gradesync excused the submission (None: never)
    excusing: np.ndarray  # gradesync excused it less than EXCUSE_SETTLING before the plan


# How long after gradesync excused a submission a read that does not show it excused is taken for
# Graph still applying it (every submission action is asynchronous; Graph documents no duration):
# within it the excuse is never sent again; after it, Teams' status is believed (a teacher may have
# undone the excuse on purpose, and the gradebook still says excused: it is excused again).
EXCUSE_SETTLING = timedelta(hours=1)


def remembered(
    memory: pd.DataFrame | None, submission_id: np.ndarray, now: datetime | None = None
) -> Remembered:
    """Per row: what gradesync last wrote to its submission (``MEMORY_COLUMNS``), when, whether known,
    and whether gradesync excused it within ``EXCUSE_SETTLING`` of ``now`` (the plan's time)."""
    n = len(submission_id)
    if memory is None or memory.empty:
        none = filled(n, None)
        return Remembered(np.full(n, np.nan), none, np.zeros(n, dtype=bool), none, np.zeros(n, dtype=bool))
    m = memory.reindex(columns=list(MEMORY_COLUMNS)).drop_duplicates("submission_id", keep="last")
    index = pd.Index(texts(m["submission_id"]), dtype=object)
    keys = np.where(pd.isna(submission_id), "\x00", submission_id).astype(object)  # "\x00": no submission
    pos = index.get_indexer(keys)
    points = take(m["last_written_points"].to_numpy(dtype="float64"), pos, np.nan)
    written_at = take(objects(m["last_written_at"]), pos, None)
    excused_at = take(objects(m["excused_at"]), pos, None)
    excusing = np.zeros(n, dtype=bool)
    has = np.flatnonzero(pd.notna(excused_at))
    if len(has) and now is not None:
        when = pd.to_datetime(pd.Series(excused_at[has], dtype=object), utc=True, errors="coerce")
        excusing[has] = ((now - when) < EXCUSE_SETTLING).fillna(False).to_numpy(dtype=bool)
    known = (pos >= 0) & pd.notna(written_at)
    return Remembered(points, written_at, known, excused_at, excusing)


def teacher_override(
    d: Desired, v: Verdicts, sub: Submissions, change: Diff, memo: Remembered, settings: Settings
) -> np.ndarray:
    """Rule 11, three-way sync: a write whose current points differ from what gradesync last wrote to
    that submission was changed by a teacher in Teams since → ``teacher_override``. Returns those rows;
    ``policy.teacher_override`` decides (``decide_actions``). Nothing remembered: an ordinary change."""
    precision = settings.policy.precision
    memo_round = key(memo.points, precision)
    differs = ~((np.isnan(change.current) & np.isnan(memo_round)) | (change.current == memo_round))
    policy = settings.policy.teacher_override
    idx = v.give(
        change.write & ~d.excuse & change.has_outcome & memo.known & differs,
        ReasonCode.TEACHER_OVERRIDE,
        lambda i: say.teacher_override(
            memo.points[i], memo.at[i], sub.before_points[i], d.points[i], d.clear[i], policy, precision
        ),
    )
    change.write[idx] = False
    return idx


@dataclass
class Decisions:
    action: np.ndarray
    override_policy: np.ndarray
    decrease: np.ndarray


def decide_actions(
    d: Desired, v: Verdicts, change: Diff, overridden: np.ndarray, settings: Settings
) -> Decisions:
    """The action of every row: a reason → ``reject`` (or ``noop`` for the noop reasons); a write →
    ``excuse``, ``update`` (the submission has a points outcome, also with null points) or ``create``;
    ``sis-wins`` turns a ``teacher_override`` into an update. ``decrease``: an update lowering a grade."""
    noop, reject, excuse, update, create = range(len(ACTIONS))  # codes into ACTIONS
    write = change.write
    # int8 arithmetic instead of nested np.where: create, or update with an outcome; excuse wins; 0 = noop
    base = create - change.has_outcome.view("int8")
    code = (base - (base - excuse) * d.excuse.view("int8")) * write.view("int8")
    given = ~v.open()
    reasoned = np.flatnonzero(given & ~write)  # a write has no reason (rule 11 ends the write it gives one)
    is_noop = pd.Series(v.reason[reasoned], dtype=object).isin(NOOP_REASONS).to_numpy(dtype=bool)
    code[reasoned] = np.where(is_noop, noop, reject)
    policy = settings.policy.teacher_override
    override_policy = filled(d.n, "")
    override_policy[overridden] = policy
    if policy == "sis-wins":
        code[overridden] = update
    # the plain change's message by action (a write's text wins over "already has it"); 0 keeps the row's
    plain_texts = np.array(
        [None, say.MESSAGE_SAME, say.MESSAGE_EXCUSE, say.MESSAGE_UPDATE, say.MESSAGE_CREATE]
    )
    by_action = np.array([0, 0, 2, 3, 4], dtype="int8")[code]  # ACTIONS order
    which = np.where(by_action > 0, by_action, change.same.view("int8"))
    which[given] = 0
    message = plain_texts[which]
    keep = np.flatnonzero(which == 0)
    message[keep] = v.message[keep]
    v.message = message
    decrease = (code == update) & change.has_grade & (d.clear | (change.value < change.current))
    action = np.array([a.value for a in ACTIONS], dtype=object)[code]
    return Decisions(action, override_policy, decrease)
