"""Smoke run of benchmarks/web_bench.py at a tiny scale (the figures themselves live in the notes)."""

from benchmarks import web_bench


def test_web_bench_smoke():
    result = web_bench.measure(scale=0.02, map_columns=40)
    assert result["rows"] > 0 and result["page_kb"] > 0
    assert int(result["changed"].replace(",", "")) > 0
    assert result["map_kb"] > 0 and result["map_selects"] >= 40  # a list per column, plus the page's
    web_bench.table(result)
