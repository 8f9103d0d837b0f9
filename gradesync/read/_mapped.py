"""A ``RawTable`` read through a ``Mapping`` (a preset's or a person's) → desired-grade rows.

The mapping picks the header row, the student column (and normalises its ids), the class (a column,
a template over several columns, one key, or ``--class``), the assignment columns and their names,
the rows to ignore and the exempt flags. The rows themselves are built by the same code as the
unmapped layouts (``_layout._long`` / ``_layout._wide``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from gradesync.config import InputSettings
from gradesync.errors import InputError
from gradesync.read._layout import (
    _NON_GRADE_NORMS,
    ColumnRole,
    Desired,
    _Columns,
    _find_header,
    _long,
    _quoted,
    _reject_extra_cells,
    _wide,
    mark_ignored_rows,
    normalize_header,
    summary_rows,
)
from gradesync.read._source import RawTable
from gradesync.read.mapping import Mapping

_TRUE = frozenset({"1", "y", "yes", "true", "x", "t", "exempt", "excused"})
_TEMPLATE_HEADER = "class (template)"


def _find(table: RawTable, name: str, what: str) -> int:
    norms = [normalize_header(h) for h in table.header]
    hits = [i for i, n in enumerate(norms) if n == normalize_header(name)]
    if not hits:
        raise InputError(
            f'no column named "{name}" (the mapping\'s {what})',
            file=table.path,
            row=table.header_row,
            column=name,
            code="input-missing-column",
            hint=f"headers in this file: {_quoted([h.strip() for h in table.header if h.strip()])}; fix "
            "the mapping, or check the header row (header_row in the mapping)",
        )
    return hits[0]


def _optional(table: RawTable, name: str | None) -> int | None:
    if not name:
        return None
    norms = [normalize_header(h) for h in table.header]
    return next((i for i, n in enumerate(norms) if n == normalize_header(name)), None)


def normalise_ids(values: np.ndarray, zero_pad: int | None, strip_prefix: str | None) -> np.ndarray:
    """Strip the prefix, then left-pad all-digit ids with zeros to ``zero_pad`` digits (per distinct id)."""
    codes, uniques = pd.factorize(values)
    clean = []
    for u in uniques:
        text = str(u).strip()
        if strip_prefix and text.startswith(strip_prefix):
            text = text[len(strip_prefix) :]
        if zero_pad and text.isdigit() and len(text) < zero_pad:
            text = text.zfill(zero_pad)
        clean.append(text)
    table = np.array([*clean, ""], dtype=object)
    return table.take(codes)


def _with_column(table: RawTable, header: str, values: np.ndarray) -> RawTable:
    return RawTable(
        path=table.path,
        sha256=table.sha256,
        header=[*table.header, header],
        header_row=table.header_row,
        cells=[*table.cells, values],
        source_row=table.source_row,
        sheet=table.sheet,
        encoding=table.encoding,
        warnings=table.warnings,
        extra_cells=table.extra_cells,
        delimiter=table.delimiter,
    )


def _replace_column(table: RawTable, j: int, values: np.ndarray) -> RawTable:
    cells = list(table.cells)
    cells[j] = values
    return RawTable(
        path=table.path,
        sha256=table.sha256,
        header=table.header,
        header_row=table.header_row,
        cells=cells,
        source_row=table.source_row,
        sheet=table.sheet,
        encoding=table.encoding,
        warnings=table.warnings,
        extra_cells=table.extra_cells,
        delimiter=table.delimiter,
    )


def _class_template(table: RawTable, cols: _Columns, template: str, parts: list[str]) -> np.ndarray:
    """``"{Course_Number}.{Section_Number}"`` per row; "" when any part is blank (missing class)."""
    indexes = {p: _find(table, p, "class.template") for p in parts}
    n = table.n_rows
    out = np.empty(n, dtype=object)
    columns = {p: cols.stripped(j) for p, j in indexes.items()}
    for i in range(n):
        values = {p: columns[p][i] for p in parts}
        out[i] = "" if any(v == "" for v in values.values()) else _fill(template, values)
    return out


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^{}]+)\}", lambda m: values[m.group(1)], template)


def _no_class_error(table: RawTable, cols: _Columns, mapping: Mapping) -> InputError:
    section = _optional(table, "Section")
    hint = (
        "say which Teams class the file is for with --class CLASS (its externalId, e.g. SEC-1001), or "
        "write class.key / class.column / class.template in the mapping"
    )
    if section is not None:
        sample = next((v for v in cols.stripped(section) if v), "")
        hint = (
            f'column "{table.header[section].strip()}" holds section names like "{sample}", not the Teams '
            "class key (classes are matched by externalId); give --class CLASS, or set class.column = "
            f'"{table.header[section].strip()}" in a mapping and [match] class_by = "displayName"'
        )
    name = mapping.preset or "the mapping"
    return InputError(
        f"no class: {name} export rows carry no Teams class key, and no --class was given",
        file=table.path,
        row=table.header_row,
        code="input-no-class",
        hint=hint,
    )


def _ignored_column(header: str, mapping: Mapping) -> str:
    """Why a column is not a grade column ("" when it is one)."""
    rules = mapping.columns
    norm = normalize_header(header)
    if not norm:
        return "no header"
    if header in rules.assignments or norm in {normalize_header(h) for h in rules.assignments}:
        return ""
    if norm in {normalize_header(h) for h in rules.ignore}:
        return "ignored by the mapping"
    for pattern in rules.ignore_patterns:
        if re.search(pattern, header):
            return "a computed or non-grade column (mapping pattern)"
    if rules.only_listed:
        return "not listed in columns.assignments"
    if norm in _NON_GRADE_NORMS:
        return "a name, identifier or total column, not a grade"
    return ""


def assignment_name(header: str, mapping: Mapping) -> str:
    """The Teams assignment a header maps to: the table, else the decoration stripped, else itself."""
    rules = mapping.columns
    for key, value in rules.assignments.items():
        if normalize_header(key) == normalize_header(header):
            return value.strip()
    if rules.decoration:
        m = re.search(rules.decoration, header)
        if m:
            if m.groups() and m.re.pattern.startswith("^"):
                return m.group(1).strip()
            return (header[: m.start()] + header[m.end() :]).strip()
    return header


def _mapped_student(table: RawTable, mapping: Mapping, cfg: InputSettings) -> tuple[RawTable, list[str], int]:
    """Rule: the mapping (else the settings) names the student column; its ids are normalised as told."""
    wanted_student = mapping.student.column or cfg.student_column
    probe = cfg if wanted_student is None else cfg.model_copy(update={"student_column": wanted_student})
    table, warnings = _find_header(table, probe, mapping.header_row)
    if wanted_student is None:
        raise InputError(
            "the mapping names no student column",
            file=table.path,
            row=table.header_row,
            code="input-missing-column",
            hint='add [student] column = "…" to the mapping',
        )
    student = _find(table, wanted_student, "student.column")
    if mapping.student.zero_pad or mapping.student.strip_prefix:
        ids = normalise_ids(table.cells[student], mapping.student.zero_pad, mapping.student.strip_prefix)
        table = _replace_column(table, student, ids)
    return table, warnings, student


def _mapped_class(
    table: RawTable,
    mapping: Mapping,
    cfg: InputSettings,
    class_key: str | None,
    roles: dict[str, int],
    column_roles: dict[int, ColumnRole],
    warnings: list[str],
) -> tuple[RawTable, str]:
    """Rule: --class wins over the mapping's class template or column, which win over one class key."""
    rule = mapping.class_
    given = (class_key or "").strip() or (rule.key or "").strip() or (cfg.class_key or "").strip()
    if class_key and class_key.strip() and (rule.template or rule.column):
        warnings.append(
            f"{table.path}: --class {class_key.strip()} is used for every row instead of the mapping's class "
            f"({rule.template or rule.column})"
        )
    if rule.template and not (class_key or "").strip():
        parts = rule.template_columns()
        for p in parts:
            j = _find(table, p, "class.template")
            column_roles[j] = ColumnRole(j, table.header[j].strip(), "class-part")
        values = _class_template(table, _Columns(table), rule.template, parts)
        table = _with_column(table, _TEMPLATE_HEADER, values)
        roles["class"] = len(table.header) - 1
    elif rule.column and not (class_key or "").strip():
        j = _find(table, rule.column, "class.column")
        roles["class"] = j
        column_roles[j] = ColumnRole(j, table.header[j].strip(), "class")
    elif not given:
        raise _no_class_error(table, _Columns(table), mapping)
    return table, given


def _mapped_key_columns(table: RawTable, roles: dict[str, int], mapping: Mapping) -> dict[str, str]:
    """Rule: messages name the file's own class and student headers (or the class template, or --class)."""
    key_columns = {
        "class": table.header[roles["class"]].strip() if "class" in roles else "--class",
        "student": table.header[roles["student"]].strip(),
    }
    if "class" in roles and roles["class"] == len(table.header) - 1 and mapping.class_.template:
        key_columns["class"] = mapping.class_.template
    return key_columns


def _mapped_column_roles(
    table: RawTable, column_roles: dict[int, ColumnRole], mapping: Mapping
) -> list[ColumnRole]:
    """Rule: every header column gets a role (unused ones "ignored"); the built class column is hidden."""
    return [
        column_roles.get(j, ColumnRole(j, h.strip(), "ignored", why="not used by this layout"))
        for j, h in enumerate(table.header)
        if h != _TEMPLATE_HEADER or j != len(table.header) - 1 or not mapping.class_.template
    ]


def build_mapped(table: RawTable, mapping: Mapping, cfg: InputSettings, class_key: str | None) -> Desired:
    """One table read through ``mapping`` (layout "long" or "wide"; "auto" picks long when the mapping
    names an assignment column)."""
    layout = mapping.layout if mapping.layout != "auto" else ("long" if mapping.assignment.column else "wide")
    table, warnings, student = _mapped_student(table, mapping, cfg)
    roles: dict[str, int] = {"student": student}
    column_roles: dict[int, ColumnRole] = {
        student: ColumnRole(student, table.header[student].strip(), "student")
    }
    table, given = _mapped_class(table, mapping, cfg, class_key, roles, column_roles, warnings)
    cols = _Columns(table)
    key_columns = _mapped_key_columns(table, roles, mapping)
    if layout == "long":
        frame, more = _mapped_long(table, cols, mapping, roles, given, column_roles, key_columns)
    else:
        frame, more = _mapped_wide(table, cols, mapping, roles, given, column_roles, key_columns)
    warnings += more
    if table.n_rows == 0:
        warnings.append(f"{table.path}: header only, no data rows")
    if table.extra_cells:
        _reject_extra_cells(table, frame)
    ignored = _ignored_rows(
        table, cols, mapping, [j for j, r in column_roles.items() if r.role != "assignment"]
    )
    mark_ignored_rows(frame, ignored)
    return Desired(
        frame=frame,
        key_columns=key_columns,
        layout=layout,
        warnings=warnings,
        columns=_mapped_column_roles(table, column_roles, mapping),
        ignored_rows=ignored,
        header_row=table.header_row,
        header=[h for h in table.header if h != _TEMPLATE_HEADER],
        student_ids=list(dict.fromkeys(str(u) for u in cols._codes(student)[1] if u)),
    )


def _casefold_in(values: np.ndarray, words: set[str] | frozenset[str]) -> np.ndarray:
    """Which cells, as text and case-folded, are one of ``words`` (per value, never per row)."""
    return pd.Series(values, dtype=object).astype(str).str.casefold().isin(words).to_numpy(dtype=bool)


def _mapped_long(
    table: RawTable,
    cols: _Columns,
    mapping: Mapping,
    roles: dict[str, int],
    class_key: str,
    column_roles: dict[int, ColumnRole],
    key_columns: dict[str, str],
) -> tuple[pd.DataFrame, list[str]]:
    rule = mapping.assignment
    roles["assignment"] = _find(table, rule.column or "assignment", "assignment.column")
    roles["points"] = _find(table, rule.points or "points", "assignment.points")
    key_columns["assignment"] = table.header[roles["assignment"]].strip()
    for role in ("assignment", "points"):
        j = roles[role]
        column_roles[j] = ColumnRole(j, table.header[j].strip(), role)
    frame = _long(table, cols, roles, class_key)
    rows = frame["source_row"].to_numpy()
    take = pd.Index(np.asarray(table.source_row, dtype=np.int64)).get_indexer(rows.astype(np.int64))
    warnings: list[str] = []
    if (jm := _optional(table, rule.maximum)) is not None:
        column_roles[jm] = ColumnRole(jm, table.header[jm].strip(), "maximum")
        values = pd.to_numeric(pd.Series(cols.stripped(jm)[take], dtype=object), errors="coerce")
        frame["points_possible"] = values.to_numpy(dtype=float)
    excuse = np.zeros(len(frame), dtype=bool)
    if (je := _optional(table, rule.excuse)) is not None:
        column_roles[je] = ColumnRole(je, table.header[je].strip(), "excuse")
        flags = cols.stripped(je)[take]
        excuse |= _casefold_in(flags, _TRUE)
    statuses = {s.casefold() for s in mapping.values.excuse_statuses}
    if (js := _optional(table, rule.status)) is not None:
        column_roles[js] = ColumnRole(js, table.header[js].strip(), "status")
        if statuses:
            flags = cols.stripped(js)[take]
            excuse |= _casefold_in(flags, statuses)
    frame["excuse"] = excuse
    return frame, warnings


def _mapped_wide(
    table: RawTable,
    cols: _Columns,
    mapping: Mapping,
    roles: dict[str, int],
    class_key: str,
    column_roles: dict[int, ColumnRole],
    key_columns: dict[str, str],
) -> tuple[pd.DataFrame, list[str]]:
    chosen: list[tuple[int, str]] = []
    ignored: list[str] = []
    warnings: list[str] = []
    for j, header in enumerate(table.header):
        h = header.strip()
        if j in column_roles or j == roles.get("class"):
            continue
        why = _ignored_column(h, mapping)
        if why:
            column_roles[j] = ColumnRole(j, h, "ignored", why=why)
            if h and why != "ignored by the mapping":
                ignored.append(h)
            if not h and not cols.blank(j).all():
                warnings.append(f"{table.path}: column {j + 1} has no header; its values were ignored")
            continue
        name = assignment_name(h, mapping)
        chosen.append((j, name))
        column_roles[j] = ColumnRole(j, h, "assignment", assignment=name)
    if not chosen:
        raise InputError(
            "no assignment columns: the mapping ignores every column",
            file=table.path,
            row=table.header_row,
            code="input-no-assignments",
            hint="check [columns] ignore / ignore_patterns / only_listed in the mapping",
        )
    key_columns["assignment"] = "(header row)"
    frame, more = _wide(table, cols, roles, class_key, chosen)
    if ignored:
        warnings.append(f"{table.path}: columns that are not grades were ignored: {_quoted(ignored[:12])}")
    return frame, warnings + more


def _ignored_rows(table: RawTable, cols: _Columns, mapping: Mapping, ident: list[int]) -> dict[int, str]:
    """The mapping's ignore_rows (on their column, or any identifier column), then summary rows."""
    out: dict[int, str] = {}
    for rule in mapping.ignore_rows:
        columns = [j for j in ([_optional(table, rule.column)] if rule.column else ident) if j is not None]
        pattern = re.compile(rule.pattern)
        for j in columns:
            codes, uniques = pd.factorize(cols.stripped(j))
            for k, u in enumerate(uniques):
                if u and pattern.search(str(u)):
                    for i in np.flatnonzero(codes == k):
                        out.setdefault(
                            int(table.source_row[i]),
                            f'"{u}" in column "{table.header[j].strip()}": {rule.why}',
                        )
    for row, why in summary_rows(table, cols, [j for j in ident if j < len(table.header)]).items():
        out.setdefault(row, why)
    return dict(sorted(out.items()))
