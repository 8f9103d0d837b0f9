"""A ``RawTable`` → desired-grade rows (long or wide layout), before validation.

Header matching, the choice of layout, the "Points Possible" row and the wide → long melt live here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from gradesync.config import InputSettings
from gradesync.errors import InputError
from gradesync.models import DESIRED_COLUMNS, ReasonCode
from gradesync.read._headers import Headers, header_facts, normalize_header, parse_maximum
from gradesync.read._source import RawTable
from gradesync.read.presets import SUMMARY_ROW_PATTERN

#: Accepted headers per role, in order of preference: when several are present the first listed wins.
#: Matching ignores case, spaces, ``_`` and ``-`` (so ``Student ID``, ``student_id``, ``STUDENT-ID``
#: and ``StudentID`` are one header). ``[input] *_column`` settings name a header explicitly.
HEADER_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "class": ("class", "class_id", "section_id", "sis_section_id", "class_external_id", "section"),
    "assignment": ("assignment", "assignment_name", "assignment_id"),
    "student": ("student", "student_id", "sis_id", "email", "upn", "student_number"),
    "points": ("points", "score", "grade"),
    # long layout: the row's maximum, checked against Teams' maximum (a wide file has a row for it)
    "maximum": (
        "points_possible", "possible_points", "max_points", "maximum_points", "maximum", "max", "out_of",
        "total_points",
    ),
}  # fmt: skip

#: Wide layout: columns that describe the student or hold totals, never an assignment. Every class or
#: student alias that is not the key column is also one of these.
WIDE_NON_GRADE_HEADERS: Final[tuple[str, ...]] = (
    "name", "student name", "full name", "display name", "preferred name",
    "first name", "given name", "middle name", "last name", "surname", "family name",
    "grade level", "year", "year level", "homeroom", "advisor", "teacher", "period", "term", "school",
    "course", "course name", "course code", "class name", "section name",
    "e-mail", "email address", "mail", "username", "user name", "login", "login id",
    "sis user id", "sis login id", "integration id", "id",
    "total", "final grade", "final score", "current grade", "current score", "letter grade",
    "letter", "grade letter", "mark", "class average", "total points", "total score", "overall grade",
    "overall", "average", "percent", "percentage", "notes", "comment", "comments",
)  # fmt: skip

#: Wide layout: the first non-empty identifier cell of the optional "points possible" row.
POINTS_POSSIBLE_LABELS: Final[tuple[str, ...]] = (
    "points possible", "possible points", "max points", "maximum points", "out of", "max", "points",
)  # fmt: skip


_ALIAS_NORMS = {role: [normalize_header(a) for a in aliases] for role, aliases in HEADER_ALIASES.items()}
_NON_GRADE_NORMS = frozenset(
    [normalize_header(h) for h in WIDE_NON_GRADE_HEADERS] + _ALIAS_NORMS["class"] + _ALIAS_NORMS["student"]
)
_POINTS_POSSIBLE_NORMS = frozenset(normalize_header(h) for h in POINTS_POSSIBLE_LABELS)


@dataclass(frozen=True, slots=True)
class ColumnRole:
    """What read made of one column (``gradesync inspect`` shows these)."""

    index: int  # 0-based
    header: str
    # student | student-fallback | class | class-part | assignment | points | maximum | excuse | status |
    # twin | ignored
    role: str
    assignment: str = ""  # the assignment name a grade column maps to
    why: str = ""  # why a column is ignored, or what a twin or fallback column is
    maximum: float = math.nan  # an assignment column's maximum as the file (or mapping) declares it
    maximum_from: str = ""  # where that maximum is declared: 'header "[Total Pts: 50 Score]"', …


@dataclass(slots=True)
class Desired:
    """One file's desired rows (DESIRED_COLUMNS, not yet validated) and what read learned about it."""

    frame: pd.DataFrame
    key_columns: dict[str, str]  # role → header (or "--class") for validation messages
    layout: str
    warnings: list[str]
    columns: list[ColumnRole] = field(default_factory=list)
    ignored_rows: dict[int, str] = field(default_factory=dict)  # source_row → why
    header_row: int = 1
    header: list[str] = field(default_factory=list)
    student_ids: list[str] = field(default_factory=list)  # distinct, as read (after normalisation)


class _Columns:
    """Stripped text of a table's columns, computed once per column over its distinct values."""

    def __init__(self, table: RawTable) -> None:
        self.table = table
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _codes(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        if j not in self._cache:
            codes, uniques = pd.factorize(self.table.cells[j])
            # code -1 (a missing cell) takes the trailing ""
            self._cache[j] = codes, np.array([str(u).strip() for u in uniques] + [""], dtype=object)
        return self._cache[j]

    def stripped(self, j: int) -> np.ndarray:
        codes, clean = self._codes(j)
        return clean.take(codes)

    def blank(self, j: int) -> np.ndarray:
        codes, clean = self._codes(j)
        return np.array([c == "" for c in clean], dtype=bool).take(codes)

    def all_empty_rows(self, first: list[int]) -> np.ndarray:
        """Rows where every cell is empty; ``first`` are the columns checked over every row.

        Exact ``""`` comparison (a C loop, no hashing). Rows of whitespace-only cells survive this
        and are dropped by ``read_inputs`` once validation has stripped them.
        """
        n = self.table.n_rows
        mask = np.ones(n, dtype=bool)
        for j in first:
            mask &= self.table.cells[j] == ""
        if mask.any():
            rows = np.flatnonzero(mask)
            for j in range(len(self.table.cells)):
                if j not in first:
                    mask[rows] &= self.table.cells[j][rows] == ""
        return mask


def _quoted(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _match_roles(table: RawTable, cfg: InputSettings) -> tuple[dict[str, int], list[str]]:
    headers = Headers(table.header)
    roles: dict[str, int] = {}
    warnings: list[str] = []
    explicit = {
        "class": cfg.class_column,
        "assignment": cfg.assignment_column,
        "student": cfg.student_column,
        "points": cfg.points_column,
    }
    for role, name in explicit.items():
        if name is not None:
            roles[role] = headers.need(
                name, path=table.path, row=table.header_row, what=f"the configured {role}_column"
            )
    for role, aliases in HEADER_ALIASES.items():
        if role in roles:
            continue
        present = headers.first_of(aliases, skip=roles.values())
        if not present:
            continue
        chosen = present[0]
        twins = [i for i in headers.all(table.header[chosen]) if i != chosen]
        if twins:
            raise InputError(
                f"{len(twins) + 1} columns are named like {table.header[chosen].strip()!r} "
                f"(columns {', '.join(str(i + 1) for i in [chosen, *twins])}); which one holds the "
                f"{role} is ambiguous",
                file=table.path,
                row=table.header_row,
                column=table.header[chosen].strip(),
                code="input-duplicate-column",
                hint=f"rename one of them, or name the {role} column in [input] {role}_column",
            )
        roles[role] = chosen
        others = list(dict.fromkeys(table.header[i].strip() for i in present if i != chosen))
        if others and role == "student":
            warnings.append(
                f'{table.path}: several student columns; using "{table.header[chosen].strip()}" '
                f"(also present: {_quoted(others)}; set [input] student_column to choose another)"
            )
    return roles, warnings


def _missing_column(table: RawTable, role: str, *, layout: str) -> InputError:
    aliases = HEADER_ALIASES[role]
    return InputError(
        f"no {role} column for the {layout} layout: no header matches {_quoted(aliases)}",
        file=table.path,
        row=table.header_row,
        code="input-missing-column",
        hint=f"accepted {role} headers (any case, spaces or _): {', '.join(aliases)}; or name the column "
        f'in config/gradesync.toml [input] {role}_column = "…". Headers in this file: '
        f"{_quoted([h.strip() for h in table.header if h.strip()])}",
    )


def _const(value: object, n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [value] * n if not isinstance(value, str) else value
    return out


def _frame(table: RawTable, n: int, **columns: np.ndarray) -> pd.DataFrame:
    data = {
        "row_key": np.zeros(n, dtype=np.int64),
        "source_file": _const(table.path, n),
        "source_sheet": _const(table.sheet, n),
        "desired_points": np.full(n, np.nan),
        "clear": np.zeros(n, dtype=bool),
        "excuse": np.zeros(n, dtype=bool),
        "points_possible": np.full(n, np.nan),
        "points_unit": _const("points", n),
        "points_denominator": np.full(n, np.nan),
        "maximum_rule": blank_codes(n),
        "percent_twin": blank_codes(n),
        "student_ids": blank_codes(n),
        "reason": _const("", n),
        "message": _const("", n),
        "note": _const("", n),
        **columns,
    }
    return pd.DataFrame(  # copy=False: no consolidation of the object columns into one 2-D block
        {
            name: pd.Series(
                data[name], dtype=None if isinstance(data[name], pd.Categorical) else dtype, copy=False
            )
            for name, dtype in DESIRED_COLUMNS.items()
        },
        copy=False,
    )


def blank_codes(n: int) -> pd.Categorical:
    """``n`` times ``""`` as a categorical: built from codes, nothing hashed (``models.DESIRED_CODED``)."""
    return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=pd.Index([""], dtype=object))


#: How many rows below the first non-blank one are searched for the real header (a title above it).
HEADER_SEARCH_ROWS: Final = 10


def _find_header(
    table: RawTable, cfg: InputSettings, header_row: int | None = None, names: set[str] | None = None
) -> tuple[RawTable, list[str]]:
    """A title row above the header (``Gradebook — Algebra I``, often merged across the columns) is
    common in exports people make by hand. When the first non-blank row names no student column,
    the first of the next ``HEADER_SEARCH_ROWS`` rows that does becomes the header and the rows
    above it are skipped, with a warning naming them. A merged group row (``Student | Assignments |
    Totals``, most of its cells empty) above a header that names the student column too is skipped
    the same way. ``header_row`` (a mapping's, as a person numbers rows) says it outright; ``names``
    (normalised) are the student columns a mapping names."""
    if header_row is not None:
        return _header_at(table, header_row)
    wanted = {normalize_header(a) for a in HEADER_ALIASES["student"]}
    if names:
        wanted = names
    elif cfg.student_column is not None:
        wanted = {normalize_header(cfg.student_column)}
    found: tuple[RawTable, list[str]] = (table, [])
    if not any(normalize_header(h) in wanted for h in table.header):
        for i in range(min(HEADER_SEARCH_ROWS, table.n_rows)):
            row = [str(col[i]) for col in table.cells]
            if any(normalize_header(c) in wanted for c in row):
                found = _promote(table, i, "a title?")
                break
        else:
            return table, []
    header, warnings = found
    if header.n_rows and _is_group_row(header, wanted):
        promoted, more = _promote(header, 0, "a merged group row?")
        if warnings:  # one warning for everything above the real header
            promoted, more = _promote(
                table,
                int(np.flatnonzero(table.source_row == promoted.header_row)[0]),
                "a title and a merged group row?",
            )
        return promoted, more
    return header, warnings


def _is_group_row(table: RawTable, wanted: set[str]) -> bool:
    """The header names the student column, and so does the row below it, which fills more cells."""
    below = [str(col[0]) for col in table.cells]
    if not any(normalize_header(c) in wanted for c in below):
        return False
    filled_header = sum(1 for h in table.header if h.strip())
    filled_below = sum(1 for c in below if c.strip())
    return filled_below > filled_header


def _header_at(table: RawTable, header_row: int) -> tuple[RawTable, list[str]]:
    if header_row == table.header_row:
        return table, []
    hits = np.flatnonzero(table.source_row == header_row)
    if header_row < table.header_row or not len(hits):
        raise InputError(
            f"the mapping says the header is on row {header_row}, but "
            + (
                f"the first non-blank row is {table.header_row}"
                if header_row < table.header_row
                else "the file has no such row"
            ),
            file=table.path,
            row=header_row,
            code="input-no-header",
            hint="set header_row in the mapping to the row number Excel shows for the header",
        )
    return _promote(table, int(hits[0]), "as the mapping says")


def _promote(table: RawTable, i: int, why: str) -> tuple[RawTable, list[str]]:
    """Data row ``i`` becomes the header; the rows above it are skipped, with a warning."""
    row = [str(col[i]) for col in table.cells]
    header_row = int(table.source_row[i])
    promoted = RawTable(
        path=table.path,
        sha256=table.sha256,
        header=row,
        header_row=header_row,
        cells=[col[i + 1 :] for col in table.cells],
        source_row=table.source_row[i + 1 :],
        sheet=table.sheet,
        encoding=table.encoding,
        warnings=table.warnings,
        extra_cells={r: c for r, c in table.extra_cells.items() if r > header_row},
        delimiter=table.delimiter,
    )
    skipped = (
        f"rows {table.header_row}–{header_row - 1}"
        if header_row - 1 > table.header_row
        else (f"row {table.header_row}")
    )
    return promoted, [f"{table.path}: the header is on row {header_row}; {skipped} above it skipped ({why})"]


def build_desired(table: RawTable, cfg: InputSettings, class_key: str | None) -> Desired:
    """Decide the layout of one table and turn it into desired-grade rows (DESIRED_COLUMNS)."""
    table, found = _find_header(table, cfg)
    roles, warnings = _match_roles(table, cfg)
    warnings = found + warnings
    if not roles:
        raise InputError(
            f"the header row (row {table.header_row}) has no recognised column "
            f"({_quoted([h.strip() for h in table.header if h.strip()][:8])})",
            file=table.path,
            row=table.header_row,
            code="input-no-header",
            hint="the first non-blank row must be the header. Accepted headers: "
            + "; ".join(f"{role}: {', '.join(a)}" for role, a in HEADER_ALIASES.items()),
        )
    layout = cfg.layout
    if layout == "auto":
        # An assignment column means long: a long file that lost its points column must say so,
        # not be read as a wide file whose "assignment" column is an assignment.
        layout = "long" if "assignment" in roles else "wide"
    if layout == "wide":
        roles.pop("maximum", None)  # a wide file states maxima in a row or its headers, not a column
    needed = ("assignment", "student", "points") if layout == "long" else ("student",)
    for role in needed:
        if role not in roles:
            raise _missing_column(table, role, layout=layout)
    class_key = class_key if class_key is not None else cfg.class_key
    if "class" not in roles and not (class_key and class_key.strip()):
        raise InputError(
            f"no class column ({', '.join(HEADER_ALIASES['class'])}) and no class given",
            file=table.path,
            row=table.header_row,
            code="input-no-class",
            hint="add a class column, or say which class the file is for with --class SECTION-ID "
            "(or [input] class_key in config/gradesync.toml)",
        )
    if "class" in roles and class_key:
        warnings.append(
            f'{table.path}: has a class column "{table.header[roles["class"]].strip()}"; '
            f"the class given with --class / class_key ({class_key}) is not used for it"
        )
    if table.n_rows == 0:
        warnings.append(f"{table.path}: header only, no data rows")
    cols = _Columns(table)
    key_columns = {
        "class": table.header[roles["class"]].strip() if "class" in roles else "--class",
        "student": table.header[roles["student"]].strip(),
    }
    grade_columns: list[WideColumn] = []
    not_grades: dict[int, str] = {}
    if layout == "long":
        key_columns["assignment"] = table.header[roles["assignment"]].strip()
        frame = _long(table, cols, roles, (class_key or "").strip())
    else:
        key_columns["assignment"] = "(header row)"
        key_cols = {roles["student"], roles.get("class", -1)}
        chosen, not_grades = _assignment_columns(table, cols, key_cols, warnings)
        frame, more, grade_columns = _wide(table, cols, roles, (class_key or "").strip(), chosen)
        warnings += more
    if table.extra_cells:
        _reject_extra_cells(table, frame)
    ident = sorted({roles["student"], 0} - {c.index for c in grade_columns})
    ignored = summary_rows(table, cols, ident)
    mark_ignored_rows(frame, ignored)
    return Desired(
        frame=frame,
        key_columns=key_columns,
        layout=layout,
        warnings=warnings,
        columns=_unmapped_roles(table, roles, layout, grade_columns, not_grades),
        ignored_rows=ignored,
        header_row=table.header_row,
        header=list(table.header),
        student_ids=list(dict.fromkeys(str(u) for u in cols._codes(roles["student"])[1] if u)),
    )


def grade_role(table: RawTable, column: WideColumn) -> ColumnRole:
    """The inspect role of a grade column: the assignment and its declared maximum."""
    return ColumnRole(
        column.index,
        table.header[column.index].strip(),
        "assignment",
        assignment=column.name,
        maximum=column.maximum,
        maximum_from=column.conflict or column.maximum_from,
    )


def _unmapped_roles(
    table: RawTable,
    roles: dict[str, int],
    layout: str,
    grade_columns: list[WideColumn],
    not_grades: dict[int, str],
) -> list[ColumnRole]:
    by_index = {j: r for r, j in roles.items()}
    grades = {c.index: c for c in grade_columns}
    out = []
    for j, header in enumerate(table.header):
        h = header.strip()
        if j in by_index and (layout == "long" or by_index[j] in ("student", "class")):
            out.append(ColumnRole(j, h, by_index[j]))
        elif j in grades:
            out.append(grade_role(table, grades[j]))
        elif j in not_grades:
            out.append(ColumnRole(j, h, "ignored", why=not_grades[j]))
        else:
            out.append(ColumnRole(j, h, "ignored", why="no header" if not h else "not used by this layout"))
    return out


_SUMMARY = re.compile(SUMMARY_ROW_PATTERN)


def summary_rows(table: RawTable, cols: _Columns, columns: list[int]) -> dict[int, str]:
    """Rows whose identifier cell is a summary label (``Class Average``, ``Total``): source_row → why."""
    out: dict[int, str] = {}
    for j in columns:
        if j >= len(table.cells):
            continue
        codes, uniques = cols._codes(j)  # per distinct value: a regex on each, not on each row
        hits = [k for k, u in enumerate(uniques) if u and _SUMMARY.match(str(u))]
        for k in hits:
            what = (
                "the points-possible row (each assignment's maximum, checked against Teams)"
                if normalize_header(str(uniques[k])) in _POINTS_POSSIBLE_NORMS
                else "a summary row"
            )
            for i in np.flatnonzero(codes == k):
                out.setdefault(
                    int(table.source_row[i]),
                    f'"{uniques[k]}" in column "{table.header[j].strip()}" is {what}, not a student',
                )
    return out


def mark_ignored_rows(frame: pd.DataFrame, rows: dict[int, str]) -> None:
    """Give every frame row of the source rows in ``rows`` the ``ignored_row`` reason (a noop)."""
    if not rows or not len(frame):
        return
    src = frame["source_row"].to_numpy()
    hit = np.flatnonzero(np.isin(src, np.fromiter(rows, dtype=np.int64)))
    if not len(hit):
        return
    reason = frame["reason"].to_numpy(dtype=object).copy()
    message = frame["message"].to_numpy(dtype=object).copy()
    reason[hit] = ReasonCode.IGNORED_ROW.value
    message[hit] = [f"row ignored: {rows[int(r)]}" for r in src[hit]]
    frame["reason"] = pd.Series(reason, index=frame.index, dtype=object)
    frame["message"] = pd.Series(message, index=frame.index, dtype=object)


def _reject_extra_cells(table: RawTable, frame: pd.DataFrame) -> None:
    """Reject (``extra_cells``) every grade of a text row that has non-empty cells past the header.

    Such a row almost always holds the separator unquoted inside a value (``8,5`` for 8.5, ``Smith,
    Ann``): every cell after it moved one column right, so none of the row's cells can be trusted.
    """
    sep = "TAB" if table.delimiter == "\t" else f'"{table.delimiter}"'
    width = len(table.header)
    messages: dict[int, str] = {}
    for row, extras in table.extra_cells.items():
        shown = ", ".join(f'column {j}: "{v.strip()[:40]}"' for j, v in extras[:5])
        more = f" and {len(extras) - 5} more" if len(extras) > 5 else ""
        messages[row] = (
            f"this row has cells past the header's {width} columns ({shown}{more}); a value probably "
            f"holds the separator {sep} without quotes (a decimal comma such as 8,5, or a comma in a "
            "name), so its cells are shifted and the whole row is ignored; quote that value or fix it"
        )
    hit = np.flatnonzero(np.isin(frame["source_row"].to_numpy(), np.fromiter(messages, dtype=np.int64)))
    if len(hit):
        rows = frame["source_row"].to_numpy()[hit]
        reason = frame["reason"].to_numpy(dtype=object).copy()
        message = frame["message"].to_numpy(dtype=object).copy()
        reason[hit] = ReasonCode.EXTRA_CELLS.value
        message[hit] = [messages[int(r)] for r in rows]
        frame["reason"] = pd.Series(reason, index=frame.index, dtype=object)
        frame["message"] = pd.Series(message, index=frame.index, dtype=object)


def _long(table: RawTable, cols: _Columns, roles: dict[str, int], class_key: str) -> pd.DataFrame:
    used = [roles[r] for r in ("class", "assignment", "student", "points") if r in roles]
    keep = ~cols.all_empty_rows(used)
    everything = bool(keep.all())

    def cells(j: int) -> np.ndarray:  # identifiers are stripped by validate()
        return table.cells[j] if everything else table.cells[j][keep]

    n = int(keep.sum())
    frame = _frame(
        table,
        n,
        source_row=table.source_row if everything else table.source_row[keep],
        source_column=_const(table.header[roles["points"]].strip(), n),
        class_key=cells(roles["class"]) if "class" in roles else _const(class_key, n),
        assignment_key=cells(roles["assignment"]),
        student_key=cells(roles["student"]),
        points_raw=cells(roles["points"]),
    )
    if "maximum" in roles:
        take = np.flatnonzero(keep) if not everything else np.arange(n)
        read_maximum_column(table, cols, roles["maximum"], take, frame)
    return frame


def read_maximum_column(
    table: RawTable, cols: _Columns, j: int, take: np.ndarray, frame: pd.DataFrame
) -> None:
    """Rule: a maximum column's number is each row's declared maximum (``50``, ``1,499``, ``50 pts``);
    a cell that holds something else is not dropped: its row is refused, naming the cell."""
    codes, uniques = cols._codes(j)
    values = np.array([parse_maximum(u) if u else math.nan for u in uniques], dtype=float)
    bad = np.array([bool(u) and math.isnan(v) for u, v in zip(uniques, values, strict=True)], dtype=bool)
    row_codes = codes[take]
    frame["points_possible"] = values.take(row_codes)
    if bad.take(row_codes).any():
        header = table.header[j].strip()
        hit = np.flatnonzero(bad.take(row_codes))
        reject_rows(
            frame,
            hit,
            ReasonCode.POINTS_POSSIBLE_MISMATCH,
            [
                f'the maximum "{str(uniques[row_codes[i]])[:40]}" in column "{header}" is not a number, '
                "so this grade cannot be checked against Teams' maximum; write the item's points possible"
                for i in hit
            ],
        )


def reject_rows(frame: pd.DataFrame, rows: np.ndarray, reason: ReasonCode, messages: list[str]) -> None:
    """Give frame rows ``rows`` a layout reason (kept by validation over anything the cells say)."""
    reason_col = frame["reason"].to_numpy(dtype=object).copy()
    message_col = frame["message"].to_numpy(dtype=object).copy()
    reason_col[rows] = reason.value
    message_col[rows] = messages
    frame["reason"] = pd.Series(reason_col, index=frame.index, dtype=object)
    frame["message"] = pd.Series(message_col, index=frame.index, dtype=object)


@dataclass(slots=True)
class WideColumn:
    """One grade column of a wide file: where it is, the assignment it is, and its declared maximum."""

    index: int
    name: str  # the Teams assignment it maps to
    maximum: float = math.nan  # declared by its header or the mapping (the Points Possible row is read later)
    maximum_from: str = ""  # where: 'header "[Total Pts: 50 Score]"', "the mapping's [columns.maxima]"
    conflict: str = ""  # declared maxima that disagree: the column's grades are refused
    twin: int = -1  # a column holding the same grades as percents ("Quiz (Percentage)" beside "(Real)")

    def declare(self, value: float, where: str) -> None:
        """Rule: every statement of the maximum must agree; the first one found is kept."""
        if math.isnan(value) or self.conflict:
            return
        if math.isnan(self.maximum):
            self.maximum, self.maximum_from = value, where
        elif value != self.maximum:
            self.conflict = (
                f"{self.maximum_from} says the maximum is {_number(self.maximum)}, {where} says "
                f"{_number(value)}"
            )


def _number(value: float) -> str:
    return f"{value:g}"


def header_column(j: int, header: str, name: str | None = None) -> WideColumn:
    """A grade column as its header declares it: the header rule's name and maximum (or conflict)."""
    facts = header_facts(header)
    column = WideColumn(j, name if name is not None else facts.name)
    if facts.conflict:
        column.conflict = facts.conflict
    elif facts.declares:
        column.declare(facts.maximum, f'the header "{facts.stated}"')
    return column


def _assignment_columns(
    table: RawTable, cols: _Columns, key_cols: set[int], warnings: list[str]
) -> tuple[list[WideColumn], dict[int, str]]:
    """Rule: every headed column not an identifier, a non-grade or a calculated column is an assignment,
    named by its header (without an export's own syntax such as Blackboard's ``[Total Pts: 50 Score]``).
    Returns the columns and, for the others, why they are not grades."""
    chosen: list[WideColumn] = []
    why: dict[int, str] = {}
    for j, header in enumerate(table.header):
        norm = normalize_header(header)
        if j in key_cols:
            continue
        if norm in _NON_GRADE_NORMS:
            why[j] = "a name, identifier or total column, not a grade"
            continue
        if not norm:
            if not cols.blank(j).all():
                warnings.append(f"{table.path}: column {j + 1} has no header; its values were ignored")
            why[j] = "no header"
            continue
        facts = header_facts(header)
        if facts.calculated:
            why[j] = facts.calculated
            continue
        chosen.append(header_column(j, header))
    if not chosen:
        raise InputError(
            "no assignment columns: every column is an identifier or a name column",
            file=table.path,
            row=table.header_row,
            code="input-no-assignments",
            hint="a wide (gradebook) export has one column per assignment, headed by the assignment's "
            "name; a long export needs assignment and points columns "
            f"({', '.join(HEADER_ALIASES['assignment'])} / {', '.join(HEADER_ALIASES['points'])})",
        )
    return chosen, why


def _points_possible_row(
    table: RawTable, cols: _Columns, columns: list[WideColumn], keep: np.ndarray, warnings: list[str]
) -> None:
    """Rule: a row whose first identifier cell says "Points Possible" states each column's maximum.

    The row (and any further such rows) is taken out of ``keep``; the first one is used. A cell that
    is not a number states nothing for its column (a warning names it).
    """
    grade_cols = {c.index for c in columns} | {c.twin for c in columns if c.twin >= 0}
    ident_cols = [j for j in range(len(table.header)) if j not in grade_cols]
    first = _const("", table.n_rows)
    for j in ident_cols:
        first = np.where(first == "", cols.stripped(j), first)
    codes, uniques = pd.factorize(first)
    is_label = np.array([normalize_header(str(u)) in _POINTS_POSSIBLE_NORMS for u in uniques], dtype=bool)
    pp_rows = np.flatnonzero(is_label[codes] & keep) if len(uniques) else np.array([], dtype=np.int64)
    if not len(pp_rows):
        return
    keep[pp_rows] = False
    r = pp_rows[0]
    row_no = int(table.source_row[r])
    label = f"the points-possible row (row {row_no})"
    for column in columns:
        text = cols.stripped(column.index)[r]
        value = parse_maximum(text) if text else math.nan
        if text and math.isnan(value):
            warnings.append(
                f'{table.path} row {row_no}: points possible "{text[:40]}" in column '
                f'"{table.header[column.index].strip()}" is not a number; ignored'
            )
        column.declare(value, label)
    if len(pp_rows) > 1:
        warnings.append(
            f"{table.path}: several points-possible rows (rows "
            f"{', '.join(str(int(table.source_row[i])) for i in pp_rows)}); row {row_no} is used"
        )


@dataclass(slots=True)
class WideExtras:
    """What a mapping adds to the wide rows: its maximum rule and each row's student identifiers."""

    maximum_rule: str = ""  # "" or "scale"
    student_ids: np.ndarray | None = None  # per table row; None: one identifier column


def _wide(
    table: RawTable,
    cols: _Columns,
    roles: dict[str, int],
    class_key: str,
    chosen: list[WideColumn] | None = None,
    extras: WideExtras | None = None,
) -> tuple[pd.DataFrame, list[str], list[WideColumn]]:
    """``chosen``: the grade columns a mapping picked; else every column that is not an identifier, a
    known non-grade or a calculated column, named by its header. Returns the rows, warnings and the
    grade columns with their maxima as finally declared (the Points Possible row included)."""
    warnings: list[str] = []
    key_cols = {roles["student"], roles.get("class", -1)}
    if chosen is None:
        chosen, _ = _assignment_columns(table, cols, key_cols, warnings)
    extras = extras or WideExtras()
    assignment_cols = [c.index for c in chosen]
    twin_cols = [c.twin for c in chosen if c.twin >= 0]
    keep = ~cols.all_empty_rows([*key_cols - {-1}, *assignment_cols, *twin_cols])
    _points_possible_row(table, cols, chosen, keep, warnings)

    # One desired row per (kept row, assignment column), in reading order.
    n, m = int(keep.sum()), len(chosen)
    headers = np.array([table.header[j].strip() for j in assignment_cols], dtype=object)
    names = np.array([c.name for c in chosen], dtype=object)
    maxima = np.array([c.maximum for c in chosen], dtype=float)
    values = np.empty((n, m), dtype=object)
    twins = np.empty((n, m), dtype=object)
    for k, column in enumerate(chosen):
        values[:, k] = table.cells[column.index][keep]
        twins[:, k] = cols.stripped(column.twin)[keep] if column.twin >= 0 else ""
    classes = cols.stripped(roles["class"])[keep] if "class" in roles else _const(class_key, n)
    ids = extras.student_ids
    frame = _frame(
        table,
        n * m,
        source_row=np.repeat(table.source_row[keep], m),
        source_column=np.tile(headers, n),
        class_key=np.repeat(classes, m),
        assignment_key=np.tile(names, n),
        student_key=np.repeat(cols.stripped(roles["student"])[keep], m),
        points_raw=values.ravel(),  # row-major: reading order, left to right within a row
        points_possible=np.tile(maxima, n),
        maximum_rule=_const(extras.maximum_rule, n * m),
        percent_twin=twins.ravel(),
        student_ids=np.repeat(ids[keep], m) if ids is not None else _const("", n * m),
    )
    conflicted = [k for k, c in enumerate(chosen) if c.conflict]
    if conflicted and n:
        hit = (np.arange(n)[:, None] * m + np.array(conflicted)[None, :]).ravel()
        reason = {k: _conflict_message(chosen[k]) for k in conflicted}
        reject_rows(
            frame,
            np.sort(hit),
            ReasonCode.POINTS_POSSIBLE_MISMATCH,
            [reason[int(i) % m] for i in np.sort(hit)],
        )
    return frame, warnings, chosen


def _conflict_message(column: WideColumn) -> str:
    return (
        f"the file declares two maxima for this column: {column.conflict}; gradesync cannot tell which "
        "is right, so none of its grades is written: correct the header, the points-possible row or the "
        "mapping"
    )
