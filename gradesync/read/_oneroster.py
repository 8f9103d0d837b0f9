"""OneRoster 1.1 / 1.2 gradebook CSV: ``results.csv`` joined to ``lineItems.csv`` → desired rows.

A result row is one student's score on one line item (``lineItemSourcedId``, ``studentSourcedId``,
``scoreStatus``, ``score``); the line item gives the assignment (``title``), the class
(``classSourcedId``: the Teams class externalId when classes come from School Data Sync) and the
maximum (``resultValueMax``). ``scoreStatus`` ``exempt`` excuses the submission; a row with
``status`` ``tobedeleted`` is ignored. The files come alone, side by side, or in the bulk zip with
``manifest.csv`` (opened by ``bundle.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gradesync.errors import InputError
from gradesync.models import ReasonCode
from gradesync.read._headers import Headers, parse_maximum
from gradesync.read._layout import ColumnRole, Desired, _Columns, _const, _frame, reject_rows
from gradesync.read._source import RawTable

_UNREADABLE = -1.0  # a resultValueMax that is not a number (a maximum is never negative)


def _col(table: RawTable, name: str) -> int | None:
    return Headers(table.header).find(name)


def _need(table: RawTable, name: str) -> int:
    kind = "results" if "student" in name.lower() else "lineItems"
    return Headers(table.header).need(
        name,
        path=table.path,
        row=table.header_row,
        what=f"not a OneRoster {kind} file",
        hint="OneRoster results.csv has sourcedId, status, dateLastModified, lineItemSourcedId, "
        "studentSourcedId, scoreStatus, score, scoreDate, comment; lineItems.csv has sourcedId, "
        "title, classSourcedId, resultValueMax",
    )


def _line_item_fields(line_items: RawTable) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rule: a line item gives its id, the assignment (title), the class and the maximum."""
    li_cols = _Columns(line_items)
    li_id = li_cols.stripped(_need(line_items, "sourcedId"))
    title = li_cols.stripped(_need(line_items, "title"))
    li_class = li_cols.stripped(_need(line_items, "classSourcedId"))
    j_max = _col(line_items, "resultValueMax")
    maximum = np.full(line_items.n_rows, np.nan)
    if j_max is not None:  # a maximum that is not a number is never dropped: its results are refused
        texts = li_cols.stripped(j_max)
        maximum = np.array([_UNREADABLE if t and math.isnan(v := parse_maximum(t)) else v for t in texts])
    return li_id, title, li_class, maximum


def _join_line_items(
    results: RawTable, cols: _Columns, line: np.ndarray, items: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rule: each result takes its line item's class, title and maximum (a 1.2 result's own class wins)."""
    li_id, title, li_class, maximum = items
    index = {v: i for i, v in enumerate(li_id) if v}
    pos = np.array([index.get(v, -1) for v in line], dtype=np.int64)
    known = pos >= 0
    at = np.where(known, pos, 0)
    class_key = np.where(known, li_class.take(at) if len(li_class) else "", "").astype(object)
    if (j := _col(results, "classSourcedId")) is not None:  # OneRoster 1.2 carries it on the result too
        own = cols.stripped(j)
        class_key = np.where(class_key == "", own, class_key).astype(object)
    assignment = np.where(known, title.take(at) if len(title) else "", "").astype(object)
    points_possible = np.where(known, maximum.take(at) if len(maximum) else np.nan, np.nan)
    return class_key, assignment, points_possible, known


def _result_roles(
    results: RawTable, title: np.ndarray, j_line: int, j_student: int, j_score: int
) -> list[ColumnRole]:
    """Rule: the line item id stands for the assignment; student and score are read; the rest ignored."""
    roles = [ColumnRole(j, h.strip(), "ignored", why="not a grade") for j, h in enumerate(results.header)]
    titles = ", ".join(f'"{t}"' for t in list(dict.fromkeys(t for t in title if t))[:6])
    roles[j_line] = ColumnRole(
        j_line,
        results.header[j_line].strip(),
        "assignment-id",
        why=f"the assignment, via lineItems.csv title: {titles}",
    )
    roles[j_student] = ColumnRole(j_student, results.header[j_student].strip(), "student")
    roles[j_score] = ColumnRole(j_score, results.header[j_score].strip(), "points")
    return roles


def _ignore_withdrawn(results: RawTable, cols: _Columns, frame: pd.DataFrame) -> dict[int, str]:
    """Rule: a result with status "tobedeleted" is an ignored row (the SIS withdrew it)."""
    ignored: dict[int, str] = {}
    if (j := _col(results, "status")) is not None:
        for i in np.flatnonzero(cols.stripped(j) == "tobedeleted"):
            ignored[int(results.source_row[i])] = 'status "tobedeleted": the SIS withdrew this result'
    reason = frame["reason"].to_numpy(dtype=object).copy()
    message = frame["message"].to_numpy(dtype=object).copy()
    src = frame["source_row"].to_numpy()
    for i in np.flatnonzero(np.isin(src, np.fromiter(ignored, dtype=np.int64))) if ignored else []:
        reason[i], message[i] = ReasonCode.IGNORED_ROW.value, f"row ignored: {ignored[int(src[i])]}"
    frame["reason"], frame["message"] = reason, message
    return ignored


def _unknown_line_items(
    results: RawTable, line_items: RawTable, line: np.ndarray, known: np.ndarray
) -> list[str]:
    """Rule: results naming a line item that lineItems.csv lacks are warned about (first five named)."""
    unknown = sorted({v for v, k in zip(line, known, strict=True) if v and not k})
    if not unknown:
        return []
    return [
        f"{results.path}: {len(unknown)} lineItemSourcedId(s) not in {line_items.path}: "
        + ", ".join(f'"{u}"' for u in unknown[:5])
    ]


def build_oneroster(results: RawTable, line_items: RawTable | None, statuses: list[str]) -> Desired:
    """One results table joined to its line items."""
    if line_items is None:
        raise InputError(
            "a OneRoster results.csv needs its lineItems.csv (the assignments: title, class, maximum)",
            file=results.path,
            code="input-missing-file",
            hint="give lineItems.csv too (gradesync plan results.csv lineItems.csv), put it beside "
            "results.csv, or give the whole OneRoster zip",
        )
    items = _line_item_fields(line_items)
    cols = _Columns(results)
    j_line, j_student = _need(results, "lineItemSourcedId"), _need(results, "studentSourcedId")
    j_score = _need(results, "score")
    line = cols.stripped(j_line)
    class_key, assignment, points_possible, known = _join_line_items(results, cols, line, items)
    n = results.n_rows
    frame = _frame(
        results,
        n,
        source_row=results.source_row,
        source_column=_const(results.header[j_score].strip(), n),
        class_key=class_key,
        assignment_key=assignment,
        student_key=results.cells[j_student],
        points_raw=results.cells[j_score],
        points_possible=points_possible.astype(float),
    )
    unreadable = np.flatnonzero(points_possible == _UNREADABLE)
    if len(unreadable):
        frame.loc[unreadable, "points_possible"] = np.nan
        reject_rows(
            frame,
            unreadable,
            ReasonCode.POINTS_POSSIBLE_MISMATCH,
            [
                f"the line item's resultValueMax in {line_items.path} is not a number, so this score cannot "
                "be checked against Teams' maximum; correct the line item"
            ]
            * len(unreadable),
        )
    roles = _result_roles(results, items[1], j_line, j_student, j_score)
    wanted = {s.casefold() for s in statuses}
    if (j := _col(results, "scoreStatus")) is not None:
        frame["excuse"] = np.array([str(v).casefold() in wanted for v in cols.stripped(j)], dtype=bool)
        roles[j] = ColumnRole(j, results.header[j].strip(), "status", why='"exempt" excuses the submission')
    ignored = _ignore_withdrawn(results, cols, frame)
    return Desired(
        frame=frame,
        key_columns={
            "class": f"classSourcedId ({line_items.path})",
            "assignment": f"title ({line_items.path}, via lineItemSourcedId)",
            "student": results.header[j_student].strip(),
        },
        layout="long",
        warnings=_unknown_line_items(results, line_items, line, known),
        columns=roles,
        ignored_rows=ignored,
        header_row=results.header_row,
        header=list(results.header),
        student_ids=list(pd.unique(cols.stripped(j_student))),
    )
