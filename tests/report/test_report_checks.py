"""Reader warnings, the guards' verdict and the plan digest reach summary.json and report.html."""

from __future__ import annotations

import json

from reportrows import GAPS, frame, row

from gradesync.report import RunSummary, write_reports


def test_warnings_verdict_and_digest_in_summary_and_page(tmp_path):
    rows = frame([row(max_points=100.0)])
    summary = RunSummary.from_rows(
        rows,
        kind="plan",
        created_at="2024-09-02T08:00:00Z",
        warnings=["grades.csv: title row skipped <b>"],
        guard_verdict=["plan changes 30 of 40 grades (75%), above --max-changes 50%"],
        digest="0123456789ab",
    )
    paths = write_reports(rows, summary, tmp_path, roster_gaps=[{**GAPS[0], "sis_id": "000777"}], kind="plan")
    data = json.loads(paths["summary.json"].read_text(encoding="utf-8"))
    assert data["warnings"] == ["grades.csv: title row skipped <b>"]
    assert data["guard_verdict"][0].startswith("plan changes 30 of 40")
    assert data["digest"] == "0123456789ab"
    page = paths["report.html"].read_text(encoding="utf-8")
    assert "Apply would be refused by the guards" in page and "above --max-changes 50%" in page
    assert "0123456789ab" in page and "title row skipped &lt;b&gt;" in page
    assert "000777" in page  # the roster gap's SIS id, not the object id
    assert "max 100" in page  # the maximum beside the grade (under the assignment in the grid)


def test_no_verdict_means_not_evaluated(tmp_path):
    rows = frame([row()])
    summary = RunSummary.from_rows(rows, kind="plan", created_at="2024-09-02T08:00:00Z")
    assert summary.asdict()["guard_verdict"] is None and summary.asdict()["digest"] == ""
    page = write_reports(rows, summary, tmp_path, kind="plan")["report.html"].read_text(encoding="utf-8")
    assert "id='checks'" not in page
