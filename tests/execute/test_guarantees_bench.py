"""Smoke test of benchmarks/guarantees_bench.py at a tiny scale: the counts, never the timings
(the figures themselves are measured by `make bench`)."""

from __future__ import annotations

from benchmarks import guarantees_bench


def test_guarantees_bench_counts_at_a_tiny_scale() -> None:
    results = guarantees_bench.measure(scale=0.008, latency_ms=0, slow_latency_ms=20, throttle="off")
    long, cut = results["long"], results["deadline"]
    assert long.n == 28 and long.converged and cut.converged
    edits = long.edits
    assert 0 < edits.made <= 6
    assert edits.kept_conflict + edits.kept_after + len(edits.overwritten_ages) == edits.made
    # an edit made longer than the window before gradesync's write is never overwritten
    assert edits.overwritten_in(long.window, float("inf")) == 0
    assert len(long.gaps) == long.statuses.get("updated", 0)  # one gap per written cell
    assert long.requests >= long.bound - edits.kept_conflict  # every change costs a request
    assert cut.deadline is not None and cut.sent_after_deadline == 0
    assert sum(cut.statuses.values()) == cut.n
    assert guarantees_bench.table(results).row_count == 12
