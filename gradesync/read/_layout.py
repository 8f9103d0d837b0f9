"""A ``RawTable`` → desired-grade rows (long or wide layout), before validation.

Header matching, the choice of layout, the "Points Possible" row and the wide → long melt live here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd

from gradesync.config import InputSettings
from gradesync.errors import InputError
from gradesync.models import DESIRED_COLUMNS, ReasonCode
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
}

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

_ROLE_WORD = {"class": "class", "assignment": "assignment", "student": "student", "points": "points"}
_NORMALIZE = re.compile(r"[\s_\-]+")


def normalize_header(header: str) -> str:
    """``" Student_ID\\ufeff"`` → ``"studentid"``: case, spaces, ``_``, ``-``, BOM and ``:`` ignored."""
    return _NORMALIZE.sub("", header.replace("\ufeff", "").strip().rstrip(":").casefold())


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
    role: str  # student | class | class-part | assignment | points | maximum | excuse | status | ignored
    assignment: str = ""  # the assignment name a grade column maps to
    why: str = ""  # why a column is ignored


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
    norms = [normalize_header(h) for h in table.header]
    roles: dict[str, int] = {}
    warnings: list[str] = []
    explicit = {
        "class": cfg.class_column,
        "assignment": cfg.assignment_column,
        "student": cfg.student_column,
        "points": cfg.points_column,
    }
    for role, name in explicit.items():
        if name is None:
            continue
        hits = [i for i, n in enumerate(norms) if n == normalize_header(name)]
        if not hits:
            raise InputError(
                f'no column named "{name}" (the configured {role}_column)',
                file=table.path,
                row=table.header_row,
                column=name,
                code="input-missing-column",
                hint=f"headers in this file: {_quoted([h.strip() for h in table.header if h.strip()])}",
            )
        roles[role] = hits[0]
    for role, aliases in _ALIAS_NORMS.items():
        if role in roles:
            continue
        taken = set(roles.values())
        present = [i for alias in aliases for i, n in enumerate(norms) if n == alias and i not in taken]
        if not present:
            continue
        chosen = present[0]
        twins = [i for i, n in enumerate(norms) if n == norms[chosen] and i != chosen]
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
        "reason": _const("", n),
        "message": _const("", n),
        "note": _const("", n),
        **columns,
    }
    return pd.DataFrame(  # copy=False: no consolidation of the object columns into one 2-D block
        {name: pd.Series(data[name], dtype=dtype, copy=False) for name, dtype in DESIRED_COLUMNS.items()},
        copy=False,
    )


#: How many rows below the first non-blank one are searched for the real header (a title above it).
HEADER_SEARCH_ROWS: Final = 10


def _find_header(
    table: RawTable, cfg: InputSettings, header_row: int | None = None
) -> tuple[RawTable, list[str]]:
    """A title row above the header (``Gradebook — Algebra I``, often merged across the columns) is
    common in exports people make by hand. When the first non-blank row names no student column,
    the first of the next ``HEADER_SEARCH_ROWS`` rows that does becomes the header and the rows
    above it are skipped, with a warning naming them. A merged group row (``Student | Assignments |
    Totals``, most of its cells empty) above a header that names the student column too is skipped
    the same way. ``header_row`` (a mapping's, as a person numbers rows) says it outright."""
    if header_row is not None:
        return _header_at(table, header_row)
    wanted = {normalize_header(a) for a in HEADER_ALIASES["student"]}
    if cfg.student_column is not None:
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
    if layout == "long":
        key_columns["assignment"] = table.header[roles["assignment"]].strip()
        frame = _long(table, cols, roles, (class_key or "").strip())
    else:
        key_columns["assignment"] = "(header row)"
        frame, more = _wide(table, cols, roles, (class_key or "").strip())
        warnings += more
    if table.extra_cells:
        _reject_extra_cells(table, frame)
    ident = sorted({roles["student"], 0} - set(_grade_columns(table, frame)))
    ignored = summary_rows(table, cols, ident)
    mark_ignored_rows(frame, ignored)
    return Desired(
        frame=frame,
        key_columns=key_columns,
        layout=layout,
        warnings=warnings,
        columns=_unmapped_roles(table, roles, layout, frame),
        ignored_rows=ignored,
        header_row=table.header_row,
        header=list(table.header),
        student_ids=list(dict.fromkeys(str(u) for u in cols._codes(roles["student"])[1] if u)),
    )


def _grade_columns(table: RawTable, frame: pd.DataFrame) -> list[int]:
    used = set(frame["source_column"].unique())
    return [j for j, h in enumerate(table.header) if h.strip() in used]


def _unmapped_roles(
    table: RawTable, roles: dict[str, int], layout: str, frame: pd.DataFrame
) -> list[ColumnRole]:
    by_index = {j: r for r, j in roles.items()}
    grades = set(_grade_columns(table, frame)) if layout == "wide" else set()
    out = []
    for j, header in enumerate(table.header):
        h = header.strip()
        if j in by_index and (layout == "long" or by_index[j] in ("student", "class")):
            out.append(ColumnRole(j, h, by_index[j]))
        elif j in grades:
            out.append(ColumnRole(j, h, "assignment", assignment=h))
        elif layout == "wide" and normalize_header(h) in _NON_GRADE_NORMS:
            out.append(ColumnRole(j, h, "ignored", why="a name, identifier or total column, not a grade"))
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
    return _frame(
        table,
        n,
        source_row=table.source_row if everything else table.source_row[keep],
        source_column=_const(table.header[roles["points"]].strip(), n),
        class_key=cells(roles["class"]) if "class" in roles else _const(class_key, n),
        assignment_key=cells(roles["assignment"]),
        student_key=cells(roles["student"]),
        points_raw=cells(roles["points"]),
    )


def _assignment_columns(
    table: RawTable,
    cols: _Columns,
    key_cols: set[int],
    chosen: list[tuple[int, str]] | None,
    warnings: list[str],
) -> list[int]:
    """Rule: the mapping's chosen columns, else every headed column not an identifier or non-grade."""
    if chosen is not None:
        assignment_cols = [j for j, _ in chosen]
    else:
        assignment_cols = []
        for j, header in enumerate(table.header):
            norm = normalize_header(header)
            if j in key_cols or norm in _NON_GRADE_NORMS:
                continue
            if not norm:
                if not cols.blank(j).all():
                    warnings.append(f"{table.path}: column {j + 1} has no header; its values were ignored")
                continue
            assignment_cols.append(j)
    if not assignment_cols:
        raise InputError(
            "no assignment columns: every column is an identifier or a name column",
            file=table.path,
            row=table.header_row,
            code="input-no-assignments",
            hint="a wide (gradebook) export has one column per assignment, headed by the assignment's "
            "name; a long export needs assignment and points columns "
            f"({', '.join(HEADER_ALIASES['assignment'])} / {', '.join(HEADER_ALIASES['points'])})",
        )
    return assignment_cols


def _points_possible_row(
    table: RawTable, cols: _Columns, assignment_cols: list[int], keep: np.ndarray, warnings: list[str]
) -> np.ndarray:
    """Rule: a row whose first identifier cell says "Points Possible" gives each column's maximum.

    The row (and any further such rows) is taken out of ``keep``; the first one is used.
    """
    ident_cols = [j for j in range(len(table.header)) if j not in assignment_cols]
    first = _const("", table.n_rows)
    for j in ident_cols:
        first = np.where(first == "", cols.stripped(j), first)
    codes, uniques = pd.factorize(first)
    is_label = np.array([normalize_header(str(u)) in _POINTS_POSSIBLE_NORMS for u in uniques], dtype=bool)
    pp_rows = np.flatnonzero(is_label[codes] & keep) if len(uniques) else np.array([], dtype=np.int64)
    points_possible = np.full(len(assignment_cols), np.nan)
    if not len(pp_rows):
        return points_possible
    keep[pp_rows] = False
    r = pp_rows[0]
    row_no = int(table.source_row[r])
    for k, j in enumerate(assignment_cols):
        text = cols.stripped(j)[r]
        value = pd.to_numeric(pd.Series([text], dtype=object), errors="coerce").iloc[0]
        if text and (pd.isna(value) or value < 0 or np.isinf(value)):
            warnings.append(
                f'{table.path} row {row_no}: points possible "{text[:40]}" in column '
                f'"{table.header[j].strip()}" is not a number; ignored'
            )
        elif text:
            points_possible[k] = float(value)
    if len(pp_rows) > 1:
        warnings.append(
            f"{table.path}: several points-possible rows (rows "
            f"{', '.join(str(int(table.source_row[i])) for i in pp_rows)}); row {row_no} is used"
        )
    return points_possible


def _wide(
    table: RawTable,
    cols: _Columns,
    roles: dict[str, int],
    class_key: str,
    chosen: list[tuple[int, str]] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """``chosen``: the (column, assignment name) pairs a mapping picked; else every column that is
    not an identifier or a known non-grade header, named by its header."""
    warnings: list[str] = []
    key_cols = {roles["student"], roles.get("class", -1)}
    assignment_cols = _assignment_columns(table, cols, key_cols, chosen, warnings)
    keep = ~cols.all_empty_rows([*key_cols - {-1}, *assignment_cols])
    points_possible = _points_possible_row(table, cols, assignment_cols, keep, warnings)

    # One desired row per (kept row, assignment column), in reading order.
    n, m = int(keep.sum()), len(assignment_cols)
    headers = np.array([table.header[j].strip() for j in assignment_cols], dtype=object)
    names = headers if chosen is None else np.array([name for _, name in chosen], dtype=object)
    values = np.empty((n, m), dtype=object)
    for k, j in enumerate(assignment_cols):
        values[:, k] = table.cells[j][keep]
    classes = cols.stripped(roles["class"])[keep] if "class" in roles else _const(class_key, n)
    frame = _frame(
        table,
        n * m,
        source_row=np.repeat(table.source_row[keep], m),
        source_column=np.tile(headers, n),
        class_key=np.repeat(classes, m),
        assignment_key=np.tile(names, n),
        student_key=np.repeat(cols.stripped(roles["student"])[keep], m),
        points_raw=values.ravel(),  # row-major: reading order, left to right within a row
        points_possible=np.tile(points_possible, n),
    )
    return frame, warnings
