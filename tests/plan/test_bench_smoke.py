"""The planning benchmark runs end to end at a tiny scale (no timing assertions: speed is for benchmarks/)."""

from __future__ import annotations

import pytest

from benchmarks import plan_bench


def test_plan_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    result = plan_bench.main(scale=0.001)
    out = capsys.readouterr().out
    for label in ("read_csv (dtype=str)", "build_plan", "naive row-by-row", "extrapolated", "× read_csv"):
        assert label in out
    rows = 2 * plan_bench.STUDENTS * plan_bench.ASSIGNMENTS  # 2,000 × 0.001 classes
    assert result["rows"] == rows and f"Planning {rows:,} desired grades" in out
    assert sum(result["counts"].values()) == rows
    assert result["counts"]["update"] > 0 and result["counts"]["noop"] > 0 and result["counts"]["reject"] > 0
    assert result["build_plan_peak_mb"] > 0 and result["naive_sample_rows"] == rows


def test_end_to_end_plan_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    """`gradesync plan` as a subprocess against the emulator in its own process, at a tiny scale."""
    from benchmarks import plan_e2e

    result = plan_e2e.main(scale=0.001)  # 2 classes × 30 students × 20 assignments
    out = capsys.readouterr().out
    for label in ("read_csv (dtype=str)", "gradesync plan", "× read_csv CPU", "peak RSS", "of bound"):
        assert label in out
    assert result["rows"] > 1000 and sum(result["actions"].values()) == result["rows"]
    assert result["exit_code"] in (0, 1) and result["cpu"] > 0 and result["peak_mb"] > 0
    assert result["actions"]["update"] > 0
