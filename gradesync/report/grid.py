"""The grid view of a plan or a reconciliation: per class, students × assignments, one cell per grade.

The web app's Preview and Result pages and ``report.html`` render the same :class:`ClassGrid` with the
same template macro (``templates/_grid.html``). A cell shows current → new and the assignment's
maximum; decreases, clears and excuses are marked; a reconciliation adds the value read back and the
row's status. Pure: plan rows in, plain Python values out (the templates escape them).

Only rows that name a resolved class, assignment and student become cells; every other row (a reject,
an unknown student) is listed apart, so nothing is lost. ``changed_only`` keeps the students with at
least one write; the cells that do not change still show their current value, dimmed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gradesync.report.summary import bool_column, float_column, format_number, text_column

__all__ = [
    "PAGE_SIZE",
    "WRITES",
    "Assignment",
    "Cell",
    "ClassGrid",
    "Student",
    "class_grids",
    "not_placed",
]

WRITES = frozenset({"update", "create", "excuse"})
PAGE_SIZE = 50  # students per page of a grid


@dataclass(slots=True)
class Cell:
    action: str
    before: str  # "" when no grade yet
    new: str  # the desired value as text ("(none)" for a clear, "excused")
    after: str = ""  # reconciliation: the value read back
    status: str = ""
    decrease: bool = False
    clear: bool = False
    excuse: bool = False
    reason: str = ""
    message: str = ""
    note: str = ""
    request_id: str = ""  # reconciliation: Graph's request id of the write (in the cell's title)

    @property
    def title(self) -> str:
        return " · ".join(x for x in (self.note or self.message, self.request_id) if x)

    @property
    def changes(self) -> bool:
        return self.action in WRITES

    @property
    def tone(self) -> str:
        """The CSS class of the cell: what kind of change it is, in one word."""
        if self.status in ("conflict", "failed", "carried_over"):
            return self.status.replace("_", "-")
        if not self.changes:
            return "same" if self.action == "noop" else self.action
        if self.excuse:
            return "excuse"
        if self.clear:
            return "clear"
        if self.decrease:
            return "decrease"
        return "new" if not self.before else "increase"


@dataclass(slots=True)
class Assignment:
    key: str
    name: str
    max_points: str  # "" when unknown


@dataclass(slots=True)
class Student:
    key: str  # as the file names the student (SIS id, number or e-mail)
    name: str
    cells: list[Cell | None] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return sum(1 for c in self.cells if c is not None and c.changes)


@dataclass(slots=True)
class ClassGrid:
    key: str
    name: str
    assignments: list[Assignment]
    students: list[Student]
    changed_cells: int = 0
    hidden_students: int = 0  # unchanged students left out by changed_only

    def pages(self, size: int = PAGE_SIZE) -> list[list[Student]]:
        return [self.students[i : i + size] for i in range(0, len(self.students), size)] or [[]]

    def page(self, number: int, size: int = PAGE_SIZE) -> list[Student]:
        return self.students[number * size : (number + 1) * size]

    def page_count(self, size: int = PAGE_SIZE) -> int:
        return max(1, math.ceil(len(self.students) / size))


def _cell(t: dict[str, list[Any]], i: int) -> Cell:
    clear, excuse = t["clear"][i], t["excuse"][i]
    before, desired = t["before"][i], t["desired"][i]
    decrease = t["decrease"][i] or (
        not (math.isnan(before) or math.isnan(desired)) and desired < before and t["action"][i] in WRITES
    )
    if clear:
        new = "(none)"
    elif excuse:
        new = "excused"
    else:
        new = format_number(desired)
    return Cell(
        action=t["action"][i],
        before=format_number(before),
        new=new,
        after=format_number(t["after"][i]),
        status=t["status"][i],
        decrease=bool(decrease),
        clear=bool(clear),
        excuse=bool(excuse),
        reason=t["reason"][i],
        message=t["message"][i],
        note=t["note"][i],
        request_id=t["request_id"][i],
    )


def _columns(rows: pd.DataFrame) -> dict[str, list[Any]]:
    names = ("class_key", "class_name", "assignment_id", "assignment_name", "student_key", "student_name")
    t: dict[str, list[Any]] = {n: text_column(rows, n).tolist() for n in names}
    for n in ("action", "status", "reason", "message", "note", "user_id", "request_id"):
        t[n] = text_column(rows, n).tolist()
    t["before"] = float_column(rows, "before_points").tolist()
    t["desired"] = float_column(rows, "desired_points").tolist()
    t["after"] = float_column(rows, "after_points").tolist()
    t["max"] = float_column(rows, "max_points").tolist()
    for n in ("clear", "excuse", "decrease"):
        t[n] = bool_column(rows, n).tolist()
    return t


def _better(old: Cell | None, new: Cell) -> bool:
    """Two rows for one cell (duplicates): a write or a problem is what the cell shows."""
    if old is None:
        return True
    rank = {"reject": 3, "update": 2, "create": 2, "excuse": 2, "noop": 1}
    return rank.get(new.action, 0) > rank.get(old.action, 0)


def class_grids(rows: pd.DataFrame, *, changed_only: bool = True) -> list[ClassGrid]:
    """One grid per resolved class, in the order the input first names them."""
    if rows.empty:
        return []
    placed = text_column(rows, "assignment_id") != ""
    placed &= text_column(rows, "user_id") != ""
    sub = rows[placed]
    t = _columns(sub)
    grids: dict[str, ClassGrid] = {}
    a_index: dict[str, dict[str, int]] = {}
    s_index: dict[str, dict[str, int]] = {}
    cells: dict[str, dict[tuple[int, int], Cell]] = {}
    for i in range(len(sub)):
        ck = t["class_key"][i]
        grid = grids.get(ck)
        if grid is None:
            grid = grids[ck] = ClassGrid(ck, t["class_name"][i] or ck, [], [])
            a_index[ck], s_index[ck], cells[ck] = {}, {}, {}
        aid = t["assignment_id"][i]
        ai = a_index[ck].get(aid)
        if ai is None:
            ai = a_index[ck][aid] = len(grid.assignments)
            grid.assignments.append(
                Assignment(aid, t["assignment_name"][i] or aid, format_number(t["max"][i]))
            )
        sk = t["user_id"][i]
        si = s_index[ck].get(sk)
        if si is None:
            si = s_index[ck][sk] = len(grid.students)
            grid.students.append(Student(t["student_key"][i], t["student_name"][i] or t["student_key"][i]))
        cell = _cell(t, i)
        if _better(cells[ck].get((si, ai)), cell):
            cells[ck][(si, ai)] = cell
    out = []
    for ck, grid in grids.items():
        width = len(grid.assignments)
        for si, student in enumerate(grid.students):
            student.cells = [cells[ck].get((si, ai)) for ai in range(width)]
        grid.changed_cells = sum(s.changes for s in grid.students)
        if changed_only:
            kept = [s for s in grid.students if s.changes]
            grid.hidden_students = len(grid.students) - len(kept)
            grid.students = kept
        out.append(grid)
    return out


def not_placed(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows no grid cell shows (unknown class, assignment or student): listed apart."""
    placed = (text_column(rows, "assignment_id") != "") & (text_column(rows, "user_id") != "")
    return rows[~placed]
