"""report.html: one self-contained page a registrar can read, safe to open whatever the input held.

The page is the Jinja2 template ``templates/report.html``; its grid of changes is the same macro
(``templates/_grid.html``) the web app's Preview and Result pages use. This module only prepares plain
values (lists of strings and numbers) for it.

Safety, in two layers:

1. **Every value is escaped**: the template environment has autoescaping on, so escaping is the
   default rather than a discipline, and row data only ever becomes the text of table cells (or a
   ``title``): nothing from the input is put into the ``<script>`` block, a URL, an event handler or
   a style.
2. **A strict Content-Security-Policy** in a ``<meta>``: ``default-src 'none'`` (nothing is fetched:
   no CDN, no font, no image, no form target), and the one inline ``<style>`` and the one inline
   ``<script>`` are allowed by their SHA-256, computed at render time. A missed escape still could not
   run a script or load anything.

The page works without JavaScript (every page of every grid is shown, the "show only rows that
change" switch is a CSS-only checkbox); the script pages the grids (50 students a page), adds a
find-as-you-type filter and marks ``<html data-js="ready">`` (which the browser test uses to show
that our script ran and nothing else did).

Size: each row section renders at most ``HTML_ROW_LIMIT`` rows (10,000), with a note that the CSV
holds every row — a 1.2M-row plan gives a page of a few MB, not hundreds.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from gradesync.report.grid import PAGE_SIZE, class_grids
from gradesync.report.summary import (
    ACTIONS,
    EXTRA_ACTIONS,
    EXTRA_STATUSES,
    STATUSES,
    RunSummary,
    bool_column,
    float_column,
    format_number,
    text_column,
)
from gradesync.version import __version__

__all__ = [
    "HTML_ROW_LIMIT",
    "OVERRIDES_TITLE",
    "SUMMARY_OPEN_LIMIT",
    "content_security_policy",
    "csp_hash",
    "environment",
    "page_assets",
    "render_html",
]

HTML_ROW_LIMIT = 10_000
OVERRIDES_TITLE = "Grades a teacher changed in Teams"
SUMMARY_OPEN_LIMIT = 30  # per-class/assignment tables start open when they are this short

_ASSETS = resources.files("gradesync.report") / "assets"
_TEMPLATES = resources.files("gradesync.report") / "templates"


def _asset(name: str) -> str:
    # the HTML parser turns CRLF into LF before hashing, so hash (and write) LF only
    return _ASSETS.joinpath(name).read_text(encoding="utf-8").replace("\r\n", "\n")


def page_assets() -> tuple[str, str]:
    """The report page's inline style and script, exactly as written into report.html."""
    return _asset("report.css"), _asset("report.js")


def csp_hash(text: str) -> str:
    """The CSP source expression for an inline element whose content is exactly ``text``."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(style: str, script: str) -> str:
    return (
        "default-src 'none'; "
        f"style-src {csp_hash(style)}; "
        f"script-src {csp_hash(script)}; "
        "img-src 'none'; font-src 'none'; connect-src 'none'; "
        "base-uri 'none'; form-action 'none'"
    )


def _number(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format_number(value)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,  # every value escaped, always
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["n"] = lambda v: f"{int(v):,}"
    env.filters["num"] = _number
    return env


# ---------------------------------------------------------------------------------------------
# Row sections: plain values per row, for the template
# ---------------------------------------------------------------------------------------------
_TEXT = (
    "source_file",
    "source_sheet",
    "source_column",
    "class_key",
    "class_name",
    "assignment_key",
    "assignment_name",
    "student_key",
    "student_name",
    "points_raw",
    "action",
    "reason",
    "message",
    "note",
    "status",
    "request_id",
    "override_policy",
)


def _named(label: str, key: str) -> tuple[str, str]:
    """(what to show, the key beneath it, "" when the same)."""
    if label and label != key:
        return label, key
    return key or label, ""


def _rows(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The first HTML_ROW_LIMIT rows as dicts of display values (computed per column, not per cell)."""
    rows = rows.head(HTML_ROW_LIMIT)
    t = {name: text_column(rows, name).tolist() for name in _TEXT}
    source_row = [format_number(v) for v in float_column(rows, "source_row").tolist()]
    before = float_column(rows, "before_points").tolist()
    desired = float_column(rows, "desired_points").tolist()
    after = float_column(rows, "after_points").tolist()
    top = float_column(rows, "max_points").tolist()
    last = float_column(rows, "last_written_points").tolist()
    clear, excuse = bool_column(rows, "clear").tolist(), bool_column(rows, "excuse").tolist()
    decrease = bool_column(rows, "decrease").tolist()
    out = []
    for i in range(len(rows)):
        b, d = before[i], desired[i]
        lower = decrease[i] or (not (math.isnan(b) or math.isnan(d)) and d < b)
        if excuse[i]:
            change, new = ("clr", "excuse"), "excused"
        elif clear[i]:
            change, new = ("clr", "✕ clear grade"), "(none)"
        elif lower:
            change, new = ("dec", "▼ decrease"), format_number(d)
        elif math.isnan(b):
            change, new = ("inc", "+ new grade"), format_number(d)
        else:
            change, new = ("inc", "▲ increase"), format_number(d)
        out.append(
            {
                **{name: t[name][i] for name in _TEXT},
                "source_row": source_row[i],
                "cls": _named(t["class_name"][i], t["class_key"][i]),
                "assignment": _named(t["assignment_name"][i], t["assignment_key"][i]),
                "student": _named(t["student_name"][i], t["student_key"][i]),
                "before": format_number(b),
                "new": new,
                "after": format_number(after[i]),
                "max": format_number(top[i]),
                "last_written": format_number(last[i]),
                "decrease": lower,
                "change": change,
            }
        )
    return out


def _section(section_id: str, title: str, rows: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    return {"id": section_id, "title": title, "total": len(rows), "rows": _rows(rows), **extra}


def _first(rows: pd.DataFrame, mask: Any) -> pd.DataFrame:
    """The first ``HTML_ROW_LIMIT`` rows where ``mask`` holds (``rows[mask].head(...)`` without
    copying every matching row of a million-row plan first)."""
    return rows.iloc[np.flatnonzero(np.asarray(mask, dtype=bool))[:HTML_ROW_LIMIT]]


def _masked_section(section_id: str, title: str, rows: pd.DataFrame, mask: Any) -> dict[str, Any]:
    """``_section`` of ``rows[mask]``: every matching row counted, the first ones shown."""
    section = _section(section_id, title, _first(rows, mask))
    section["total"] = int(np.count_nonzero(np.asarray(mask, dtype=bool)))
    return section


def _flat(stats: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A stats dict as (name, value) pairs, nested dicts flattened as ``outer.inner``."""
    pairs: list[tuple[str, Any]] = []
    for k, v in stats.items():
        if isinstance(v, Mapping):
            pairs += _flat(v, f"{prefix}{k}.")
        elif not isinstance(v, list):
            pairs.append((f"{prefix}{k}", v))
    return pairs


def _facts(summary: RunSummary) -> list[str]:
    facts = []
    if summary.graph_requests:
        total = summary.graph_request_total
        detail = ", ".join(
            f"{k} {_number(v)}"
            for k, v in _flat(summary.graph_requests)
            if k not in ("graph_requests", "total")
        )
        facts.append(f"Graph requests: {'' if total is None else total} ({detail})")
    if summary.kind == "reconciliation" or summary.retries or summary.throttled:
        facts.append(f"retries: {summary.retries}, throttled responses: {summary.throttled}")
    if summary.elapsed_seconds is not None:
        facts.append(f"elapsed: {summary.elapsed_seconds:.1f} s")
    return facts


def _groups(summary: RunSummary) -> list[dict[str, Any]]:
    out = []
    for section_id, title, groups, with_assignment in (
        ("per-class", "Counts per class", summary.per_class, False),
        ("per-assignment", "Counts per assignment", summary.per_assignment, True),
    ):
        if groups:
            out.append(
                {
                    "id": section_id,
                    "title": title,
                    "total": len(groups),
                    "rows": groups[:HTML_ROW_LIMIT],
                    "with_assignment": with_assignment,
                    "statuses": [k for k in (*STATUSES, *EXTRA_STATUSES) if k in groups[0]],
                    "open": len(groups) <= SUMMARY_OPEN_LIMIT,
                }
            )
    return out


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------
def render_html(
    rows: pd.DataFrame,
    summary: RunSummary,
    *,
    roster_gaps: list[Mapping[str, Any]] | None = None,
    kind: str = "plan",
) -> str:
    """The whole report page as a string (rows: PLAN_COLUMNS, plus status/after_points/request_id)."""
    gaps = list(roster_gaps or [])
    reconciliation = kind == "reconciliation"
    csv_name = "reconciliation.csv" if reconciliation else "plan.csv"
    action = text_column(rows, "action")
    reason = text_column(rows, "reason")
    writes = action.isin(["update", "create", "excuse"])
    problems = None
    if reconciliation:
        status = text_column(rows, "status")
        problem = writes & status.isin(["conflict", "failed"])
        # conflicts before failures, each in input order
        problems = _section(
            "problems",
            "Conflicts and failures",
            pd.concat([rows[problem & (status == "conflict")], rows[problem & (status == "failed")]]),
        )
    else:
        problem = pd.Series(False, index=rows.index)
    override = reason == "teacher_override"
    changed = writes & ~problem
    grids = class_grids(_first(rows, changed), changed_only=True)
    label = "plan (dry run)" if not reconciliation else "reconciliation"
    if reconciliation and summary.dry_run:
        label += " (dry run)"
    style, script = page_assets()
    return (
        environment()
        .get_template("report.html")
        .render(
            csp=content_security_policy(style, script),
            version=__version__,
            title=f"gradesync {label} — {summary.created_at}",
            summary=summary,
            reconciliation=reconciliation,
            csv_name=csv_name,
            gaps=gaps,
            gap_rows=gaps[:HTML_ROW_LIMIT],
            limit=HTML_ROW_LIMIT,
            facts=_facts(summary),
            groups=_groups(summary),
            actions=ACTIONS,
            problems=problems,
            overrides=_masked_section(
                "teacher-overrides", "Grades a teacher changed in Teams", rows, override
            )
            if override.any()
            else None,
            rejects=_masked_section("rejects", "Rejected rows", rows, action == "reject"),
            changes_total=int(changed.sum()),
            grids=grids,
            page_size=PAGE_SIZE,
            unchanged=_masked_section("unchanged", "Nothing to do", rows, (action == "noop") & ~override),
            other=_masked_section(
                "other", "Rows with an unknown action", rows, ~action.isin([*ACTIONS, *EXTRA_ACTIONS])
            ),
            style=style,
            script=script,
        )
    )
