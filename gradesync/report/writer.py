"""write_reports: the report stage's one entry point — CSV, summary.json and report.html in a directory."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gradesync.files import atomic_write
from gradesync.report.htmlreport import render_html
from gradesync.report.rowsfile import ROWS_NAME, write_rows
from gradesync.report.summary import KINDS, RunSummary
from gradesync.report.tables import PLAN_CSV_COLUMNS, RECONCILIATION_CSV_COLUMNS, write_csv

__all__ = [
    "summary_json",
    "write_reports",
]


_ENCODE_STR = json.encoder.encode_basestring  # json.dumps of a str with ensure_ascii=False, in C


class _Unusual(Exception):
    """A value the fast encoder leaves to ``json.dumps`` (a key that is not text, an odd type)."""


def _indented(value: Any, pad: str) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)`` at indentation ``pad``,
    the same bytes; the stdlib does this in pure Python when indenting (summary.json of a district
    holds tens of thousands of per-assignment counts)."""
    kind = type(value)
    if kind is str:
        return _ENCODE_STR(value)
    if kind is int:
        return int.__repr__(value)
    if value is None or kind is bool or kind is float:
        return json.dumps(value, allow_nan=False)
    inner = pad + "  "
    if kind is dict:
        if not value:
            return "{}"
        if any(type(k) is not str for k in value):
            raise _Unusual
        parts = [f"{inner}{_ENCODE_STR(k)}: {_indented(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(parts) + "\n" + pad + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        return "[\n" + ",\n".join(inner + _indented(v, inner) for v in value) + "\n" + pad + "]"
    raise _Unusual


def summary_json(summary: RunSummary, roster_gaps: list[Mapping[str, Any]] | None = None) -> str:
    """summary.json's text: ``summary.asdict()`` plus the number of roster gaps (2-space indent)."""
    data = summary.asdict()
    data["roster_gaps"] = len(roster_gaps or [])
    try:
        return _indented(data, "") + "\n"
    except _Unusual:
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_reports(
    rows: pd.DataFrame,
    summary: RunSummary,
    out_dir: str | os.PathLike[str],
    *,
    roster_gaps: Sequence[Mapping[str, Any]] | None = None,
    kind: str = "plan",
    rows_file: bool = False,
) -> dict[str, Path]:
    """Write the run's reports into ``out_dir`` (created if needed) and return their paths.

    plan: ``plan.csv``, ``summary.json``, ``report.html``;
    reconciliation: ``reconciliation.csv``, ``summary.json``, ``report.html``;
    with ``rows_file`` (a run directory, which the web app shows) also ``rows.json``, the rows typed
    (not in the paths returned: it is for programs, and a command prints only the reports).
    Each file is written atomically (temporary file, then rename).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gaps = list(roster_gaps or [])
    csv_name = "reconciliation.csv" if kind == "reconciliation" else "plan.csv"
    columns = RECONCILIATION_CSV_COLUMNS if kind == "reconciliation" else PLAN_CSV_COLUMNS
    paths: dict[str, Path] = {}

    csv_path = out / csv_name
    tmp_csv = out / f".{csv_name}.tmp"
    try:
        write_csv(rows, tmp_csv, columns)
        tmp_csv.replace(csv_path)
    finally:
        tmp_csv.unlink(missing_ok=True)
    paths[csv_name] = csv_path

    json_path = out / "summary.json"
    atomic_write(json_path, summary_json(summary, gaps).encode("utf-8"))
    paths["summary.json"] = json_path

    html_path = out / "report.html"
    page = render_html(rows, summary, roster_gaps=gaps, kind=kind)
    atomic_write(html_path, page.encode("utf-8"))
    paths["report.html"] = html_path
    if rows_file:  # for programs, not people: not among the reports a command prints
        write_rows(rows, out / ROWS_NAME)
    return paths
