"""How a file is understood, before anything is planned (``gradesync inspect``, the web app's Map page).

``inspect_inputs`` reads the files as ``plan`` would and reports, per file: the preset, the header
row, each column's role and the assignment it maps to, the classes and id formats found, the rows
that will be ignored and why, the warnings and diagnoses, and the mapping in effect as TOML a person
can edit (``--write-mapping``). With a ``SnapshotLookup`` (what Teams holds: class keys and names,
assignment names, student ids) it also says which classes and assignments Teams knows, with "did
you mean" for the others; without one it works offline. read never imports resolve: the caller
builds the lookup (``lookup_from_snapshot``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Mapping as MappingType
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gradesync.config import Settings
from gradesync.errors import InputError
from gradesync.models import ReasonCode, Snapshot, TeamsClass
from gradesync.read import HEADER_ALIASES, FileReading, ReadResult, normalize_header, read_inputs
from gradesync.read._headers import header_facts
from gradesync.read._layout import HEADER_SEARCH_ROWS
from gradesync.read._source import load_table
from gradesync.read.classes import suggest_classes
from gradesync.read.mapping import AssignmentRule, ClassRule, ColumnRules, Mapping, StudentRule
from gradesync.read.presets import PRESETS

__all__ = [
    "ColumnInfo",
    "FileInspection",
    "Inspection",
    "SnapshotLookup",
    "inspect_inputs",
    "lookup_from_snapshot",
    "suggest_mapping",
]

_NO_CLASS = "(no class: give --class)"


@dataclass(frozen=True, slots=True)
class SnapshotLookup:
    """What Teams holds, for "did you mean": plain lists, so read needs nothing from resolve."""

    class_keys: Sequence[str] = ()  # the values classes are matched by ([match] class_by)
    class_names: Sequence[str] = ()
    assignments: Sequence[str] = ()  # assignment display names
    student_ids: Sequence[str] = ()  # a sample of Teams' student ids (SIS ids), for id-format hints
    # assignment display name (case-folded) → its maxima in Teams (one per class that has it)
    assignment_maxima: MappingType[str, Sequence[float]] = field(default_factory=dict)
    # every class of the tenant (resolve.read_classes): "did you mean" for a class Teams lacks, by
    # what people call classes (name, SIS id, …); without it, by the classes the input touched only
    classes: Sequence[TeamsClass] = ()


def lookup_from_snapshot(snapshot: Snapshot) -> SnapshotLookup:
    """A lookup from what resolve read (only the classes the input touched)."""
    members = snapshot.members
    ids = [str(v) for v in members["sis_id"].dropna().tolist()] if len(members) else []
    maxima: dict[str, set[float]] = {}
    asg = snapshot.assignments
    for name, value in zip(asg["display_name"].tolist(), asg["max_points"].tolist(), strict=True):
        if isinstance(name, str) and not math.isnan(value):  # a graded assignment (NaN: ungraded)
            maxima.setdefault(name.casefold(), set()).add(float(value))
    return SnapshotLookup(
        class_keys=sorted({str(v) for v in snapshot.classes["class_key"].dropna()}),
        class_names=sorted({str(v) for v in snapshot.classes["class_name"].dropna()}),
        assignments=sorted({str(v) for v in asg["display_name"].dropna()}),
        student_ids=ids[:500],
        assignment_maxima={k: sorted(v) for k, v in maxima.items()},
    )


@dataclass(slots=True)
class ColumnInfo:
    index: int  # 1-based, as a spreadsheet shows it
    header: str
    role: str
    assignment: str = ""
    why: str = ""
    in_teams: bool | None = None  # None: no lookup (offline), or not an assignment column
    did_you_mean: list[str] = field(default_factory=list)
    maximum: float | None = None  # the maximum the file (or mapping) declares for the column
    maximum_from: str = ""  # where it is declared
    teams_maximum: list[float] = field(default_factory=list)  # the assignment's maximum in Teams


@dataclass(slots=True)
class ClassInfo:
    key: str
    rows: int
    in_teams: bool | None = None
    did_you_mean: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FileInspection:
    path: str
    sheet: str
    preset: str | None
    preset_title: str
    layout: str
    header_row: int
    header: list[str]
    columns: list[ColumnInfo]
    classes: list[ClassInfo]
    id_formats: dict[str, int]  # "6 digits": 28, "email": 2
    rows: int  # desired rows (cells) read from the file
    ignored_rows: list[dict[str, Any]]  # {"row": 7, "why": "..."}
    mapping_toml: str
    near_miss: str = ""  # no format recognised: the one the header almost is, and what differs
    suggested: bool = False  # read with a mapping gradesync suggested (no format, no mapping given)
    no_class: bool = False  # the rows carry no class (a Canvas export without --class)
    # then, a column that holds class *names* (Canvas's "Section"): a mapping's class.column with a
    # [class.values] table (name → Teams class) reads it
    class_hint: str = ""


@dataclass(slots=True)
class Inspection:
    files: list[FileInspection]
    warnings: list[str]
    diagnoses: list[str]
    preset: str | None
    teams: bool  # a lookup was given ("did you mean" against Teams)
    assignments: list[str] = field(default_factory=list)  # the Teams assignments of the classes found

    def asdict(self) -> dict[str, Any]:
        return asdict(self)

    def mapping_toml(self) -> str:
        """The mapping of the first file (``--write-mapping``)."""
        return self.files[0].mapping_toml if self.files else ""

    def render(self) -> str:
        return render_text(self)


def inspect_inputs(
    paths: Sequence[str | Path],
    settings: Settings,
    snapshot_lookup: SnapshotLookup | None = None,
    *,
    class_key: str | None = None,
    sheet: str | None = None,
    mapping: Mapping | None = None,
    format: str = "auto",
) -> Inspection:
    """Read ``paths`` as plan would and say how they are understood. A file whose rows carry no class
    (a Canvas export without ``--class``) is still inspected; the diagnoses say what to give. A file of
    no known format that the header aliases cannot read either is read with a mapping gradesync
    suggests from its columns, and the diagnoses say so: those are the mapping lines that would make
    it work (``--write-mapping`` writes them)."""
    extra: list[str] = []
    suggested = False
    try:
        read = _read(paths, settings, class_key, sheet, mapping, format, extra)
    except InputError as e:
        if e.code not in _UNKNOWN_LAYOUT or mapping is not None or format != "auto" or len(paths) != 1:
            raise
        guess = suggest_mapping(paths[0], sheet)
        if guess is None:
            raise
        try:
            read = _read(paths, settings, class_key, sheet, guess, format, extra)
        except InputError:
            raise e from None
        suggested = True
        extra.insert(
            0,
            f"{paths[0]}: no known export format, and the header aliases cannot read it ({e.message}); "
            "it is read here with a mapping gradesync suggests from its columns: check each line, then "
            "save it with --write-mapping and edit it",
        )
    lookup = snapshot_lookup
    files = [_file(r, read.frame, lookup, class_key) for r in read.files]
    for f in files:
        f.suggested = suggested
        if suggested:
            f.preset_title = "a mapping gradesync suggests (no known format): check it"
    diagnoses = extra + list(read.diagnoses)
    if lookup is not None:
        diagnoses += _id_hints(read.files, lookup)
    return Inspection(
        files=files,
        warnings=list(read.warnings),
        diagnoses=diagnoses,
        preset=read.preset,
        teams=lookup is not None,
        assignments=sorted(set(lookup.assignments), key=str.casefold) if lookup is not None else [],
    )


#: Read errors that mean "no reader understands this header" (not a broken file).
_UNKNOWN_LAYOUT = frozenset({"input-no-header", "input-missing-column", "input-no-assignments"})


def _read(
    paths: Sequence[str | Path],
    settings: Settings,
    class_key: str | None,
    sheet: str | None,
    mapping: Mapping | None,
    format: str,
    extra: list[str],
) -> ReadResult:
    """``read_inputs``; without a class, again with a placeholder class (the diagnosis says what to give)."""
    try:
        return read_inputs(paths, settings, class_key=class_key, sheet=sheet, mapping=mapping, format=format)
    except InputError as e:
        if e.code != "input-no-class":
            raise
        extra.append(" ".join(str(e).split()))
        return read_inputs(paths, settings, class_key=_NO_CLASS, sheet=sheet, mapping=mapping, format=format)


_ID_WORDS = ("student", "user", "login", "email", "mail", "id", "number", "matric", "pupil", "learner")
_CLASS_WORDS = ("class", "section", "course", "group")


def suggest_mapping(path: str | Path, sheet: str | None = None) -> Mapping | None:
    """A mapping for a wide file no reader knows, from what its columns hold: the header row (the
    first row with most cells filled), the student column (a header naming an id, user or e-mail whose
    cells are mostly filled and distinct), a class column if one is named so, and every column of
    numbers as an assignment (calculated ones left out). None when no student column stands out."""
    try:
        table = load_table(path, sheet=sheet)
    except InputError:
        return None
    rows = [table.header] + [
        [str(c[i]) for c in table.cells] for i in range(min(HEADER_SEARCH_ROWS, table.n_rows))
    ]
    filled = [sum(1 for v in r if v.strip()) for r in rows]
    at = filled.index(max(filled))
    header = rows[at]
    body = [[str(c[i]).strip() for c in table.cells] for i in range(at, min(table.n_rows, at + 200))]
    columns = list(zip(*body, strict=True)) if body else [() for _ in header]
    student = _student_column(header, columns)
    if student is None:
        return None
    klass = next(
        (j for j, h in enumerate(header) if j != student and any(w in h.casefold() for w in _CLASS_WORDS)),
        None,
    )
    ignore = [
        h.strip()
        for j, h in enumerate(header)
        if h.strip()
        and j not in (student, klass)
        and not _holds_grades(h, columns[j] if j < len(columns) else ())
    ]
    return Mapping(
        description="suggested by gradesync inspect from the file's columns: check every line",
        layout="wide",
        header_row=table.header_row if at == 0 else int(table.source_row[at - 1]),
        student=StudentRule(column=header[student].strip()),
        class_=ClassRule(column=header[klass].strip()) if klass is not None else ClassRule(),
        columns=ColumnRules(ignore=ignore),
    )


def _student_column(header: Sequence[str], columns: Sequence[Sequence[str]]) -> int | None:
    best: tuple[float, int] | None = None
    for j, h in enumerate(header):
        words = h.casefold()
        if not any(w in words for w in _ID_WORDS) or j >= len(columns):
            continue
        values = [v for v in columns[j] if v]
        if not values:
            continue
        score = len(values) / len(columns[j]) + len(set(values)) / len(values)
        if best is None or score > best[0]:
            best = (score, j)
    return best[1] if best is not None and best[0] >= 1.5 else None


def _holds_grades(header: str, values: Sequence[str]) -> bool:
    """A column of numbers (or blanks, percents, fractions), not calculated: an assignment."""
    if header_facts(header).calculated:
        return False
    filled = [v for v in values if v]
    if not filled:
        return True  # nothing graded yet: an assignment column all the same
    numeric = sum(1 for v in filled if _NUMERIC.match(v))
    return numeric / len(filled) >= 0.6


_NUMERIC = re.compile(r"^\s*[+-]?(\d+([.,]\d+)?|\.\d+)\s*(%|/\s*\d+(\.\d+)?)?\s*$")


def _close(name: str, pool: Sequence[str]) -> list[str]:
    folded = {p.casefold(): p for p in pool}
    hits = difflib.get_close_matches(name.casefold(), list(folded), n=3, cutoff=0.6)
    return [folded[h] for h in hits]


def _file(
    reading: FileReading, frame: pd.DataFrame, lookup: SnapshotLookup | None, class_key: str | None
) -> FileInspection:
    d = reading.desired
    rows = frame[frame["source_file"] == reading.path]
    live = rows[rows["reason"] != ReasonCode.IGNORED_ROW.value]
    classes: list[ClassInfo] = []
    teams_classes = {k.casefold() for k in (lookup.class_keys if lookup else ())}
    for key, count in Counter(live["class_key"].tolist()).most_common(50):
        klass = ClassInfo(key=key, rows=count)
        if lookup is not None and key and key != _NO_CLASS:
            klass.in_teams = key.casefold() in teams_classes
            if not klass.in_teams and lookup.classes:
                klass.did_you_mean = [
                    s.teams_class.label() for s in suggest_classes(key, lookup.classes, limit=3)
                ]
            elif not klass.in_teams:
                klass.did_you_mean = _close(key, [*lookup.class_keys, *lookup.class_names])
        classes.append(klass)
    # assignments are looked for in the classes Teams has for the input: none found, nothing to check
    checked = lookup is not None and bool(lookup.class_keys)
    teams_assignments = {a.casefold() for a in (lookup.assignments if lookup else ())}
    columns = []
    for c in d.columns:
        info = ColumnInfo(index=c.index + 1, header=c.header, role=c.role, assignment=c.assignment, why=c.why)
        if not math.isnan(c.maximum):  # declared
            info.maximum = float(c.maximum)
        info.maximum_from = c.maximum_from
        if checked and lookup is not None and c.role == "assignment" and c.assignment:
            info.in_teams = c.assignment.casefold() in teams_assignments
            info.teams_maximum = list(lookup.assignment_maxima.get(c.assignment.casefold(), []))
            if not info.in_teams:
                info.did_you_mean = _close(c.assignment, list(lookup.assignments))
        columns.append(info)
    no_class = any(c.key == _NO_CLASS for c in classes)
    preset = PRESETS.get(reading.preset or "")
    return FileInspection(
        path=reading.path,
        sheet=reading.sheet,
        preset=reading.preset,
        preset_title=preset.title
        if preset
        else ("a mapping file" if reading.mapping else "generic (header aliases)"),
        layout=d.layout,
        header_row=d.header_row,
        header=[h.strip() for h in d.header],
        columns=columns,
        classes=classes,
        id_formats=dict(Counter(id_format(i) for i in pd.unique(live["student_key"]) if i).most_common()),
        rows=len(rows),
        ignored_rows=[{"row": r, "why": why} for r, why in d.ignored_rows.items()],
        mapping_toml=mapping_of(reading, class_key).to_toml(),
        near_miss=reading.near_miss,
        no_class=no_class,
        class_hint=_class_hint(d.columns) if no_class else "",
    )


def _class_hint(columns: Sequence[Any]) -> str:
    """The header of a column the reading left aside that is named like a class column (Canvas's
    ``Section``, which holds section names, not Teams keys): "" when there is none."""
    aliases = {normalize_header(a) for a in HEADER_ALIASES["class"]}
    return next(
        (c.header for c in columns if c.role == "ignored" and normalize_header(c.header) in aliases), ""
    )


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def id_format(value: str) -> str:
    """``"000101"`` → ``"6 digits"``, ``"ana@x.edu"`` → ``"email"``, ``"S000101"`` → ``"S + 6 digits"``."""
    v = str(value).strip()
    if v.isdigit():
        return f"{len(v)} digits"
    if _EMAIL.match(v):
        return "email"
    m = re.fullmatch(r"([A-Za-z]+)[-_]?(\d+)", v)
    if m:
        return f"{m.group(1)} + {len(m.group(2))} digits"
    return "other text"


def _id_hints(readings: Sequence[FileReading], lookup: SnapshotLookup) -> list[str]:
    """Ids that match Teams' once zero-padded: suggest ``zero_pad``."""
    teams = {str(i) for i in lookup.student_ids}
    widths = Counter(len(i) for i in teams if i.isdigit())
    if not widths:
        return []
    width = widths.most_common(1)[0][0]
    out = []
    for r in readings:
        ids = [i for i in r.desired.student_ids if isinstance(i, str) and i.isdigit() and len(i) < width]
        hits = [i for i in ids if i.zfill(width) in teams]
        if hits and len(hits) * 2 >= len(ids):
            out.append(
                f'{r.path}: ids such as "{hits[0]}" match Teams once padded with zeros '
                f'("{hits[0].zfill(width)}"); '
                f"Excel dropped the leading zeros: add [student] zero_pad = {width} to the mapping"
            )
    return out


def mapping_of(reading: FileReading, class_key: str | None = None) -> Mapping:
    """The mapping in effect for a file, or (generic reading) one that says what was understood."""
    if reading.mapping is not None:
        return reading.mapping
    d = reading.desired
    roles = {c.role: c.header for c in d.columns if c.role not in ("ignored", "assignment")}
    student = StudentRule(column=roles.get("student"))
    key = (class_key or "").strip()
    klass = ClassRule(column=roles["class"]) if "class" in roles else ClassRule(key=key or None)
    ignored = [c.header for c in d.columns if c.role == "ignored" and c.header]
    return Mapping(
        description="written by gradesync inspect: edit, then give it with --mapping or save it beside "
        "the file",
        layout="long" if d.layout == "long" else "wide",
        header_row=d.header_row,
        student=student,
        class_=klass,
        assignment=AssignmentRule(column=roles.get("assignment"), points=roles.get("points"))
        if d.layout == "long"
        else AssignmentRule(),
        columns=ColumnRules(ignore=ignored) if d.layout == "wide" else ColumnRules(),
    )


def render_text(ins: Inspection) -> str:
    """The inspection as a person reads it in a terminal."""
    out: list[str] = []
    for f in ins.files:
        where = f"{f.path}" + (f" (sheet {f.sheet!r})" if f.sheet else "")
        out.append(where)
        out.append(f"  format:     {f.preset or 'generic'}: {f.preset_title}")
        if f.near_miss:
            out.append(f"              ({f.near_miss})")
        out.append(f"  layout:     {f.layout}; header on row {f.header_row}; {f.rows} grade cells")
        out.append("  columns:")
        for c in f.columns:
            line = f"    {c.index:>3}  {c.header or '(no header)'!s:<34} {c.role}"
            if c.role == "assignment":
                line += f" → {c.assignment!r}"
                if c.in_teams is True:
                    line += " (in Teams)"
                elif c.in_teams is False:
                    line += " (NOT in Teams" + (
                        f"; did you mean {', '.join(map(repr, c.did_you_mean))}?)" if c.did_you_mean else ")"
                    )
                line += _maximum_text(c)
            elif c.why:
                line += f" ({c.why})"
            out.append(line)
        out.append("  classes:    " + (", ".join(_class_text(c) for c in f.classes) or "none"))
        out.append("  student ids: " + (", ".join(f"{n} × {k}" for k, n in f.id_formats.items()) or "none"))
        if f.ignored_rows:
            out.append("  rows ignored:")
            out += [f"    row {r['row']}: {r['why']}" for r in f.ignored_rows]
    if not ins.teams:
        out.append("(offline: classes and assignments were not checked against Teams)")
    out += [f"warning: {w}" for w in ins.warnings]
    out += [f"diagnosis: {d}" for d in ins.diagnoses]
    return "\n".join(out) + "\n"


def _points(value: float) -> str:
    return f"{value:g}"


def _maximum_text(c: ColumnInfo) -> str:
    """``; maximum 50 (the header "[Total Pts: 50 Score]"), Teams 100: DIFFERS`` for an assignment column."""
    if c.maximum is None:
        text = "; maximum: none declared" + (f" ({c.maximum_from})" if c.maximum_from else "")
    else:
        text = f"; maximum {_points(c.maximum)} ({c.maximum_from})"
    if c.teams_maximum:
        text += ", Teams " + " or ".join(_points(m) for m in c.teams_maximum)
        if c.maximum is not None and any(m != c.maximum for m in c.teams_maximum):
            text += ": DIFFERS (refused, unless the mapping scales)"
    return text


def _class_text(c: ClassInfo) -> str:
    text = f"{c.key or '(blank)'} ({c.rows} cells"
    if c.in_teams is True:
        text += ", in Teams"
    elif c.in_teams is False:
        text += ", NOT in Teams" + (
            f"; did you mean {', '.join(map(repr, c.did_you_mean))}?" if c.did_you_mean else ""
        )
    return text + ")"
