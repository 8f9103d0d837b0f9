"""report.html: self-contained, every value escaped, CSP-locked, rejects before changes, decreases marked.

The page is parsed with the standard library's ``html.parser`` — the structure a browser builds — and
the last test loads it in headless Chromium (skipped when /usr/bin/chromium is missing).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from reportrows import (
    GAPS,
    HOSTILE_ATTR,
    HOSTILE_IMG,
    HOSTILE_SCRIPT,
    HOSTILE_SVG,
    INPUTS,
    frame,
    reconciliation_rows,
    row,
    sample_plan_rows,
)

from gradesync.report import RunSummary, htmlreport, render_html, write_reports

WHEN = "2024-09-02T08:00:00Z"


class Page(HTMLParser):
    """Collects what the safety checks need: elements, attributes, script/style text, visible text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.text_parts: list[str] = []
        self.sections: list[str] = []
        self.title = ""
        self._in: str | None = None
        self._buf: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "section":
            self.sections.append(a.get("id") or "")
        if tag in ("script", "style", "title"):
            self._in, self._buf = tag, []

    def handle_endtag(self, tag):
        if tag == self._in:
            content = "".join(self._buf)
            {"script": self.scripts, "style": self.styles}.get(tag, []).append(content)
            if tag == "title":
                self.title = content
            self._in = None

    def handle_data(self, data):
        if self._in:
            self._buf.append(data)
        else:
            self.text_parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def meta(self, http_equiv: str) -> str:
        for tag, a in self.tags:
            if tag == "meta" and (a.get("http-equiv") or "").lower() == http_equiv.lower():
                return a.get("content") or ""
        return ""


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def plan_page(rows: pd.DataFrame | None = None, **kw) -> tuple[str, Page]:
    rows = sample_plan_rows() if rows is None else rows
    summary = RunSummary.from_rows(
        rows, kind="plan", inputs=INPUTS, graph_base_url="http://127.0.0.1:9/v1.0", created_at=WHEN, **kw
    )
    text = render_html(rows, summary, roster_gaps=GAPS, kind="plan")
    return text, Page(text)


def recon_page() -> tuple[str, Page]:
    rows = reconciliation_rows()
    summary = RunSummary.from_rows(
        rows,
        kind="reconciliation",
        inputs=INPUTS,
        graph_base_url="http://127.0.0.1:9/v1.0",
        created_at=WHEN,
        graph_stats={"get": 3, "batch": 2},
        retries=1,
        throttled=1,
        elapsed_seconds=3.0,
    )
    text = render_html(rows, summary, roster_gaps=GAPS, kind="reconciliation")
    return text, Page(text)


# --- escaping ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [plan_page, recon_page])
def test_hostile_values_stay_text(make):
    text, page = make()
    assert len(page.scripts) == 1, "the only <script> element is the report's own"
    assert "document.title" not in page.scripts[0]
    assert [t for t, _ in page.tags].count("img") == 0
    assert [t for t, _ in page.tags].count("svg") == 0
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), f"event handler attribute on <{tag}>: {name}={value!r}"
            assert "PWNED" not in (value or ""), f"data leaked into an attribute of <{tag}>"
    for hostile in (HOSTILE_SCRIPT, HOSTILE_SVG, HOSTILE_ATTR, "<b>Gap</b> Student"):
        assert hostile in page.text, f"{hostile!r} is not shown as text"
    assert HOSTILE_IMG in page.text  # inside the reject message
    assert "<script>document" not in text and "<b>Gap" not in text
    # Jinja2's autoescape (markupsafe) writes ' as &#39;
    assert "&lt;script&gt;document.title=&#39;PWNED-SCRIPT&#39;&lt;/script&gt;" in text


def test_reconciliation_escapes_graph_messages_and_request_ids():
    text, page = recon_page()
    assert "Graph 403 Forbidden: <i>insufficient privileges</i>" in page.text
    assert "req-<b>7</b>" in page.text
    assert "<i>insufficient" not in text
    assert "req-<b>7" not in text


def test_escaping_of_every_plan_column():
    hostile = "<x-evil>&\"'"
    cols = dict.fromkeys(
        (
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
            "message",
            "note",
        ),
        hostile,
    )
    rows = frame([row(**cols), row(**cols, action="reject", reason="<r>"), row(**cols, action="noop")])
    text, page = plan_page(rows)
    assert "<x-evil>" not in text
    assert "x-evil" not in {t for t, _ in page.tags}
    assert page.text.count(hostile) >= 3 * 8


# --- self-contained and CSP --------------------------------------------------------------------------
@pytest.mark.parametrize("make", [plan_page, recon_page])
def test_self_contained_and_csp_hashes_match(make):
    _text, page = make()
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "formaction", "srcset", "poster", "data"):
            value = attrs.get(name)
            assert value is None or not re.match(r"\s*(https?:|//|javascript:)", value, re.I), (tag, name)
        assert tag not in ("link", "iframe", "object", "embed", "base", "form", "img")
    assert "@import" not in page.styles[0] and "url(" not in page.styles[0]
    csp = page.meta("Content-Security-Policy")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == _sha(page.scripts[0])
    assert directives["style-src"] == _sha(page.styles[0])
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'none'"
    # the CSP meta comes before the one style and the one script it governs
    names = [t for t, _ in page.tags]
    assert names.index("meta") < names.index("style") < names.index("script")
    assert len(page.styles) == 1
    assert not any("style" in attrs for _, attrs in page.tags), "inline style attributes would be blocked"


# --- content and order -------------------------------------------------------------------------------
def test_plan_page_title_inputs_sections_in_order():
    _, page = plan_page(dry_run=True)
    assert page.title == f"gradesync plan (dry run) — {WHEN}"
    assert page.sections == [
        "inputs",
        "summary",
        "per-class",
        "per-assignment",
        "rejects",
        "changes",
        "unchanged",
        "roster-gaps",
    ]
    assert "grades.csv" in page.text and "ab" * 32 in page.text
    assert "Rejected rows (2)" in page.text and "Changes (4)" in page.text
    assert "Nothing to do (1)" in page.text
    assert "Students with no row in the input (1)" in page.text
    assert "unknown_student" in page.text and "no student" in page.text


def _rows_of(text: str, section_id: str) -> list[str]:
    start = text.index(f"<section id='{section_id}'")
    end = text.index("</section>", start)
    return re.findall(r"<tr[ >].*?</tr>", text[start:end], re.S)[1:]  # skip the header row


def _cells(text: str, section_id: str = "changes") -> list[str]:
    """The grid cells of a section (changes are a grid per class, students × assignments)."""
    start = text.index(f"<section id='{section_id}'")
    end = text.index("</section>", start)
    return re.findall(r'<td class="cell [^"]*".*?</td>', text[start:end], re.S)


def _plain(cell: str) -> str:
    return re.sub(r"<[^>]+>", "", cell)


def test_changes_show_old_to_new_and_mark_decreases_in_words():
    text, _ = plan_page()
    cells = [c for c in _cells(text) if "cell none" not in c]
    assert len(cells) == 4  # Math 101: Ana, Ben, the new grade; Art: the clear
    ana, ben, new, clear = cells
    assert 'class="cell increase"' in ana and "70 → 85" in _plain(ana) and "decrease" not in ana
    assert 'class="cell decrease"' in ben and "90 → 60.5 ▼ decrease" in _plain(ben)
    assert 'class="cell new"' in new and "— → 77.25" in _plain(new)
    assert 'class="cell clear"' in clear and "40 → (none) ✕ clear" in _plain(clear)
    assert "max 100" in text  # the maximum under each assignment's name
    assert "Changes (4)" in text


def test_decrease_is_marked_even_without_the_flag():
    rows = frame([row(before_points=90.0, desired_points=80.0, decrease=False)])
    text, _ = plan_page(rows)
    assert "▼ decrease" in _cells(text)[0]


def test_noops_are_collapsed_and_hidden_by_the_switch():
    text, page = plan_page()
    unchanged = text[text.index("<section id='unchanged'") :]
    assert unchanged.startswith("<section id='unchanged' class='nochange'><details><summary>")
    assert "<section id='rejects' class='nochange'>" in text
    assert "<section id='changes'>" in text  # the switch never hides changes
    # the switch is a real checkbox that works without JavaScript (CSS :checked)
    assert ("input", {"type": "checkbox", "id": "only-changes", "class": "switch"}) in page.tags
    assert ".switch:checked ~ main .nochange { display: none; }" in page.styles[0]
    assert "Show only rows that change" in page.text


def test_reconciliation_puts_conflicts_and_failures_first_with_request_ids():
    text, page = recon_page()
    assert page.title == f"gradesync reconciliation — {WHEN}"
    assert page.sections.index("problems") < page.sections.index("rejects") < page.sections.index("changes")
    problems = _rows_of(text, "problems")
    assert len(problems) == 2
    assert "conflict" in problems[0] and "r-2" in problems[0]
    assert "failed" in problems[1] and "req-&lt;b&gt;7&lt;/b&gt;" in problems[1]
    changes = [c for c in _cells(text) if "cell none" not in c]
    assert len(changes) == 2 and all("r-" in c for c in changes)  # the request id in the cell's title
    assert "created" in changes[1] and "77.25" in changes[1]
    assert "retries: 1, throttled responses: 1" in page.text and "Graph requests: 5" in page.text


def test_large_plans_are_capped_per_section_with_a_note(monkeypatch):
    monkeypatch.setattr(htmlreport, "HTML_ROW_LIMIT", 25)
    rows = frame([row(student_key=f"S{i:03d}", user_id=f"u-{i}") for i in range(40)])
    text, page = plan_page(rows)
    assert len(_cells(text)) == 25
    assert "Showing the first 25 of 40 rows; plan.csv has every row." in page.text


def test_ten_thousand_rows_render_completely(tmp_path):
    rows = frame(
        [
            row(
                student_key=f"S{i:05d}",
                user_id=f"u-{i}",
                class_key=f"C{i % 40}",
                class_id=f"c-{i % 40}",
                desired_points=float(i % 100),
            )
            for i in range(10_000)
        ]
    )
    summary = RunSummary.from_rows(rows, kind="plan", created_at=WHEN)
    paths = write_reports(rows, summary, tmp_path, kind="plan")
    text = paths["report.html"].read_text(encoding="utf-8")
    assert len(_cells(text)) == 10_000  # 40 class grids, every student on one of their pages
    assert text.count('<tbody class="rows page"') == 40 * 5  # 250 students a class, 50 a page
    assert "S09999" in text and "Showing the first" not in text


# --- a real browser --------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def _chromium_dom(page: Path, profile: Path) -> str:
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=2000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("kind", ["plan", "reconciliation"])
@pytest.mark.parametrize("csp", [True, False], ids=["with-csp", "escaping-alone"])
def test_headless_chromium_runs_our_script_and_nothing_else(tmp_path, kind, csp):
    """Hostile names would set document.title if they ran. With the CSP removed, escaping alone must
    hold; with it, our own script must still run (its hash matches) — ``data-js="ready"``."""
    rows = sample_plan_rows() if kind == "plan" else reconciliation_rows()
    summary = RunSummary.from_rows(rows, kind=kind, created_at=WHEN, inputs=INPUTS)
    page = write_reports(rows, summary, tmp_path / "out", roster_gaps=GAPS, kind=kind)["report.html"]
    if not csp:
        text = page.read_text(encoding="utf-8")
        stripped = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
        assert stripped != text
        page.write_text(stripped, encoding="utf-8")
    dom = _chromium_dom(page, tmp_path / "profile")
    assert '<html lang="en" data-js="ready">' in dom, "the report's own script did not run (CSP hash?)"
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title is not None and "PWNED" not in title.group(1)
    assert title.group(1).startswith("gradesync ")
    assert "&lt;script&gt;document.title=" in dom  # the hostile name is still there, as text
    assert "<img" not in dom and "<svg" not in dom
