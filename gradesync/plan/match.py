"""Pure matching of input keys to Graph ids: assignments by name or id, students by their identifiers.

Both functions take a frame of *keys* (usually the distinct keys of the input, already paired with
the resolved ``class_id``) and a Snapshot frame, and answer one row per key row, in the same order,
with the matched id or a reason code. No I/O; vectorised merges only, one per identifier kind.

Rules:

* assignments ``by="displayName"``: an exact name match wins; only when there is none, a match that
  ignores case and runs of whitespace (``"Unit  1 quiz "`` = ``"unit 1 Quiz"``). At the winning
  level an assignment students have (``assigned``, or ``published``: being assigned) is preferred to
  one they do not (a draft copy, a scheduled or an inactive one), so a draft copy never makes its
  assigned namesake ambiguous; the match says how many namesakes it passed over. More than one
  distinct assignment left → ``ambiguous_assignment``; none at either level → ``unknown_assignment``.
  ``by="id"``: the assignment id, exactly.
* students: the identifier kinds are tried in the configured order; the first kind that yields any
  match in the class wins. ``sis_id`` means ``student.externalId`` first, then the user's own
  ``externalId``; ``upn`` and ``mail`` ignore case; ``student_number`` and ``id`` are exact. More than
  one distinct user at the winning kind → ``ambiguous_student``. Only members whose ``primary_role``
  is ``student`` (or unknown: empty, ``none``, ``unknownFutureValue``) count. A key that matches
  nobody in its class but matches a member of another class of the snapshot → ``not_in_class``,
  otherwise ``unknown_student``.
* students by a list of identifiers (``match_student_fallbacks``: a mapping's Student ID, then
  Username, then Email): each identifier by its own kind; the first that finds one student wins, the
  ones that find nobody are passed over; one that finds several students (``ambiguous_student``), or
  two that find different students (``identifier_conflict``), refuse the row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas._libs import lib

from gradesync.models import ReasonCode
from gradesync.plan.arrays import first_positions, lookup_sorted

__all__ = [
    "LIVE_STATUSES",
    "STUDENT_KINDS",
    "STUDENT_ROLES",
    "FallbackMatch",
    "Identifiers",
    "Roster",
    "eligible_members",
    "match_assignment_rows",
    "match_assignments",
    "match_student_codes",
    "match_student_fallbacks",
    "match_students",
]

# student identifier kinds → (member columns tried in turn, case-insensitive?)
STUDENT_KINDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "sis_id": (("sis_id", "external_id"), False),
    "student_number": (("student_number",), False),
    "upn": (("upn",), True),
    "mail": (("mail",), True),
    "id": (("user_id",), False),
}
STUDENT_ROLES = frozenset({"student", "", "none", "unknownfuturevalue"})
_WHITESPACE = re.compile(r"\s+")


def _text_array(values: pd.Series | np.ndarray) -> np.ndarray:
    """An object array of ``str``, missing → ``""`` (zero-copy when nothing is missing)."""
    arr = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    if len(arr) and not lib.is_string_array(arr, skipna=False):
        missing = pd.isna(arr)
        if missing.any():
            arr = arr.copy()
            arr[missing] = ""
    return arr


def _text(series: pd.Series) -> pd.Series:
    """Text as plain Python ``str`` objects; missing → ``""``."""
    return pd.Series(_text_array(series), index=series.index, dtype=object)


def _map_distinct(values: np.ndarray, fn: Callable[[str], str]) -> np.ndarray:
    """``fn`` applied once per distinct value of an object array of ``str``."""
    codes, uniq = pd.factorize(values)
    done = np.array([fn(v) for v in uniq.tolist()], dtype=object) if len(uniq) else np.empty(0, dtype=object)
    return done[codes] if len(values) else np.empty(0, dtype=object)


def _normalize(value: str) -> str:
    return _WHITESPACE.sub(" ", value).strip().casefold()


def _lookup(space: pd.Index, values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` in ``space`` (``-1`` when absent), as int64."""
    if len(space) == 0 or len(values) == 0:
        return np.full(len(values), -1, dtype="int64")
    return np.asarray(space.get_indexer(values), dtype="int64")


def _join(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inner equi-join of two int64 key arrays (``-1`` never matches): ``(left_pos, right_pos)`` pairs."""
    r_pos = np.flatnonzero(right >= 0)
    if not len(r_pos) or not len(left):
        return np.empty(0, dtype="int64"), np.empty(0, dtype="int64")
    r_pos = r_pos[np.argsort(right[r_pos], kind="stable")]
    r_sorted = right[r_pos]
    uniq, starts, counts = np.unique(r_sorted, return_index=True, return_counts=True)
    at = _lookup(pd.Index(uniq), left)
    at[left < 0] = -1
    hit = at >= 0
    cnt = np.where(hit, counts[np.where(hit, at, 0)], 0)
    l_pos = np.repeat(np.arange(len(left), dtype="int64"), cnt)
    first = np.repeat(np.where(hit, starts[np.where(hit, at, 0)], 0), cnt)
    offset = np.arange(len(l_pos), dtype="int64") - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return l_pos, r_pos[first + offset]


def _best(
    n_keys: int, key: np.ndarray, ident: np.ndarray, level: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per key (0..n_keys-1): the number of distinct ``ident`` at its best (lowest) ``level`` among the
    hits ``(key, ident, level)``, and one such ident (meaningful when the number is 1; else -1)."""
    n = np.zeros(n_keys, dtype="int64")
    one = np.full(n_keys, -1, dtype="int64")
    if not len(key):
        return n, one
    order = np.lexsort((ident, level, key))
    key, ident, level = key[order], ident[order], level[order]
    start = np.ones(len(key), dtype=bool)
    start[1:] = key[1:] != key[:-1]
    group = np.cumsum(start) - 1
    win = level == level[start][group]
    key, ident = key[win], ident[win]
    new = np.ones(len(key), dtype=bool)
    new[1:] = (key[1:] != key[:-1]) | (ident[1:] != ident[:-1])
    key, ident = key[new], ident[new]
    n += np.bincount(key, minlength=n_keys)
    one[key] = ident  # the last write wins; only read where n == 1
    return n, one


def _distinct_pairs(class_ids: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct (class, key) pairs by integer codes: (row → pair, pair → class code, pair → key code,
    class uniques, key uniques)."""
    c_codes, c_uniq = pd.factorize(class_ids)
    k_codes, k_uniq = pd.factorize(keys)
    nk = max(len(k_uniq), 1)
    p_codes, p_uniq = pd.factorize(c_codes.astype("int64") * nk + k_codes)
    p_uniq = np.asarray(p_uniq, dtype="int64")
    return (
        p_codes,
        p_uniq // nk,
        p_uniq % nk,
        np.asarray(c_uniq, dtype=object),
        np.asarray(k_uniq, dtype=object),
    )


def _combine(cls: np.ndarray, val: np.ndarray, n_val: int) -> np.ndarray:
    """One int64 key per (class code, value code); ``-1`` when either is unknown."""
    return np.where((cls >= 0) & (val >= 0), cls * max(n_val, 1) + val, -1)


def _answers(
    n: np.ndarray, one: np.ndarray, ident_uniq: np.ndarray, unknown: np.ndarray, ambiguous: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct key: the matched id (``None`` unless exactly one) and the reason."""
    ids = np.full(len(n), None, dtype=object)
    matched = n == 1
    ids[matched] = ident_uniq[one[matched]]
    reason = np.where(matched, "", np.where(n > 1, ambiguous, unknown)).astype(object)
    return ids, reason


def match_assignments(keys: pd.DataFrame, assignments: pd.DataFrame, by: str) -> pd.DataFrame:
    """Match ``keys[class_id, assignment_key]`` to assignments of that class.

    Returns ``[class_id, assignment_key, assignment_id, reason]``, one row per key row in order;
    ``reason`` is ``""`` when matched, else ``unknown_assignment`` / ``ambiguous_assignment``.
    """
    k_class, k_key = _text_array(keys["class_id"]), _text_array(keys["assignment_key"])
    _, ids, reason, _ = match_assignment_rows(k_class, k_key, assignments, by)
    return _matched_frame(k_class, ("assignment_key", k_key), ("assignment_id", ids), reason)


def _matched_frame(
    k_class: np.ndarray, key: tuple[str, np.ndarray], found: tuple[str, np.ndarray], reason: np.ndarray
) -> pd.DataFrame:
    """A match's answer as a frame: class id, the key, the id found (None) and the reason, as objects."""
    columns = {"class_id": k_class, key[0]: key[1], found[0]: found[1], "reason": reason}
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()}, copy=False)


# assignment statuses students have a submission in (or are about to): preferred among namesakes
LIVE_STATUSES = ("assigned", "published")


def match_assignment_rows(
    k_class: np.ndarray, k_key: np.ndarray, assignments: pd.DataFrame, by: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``match_assignments`` on arrays: per key row, the row of ``assignments`` holding the matched
    assignment (its first row with that class and id; -1 for none), its id (None), the reason, and
    how many namesakes were passed over for the one students have (0: none)."""
    if by not in ("id", "displayName"):
        raise ValueError(f"unknown assignment match kind {by!r}")
    k_class, k_key = _text_array(k_class), _text_array(k_key)
    p_codes, p_class, p_key, c_uniq, k_uniq = _distinct_pairs(k_class, k_key)
    a_class, a_ids, a_names = (
        _text_array(assignments[c]) for c in ("class_id", "assignment_id", "display_name")
    )
    ac_codes, ac_uniq = pd.factorize(a_class)
    id_codes, id_uniq = pd.factorize(a_ids)
    id_uniq = np.asarray(id_uniq, dtype=object)
    pc = _lookup(pd.Index(ac_uniq, dtype=object), c_uniq)[p_class]
    if by == "id":
        kv = _lookup(pd.Index(id_uniq, dtype=object), k_uniq)
        probes = [(_combine(pc, kv[p_key], len(id_uniq)), _combine(ac_codes, id_codes, len(id_uniq)))]
    else:
        name_codes, name_uniq = pd.factorize(a_names)
        name_uniq = np.asarray(name_uniq, dtype=object)
        kv = _lookup(pd.Index(name_uniq, dtype=object), k_uniq)
        norm_codes, norm_uniq = pd.factorize(
            np.array([_normalize(v) for v in name_uniq.tolist()], dtype=object)
        )
        k_norm = np.array([_normalize(v) for v in k_uniq.tolist()], dtype=object)
        kn = _lookup(pd.Index(np.asarray(norm_uniq, dtype=object), dtype=object), k_norm)
        a_norm = norm_codes[name_codes] if len(name_codes) else name_codes
        probes = [
            (_combine(pc, kv[p_key], len(name_uniq)), _combine(ac_codes, name_codes, len(name_uniq))),
            (_combine(pc, kn[p_key], len(norm_uniq)), _combine(ac_codes, a_norm, len(norm_uniq))),
        ]
    parts = [(*_join(left, right), level) for level, (left, right) in enumerate(probes)]
    hit_key = np.concatenate([li for li, _, _ in parts])
    hit_row = np.concatenate([ri for _, ri, _ in parts])
    hit_level = np.concatenate([np.full(len(li), lv, dtype="int64") for li, _, lv in parts])
    n_named, _ = _best(len(p_class), hit_key, id_codes[hit_row], hit_level)
    # among the namesakes at the winning level, one students have wins over those they do not
    status = _text_array(assignments["status"]) if "status" in assignments else np.full(len(id_codes), "")
    dormant = ~pd.Series(status, dtype=object).isin(LIVE_STATUSES).to_numpy(dtype=bool)
    n, one = _best(len(p_class), hit_key, id_codes[hit_row], hit_level * 2 + dormant[hit_row])
    passed = np.where((n == 1) & (n_named > 1), n_named - 1, 0)
    ids, reason = _answers(
        n,
        one,
        id_uniq,
        np.full(len(n), ReasonCode.UNKNOWN_ASSIGNMENT.value, dtype=object),
        ReasonCode.AMBIGUOUS_ASSIGNMENT.value,
    )
    nid = max(len(id_uniq), 1)
    space, first = first_positions(ac_codes.astype("int64") * nid + id_codes)  # texts: no -1 codes
    matched = (n == 1) & (pc >= 0)
    row = np.full(len(n), -1, dtype="int64")
    row[matched] = lookup_sorted(space, first, pc[matched].astype("int64") * nid + one[matched])
    return row[p_codes], ids[p_codes], reason[p_codes], passed[p_codes]


def eligible_members(members: pd.DataFrame) -> pd.DataFrame:
    """Members that can carry a grade: students, or members whose role Graph did not tell."""
    return members[_eligible(members)]


def _eligible(members: pd.DataFrame) -> np.ndarray:
    """``eligible_members`` as a row mask."""
    role = _map_distinct(_text_array(members["primary_role"]), lambda r: r.strip().casefold())
    return np.asarray(pd.Series(role, dtype=object).isin(STUDENT_ROLES), dtype=bool)


@dataclass
class Roster:
    """The snapshot's members coded once: each row's class and user as codes into the distinct ids."""

    class_codes: np.ndarray
    class_uniq: np.ndarray
    user_codes: np.ndarray
    user_uniq: np.ndarray

    @classmethod
    def of(cls, members: pd.DataFrame) -> Roster:
        c_codes, c_uniq = pd.factorize(_text_array(members["class_id"]))
        u_codes, u_uniq = pd.factorize(_text_array(members["user_id"]))
        return cls(c_codes, np.asarray(c_uniq, dtype=object), u_codes, np.asarray(u_uniq, dtype=object))

    def first_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct (class, user) keys (``class code × n users + user code``), sorted, and the
        member row each first appears in."""
        nu = max(len(self.user_uniq), 1)
        return first_positions(self.class_codes.astype("int64") * nu + self.user_codes)


def _identifier_table(
    members: pd.DataFrame, roster: Roster, eligible: np.ndarray, order: Sequence[str]
) -> tuple[np.ndarray, ...]:
    """The eligible members' identifiers, one entry per (member, identifier), by level: ``(class code,
    user code, value, level, folded)`` arrays (codes of ``roster``; a blank identifier has no entry)."""
    for kind in order:
        if kind not in STUDENT_KINDS:
            raise ValueError(f"unknown student identifier kind {kind!r}")
    rows = np.flatnonzero(eligible)
    class_codes, user_codes = roster.class_codes[rows], roster.user_codes[rows]
    parts: list[tuple[np.ndarray, ...]] = []
    level = 0
    for kind in order:
        columns, fold = STUDENT_KINDS[kind]
        for column in columns:
            raw = _text_array(members[column].to_numpy(dtype=object)[rows])
            stripped = list(map(str.strip, raw.tolist()))  # mostly distinct
            value = np.array(list(map(str.casefold, stripped)) if fold else stripped, dtype=object)
            keep = value != ""
            k = int(keep.sum())
            parts.append(
                (
                    class_codes[keep],
                    user_codes[keep],
                    value[keep],
                    np.full(k, level, dtype="int64"),
                    np.full(k, fold, dtype=bool),
                )
            )
            level += 1
    if not parts:  # pragma: no cover - order is never empty (MatchSettings refuses it)
        return tuple(np.empty(0, dtype=t) for t in ("int64", "int64", object, "int64", bool))
    return tuple(np.concatenate(columns) for columns in zip(*parts, strict=True))


def match_students(keys: pd.DataFrame, members: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Match ``keys[class_id, student_key]`` to student members of that class.

    Returns ``[class_id, student_key, user_id, reason]``, one row per key row in order; ``reason``
    is ``""`` when matched, else ``unknown_student`` / ``ambiguous_student`` / ``not_in_class``.
    """
    k_class, k_key = _text_array(keys["class_id"]), _text_array(keys["student_key"])
    roster = Roster.of(members)
    user, reason = match_student_codes(k_class, k_key, members, roster, order)
    ids = np.full(len(user), None, dtype=object)
    ids[user >= 0] = roster.user_uniq[user[user >= 0]]
    return _matched_frame(k_class, ("student_key", k_key), ("user_id", ids), reason)


def match_student_codes(
    k_class: np.ndarray, k_key: np.ndarray, members: pd.DataFrame, roster: Roster, order: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``match_students`` on arrays: per key row, the matched user as a code of ``roster.user_uniq``
    (-1 for none) and the reason (``""`` when matched).

    Works on integer codes: each distinct key string is stripped and folded once, each distinct
    (class, key) pair is matched once, so the cost grows with the distinct keys, not the rows.
    """
    k_class, k_key = _text_array(k_class), _text_array(k_key)
    eligible = _eligible(members)
    tc_codes, tu_codes, t_value, t_level, t_fold = _identifier_table(members, roster, eligible, order)
    # per key row: its stripped and its folded form as codes of the members' values (-1: nobody has
    # it). A key's answer depends only on (class, plain code, folded code): unknown keys share one.
    # One factorize codes the members' values and both forms of the keys: the values come first, so
    # their codes are 0..nv-1 and a key's code beyond them means nobody has it.
    plain_list = list(map(str.strip, k_key.tolist()))
    plain = np.array(plain_list, dtype=object)
    folded = np.array(list(map(str.casefold, plain_list)), dtype=object)
    changed = np.flatnonzero(folded != plain) if len(plain) else np.zeros(0, dtype="int64")
    all_codes, _ = pd.factorize(np.concatenate([t_value, plain, folded[changed]]))
    nt, nk = len(t_value), len(plain)
    tv_codes = all_codes[:nt]
    nv = int(tv_codes.max()) + 1 if nt else 0
    k_codes = np.where(all_codes[nt:] < nv, all_codes[nt:], -1).astype("int64")
    k_plain = k_codes[:nk]
    k_fold = k_plain.copy()
    k_fold[changed] = k_codes[nk:]
    del plain_list, plain, folded
    row_tc = _lookup(pd.Index(roster.class_uniq, dtype=object), k_class)
    n1 = n2 = nv + 1  # codes shifted by one: 0 = not found
    p_codes, p_uniq = pd.factorize((row_tc * n1 + (k_plain + 1)) * n2 + (k_fold + 1))
    p_uniq = np.asarray(p_uniq, dtype="int64")
    p_fold = p_uniq % n2 - 1
    p_plain = (p_uniq // n2) % n1 - 1
    pc = p_uniq // n2 // n1
    right = _combine(tc_codes, tv_codes, nv)
    right = np.where(right >= 0, right * 2 + t_fold, -1)
    parts = []
    for bit, kv in ((0, p_plain), (1, p_fold)):
        left = _combine(pc, kv, nv)
        parts.append(_join(np.where(left >= 0, left * 2 + bit, -1), right))
    li = np.concatenate([p[0] for p in parts])
    ri = np.concatenate([p[1] for p in parts])
    n, one = _best(len(p_uniq), li, tu_codes[ri], t_level[ri])

    # nobody in the class: does the key name a student of another class in the snapshot?
    present = np.zeros((2, max(nv, 1)), dtype=bool)
    present[t_fold.astype("int64"), tv_codes] = True
    elsewhere = ((p_plain >= 0) & present[0][np.maximum(p_plain, 0)]) | (
        (p_fold >= 0) & present[1][np.maximum(p_fold, 0)]
    )
    unknown = np.where(elsewhere, ReasonCode.NOT_IN_CLASS.value, ReasonCode.UNKNOWN_STUDENT.value).astype(
        object
    )
    reason = np.where(n == 1, "", np.where(n > 1, ReasonCode.AMBIGUOUS_STUDENT.value, unknown)).astype(object)
    user = np.where(n == 1, one, -1)
    return user[p_codes], reason[p_codes]


#: Separators of the desired frame's ``student_ids`` (``models.DESIRED_COLUMNS``): within one
#: identifier (header, kind, value) and between identifiers.
ID_PART, ID_SEP = "\x1e", "\x1f"


@dataclass
class Identifiers:
    """The distinct identifier lists of some rows, split into slots: slot ``k`` is each list's k-th
    identifier (``""`` where a list is shorter)."""

    headers: list[np.ndarray]  # per slot, per list: the column's header
    kinds: list[np.ndarray]  # per slot, per list: the Teams attribute (a STUDENT_KINDS key)
    values: list[np.ndarray]  # per slot, per list: the identifier

    @classmethod
    def parse(cls, lists: np.ndarray) -> Identifiers:
        """Split each encoded list (``header\\x1ekind\\x1evalue`` joined by ``\\x1f``); once per list."""
        split = [str(t).split(ID_SEP) if t else [] for t in lists.tolist()]
        width = max((len(s) for s in split), default=0)
        n = len(split)
        headers = [np.full(n, "", dtype=object) for _ in range(width)]
        kinds = [np.full(n, "", dtype=object) for _ in range(width)]
        values = [np.full(n, "", dtype=object) for _ in range(width)]
        for i, parts in enumerate(split):
            for k, part in enumerate(parts):
                header, kind, value = [*part.split(ID_PART), "", ""][:3]
                headers[k][i], kinds[k][i], values[k][i] = header, kind, value
        return cls(headers, kinds, values)


@dataclass
class FallbackMatch:
    """Per key row: the student found through a list of identifiers, and how."""

    user: np.ndarray  # code into ``roster.user_uniq``; -1 for none
    reason: np.ndarray  # "" when found, else a ReasonCode value
    via: np.ndarray  # the slot that found the student (-1: none)
    other: np.ndarray  # for identifier_conflict: the second slot, naming a different student (-1: none)
    via_user: np.ndarray  # the student the ``via`` slot found (also when the row is refused)
    other_user: np.ndarray  # the student the ``other`` slot found

    @classmethod
    def none(cls, n: int) -> FallbackMatch:
        """``n`` rows that found nobody (their class is unknown: the class rule refused them)."""
        minus = [np.full(n, -1, dtype="int64") for _ in range(5)]
        return cls(minus[0], np.full(n, "", dtype=object), *minus[1:])

    def put(self, rows: np.ndarray, other: FallbackMatch) -> None:
        """Copy ``other``'s answers into ``rows``."""
        for name in ("user", "reason", "via", "other", "via_user", "other_user"):
            getattr(self, name)[rows] = getattr(other, name)


def match_student_fallbacks(
    k_class: np.ndarray, ids: Identifiers, members: pd.DataFrame, roster: Roster
) -> FallbackMatch:
    """Match key rows (``k_class`` with their identifier lists) by each identifier in turn, each by
    its own Teams attribute. The first identifier that finds one student wins; identifiers that find
    nobody are passed over (that is the fallback); one that finds several students, or two that find
    different students, refuse the row (``ambiguous_student``, ``identifier_conflict``): never a guess.
    Nobody found: ``not_in_class`` when an identifier names a student of another class, else
    ``unknown_student``. Vectorised per slot: ``match_student_codes`` once per (slot, kind)."""
    n, width = len(k_class), len(ids.values)
    found = np.full((n, max(width, 1)), -1, dtype="int64")
    ambiguous = np.zeros(n, dtype=bool)
    elsewhere = np.zeros(n, dtype=bool)
    for k in range(width):
        kinds, values = ids.kinds[k], ids.values[k]
        for kind in pd.unique(kinds[values != ""]):
            rows = np.flatnonzero((kinds == kind) & (values != ""))
            if kind not in STUDENT_KINDS:
                continue
            user, reason = match_student_codes(k_class[rows], values[rows], members, roster, [str(kind)])
            found[rows, k] = np.where(reason == "", user, -1)
            ambiguous[rows] |= reason == ReasonCode.AMBIGUOUS_STUDENT.value
            elsewhere[rows] |= reason == ReasonCode.NOT_IN_CLASS.value
    hit = found >= 0
    any_hit = hit.any(axis=1)
    via = np.where(any_hit, hit.argmax(axis=1), -1)
    user = np.where(any_hit, found[np.arange(n), np.maximum(via, 0)], -1)
    differs = hit & (found != user[:, None])
    conflict = differs.any(axis=1)
    other = np.where(conflict, differs.argmax(axis=1), -1)
    other_user = np.where(conflict, found[np.arange(n), np.maximum(other, 0)], -1)
    unknown = np.where(elsewhere, ReasonCode.NOT_IN_CLASS.value, ReasonCode.UNKNOWN_STUDENT.value)
    reason = np.where(
        ambiguous,
        ReasonCode.AMBIGUOUS_STUDENT.value,
        np.where(conflict, ReasonCode.IDENTIFIER_CONFLICT.value, np.where(any_hit, "", unknown)),
    ).astype(object)
    return FallbackMatch(np.where(reason == "", user, -1), reason, via, other, user, other_user)
