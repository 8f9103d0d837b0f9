"""plan.csv / reconciliation.csv / summary.json and RunSummary: contents, order, formatting, safety."""

from __future__ import annotations

import csv
import io
import json
import math

import pandas as pd
import pytest
from reportrows import GAPS, INPUTS, frame, reconciliation_rows, row, sample_plan_rows
from rich.console import Console

from gradesync.report import (
    PLAN_CSV_COLUMNS,
    RECONCILIATION_CSV_COLUMNS,
    RunSummary,
    format_number,
    neutralise,
    render_table,
    write_reports,
)

URL = "http://127.0.0.1:9/v1.0"
WHEN = "2024-09-02T08:00:00Z"


def plan_summary(rows: pd.DataFrame, **kw) -> RunSummary:
    return RunSummary.from_rows(
        rows, kind="plan", inputs=INPUTS, graph_base_url=URL, created_at=WHEN, dry_run=True, **kw
    )


def recon_summary(rows: pd.DataFrame, **kw) -> RunSummary:
    return RunSummary.from_rows(
        rows, kind="reconciliation", inputs=INPUTS, graph_base_url=URL, created_at=WHEN, **kw
    )


def read_csv(path) -> tuple[list[str], list[dict[str, str]]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM, so Excel detects the encoding"
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""))
    records = list(reader)
    return list(reader.fieldnames or []), records


# --- plan.csv --------------------------------------------------------------------------------------
def test_plan_csv_has_every_row_in_order_with_exact_header(tmp_path):
    rows = sample_plan_rows()
    paths = write_reports(rows, plan_summary(rows), tmp_path, roster_gaps=GAPS, kind="plan")
    assert set(paths) == {"plan.csv", "summary.json", "report.html"}
    header, records = read_csv(paths["plan.csv"])
    assert header[:17] == [
        "source_file",
        "source_sheet",
        "source_row",
        "source_column",
        "class",
        "assignment",
        "student",
        "class_id",
        "assignment_id",
        "user_id",
        "submission_id",
        "before_points",
        "desired_points",
        "action",
        "reason",
        "message",
        "note",
    ]
    assert header == list(PLAN_CSV_COLUMNS)
    assert header[17:20] == ["class_name", "assignment_name", "student_name"]
    assert [r["source_row"] for r in records] == [str(n) for n in rows["source_row"]]
    assert [r["action"] for r in records] == list(rows["action"])
    assert [r["reason"] for r in records] == list(rows["reason"])
    first = records[0]
    assert (first["class"], first["assignment"], first["student"]) == ("MATH-101", "Quiz 1", "S001")
    points = (first["before_points"], first["desired_points"], first["student_name"])
    assert points == ("70", "85", "Ana Lopez")
    assert records[1]["decrease"] == "yes" and records[0]["decrease"] == "no"
    assert records[6]["clear"] == "yes" and records[6]["desired_points"] == ""


def test_reconciliation_csv_has_status_after_and_request_id(tmp_path):
    rows = reconciliation_rows()
    paths = write_reports(rows, recon_summary(rows), tmp_path, roster_gaps=GAPS, kind="reconciliation")
    assert set(paths) == {"reconciliation.csv", "summary.json", "report.html"}
    header, records = read_csv(paths["reconciliation.csv"])
    assert header[:13] == [
        "source_file",
        "source_row",
        "class",
        "assignment",
        "student",
        "before_points",
        "desired_points",
        "after_points",
        "action",
        "status",
        "reason",
        "message",
        "request_id",
    ]
    assert header == list(RECONCILIATION_CSV_COLUMNS)
    assert len(records) == len(rows)
    assert [r["status"] for r in records] == list(rows["status"])
    assert [r["after_points"] for r in records] == ["85", "90", "77.25", "50", "", "", ""]
    failed = records[6]
    assert failed["request_id"] == "req-<b>7</b>"
    assert failed["message"].startswith("Graph 403 Forbidden")


def test_csv_tolerates_missing_reconciliation_columns(tmp_path):
    rows = sample_plan_rows()  # no status / after_points / request_id yet
    paths = write_reports(rows, recon_summary(rows), tmp_path, kind="reconciliation")
    _, records = read_csv(paths["reconciliation.csv"])
    assert len(records) == len(rows)
    assert {r["status"] for r in records} == {""}


# --- numbers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (85.0, "85"),
        (85.5, "85.5"),
        (85.0000000001, "85"),
        (0.1 + 0.2, "0.3"),
        (-5.0, "-5"),
        (-0.0, "0"),
        (1e-7, "0"),
        (9_999_998.25, "9999998.25"),
        (1234567.0, "1234567"),
        (math.nan, ""),
        (None, ""),
        (3, "3"),
    ],
)
def test_format_number(value, text):
    assert format_number(value) == text


def test_csv_numbers_are_plain(tmp_path):
    rows = frame(
        [
            row(before_points=85.0000000001, desired_points=0.1 + 0.2),
            row(before_points=math.nan, desired_points=100.0, action="create"),
            row(before_points=-5.0, desired_points=1234567.5),
        ]
    )
    paths = write_reports(rows, plan_summary(rows), tmp_path, kind="plan")
    _, records = read_csv(paths["plan.csv"])
    assert [(r["before_points"], r["desired_points"]) for r in records] == [
        ("85", "0.3"),
        ("", "100"),
        ("-5", "1234567.5"),
    ]
    assert [r["source_row"] for r in records] == ["2", "3", "4"]


# --- formula injection -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("-2+3", "'-2+3"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-5", "-5"),
        ("+2.5", "+2.5"),
        ("-1,5", "-1,5"),
        ("Ana = Lopez", "Ana = Lopez"),
        ("", ""),
        ("O'Brien", "O'Brien"),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected


def test_csv_neutralises_formulas_in_every_text_column(tmp_path):
    rows = frame(
        [
            row(
                source_file="=cmd.csv",
                class_key="@SUM(1+1)",
                assignment_key="-2+3",
                student_key='=HYPERLINK("http://x","y")',
                student_name="+cmd|' /C calc'!A0",
                points_raw="=1+1",
                message="=evil()",
                note="\tx",
                desired_points=-3.0,
                before_points=-5.0,
            ),
            row(student_key="-5", class_key="-12.5"),
        ]
    )
    paths = write_reports(rows, plan_summary(rows), tmp_path, kind="plan")
    _, records = read_csv(paths["plan.csv"])
    bad = records[0]
    assert bad["source_file"] == "'=cmd.csv"
    assert bad["class"] == "'@SUM(1+1)"
    assert bad["assignment"] == "'-2+3"
    assert bad["student"] == '\'=HYPERLINK("http://x","y")'
    assert bad["student_name"] == "'+cmd|' /C calc'!A0"
    assert bad["points_raw"] == "'=1+1"
    assert bad["message"] == "'=evil()"
    assert bad["note"] == "'\tx"
    # a negative number stays a number, in number columns and in text columns alike
    assert (bad["before_points"], bad["desired_points"]) == ("-5", "-3")
    assert (records[1]["student"], records[1]["class"]) == ("-5", "-12.5")
    # and no cell of the file starts with a formula character unless it is a plain number
    for rec in records:
        for name, cell in rec.items():
            if cell[:1] in ("=", "+", "@", "\t", "\r"):
                pytest.fail(f"{name} starts a formula: {cell!r}")
            if cell.startswith("-"):
                float(cell.replace(",", "."))


# --- RunSummary and summary.json ------------------------------------------------------------------
def test_summary_counts_plan():
    rows = sample_plan_rows()
    s = plan_summary(rows, graph_stats={"get": 7, "batch": 2, "access_token": "eyJ-secret"})
    assert s.rows == 7
    assert s.counts == {"update": 3, "create": 1, "noop": 1, "reject": 2}
    assert s.status_counts == {}
    assert s.decreases == 2 and s.clears == 1
    assert s.per_reason == {"blank_points": 1, "unknown_student": 1, "invalid_points": 1}
    assert s.has_problems and s.attention == 2
    assert s.graph_requests == {"get": 7, "batch": 2}  # a secret-looking key never reaches the report
    assert s.graph_request_total == 9
    math_class = next(c for c in s.per_class if c["class"] == "MATH-101")
    assert math_class == {
        "class": "MATH-101",
        "class_id": "c-math",
        "class_name": "Math 101",
        "rows": 6,
        "update": 2,
        "create": 1,
        "noop": 1,
        "reject": 2,
        "decrease": 1,
    }
    assert [(a["class"], a["assignment"], a["rows"]) for a in s.per_assignment] == [
        ("MATH-101", "Quiz 1", 6),
        ("ART-2", "-2+3", 1),
    ]


def test_summary_counts_reconciliation():
    rows = reconciliation_rows()
    s = recon_summary(rows, elapsed_seconds=12.3456, retries=3, throttled=2)
    assert s.status_counts == {
        "unchanged": 1,
        "updated": 1,
        "created": 1,
        "conflict": 1,
        "failed": 1,
        "rejected": 2,
    }
    assert s.attention == 4 and s.has_problems
    assert (s.retries, s.throttled, s.elapsed_seconds) == (3, 2, 12.346)
    art = next(c for c in s.per_class if c["class"] == "ART-2")
    assert (art["failed"], art["updated"]) == (1, 0)


def test_clean_run_has_no_problems_and_strict_refusal_does():
    rows = frame([row(), row(student_key="S2", action="noop", desired_points=70.0)])
    assert not plan_summary(rows).has_problems
    assert plan_summary(rows, strict_refused=True).has_problems


def test_summary_json_content(tmp_path):
    rows = sample_plan_rows()
    s = plan_summary(rows, graph_stats={"get": 4, "batch": 1}, elapsed_seconds=1.5)
    paths = write_reports(rows, s, tmp_path, roster_gaps=GAPS, kind="plan")
    text = paths["summary.json"].read_text(encoding="utf-8")
    data = json.loads(text)
    assert data == {**s.asdict(), "roster_gaps": 1}
    assert data["kind"] == "plan" and data["dry_run"] is True and data["strict_refused"] is False
    assert data["counts"] == {"update": 3, "create": 1, "noop": 1, "reject": 2}
    assert data["inputs"] == [
        {"path": "grades.csv", "sha256": "ab" * 32, "rows": 7, "encoding": "utf-8", "sheet": None}
    ]
    assert data["graph_base_url"] == URL and data["created_at"] == WHEN
    assert data["graph_requests"] == {"get": 4, "batch": 1}
    assert data["elapsed_seconds"] == 1.5 and data["retries"] == 0 and data["throttled"] == 0
    assert "NaN" not in text
    assert len(data["per_class"]) == 2 and len(data["per_assignment"]) == 2


def test_str_summary_is_a_few_readable_lines():
    text = str(recon_summary(reconciliation_rows(), graph_stats={"get": 3, "batch": 2}, elapsed_seconds=2.0))
    lines = text.splitlines()
    assert 3 <= len(lines) <= 10
    assert lines[0] == f"Reconciliation at {WHEN} against {URL}"
    assert "7 rows: 3 update, 1 create, 1 noop, 2 reject (2 lower a grade)" in lines[1]
    assert "outcome: 1 unchanged, 1 updated, 1 created, 1 conflict, 1 failed, 2 rejected" in text
    assert "5 Graph requests" in text and "2.0 s" in text
    assert "4 rows need attention" in text


def test_render_table_prints_counts_and_reasons():
    console = Console(file=io.StringIO(), width=100, color_system=None)
    render_table(recon_summary(reconciliation_rows(), retries=1), console)
    out = console.file.getvalue()
    for word in ("update", "create", "noop", "reject", "conflict", "failed", "unknown_student", "retries: 1"):
        assert word in out


def test_empty_rows(tmp_path):
    rows = frame([row()]).iloc[0:0]
    s = plan_summary(rows)
    assert s.rows == 0 and not s.has_problems and s.per_class == []
    paths = write_reports(rows, s, tmp_path / "new" / "dir", kind="plan")
    header, records = read_csv(paths["plan.csv"])
    assert header == list(PLAN_CSV_COLUMNS) and records == []
    assert "Changes (0)" in paths["report.html"].read_text(encoding="utf-8")


def test_unknown_kind_is_refused(tmp_path):
    rows = sample_plan_rows()
    with pytest.raises(ValueError, match="kind"):
        RunSummary.from_rows(rows, kind="apply")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        write_reports(rows, plan_summary(rows), tmp_path, kind="apply")


def test_per_class_takes_the_first_known_name_and_id():
    rows = frame(
        [
            row(class_key="K1", class_id=None, class_name=None, action="reject", reason="unknown_student"),
            row(class_key="K1", class_id="c-1", class_name="Physics"),
            row(class_key="K2", class_id=None, class_name=None, action="reject", reason="unknown_class"),
        ]
    )
    per_class = plan_summary(rows).per_class
    assert [(c["class"], c["class_id"], c["class_name"], c["rows"]) for c in per_class] == [
        ("K1", "c-1", "Physics", 2),
        ("K2", "", "", 1),
    ]


def test_graph_stats_of_the_client_shape_and_dry_run_pending():
    rows = reconciliation_rows()
    rows["status"] = ["pending", "pending", "pending", "unchanged", "rejected", "rejected", "pending"]
    stats = {
        "http_requests": 9,
        "batches": 2,
        "reads": 6,
        "writes": 2,
        "retries": 4,
        "throttled": 1,
        "graph_requests": 8,
        "wait_seconds": 0.5,
        "by_method": {"GET": 6, "POST": 2},
    }
    s = recon_summary(rows, graph_stats=stats, dry_run=True)
    assert s.graph_request_total == 8
    assert s.graph_requests["by_method"] == {"GET": 6, "POST": 2}
    assert s.status_counts["pending"] == 4 and s.status_counts["updated"] == 0
    assert [c["pending"] for c in s.per_class] == [3, 1]
    assert "(dry run)" in str(s).splitlines()[0] and "8 Graph requests" in str(s)
    assert s.attention == 2  # the two rejects remain problems; pending is not one
    # without a total, per-kind counters are summed, but retries/throttled never count as requests
    assert recon_summary(rows, graph_stats={"get": 3, "batch": 1, "retries": 7}).graph_request_total == 4


AWKWARD = ["plain", "", None, 'q"uote', "a,b", "line\nbreak", "cr\rx", "=1+2", "-5", "@x", "ünï “x”", "\ttab"]


@pytest.mark.parametrize("chunk,sample", [(50_000, 1_000), (2, 1)])  # (2, 1): every column value by value
def test_csv_cells_read_back_as_the_csv_module_reads_them(tmp_path, monkeypatch, chunk, sample):
    """plan.csv is written column by column, a chunk at a time (ids as they are when nothing needs
    quoting or neutralising): read back by the csv module, every cell is the clean, neutralised text."""
    from gradesync.report import tables

    monkeypatch.setattr(tables, "CHUNK_ROWS", chunk)
    monkeypatch.setattr(tables, "SAMPLE_ROWS", sample)
    texts = AWKWARD * 2
    rows = frame([row(student_key=t, submission_id=t, note=t, user_id=f"u-{i}") for i, t in enumerate(texts)])
    paths = write_reports(rows, plan_summary(rows), tmp_path, kind="plan")
    _, records = read_csv(paths["plan.csv"])
    shown = ["" if t is None else neutralise(t) for t in texts]
    assert [r["student"] for r in records] == shown
    assert [r["submission_id"] for r in records] == shown and [r["note"] for r in records] == shown
    assert [r["user_id"] for r in records] == [f"u-{i}" for i in range(len(texts))]
    assert [r["source_row"] for r in records] == [str(i + 2) for i in range(len(texts))]
