"""Smoke test of benchmarks/apply_bench.py at a tiny scale (speed itself is measured by `make bench`)."""

from __future__ import annotations

from benchmarks import apply_bench


def test_apply_bench_runs_at_tiny_scale() -> None:
    results = apply_bench.measure(scale=0.003, in_flights=(2,))
    n = results["n"]
    assert n == 30
    for outcome in results["limited"][:2] + results["latency"][:1] + results["pages"]:
        assert outcome.converged
        assert outcome.graph_requests >= n  # every change costs a request; reads come on top
    assert [o.converged for o in results["stale"]] == [True]  # the older reviewed plan, 2 in flight
    assert apply_bench._latency_table(results).row_count == 3
    naive = results["limited"][2]
    assert naive.graph_requests == 2 * n  # one GET + one PATCH per row, nothing else
    half = results["half"][0]
    assert half.converged and half.pace is not None
    assert apply_bench.ideal_limited_seconds(350) == 0.0
    assert apply_bench.ideal_limited_seconds(700) == 10.0
    assert apply_bench.ideal_latency_seconds(10_000, 4) == 6.25
