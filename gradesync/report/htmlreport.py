"""report.html: one self-contained page a registrar can read, safe to open whatever the input held.

Safety, in two layers:

1. **Every value is escaped** with ``html.escape(..., quote=True)`` — text and attributes alike — and
   row data only ever becomes HTML table cells: nothing from the input is put into the ``<script>``
   block, a URL, an event handler or a style.
2. **A strict Content-Security-Policy** in a ``<meta>``: ``default-src 'none'`` (nothing is fetched:
   no CDN, no font, no image, no form target), and the one inline ``<style>`` and the one inline
   ``<script>`` are allowed by their SHA-256, computed at render time. A missed escape still could not
   run a script or load anything.

The page works without JavaScript: the "show only rows that change" switch is a CSS-only checkbox;
the script only adds a find-as-you-type filter and marks ``<html data-js="ready">`` (which the browser
test uses to show that our script ran and nothing else did).

Size: each row section (problems, rejects, changes, unchanged, roster gaps, per assignment) renders
at most ``HTML_ROW_LIMIT`` rows (10,000), with a note that the CSV holds every row — 10k-row plans stay
fully visible in a browser (about 3 MB), a 1.2M-row plan gives a page of ~10 MB instead of hundreds.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from string import Template
from typing import Any

import pandas as pd

from gradesync.report._version import __version__
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

HTML_ROW_LIMIT = 10_000
SUMMARY_OPEN_LIMIT = 30  # per-class/assignment tables start open when they are this short

_ASSETS = resources.files("gradesync.report") / "assets"


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


def esc(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute (numbers formatted plainly)."""
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return html.escape(format_number(value), quote=True)
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return html.escape(str(value), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


# ---------------------------------------------------------------------------------------------
# Row sections
# ---------------------------------------------------------------------------------------------
class _Rows:
    """The columns a section needs, as plain Python lists (cheap to loop over for ≤ 5,000 rows)."""

    def __init__(self, rows: pd.DataFrame) -> None:
        self.frame = rows
        self.n = len(rows)
        t = {
            name: text_column(rows, name).tolist()
            for name in (
                "source_file",
                "source_sheet",
                "source_column",
                "class_key",
                "class_name",
                "class_id",
                "assignment_key",
                "assignment_name",
                "assignment_id",
                "student_key",
                "student_name",
                "user_id",
                "points_raw",
                "action",
                "reason",
                "message",
                "note",
                "status",
                "request_id",
            )
        }
        self.t = t
        self.source_row = [format_number(v) for v in float_column(rows, "source_row").tolist()]
        self.before = float_column(rows, "before_points").tolist()
        self.desired = float_column(rows, "desired_points").tolist()
        self.after = float_column(rows, "after_points").tolist()
        self.max_points = float_column(rows, "max_points").tolist()
        self.clear = bool_column(rows, "clear").tolist()
        self.decrease = bool_column(rows, "decrease").tolist()
        self.last_written = float_column(rows, "last_written_points").tolist()
        self.override_policy = text_column(rows, "override_policy").tolist()
        self.excuse = bool_column(rows, "excuse").tolist()

    def source(self, i: int) -> str:
        t = self.t
        where = esc(t["source_file"][i])
        if t["source_sheet"][i]:
            where += f" [{esc(t['source_sheet'][i])}]"
        text = f"{where}<span class='key'>row {esc(self.source_row[i])}"
        if t["source_column"][i]:
            text += f", column “{esc(t['source_column'][i])}”"
        return text + "</span>"

    def _named(self, i: int, name: str, key: str) -> str:
        label, k = self.t[name][i], self.t[key][i]
        if label and label != k:
            return f"{esc(label)}<span class='key'>{esc(k)}</span>"
        return esc(k or label)

    def cls(self, i: int) -> str:
        return self._named(i, "class_name", "class_key")

    def assignment(self, i: int) -> str:
        return self._named(i, "assignment_name", "assignment_key")

    def student(self, i: int) -> str:
        return self._named(i, "student_name", "student_key")

    def is_decrease(self, i: int) -> bool:
        if self.decrease[i]:
            return True
        b, d = self.before[i], self.desired[i]
        return not (math.isnan(b) or math.isnan(d)) and d < b

    def change(self, i: int) -> str:
        """The direction of a write, in words as well as a symbol and a colour."""
        before = self.before[i]
        if self.excuse[i]:
            return "<span class='clr'>excuse</span>"
        if self.clear[i]:
            return "<span class='clr'>✕ clear grade</span>"
        if self.is_decrease(i):
            return "<span class='dec'>▼ decrease</span>"
        if math.isnan(before):  # no grade yet
            return "<span class='inc'>+ new grade</span>"
        return "<span class='inc'>▲ increase</span>"

    def desired_text(self, i: int) -> str:
        if self.clear[i]:
            return "(none)"
        if self.excuse[i]:
            return "excused"
        return esc(self.desired[i])

    def old_new(self, i: int) -> str:
        before = esc(self.before[i]) or "—"
        top = esc(self.max_points[i])
        of = f" <span class='key'>of {top}</span>" if top else ""
        return f"{before} → {self.desired_text(i) or '—'}{of}"


def _table(
    head: list[tuple[str, str]],
    rows: Iterable[str],
    *,
    body_class: str = "rows",
) -> str:
    ths = "".join(
        f"<th class='{cls}'>{esc(label)}</th>" if cls else f"<th>{esc(label)}</th>" for label, cls in head
    )
    return (
        f"<table><thead><tr>{ths}</tr></thead><tbody class='{body_class}'>\n"
        + "\n".join(rows)
        + "\n</tbody></table>"
    )


def _truncation_note(total: int, csv_name: str) -> str:
    if total <= HTML_ROW_LIMIT:
        return ""
    return (
        f"<p class='truncated'>Showing the first {_n(HTML_ROW_LIMIT)} of {_n(total)} rows; "
        f"{esc(csv_name)} has every row.</p>"
    )


def _section(
    *,
    section_id: str,
    title: str,
    intro: str,
    rows: pd.DataFrame,
    head: list[tuple[str, str]],
    render_row: Callable[[_Rows, int], str],
    csv_name: str,
    nochange: bool,
    collapsed: bool = False,
) -> str:
    total = len(rows)
    cls = " class='nochange'" if nochange else ""
    if total == 0:
        return (
            f"<section id='{section_id}'{cls}><h2>{esc(title)} (0)</h2><p class='muted'>None.</p></section>"
        )
    data = _Rows(rows.head(HTML_ROW_LIMIT))
    body = _table(head, (render_row(data, i) for i in range(data.n)))
    inner = f"<p>{intro}</p>{_truncation_note(total, csv_name)}{body}"
    if collapsed:
        return (
            f"<section id='{section_id}'{cls}><details><summary>{esc(title)} ({_n(total)}) — "
            f"click to show</summary>{inner}</details></section>"
        )
    return f"<section id='{section_id}'{cls}><h2>{esc(title)} ({_n(total)})</h2>{inner}</section>"


_WHO = [("Source", ""), ("Class", ""), ("Assignment", ""), ("Student", "")]


def _who(d: _Rows, i: int) -> str:
    return f"<td>{d.source(i)}</td><td>{d.cls(i)}</td><td>{d.assignment(i)}</td><td>{d.student(i)}</td>"


def _reason(d: _Rows, i: int) -> str:
    return f"<code class='reason'>{esc(d.t['reason'][i])}</code>"


def _reject_row(d: _Rows, i: int) -> str:
    raw = d.t["points_raw"][i]
    return (
        f"<tr>{_who(d, i)}<td class='num'>{esc(raw)}</td><td>{_reason(d, i)}</td>"
        f"<td>{esc(d.t['message'][i])}</td></tr>"
    )


_REJECT_HEAD = [*_WHO, ("Points in file", "num"), ("Reason", ""), ("What to do", "")]


def _plan_change_row(d: _Rows, i: int) -> str:
    tr = "<tr class='decrease'>" if d.is_decrease(i) else "<tr>"
    return (
        f"{tr}{_who(d, i)}<td class='num'>{d.old_new(i)}</td><td>{d.change(i)}</td>"
        f"<td>{esc(d.t['action'][i])}</td><td>{esc(d.t['note'][i])}</td></tr>"
    )


_PLAN_CHANGE_HEAD = [*_WHO, ("Old → new", "num"), ("Change", ""), ("Action", ""), ("Note", "")]


def _status(d: _Rows, i: int) -> str:
    s = d.t["status"][i]
    return f"<span class='st-{esc(s)}'>{esc(s)}</span>"


def _recon_change_row(d: _Rows, i: int) -> str:
    tr = "<tr class='decrease'>" if d.is_decrease(i) else "<tr>"
    return (
        f"{tr}{_who(d, i)}<td class='num'>{d.old_new(i)}</td><td>{d.change(i)}</td>"
        f"<td class='num'>{esc(d.after[i])}</td><td>{_status(d, i)}</td>"
        f"<td><code>{esc(d.t['request_id'][i])}</code></td><td>{esc(d.t['note'][i])}</td></tr>"
    )


_RECON_CHANGE_HEAD = [
    *_WHO,
    ("Old → desired", "num"),
    ("Change", ""),
    ("After", "num"),
    ("Status", ""),
    ("Request id", ""),
    ("Note", ""),
]


def _problem_row(d: _Rows, i: int) -> str:
    return (
        f"<tr><td>{_status(d, i)}</td>{_who(d, i)}<td class='num'>{d.old_new(i)}</td>"
        f"<td class='num'>{esc(d.after[i])}</td><td>{_reason(d, i)}</td><td>{esc(d.t['message'][i])}</td>"
        f"<td><code>{esc(d.t['request_id'][i])}</code></td></tr>"
    )


_PROBLEM_HEAD = [
    ("Status", ""),
    *_WHO,
    ("Old → desired", "num"),
    ("After", "num"),
    ("Reason", ""),
    ("Graph's message", ""),
    ("Request id", ""),
]


def _noop_row(d: _Rows, i: int) -> str:
    points = esc(d.before[i]) or esc(d.t["points_raw"][i])
    extra = f"<td>{esc(d.t['status'][i])}</td>" if "status" in d.frame.columns else ""
    return (
        f"<tr>{_who(d, i)}<td class='num'>{points}</td><td>{_reason(d, i)}</td>"
        f"<td>{esc(d.t['note'][i] or d.t['message'][i])}</td>{extra}</tr>"
    )


def _override_row(d: _Rows, i: int) -> str:
    kept = d.override_policy[i] != "sis-wins"
    what = "kept the teacher's grade" if kept else "overwrote it with the gradebook's value"
    extra = f"<td>{_status(d, i)}</td>" if "status" in d.frame.columns else ""
    return (
        f"<tr>{_who(d, i)}<td class='num'>{esc(d.last_written[i]) or '—'}</td>"
        f"<td class='num'>{esc(d.before[i]) or '—'}</td><td class='num'>{d.desired_text(i) or '—'}</td>"
        f"<td><code>{esc(d.override_policy[i])}</code>: {esc(what)}</td>"
        f"<td>{esc(d.t['message'][i])}</td>{extra}</tr>"
    )


_OVERRIDE_HEAD = [
    *_WHO,
    ("Last written by gradesync", "num"),
    ("In Teams (teacher)", "num"),
    ("Gradebook", "num"),
    ("Policy", ""),
    ("Message", ""),
]


# ---------------------------------------------------------------------------------------------
# Page blocks
# ---------------------------------------------------------------------------------------------
def _inputs_block(summary: RunSummary) -> str:
    if not summary.inputs:
        return "<section id='inputs'><h2>Inputs</h2><p class='muted'>None recorded.</p></section>"
    rows = []
    for item in summary.inputs:
        rows.append(
            f"<tr><td>{esc(item.get('path'))}</td><td>{esc(item.get('sheet'))}</td>"
            f"<td class='num'>{esc(item.get('rows'))}</td><td>{esc(item.get('encoding'))}</td>"
            f"<td><code>{esc(item.get('sha256'))}</code></td></tr>"
        )
    head = [("File", ""), ("Sheet", ""), ("Rows", "num"), ("Encoding", ""), ("SHA-256", "")]
    return f"<section id='inputs'><h2>Inputs</h2>{_table(head, rows, body_class='meta')}</section>"


def _flat(stats: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A stats dict as (name, value) pairs, nested dicts flattened as ``outer.inner``."""
    pairs: list[tuple[str, Any]] = []
    for k, v in stats.items():
        if isinstance(v, Mapping):
            pairs += _flat(v, f"{prefix}{k}.")
        elif not isinstance(v, list):
            pairs.append((f"{prefix}{k}", v))
    return pairs


def _card(label: str, value: int, tone: str = "") -> str:
    cls = f"card {tone}" if tone else "card"
    return f"<div class='{cls}'><b>{esc(_n(value))}</b>{esc(label)}</div>"


def _summary_block(summary: RunSummary, gaps: int) -> str:
    c = summary.counts
    cards = [
        _card("input rows", summary.rows),
        _card("to update" if summary.kind == "plan" else "update", c.get("update", 0)),
        _card("to create" if summary.kind == "plan" else "create", c.get("create", 0)),
        _card("nothing to do", c.get("noop", 0)),
        _card("rejected", c.get("reject", 0), "bad" if c.get("reject") else ""),
        _card("lower a grade", summary.decreases, "warn" if summary.decreases else ""),
    ]
    if summary.clears:
        cards.append(_card("clear a grade", summary.clears, "warn"))
    cards.append(_card("roster students with no row", gaps, "warn" if gaps else ""))
    parts = [f"<div class='cards'>{''.join(cards)}</div>"]
    if summary.status_counts:
        status_cards = [
            _card(s, n, "bad" if s in ("conflict", "failed") and n else "")
            for s, n in summary.status_counts.items()
        ]
        parts.append(f"<h3>Outcome</h3><div class='cards'>{''.join(status_cards)}</div>")
    facts = []
    if summary.graph_requests:
        total = summary.graph_request_total
        detail = ", ".join(
            f"{esc(k)} {esc(v)}"
            for k, v in _flat(summary.graph_requests)
            if k not in ("graph_requests", "total")
        )
        facts.append(f"Graph requests: {esc(total) if total is not None else ''} ({detail})")
    if summary.kind == "reconciliation" or summary.retries or summary.throttled:
        facts.append(f"retries: {esc(summary.retries)}, throttled responses: {esc(summary.throttled)}")
    if summary.elapsed_seconds is not None:
        facts.append(f"elapsed: {esc(f'{summary.elapsed_seconds:.1f}')} s")
    if facts:
        parts.append("<p class='muted'>" + " · ".join(facts) + "</p>")
    if summary.per_reason:
        reasons = [
            f"<tr><td><code class='reason'>{esc(r)}</code></td><td class='num'>{esc(n)}</td></tr>"
            for r, n in summary.per_reason.items()
        ]
        parts.append(
            "<h3>Rows per reason</h3>" + _table([("Reason", ""), ("Rows", "num")], reasons, body_class="meta")
        )
    if summary.strict_refused:
        parts.insert(
            0,
            "<p class='banner'>Refused: --strict is on and some rows are rejected. "
            "No plan was written and nothing will change in Teams.</p>",
        )
    elif summary.has_problems:
        parts.insert(
            0, f"<p class='banner'>{esc(_n(summary.problems))} rows need attention (listed first below).</p>"
        )
    else:
        parts.insert(0, "<p class='banner ok'>Every row is accounted for with no problem.</p>")
    return "<section id='summary'><h2>Summary</h2>" + "".join(parts) + "</section>"


def _checks_block(summary: RunSummary) -> str:
    """The guards' verdict, the plan digest and the read stage's warnings (issues 10 and 12)."""
    parts: list[str] = []
    verdict = summary.guard_verdict
    if verdict:
        items = "".join(f"<li>{esc(v)}</li>" for v in verdict)
        parts.append(
            f"<div class='banner'><b>Apply would be refused by the guards:</b><ul>{items}</ul></div>"
        )
    elif verdict is not None:
        parts.append("<p class='banner ok'>The guards would let this plan be applied.</p>")
    if summary.digest:
        parts.append(f"<p>Plan digest: <code class='digest'>{esc(summary.digest)}</code></p>")
    if summary.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in summary.warnings)
        parts.append(f"<h3>Reader warnings ({_n(len(summary.warnings))})</h3><ul>{items}</ul>")
    if not parts:
        return ""
    return "<section id='checks'><h2>Guards, digest and warnings</h2>" + "".join(parts) + "</section>"


def _group_block(
    section_id: str, title: str, groups: list[dict[str, Any]], with_assignment: bool, csv: str
) -> str:
    total = len(groups)
    if total == 0:
        return ""
    head: list[tuple[str, str]] = [("Class", "")]
    if with_assignment:
        head.append(("Assignment", ""))
    head += [("Rows", "num")] + [(a, "num") for a in ACTIONS] + [("lower a grade", "num")]
    status_keys = [k for k in (*STATUSES, *EXTRA_STATUSES) if k in groups[0]]
    head += [(s, "num") for s in status_keys]
    rows = []
    for g in groups[:HTML_ROW_LIMIT]:
        name = g.get("class_name") or ""
        cls = f"{esc(name)}<span class='key'>{esc(g.get('class'))}</span>" if name else esc(g.get("class"))
        cells = [f"<td>{cls}</td>"]
        if with_assignment:
            aname = g.get("assignment_name") or ""
            akey = g.get("assignment")
            cells.append(
                f"<td>{esc(aname)}<span class='key'>{esc(akey)}</span></td>"
                if aname
                else f"<td>{esc(akey)}</td>"
            )
        cells.append(f"<td class='num'>{esc(g['rows'])}</td>")
        cells += [f"<td class='num'>{esc(g.get(a, 0))}</td>" for a in ACTIONS]
        dec = g.get("decrease", 0)
        cells.append(f"<td class='num'>{'<span class=dec>▼ ' + esc(dec) + '</span>' if dec else '0'}</td>")
        cells += [f"<td class='num'>{esc(g.get(s, 0))}</td>" for s in status_keys]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = ""
    if total > HTML_ROW_LIMIT:
        note = (
            f"<p class='truncated'>Showing {_n(HTML_ROW_LIMIT)} of {_n(total)}; "
            "summary.json has them all.</p>"
        )
    is_open = " open" if total <= SUMMARY_OPEN_LIMIT else ""
    return (
        f"<section id='{section_id}'><details{is_open}><summary>{esc(title)} ({_n(total)})</summary>"
        f"{note}{_table(head, rows, body_class='meta')}</details></section>"
    )


def _gaps_block(gaps: list[Mapping[str, Any]]) -> str:
    total = len(gaps)
    intro = (
        "Students on the class roster who have <b>no row in the input</b> for an assignment the input "
        "touches. gradesync leaves their grades alone; check that the export did not miss them."
    )
    if total == 0:
        return (
            "<section id='roster-gaps'><h2>Students with no row in the input (0)</h2>"
            "<p class='muted'>None.</p></section>"
        )
    rows = []
    for g in gaps[:HTML_ROW_LIMIT]:
        cname, aname = g.get("class_name") or "", g.get("assignment_name") or ""
        rows.append(
            f"<tr><td>{esc(cname or g.get('class_id'))}<span class='key'>{esc(g.get('class_id'))}</span></td>"
            f"<td>{esc(aname or g.get('assignment_id'))}"
            f"<span class='key'>{esc(g.get('assignment_id'))}</span></td>"
            f"<td>{esc(g.get('student_name'))}</td>"
            f"<td>{esc(g.get('sis_id')) or '<code>' + esc(g.get('user_id')) + '</code>'}</td>"
            f"<td class='num'>{esc(g.get('current_points'))}</td></tr>"
        )
    head = [("Class", ""), ("Assignment", ""), ("Student", ""), ("SIS id", ""), ("Current points", "num")]
    note = ""
    if total > HTML_ROW_LIMIT:
        note = f"<p class='truncated'>Showing the first {_n(HTML_ROW_LIMIT)} of {_n(total)}.</p>"
    return (
        f"<section id='roster-gaps'><h2>Students with no row in the input ({_n(total)})</h2>"
        f"<p>{intro}</p>{note}{_table(head, rows)}</section>"
    )


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
    blocks = [
        _inputs_block(summary),
        _summary_block(summary, len(gaps)),
        _checks_block(summary),
        _group_block("per-class", "Counts per class", summary.per_class, False, csv_name),
        _group_block("per-assignment", "Counts per assignment", summary.per_assignment, True, csv_name),
    ]
    writes = action.isin(["update", "create", "excuse"])
    if reconciliation:
        status = text_column(rows, "status")
        problem = writes & status.isin(["conflict", "failed"])
        # conflicts before failures, each in input order
        problem_rows = pd.concat(
            [rows[problem & (status == "conflict")], rows[problem & (status == "failed")]]
        )
        blocks.append(
            _section(
                section_id="problems",
                title="Conflicts and failures",
                intro=(
                    "Rows that were <b>not written</b>: a <b>conflict</b> means the grade changed in Teams "
                    "after the plan was made (it was left alone); a <b>failed</b> row carries Graph's "
                    "message and request id, which Microsoft support can trace."
                ),
                rows=problem_rows,
                head=_PROBLEM_HEAD,
                render_row=_problem_row,
                csv_name=csv_name,
                nochange=True,
            )
        )
    else:
        problem = pd.Series(False, index=rows.index)
    override = text_column(rows, "reason") == "teacher_override"
    if override.any():
        override_head = [*_OVERRIDE_HEAD, *([("Status", "")] if reconciliation else [])]
        blocks.append(
            _section(
                section_id="teacher-overrides",
                title="Grades a teacher changed in Teams",
                intro=(
                    "A teacher changed these grades in Teams after gradesync last wrote them, and the "
                    "gradebook disagrees. <b>report</b> and <b>teacher-wins</b> keep the teacher's grade; "
                    "<b>sis-wins</b> overwrites it ([policy] teacher_override). Settle each one in the "
                    "gradebook or in Teams."
                ),
                rows=rows[override],
                head=override_head,
                render_row=_override_row,
                csv_name=csv_name,
                nochange=True,
            )
        )
    blocks.append(
        _section(
            section_id="rejects",
            title="Rejected rows",
            intro=(
                "These rows were refused and change nothing in Teams. "
                "Fix them in the gradebook export and run again."
            ),
            rows=rows[action == "reject"],
            head=_REJECT_HEAD,
            render_row=_reject_row,
            csv_name=csv_name,
            nochange=True,
        )
    )
    change_intro = (
        "Grades this plan will write, old value → new value. "
        "Decreases are marked <span class='dec'>▼ decrease</span>."
        if not reconciliation
        else "Grades that were to be written, with the value read back from Teams afterwards. "
        "Decreases are marked <span class='dec'>▼ decrease</span>."
    )
    blocks.append(
        _section(
            section_id="changes",
            title="Changes" if not reconciliation else "Changes written",
            intro=change_intro,
            rows=rows[writes & ~problem],
            head=_RECON_CHANGE_HEAD if reconciliation else _PLAN_CHANGE_HEAD,
            render_row=_recon_change_row if reconciliation else _plan_change_row,
            csv_name=csv_name,
            nochange=False,
        )
    )
    noop_head = [*_WHO, ("Points", "num"), ("Reason", ""), ("Note", "")]
    if reconciliation:
        noop_head.append(("Status", ""))
    blocks.append(
        _section(
            section_id="unchanged",
            title="Nothing to do",
            intro="Rows already at the desired value, blank cells (no change) and identical duplicates.",
            rows=rows[(action == "noop") & (text_column(rows, "reason") != "teacher_override")],
            head=noop_head,
            render_row=_noop_row,
            csv_name=csv_name,
            nochange=True,
            collapsed=True,
        )
    )
    other = ~action.isin([*ACTIONS, *EXTRA_ACTIONS])
    if other.any():  # defensive: a row whose action is unknown is still shown, never dropped
        blocks.append(
            _section(
                section_id="other",
                title="Rows with an unknown action",
                intro="These rows carry an action gradesync does not know; please report this.",
                rows=rows[other],
                head=_REJECT_HEAD,
                render_row=_reject_row,
                csv_name=csv_name,
                nochange=True,
            )
        )
    blocks.append(_gaps_block(gaps))

    label = "plan (dry run)" if not reconciliation else "reconciliation"
    if reconciliation and summary.dry_run:
        label += " (dry run)"
    title = f"gradesync {label} — {summary.created_at}"
    lead = f"Against {esc(summary.graph_base_url)} · {esc(summary.headline())}. " + (
        "Nothing has been written to Teams yet."
        if not reconciliation or summary.dry_run
        else "Written to Teams and read back."
    )
    style, script = _asset("report.css"), _asset("report.js")
    return Template(_asset("report.html")).substitute(
        csp=esc(content_security_policy(style, script)),
        version=esc(__version__),
        title=esc(title),
        lead=lead,
        style=style,
        script=script,
        body="\n".join(b for b in blocks if b),
        footer=esc(f"gradesync {__version__}. The CSV next to this file has every row."),
    )
