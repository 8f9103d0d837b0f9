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
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gradesync.config import Settings
from gradesync.errors import InputError
from gradesync.models import ReasonCode, Snapshot, TeamsClass
from gradesync.read import HEADER_ALIASES, FileReading, normalize_header, read_inputs
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
]

_NO_CLASS = "(no class: give --class)"


@dataclass(frozen=True, slots=True)
class SnapshotLookup:
    """What Teams holds, for "did you mean": plain lists, so read needs nothing from resolve."""

    class_keys: Sequence[str] = ()  # the values classes are matched by ([match] class_by)
    class_names: Sequence[str] = ()
    assignments: Sequence[str] = ()  # assignment display names
    student_ids: Sequence[str] = ()  # a sample of Teams' student ids (SIS ids), for id-format hints
    # every class of the tenant (resolve.read_classes): "did you mean" for a class Teams lacks, by
    # what people call classes (name, SIS id, …); without it, by the classes the input touched only
    classes: Sequence[TeamsClass] = ()


def lookup_from_snapshot(snapshot: Snapshot) -> SnapshotLookup:
    """A lookup from what resolve read (only the classes the input touched)."""
    members = snapshot.members
    ids = [str(v) for v in members["sis_id"].dropna().tolist()] if len(members) else []
    return SnapshotLookup(
        class_keys=sorted({str(v) for v in snapshot.classes["class_key"].dropna()}),
        class_names=sorted({str(v) for v in snapshot.classes["class_name"].dropna()}),
        assignments=sorted({str(v) for v in snapshot.assignments["display_name"].dropna()}),
        student_ids=ids[:500],
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
    (a Canvas export without ``--class``) is still inspected; the diagnoses say what to give."""
    extra: list[str] = []
    try:
        read = read_inputs(paths, settings, class_key=class_key, sheet=sheet, mapping=mapping, format=format)
    except InputError as e:
        if e.code != "input-no-class":
            raise
        extra.append(" ".join(str(e).split()))
        read = read_inputs(paths, settings, class_key=_NO_CLASS, sheet=sheet, mapping=mapping, format=format)
    lookup = snapshot_lookup
    files = [_file(r, read.frame, lookup, class_key) for r in read.files]
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
        if checked and lookup is not None and c.role == "assignment" and c.assignment:
            info.in_teams = c.assignment.casefold() in teams_assignments
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


def _class_text(c: ClassInfo) -> str:
    text = f"{c.key or '(blank)'} ({c.rows} cells"
    if c.in_teams is True:
        text += ", in Teams"
    elif c.in_teams is False:
        text += ", NOT in Teams" + (
            f"; did you mean {', '.join(map(repr, c.did_you_mean))}?" if c.did_you_mean else ""
        )
    return text + ")"
