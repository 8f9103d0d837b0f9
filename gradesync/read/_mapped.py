"""A ``RawTable`` read through a ``Mapping`` (a preset's or a person's) → desired-grade rows.

The mapping picks the header row, the student identifiers (one column, or several in order, each
matched by its own Teams attribute), the class (a column, a template over several columns, one key,
or ``--class``), the assignment columns, their names and maxima, the columns that show the same grade
in another display (Moodle's ``(Percentage)`` beside ``(Real)``), the rows to ignore and the exempt
flags. The rows themselves are built by the same code as the unmapped layouts (``_layout._long`` /
``_layout._wide``), and every header goes through the one maximum rule (``_headers.header_facts``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradesync.config import InputSettings
from gradesync.errors import InputError
from gradesync.read._headers import Headers, header_facts, normalize_header
from gradesync.read._layout import (
    _NON_GRADE_NORMS,
    ColumnRole,
    Desired,
    WideColumn,
    WideExtras,
    _Columns,
    _find_header,
    _long,
    _reject_extra_cells,
    _wide,
    grade_role,
    header_column,
    mark_ignored_rows,
    read_maximum_column,
    summary_rows,
)
from gradesync.read._source import RawTable
from gradesync.read.mapping import IdentifierRule, Mapping

__all__ = ["assignment_name", "build_mapped", "normalise_ids"]

_TRUE = frozenset({"1", "y", "yes", "true", "x", "t", "exempt", "excused"})
_TEMPLATE_HEADER = "class (template)"
_STUDENT_HEADER = "student (first identifier found)"
_BUILT = frozenset({_TEMPLATE_HEADER, _STUDENT_HEADER})
#: Separators of the ``student_ids`` column (``models.DESIRED_COLUMNS``): within one identifier, and
#: between identifiers. Control characters no export puts in a header or an id.
ID_PART, ID_SEP = "\x1e", "\x1f"


def _find(table: RawTable, name: str, what: str) -> int:
    return Headers(table.header).need(
        name,
        path=table.path,
        row=table.header_row,
        what=f"the mapping's {what}",
        hint="fix the mapping, or check the header row (header_row in the mapping)",
    )


def _optional(table: RawTable, name: str | None) -> int | None:
    return Headers(table.header).find(name)


def normalise_ids(
    values: np.ndarray,
    zero_pad: int | None,
    strip_prefix: str | None,
    domain: str | None = None,
) -> np.ndarray:
    """Strip the prefix, left-pad all-digit ids with zeros to ``zero_pad`` digits, and append
    ``@domain`` to an id without ``@`` (per distinct id)."""
    codes, uniques = pd.factorize(values)
    clean = []
    for u in uniques:
        text = str(u).strip()
        if strip_prefix and text.startswith(strip_prefix):
            text = text[len(strip_prefix) :].strip()
        if zero_pad and text.isdigit() and len(text) < zero_pad:
            text = text.zfill(zero_pad)
        if domain and text and "@" not in text:
            text = f"{text}@{domain}"
        clean.append(text)
    table = np.array([*clean, ""], dtype=object)
    out: np.ndarray = table.take(codes)
    return out


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


def _listed(header: str, mapping: Mapping) -> bool:
    norm = normalize_header(header)
    return header in mapping.columns.assignments or norm in {
        normalize_header(h) for h in mapping.columns.assignments
    }


def _ignored_column(header: str, mapping: Mapping) -> str:
    """Why a column is not a grade column ("" when it is one)."""
    rules = mapping.columns
    norm = normalize_header(header)
    if not norm:
        return "no header"
    if _listed(header, mapping):
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
    return header_facts(header).calculated


def assignment_name(header: str, mapping: Mapping) -> str:
    """The Teams assignment a header maps to: the mapping's table, else the header without the export's
    own syntax (``header_facts``) and without the decoration, else itself."""
    rules = mapping.columns
    for key, value in rules.assignments.items():
        if normalize_header(key) == normalize_header(header):
            return value.strip()
    base = header_facts(header).name
    if rules.decoration:
        m = re.search(rules.decoration, base)
        if m:
            if m.groups() and m.re.pattern.startswith("^"):
                return m.group(1).strip()
            return (base[: m.start()] + base[m.end() :]).strip()
    return base


# ---------------------------------------------------------------------------------------------
# the student: one column, or several identifiers in order
# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Student:
    column: int  # the column the rows' student_key comes from (a built one for identifiers)
    roles: dict[int, ColumnRole]
    ids: np.ndarray | None  # per table row: the encoded identifiers (``student_ids``); None for one column
    warnings: list[str]


def _identifiers(mapping: Mapping, cfg: InputSettings) -> list[IdentifierRule]:
    """The mapping's identifiers, each ``upn`` without a domain given ``[input] username_domain``."""
    domain = (cfg.username_domain or "").strip().lstrip("@")
    return [
        rule.model_copy(update={"domain": domain})
        if rule.match == "upn" and rule.domain is None and domain
        else rule
        for rule in mapping.student.identifiers
    ]


def _mapped_student(table: RawTable, mapping: Mapping, cfg: InputSettings) -> tuple[RawTable, _Student]:
    """Rule: the mapping (else the settings) names the student column, or an ordered list of identifier
    columns; ids are normalised as told. With identifiers, a row's student_key is its first non-blank
    identifier and ``student_ids`` lists them all (columns the file lacks are skipped, with a warning)."""
    rules = _identifiers(mapping, cfg)
    names = [r.column for r in rules] or [n for n in (mapping.student.column or cfg.student_column,) if n]
    probe_names = {normalize_header(n) for n in names}
    table, warnings = _find_header(table, cfg, mapping.header_row, names=probe_names or None)
    if not names:
        raise InputError(
            "the mapping names no student column",
            file=table.path,
            row=table.header_row,
            code="input-missing-column",
            hint='add [student] column = "…" to the mapping',
        )
    if not rules:
        student = _find(table, names[0], "student.column")
        if mapping.student.zero_pad or mapping.student.strip_prefix:
            ids = normalise_ids(table.cells[student], mapping.student.zero_pad, mapping.student.strip_prefix)
            table = _replace_column(table, student, ids)
        role = ColumnRole(student, table.header[student].strip(), "student")
        return table, _Student(student, {student: role}, None, warnings)
    return _mapped_identifiers(table, rules, warnings)


def _mapped_identifiers(
    table: RawTable, rules: Sequence[IdentifierRule], warnings: list[str]
) -> tuple[RawTable, _Student]:
    headers = Headers(table.header)
    found = [(rule, headers.find(rule.column)) for rule in rules]
    present = [(rule, j) for rule, j in found if j is not None]
    if not present:
        headers.need(rules[0].column, path=table.path, row=table.header_row, what="student.identifiers")
    missing = [rule.column for rule, j in found if j is None]
    if found[0][1] is None:  # the first identifier is gone (an export with another key field)
        warnings.append(
            f"{table.path}: no {_quoted(missing)} column; students are matched by "
            + _quoted([table.header[j].strip() for _, j in present])
        )
    n = table.n_rows
    key = np.full(n, "", dtype=object)
    encoded = np.full(n, "", dtype=object)
    roles: dict[int, ColumnRole] = {}
    for k, (rule, j) in enumerate(present):
        assert j is not None
        values = normalise_ids(table.cells[j], rule.zero_pad, rule.strip_prefix, rule.domain)
        header = table.header[j].strip()
        key = np.where(key == "", values, key)
        part = f"{header}{ID_PART}{rule.match}{ID_PART}" + values  # a blank one keeps its place
        encoded = part if k == 0 else encoded + ID_SEP + part
        domain = f" (@{rule.domain} appended)" if rule.domain else ""
        roles[j] = ColumnRole(
            j,
            header,
            "student" if k == 0 else "student-fallback",
            why=f"matched by {rule.match}{domain}"
            + ("" if k == 0 else ", when the identifiers before it find nobody"),
        )
    table = _with_column(table, _STUDENT_HEADER, key.astype(object))
    ids = encoded.astype(object) if len(present) > 1 else None
    return table, _Student(len(table.header) - 1, roles, ids, warnings)


# ---------------------------------------------------------------------------------------------
# the class
# ---------------------------------------------------------------------------------------------
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
    student = table.header[roles["student"]].strip()
    key_columns = {
        "class": table.header[roles["class"]].strip() if "class" in roles else "--class",
        "student": student
        if student != _STUDENT_HEADER
        else " / ".join(r.column for r in mapping.student.identifiers),
    }
    if "class" in roles and table.header[roles["class"]] == _TEMPLATE_HEADER and mapping.class_.template:
        key_columns["class"] = mapping.class_.template
    return key_columns


def _mapped_column_roles(table: RawTable, column_roles: dict[int, ColumnRole]) -> list[ColumnRole]:
    """Rule: every header column gets a role (unused ones "ignored"); the columns read builds are hidden."""
    return [
        column_roles.get(j, ColumnRole(j, h.strip(), "ignored", why="not used by this layout"))
        for j, h in enumerate(table.header)
        if h not in _BUILT
    ]


def build_mapped(table: RawTable, mapping: Mapping, cfg: InputSettings, class_key: str | None) -> Desired:
    """One table read through ``mapping`` (layout "long" or "wide"; "auto" picks long when the mapping
    names an assignment column)."""
    layout = mapping.layout if mapping.layout != "auto" else ("long" if mapping.assignment.column else "wide")
    table, student = _mapped_student(table, mapping, cfg)
    warnings = student.warnings
    roles: dict[str, int] = {"student": student.column}
    column_roles: dict[int, ColumnRole] = dict(student.roles)
    table, given = _mapped_class(table, mapping, cfg, class_key, roles, column_roles, warnings)
    cols = _Columns(table)
    key_columns = _mapped_key_columns(table, roles, mapping)
    if layout == "long":
        frame, more = _mapped_long(table, cols, mapping, roles, given, column_roles, key_columns)
        if student.ids is not None:
            take = pd.Index(np.asarray(table.source_row, dtype=np.int64)).get_indexer(
                frame["source_row"].to_numpy(dtype=np.int64)
            )
            frame["student_ids"] = student.ids.take(take)
    else:
        extras = WideExtras(maximum_rule=_maximum_rule(mapping), student_ids=student.ids)
        frame, more = _mapped_wide(table, cols, mapping, roles, given, column_roles, key_columns, extras)
    warnings += more
    if table.n_rows == 0:
        warnings.append(f"{table.path}: header only, no data rows")
    if table.extra_cells:
        _reject_extra_cells(table, frame)
    ident = [j for j, r in column_roles.items() if r.role not in ("assignment", "twin")]
    ignored = _ignored_rows(table, cols, mapping, ident)
    mark_ignored_rows(frame, ignored)
    return Desired(
        frame=frame,
        key_columns=key_columns,
        layout=layout,
        warnings=warnings,
        columns=_mapped_column_roles(table, column_roles),
        ignored_rows=ignored,
        header_row=table.header_row,
        header=[h for h in table.header if h not in _BUILT],
        student_ids=list(dict.fromkeys(str(u) for u in cols._codes(student.column)[1] if u)),
    )


def _maximum_rule(mapping: Mapping) -> str:
    return "scale" if mapping.values.maximum_mismatch == "scale" else ""


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
    frame["maximum_rule"] = _maximum_rule(mapping)
    if (jm := _optional(table, rule.maximum)) is not None:
        column_roles[jm] = ColumnRole(jm, table.header[jm].strip(), "maximum")
        read_maximum_column(table, cols, jm, take, frame)
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


# ---------------------------------------------------------------------------------------------
# wide: grade columns, their maxima, their twins
# ---------------------------------------------------------------------------------------------
def _declared_by_mapping(column: WideColumn, header: str, mapping: Mapping) -> None:
    """Rule: the mapping's maximum pattern (on the header) and its maxima table (by header or name)."""
    rules = mapping.columns
    if rules.maximum_pattern and (m := re.search(rules.maximum_pattern, header)) is not None:
        text = m.group("max") if "max" in m.re.groupindex else m.group(1)
        value = header_facts(f"(max {text})").maximum
        if math.isnan(value):
            column.conflict = (
                f'the mapping\'s maximum_pattern captures "{text}" from the header, which is not a number'
            )
        else:
            column.declare(value, f'the header "{m.group(0).strip()}" (the mapping\'s maximum_pattern)')
    for key, value in rules.maxima.items():
        if normalize_header(key) in (normalize_header(header), normalize_header(column.name)):
            column.declare(float(value), f'the mapping\'s [columns.maxima] "{key}"')


def _twin_of(header: str, mapping: Mapping) -> tuple[str, str] | None:
    """``(display, item name)`` when the header matches one of the mapping's twin patterns."""
    for display, pattern in mapping.columns.twins.items():
        m = re.search(pattern, header_facts(header).name)
        if m is not None:
            return display, m.group(1).strip()
    return None


def _pick_columns(
    table: RawTable,
    cols: _Columns,
    mapping: Mapping,
    roles: dict[str, int],
    column_roles: dict[int, ColumnRole],
) -> tuple[list[WideColumn], dict[int, tuple[str, str]], list[str], list[str]]:
    """Rule: each column not yet taken is ignored (saying why), a twin candidate, or an assignment."""
    chosen: list[WideColumn] = []
    twins: dict[int, tuple[str, str]] = {}
    ignored: list[str] = []
    warnings: list[str] = []
    for j, header in enumerate(table.header):
        h = header.strip()
        if j in column_roles or j == roles.get("class") or header in _BUILT:
            continue
        why = _ignored_column(h, mapping)
        if why:
            column_roles[j] = ColumnRole(j, h, "ignored", why=why)
            if h and why != "ignored by the mapping":
                ignored.append(h)
            if not h and not cols.blank(j).all():
                warnings.append(f"{table.path}: column {j + 1} has no header; its values were ignored")
            continue
        if not _listed(h, mapping) and (twin := _twin_of(h, mapping)) is not None:
            twins[j] = twin
            continue
        column = header_column(j, h, assignment_name(h, mapping))
        _declared_by_mapping(column, h, mapping)
        chosen.append(column)
    return chosen, twins, ignored, warnings


def _pair_twins(
    table: RawTable,
    chosen: list[WideColumn],
    twins: dict[int, tuple[str, str]],
    mapping: Mapping,
    column_roles: dict[int, ColumnRole],
) -> list[str]:
    """Rule: a twin beside its item's value column is checked (percent) or ignored with a note (letter);
    a twin without one is the item's only column, read as its grades (percents, or letters)."""
    by_name = {c.name.casefold(): c for c in chosen}
    notes: list[str] = []
    for j, (display, name) in twins.items():
        h = table.header[j].strip()
        value = by_name.get(name.casefold())
        if value is None:
            column = header_column(j, h, name)
            _declared_by_mapping(column, h, mapping)
            chosen.append(column)
            by_name[name.casefold()] = column
            continue
        shown = table.header[value.index].strip()
        if display == "percent":
            value.twin = j
            why = f'the same grades as "{shown}", as percents: each is checked against it and Teams\' maximum'
        else:
            why = f'the same grades as "{shown}", as letters: not read (letters carry no points)'
            notes.append(f'"{h}"')
        column_roles[j] = ColumnRole(j, h, "twin", assignment=value.name, why=why)
    chosen.sort(key=lambda c: c.index)
    if notes:
        return [
            f"{table.path}: columns that repeat a grade as a letter were not read: {', '.join(notes[:12])}"
        ]
    return []


def _mapped_wide(
    table: RawTable,
    cols: _Columns,
    mapping: Mapping,
    roles: dict[str, int],
    class_key: str,
    column_roles: dict[int, ColumnRole],
    key_columns: dict[str, str],
    extras: WideExtras,
) -> tuple[pd.DataFrame, list[str]]:
    chosen, twins, ignored, warnings = _pick_columns(table, cols, mapping, roles, column_roles)
    warnings += _pair_twins(table, chosen, twins, mapping, column_roles)
    if not chosen:
        raise InputError(
            "no assignment columns: the mapping ignores every column",
            file=table.path,
            row=table.header_row,
            code="input-no-assignments",
            hint="check [columns] ignore / ignore_patterns / only_listed in the mapping",
        )
    key_columns["assignment"] = "(header row)"
    frame, more, final = _wide(table, cols, roles, class_key, chosen, extras)
    for column in final:
        column_roles[column.index] = grade_role(table, column)
    if ignored:
        warnings.append(f"{table.path}: columns that are not grades were ignored: {_quoted(ignored[:12])}")
    return frame, warnings + more


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


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
