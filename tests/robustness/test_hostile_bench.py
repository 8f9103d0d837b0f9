"""A smoke run of ``benchmarks/hostile_inputs.py`` (``make robustness`` runs it at 2 GB): the scaled-down
single-line file and zip bomb are refused with their codes, within the benchmark's memory bound."""

from __future__ import annotations

from benchmarks.hostile_inputs import main


def test_hostile_inputs_smoke() -> None:
    outcomes = main(scale=0.01, only=["line, separators", "zip of"])
    assert [o.case.expect for o in outcomes] == ["input-line-too-long", "input-suspicious-zip"]
    assert all(o.ok for o in outcomes), [(o.case.name, o.exit_code, o.code, o.peak_mb) for o in outcomes]
