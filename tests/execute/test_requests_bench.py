"""Smoke test of benchmarks/requests_bench.py: one faulty sync (the ratios are measured by `make bench`)."""

from __future__ import annotations

from benchmarks import requests_bench


def test_requests_bench_counts_one_default_sync_with_small_pages_and_faults() -> None:
    results = requests_bench.measure(runs=1, rate=0.05)
    clean, faulty = results["clean"], results["faulty"][0]
    assert clean.problems == [] and faulty.problems == []  # every grade right, every row reported
    # without faults a sync reads each page it must read once and writes each change once
    assert (clean.requests, clean.faults) == (clean.bound, 0)
    assert clean.changes == faulty.changes and clean.pages == faulty.pages
    assert faulty.faults > 0 and faulty.requests >= faulty.bound_with_retries
    assert "faults (retries)" in [c.header for c in requests_bench._table(results).columns]
    # the read → write gap of every written cell is heard beside the requests (counted, not timed)
    assert len(clean.gaps) == clean.changes
