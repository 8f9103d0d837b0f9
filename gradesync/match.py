"""Pure matching of input keys to Graph ids: assignments by name or id, students by their identifiers.

Both functions take a frame of *keys* (usually the distinct keys of the input, already paired with
the resolved ``class_id``) and a Snapshot frame, and answer one row per key row, in the same order,
with the matched id or a reason code. No I/O; vectorised merges only, one per identifier kind.

Rules (issue 3, item 3):

* assignments ``by="displayName"``: an exact name match wins; only when there is none, a match that
  ignores case and runs of whitespace (``"Unit  1 quiz "`` = ``"unit 1 Quiz"``). More than one distinct
  assignment at the winning level → ``ambiguous_assignment``; none at either → ``unknown_assignment``.
  ``by="id"``: the assignment id, exactly.
* students: the identifier kinds are tried in the configured order; the first kind that yields any
  match in the class wins. ``sis_id`` means ``student.externalId`` first, then the user's own
  ``externalId``; ``upn`` and ``mail`` ignore case; ``student_number`` and ``id`` are exact. More than
  one distinct user at the winning kind → ``ambiguous_student``. Only members whose ``primary_role``
  is ``student`` (or unknown: empty, ``none``, ``unknownFutureValue``) count. A key that matches
  nobody in its class but matches a member of another class of the snapshot → ``not_in_class``,
  otherwise ``unknown_student``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from gradesync.models import ReasonCode

# student identifier kinds → (member columns tried in turn, case-insensitive?)
STUDENT_KINDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "sis_id": (("sis_id", "external_id"), False),
    "student_number": (("student_number",), False),
    "upn": (("upn",), True),
    "mail": (("mail",), True),
    "id": (("user_id",), False),
}
STUDENT_ROLES = frozenset({"student", "", "none", "unknownfuturevalue"})


def _text(series: pd.Series) -> pd.Series:
    """Text as plain Python ``str`` objects; missing → ``""``."""
    arr = series.to_numpy(dtype=object)
    missing = pd.isna(arr)
    if missing.any():
        arr = arr.copy()
        arr[missing] = ""
    return pd.Series(arr, index=series.index, dtype=object)


def normalize_name(series: pd.Series) -> pd.Series:
    """A name ignoring case and whitespace: runs of whitespace → one space, stripped, casefolded."""
    return _text(series).str.replace(r"\s+", " ", regex=True).str.strip().str.casefold()


def _resolve_level(keys: pd.DataFrame, hits: pd.DataFrame, key_cols: list[str], id_col: str) -> pd.DataFrame:
    """Per key: number of distinct ids at the best (lowest) ``level`` among ``hits``, and the id if one."""
    if hits.empty:
        out = keys[key_cols].copy()
        out["n"] = 0
        out[id_col] = None
        return out
    best = hits.groupby(key_cols, sort=False)["level"].transform("min")
    winners = hits[hits["level"] == best].drop_duplicates([*key_cols, id_col])
    agg = winners.groupby(key_cols, sort=False)[id_col].agg(["size", "first"])
    agg.columns = ["n", id_col]
    out = keys[key_cols].merge(agg.reset_index(), on=key_cols, how="left")
    out["n"] = out["n"].fillna(0).astype("int64")
    return out


def match_assignments(keys: pd.DataFrame, assignments: pd.DataFrame, by: str) -> pd.DataFrame:
    """Match ``keys[class_id, assignment_key]`` to assignments of that class.

    Returns ``[class_id, assignment_key, assignment_id, reason]``, one row per key row in order;
    ``reason`` is ``""`` when matched, else ``unknown_assignment`` / ``ambiguous_assignment``.
    """
    cols = ["class_id", "assignment_key"]
    k = pd.DataFrame({c: _text(keys[c]).to_numpy(dtype=object) for c in cols}, dtype=object)
    uk = k.drop_duplicates().reset_index(drop=True)
    a = pd.DataFrame(
        {
            "class_id": _text(assignments["class_id"]).to_numpy(dtype=object),
            "assignment_id": _text(assignments["assignment_id"]).to_numpy(dtype=object),
            "display_name": _text(assignments["display_name"]).to_numpy(dtype=object),
        },
        dtype=object,
    )
    if by == "id":
        hits = uk.merge(a, left_on=cols, right_on=["class_id", "assignment_id"])[[*cols, "assignment_id"]]
        hits["level"] = 0
    elif by == "displayName":
        exact = uk.merge(a, left_on=cols, right_on=["class_id", "display_name"])[[*cols, "assignment_id"]]
        exact["level"] = 0
        uk_n = uk.assign(norm=normalize_name(uk["assignment_key"]).to_numpy(dtype=object))
        a_n = a.assign(norm=normalize_name(a["display_name"]).to_numpy(dtype=object))
        loose = uk_n.merge(a_n, on=["class_id", "norm"])[[*cols, "assignment_id"]]
        loose["level"] = 1
        hits = pd.concat([exact, loose], ignore_index=True)
    else:
        raise ValueError(f"unknown assignment match kind {by!r}")
    resolved = _resolve_level(uk, hits, cols, "assignment_id")
    n = resolved["n"].to_numpy()
    resolved["reason"] = np.where(
        n == 1,
        "",
        np.where(n == 0, ReasonCode.UNKNOWN_ASSIGNMENT.value, ReasonCode.AMBIGUOUS_ASSIGNMENT.value),
    ).astype(object)
    out = k.merge(resolved, on=cols, how="left")
    ids = out["assignment_id"].to_numpy(dtype=object).copy()
    ids[out["n"].to_numpy() != 1] = None
    return pd.DataFrame(
        {
            "class_id": out["class_id"].to_numpy(dtype=object),
            "assignment_key": out["assignment_key"].to_numpy(dtype=object),
            "assignment_id": pd.Series(ids, dtype=object),
            "reason": out["reason"].to_numpy(dtype=object),
        },
        dtype=object,
    )


def eligible_members(members: pd.DataFrame) -> pd.DataFrame:
    """Members that can carry a grade: students, or members whose role Graph did not tell."""
    role = _text(members["primary_role"]).str.strip().str.casefold()
    return members[role.isin(STUDENT_ROLES).to_numpy()]


def _identifier_table(members: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Long table ``[class_id, user_id, value, level, folded]``: one row per member identifier, by level."""
    parts = []
    level = 0
    for kind in order:
        if kind not in STUDENT_KINDS:
            raise ValueError(f"unknown student identifier kind {kind!r}")
        columns, fold = STUDENT_KINDS[kind]
        for column in columns:
            value = _text(members[column]).str.strip()
            if fold:
                value = value.str.casefold()
            part = pd.DataFrame(
                {
                    "class_id": _text(members["class_id"]).to_numpy(dtype=object),
                    "user_id": _text(members["user_id"]).to_numpy(dtype=object),
                    "value": value.to_numpy(dtype=object),
                    "level": level,
                    "folded": fold,
                }
            )
            parts.append(part[part["value"] != ""])
            level += 1
    if not parts:
        return pd.DataFrame(columns=["class_id", "user_id", "value", "level", "folded"])
    return pd.concat(parts, ignore_index=True)


def match_students(keys: pd.DataFrame, members: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Match ``keys[class_id, student_key]`` to student members of that class.

    Returns ``[class_id, student_key, user_id, reason]``, one row per key row in order; ``reason``
    is ``""`` when matched, else ``unknown_student`` / ``ambiguous_student`` / ``not_in_class``.
    """
    cols = ["class_id", "student_key"]
    k = pd.DataFrame({c: _text(keys[c]).to_numpy(dtype=object) for c in cols}, dtype=object)
    uk = k.drop_duplicates().reset_index(drop=True)
    uk["plain"] = uk["student_key"].str.strip().to_numpy(dtype=object)
    uk["fold"] = uk["plain"].str.casefold().to_numpy(dtype=object)
    table = _identifier_table(eligible_members(members), order)
    hit_parts = []
    for folded, key_col in ((False, "plain"), (True, "fold")):
        t = table[table["folded"] == folded]
        if t.empty:
            continue
        hit = uk[[*cols, key_col]].merge(
            t[["class_id", "value", "user_id", "level"]],
            left_on=["class_id", key_col],
            right_on=["class_id", "value"],
        )
        hit_parts.append(hit[[*cols, "user_id", "level"]])
    hits = pd.concat(hit_parts, ignore_index=True) if hit_parts else pd.DataFrame()
    resolved = _resolve_level(uk, hits, cols, "user_id")
    n = resolved["n"].to_numpy()

    # nobody in the class: does the key name a student of another class in the snapshot?
    elsewhere = np.zeros(len(uk), dtype=bool)
    if (n == 0).any() and not table.empty:
        folded = table["folded"].to_numpy(dtype=bool)
        values = table["value"].to_numpy(dtype=object)
        elsewhere = uk["plain"].isin(values[~folded]).to_numpy() | uk["fold"].isin(values[folded]).to_numpy()
    reason = np.where(
        n == 1,
        "",
        np.where(
            n > 1,
            ReasonCode.AMBIGUOUS_STUDENT.value,
            np.where(elsewhere, ReasonCode.NOT_IN_CLASS.value, ReasonCode.UNKNOWN_STUDENT.value),
        ),
    ).astype(object)
    resolved["reason"] = reason
    out = k.merge(resolved, on=cols, how="left")
    ids = out["user_id"].to_numpy(dtype=object).copy()
    ids[out["n"].to_numpy() != 1] = None
    return pd.DataFrame(
        {
            "class_id": out["class_id"].to_numpy(dtype=object),
            "student_key": out["student_key"].to_numpy(dtype=object),
            "user_id": pd.Series(ids, dtype=object),
            "reason": out["reason"].to_numpy(dtype=object),
        },
        dtype=object,
    )
