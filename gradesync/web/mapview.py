"""The Map page: how each uploaded file is understood, and the registrar's choices for it.

Per file the page shows read's inspection (format, layout, header row, each column's role, the rows
ignored, warnings and diagnoses) and two kinds of choice:

- **the class** of each class value the file holds (or of the whole file when its rows name none):
  a chooser (``web.classes``) listing the Teams classes by name, SIS id, teacher and term;
- **each assignment column's target**: keep it, send it to a "did you mean" Teams assignment, or
  ignore it; and one "send a column to another assignment" pair of lists for any other target. The
  page holds one list of the Teams assignments, not one per column, so it grows with the columns and
  the assignments, not with their product; at most :data:`MAX_MAP_COLUMNS` columns per file are
  offered, and the page says so when a file has more.

What a file holds is learnt from its first reading, before any choice (:func:`learn`): its class
values, whether its rows name no class, its assignment columns, and the mapping it was read with.
The choices then become its mapping (:func:`mappings`), which the web app writes beside the stored
file for the pipeline's reader to find.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradesync.models import TeamsClass
from gradesync.read.classes import fold
from gradesync.read.inspect import FileInspection, Inspection
from gradesync.read.mapping import Mapping
from gradesync.web import runner
from gradesync.web.classes import Chooser, chooser
from gradesync.web.uploads import MAPPING_SUFFIX, StoredFile, Upload

__all__ = [
    "MAX_MAP_COLUMNS",
    "ColumnView",
    "FileView",
    "choose_classes",
    "file_of",
    "file_views",
    "learn",
    "mapping_path",
    "mappings",
]

MAX_MAP_COLUMNS = 5000  # assignment columns offered a choice per file; a wider file is read as it is


@dataclass(slots=True)
class ColumnView:
    index: int  # position among the file's assignment columns (the form field's number)
    header: str
    assignment: str  # what the file's header reads as
    chosen: str  # the target now: an assignment name, or runner.IGNORE
    options: list[str]  # the assignments offered beside keeping and ignoring (the header's own first)
    in_teams: bool | None = None
    did_you_mean: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FileView:
    index: int
    file: StoredFile
    info: FileInspection | None  # read's inspection of the file with the choices applied
    choosers: list[Chooser] = field(default_factory=list)
    columns: list[ColumnView] = field(default_factory=list)
    more_columns: int = 0  # assignment columns past MAX_MAP_COLUMNS
    class_column: str = ""
    no_class: bool = False
    toml: str = ""  # the mapping the file is read with, the choices included


def file_of(files: Sequence[StoredFile], inspected: FileInspection) -> StoredFile | None:
    """The stored file an inspection is of (inspections name files by their uploaded names; a
    bundle's member as ``NAME!results.csv``)."""
    for f in files:
        if inspected.path == f.name or inspected.path.startswith(f.name + "!"):
            return f
    return None


def mapping_path(folder: Path, stored: str) -> Path:
    """Where the pipeline's reader finds a file's mapping: ``STEM.mapping.toml`` beside it."""
    return folder / (Path(stored).stem + MAPPING_SUFFIX)


def learn(upload: Upload, inspection: Inspection, *, hints: bool) -> list[str]:
    """Record what each file holds from a reading made before any choice; returns the stored names
    of files whose rows name no class but that have a column of class names to read again (only
    with ``hints``: the first reading)."""
    again = []
    for info in inspection.files:
        f = file_of(upload.files, info)
        if f is None:
            continue
        upload.base.setdefault(f.stored, info.mapping_toml)
        if hints and info.no_class and info.class_hint:
            upload.class_columns[f.stored] = info.class_hint
            again.append(f.stored)
            continue
        upload.no_class[f.stored] = info.no_class and not upload.class_columns.get(f.stored)
        upload.values[f.stored] = [[c.key, c.rows] for c in info.classes if not info.no_class]
        upload.assignment_columns[f.stored] = [
            [c.header, c.assignment] for c in info.columns if c.role == "assignment" and c.assignment
        ]
    return again


def choose_classes(upload: Upload, tenant: Sequence[TeamsClass], class_by: str) -> None:
    """Preselect, for each class value not chosen yet, the class found in Teams or the one exact
    suggestion (the registrar confirms it on the page)."""
    for f in upload.data_files:
        chosen = upload.classes.setdefault(f.stored, {})
        values = [("", 0)] if upload.no_class.get(f.stored) else upload.values.get(f.stored, [])
        for value, rows in values:
            if str(value) not in chosen:
                view, _ = chooser(
                    "", str(value), int(rows), tenant=tenant, class_by=class_by, file_name=f.name
                )
                if view.selected:
                    chosen[str(value)] = view.selected


def _key(class_id: str, tenant_by_id: dict[str, TeamsClass], class_by: str) -> str:
    c = tenant_by_id.get(class_id)
    return c.key(class_by) if c is not None else ""


def mappings(
    upload: Upload, tenant: Sequence[TeamsClass], class_by: str, *, with_classes: bool
) -> dict[str, Mapping | None]:
    """Each data file's mapping with the choices (None: read it as detected). ``with_classes``: the
    class choices too (the preview's mapping); without them, the file's own class values are read
    (the Map page learns them)."""
    by_id = {c.id: c for c in tenant}
    out: dict[str, Mapping | None] = {}
    for f in upload.data_files:
        base = upload.base.get(f.stored)
        if not base:
            out[f.stored] = None
            continue
        class_column = upload.class_columns.get(f.stored, "")
        chosen = upload.classes.get(f.stored, {}) if with_classes else {}
        class_key, values = "", {}
        if upload.no_class.get(f.stored) and not class_column:
            class_key = _key(chosen.get("", ""), by_id, class_by)
        else:
            for value, class_id in chosen.items():
                key = _key(class_id, by_id, class_by)
                if value and key and fold(key) != fold(value):
                    values[value] = key
        mapping = runner.mapping_for(
            base,
            columns=upload.columns.get(f.stored),
            class_column=class_column,
            class_values=values,
            class_key=class_key,
        )
        same = mapping == Mapping.model_validate(tomllib.loads(base))
        out[f.stored] = None if same and f.stored not in upload.user_mappings else mapping
    return out


def _columns(upload: Upload, f: StoredFile, info: FileInspection | None) -> tuple[list[ColumnView], int]:
    now = {c.header: c for c in (info.columns if info else []) if c.role == "assignment"}
    chosen = upload.columns.get(f.stored, {})
    learnt = upload.assignment_columns.get(f.stored, [])
    views = []
    for i, (header, assignment) in enumerate(learnt[:MAX_MAP_COLUMNS]):
        target = chosen.get(header, assignment)
        seen = now.get(header)
        dym = list(seen.did_you_mean) if seen else []
        options = list(dict.fromkeys([assignment, *dym, *([target] if target != runner.IGNORE else [])]))
        views.append(ColumnView(i, header, assignment, target, options, seen.in_teams if seen else None, dym))
    return views, max(0, len(learnt) - MAX_MAP_COLUMNS)


def file_views(
    upload: Upload,
    inspection: Inspection | None,
    tenant: Sequence[TeamsClass],
    class_by: str,
) -> tuple[list[FileView], list[TeamsClass]]:
    """The page's files, and the classes its choosers show (to read their teachers)."""
    shown: dict[str, TeamsClass] = {}
    views = []
    infos = inspection.files if inspection is not None else []
    for i, f in enumerate(upload.data_files):
        info = next((x for x in infos if file_of([f], x) is not None), None)
        view = FileView(i, f, info, class_column=upload.class_columns.get(f.stored, ""),
                        no_class=bool(upload.no_class.get(f.stored)))  # fmt: skip
        chosen = upload.classes.get(f.stored, {})
        values = [["", 0]] if view.no_class else upload.values.get(f.stored, [])
        if view.no_class and info is not None:
            values = [["", info.rows]]
        for j, (value, rows) in enumerate(values):
            name = f"class:{i}:{j}"
            one, classes = chooser(name, str(value), int(rows), tenant=tenant, class_by=class_by,
                                   file_name=f.name, chosen=chosen.get(str(value), ""),
                                   query=upload.queries.get(name, ""))  # fmt: skip
            view.choosers.append(one)
            shown.update({c.id: c for c in classes})
        view.columns, view.more_columns = _columns(upload, f, info)
        views.append(view)
    return views, list(shown.values())


def form_choices(upload: Upload, form: dict[str, Any], tenant: Sequence[TeamsClass]) -> None:
    """The Map form's choices into the upload: classes (``class:F:V`` = a class id), searches
    (``q:F:V``), columns (``col:F:C`` = an assignment or ignore; ``retarget`` = ``F:C`` with
    ``retarget_to``), and the options."""
    known = {c.id for c in tenant}
    files = upload.data_files
    for name, raw in form.items():
        parts = name.split(":")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or int(parts[1]) >= len(files):
            continue
        kind, fi, ix = parts[0], int(parts[1]), int(parts[2])
        f = files[fi]
        value = str(raw)
        if kind == "class":
            values = [["", 0]] if upload.no_class.get(f.stored) else upload.values.get(f.stored, [])
            if ix < len(values):
                chosen = upload.classes.setdefault(f.stored, {})
                if value in known:
                    chosen[str(values[ix][0])] = value
                elif not value:
                    chosen.pop(str(values[ix][0]), None)
        elif kind == "q":
            upload.queries[f"class:{fi}:{ix}"] = value.strip()[:100]
        elif kind == "col":
            _choose_column(upload, f, ix, value)
    target = str(form.get("retarget") or "")
    to = str(form.get("retarget_to") or "")
    if target.count(":") == 1 and to:
        fi_text, ci_text = target.split(":")
        if fi_text.isdigit() and ci_text.isdigit() and int(fi_text) < len(files):
            _choose_column(upload, files[int(fi_text)], int(ci_text), to)
    upload.strict = form.get("strict") == "yes"
    upload.allow_clear = form.get("allow_clear") == "yes"


def _choose_column(upload: Upload, f: StoredFile, index: int, target: str) -> None:
    learnt = upload.assignment_columns.get(f.stored, [])
    if index >= len(learnt):
        return
    header, assignment = learnt[index]
    chosen = upload.columns.setdefault(f.stored, {})
    if target == assignment:
        chosen.pop(header, None)
    else:
        chosen[header] = target
