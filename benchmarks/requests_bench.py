"""Graph requests of one ``gradesync sync`` with the default settings, small pages and 15 % faults,
against the lower bound (the pages that must be read + the changes).

The emulator runs in **its own process** (``python -m gradesync emulator``, see
:class:`benchmarks.apply_bench.Emulator`) with the sample tenant, pages of 7 (``page_size``) and
faults injected by the emulator itself (``POST /_emulator/config``); the sync is the one a nightly
run makes: ``Pipeline.sync`` of the three sample exports with ``Settings`` left at their defaults
(only the Graph address, a scratch state directory and ``max_changes``/``max_decreases`` = 100 %,
so that the guards let the sample's 268 changes through; guards make no request).

How the figures are counted (every figure is a Graph request as the quota counts it: a single
request or one ``$batch`` sub-request; the envelopes are not counted):

* **pages** — the pages the sync must read, computed from the tenant, not from what gradesync did:
  for each class the exports name, 1 lookup + ⌈members / page⌉ + ⌈assignments / page⌉; for each
  assignment they name, ⌈submissions / page⌉ (at least 1);
* **changes** — the writes of the fault-free plan (updates + creates + excuses);
* **faults** — the sub-requests the emulator answered with an injected fault (429 with and without
  ``Retry-After``, 500/502/503/504, applied-then-error). Each one makes that request's answer
  unusable, so any client must send at least one more request for it (the retry, or for a create
  whose fate is unknown, the read that settles it): these are the *unavoidable retries*;
* **bound** = pages + changes; **bound + retries** = pages + changes + faults.
  ``requests / bound`` is the raw figure (a 15 % fault rate alone makes it ≈ 1 / 0.85 = 1.18);
  ``requests / (bound + retries)`` is the target's figure (≤ 1.05): what gradesync spends beyond
  the requests any correct client must send.
* **extra** = requests − (bound + retries), with where it went: single-submission reads (the re-reads
  that settle a create or a write whose fate is unknown — a create is never re-sent blindly),
  submission-listing pages beyond the bound (re-reads of whole assignments), requests that arrived
  inside a ``Retry-After`` (``early``: counted by the emulator, answered as usual here).
* **gap** — beside the requests, in the same runs: the longest read → write gap of any written
  cell (from the start of the read its write rested on — the sync's own listing, or a re-read — to
  the end of the write's answer, on gradesync's clock), against the read-to-write window (5 s).
  Reading again less must never stretch it.

Correctness is checked on every run: every submission holds the desired grade (or its old one where
no valid row asks for a change), no submission has two points outcomes, every input row is in the
result with the status it should have.

``python -m benchmarks requests_bench --scale 0.2`` (2 seeded runs; 1.0 = 10 runs), or
``python -m benchmarks.requests_bench [SCALE]``.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_data"
INPUTS = ("sis_long.csv", "gradebook_wide.csv", "gradebook.xlsx")
TOKEN = "bench"  # noqa: S105 - the emulator's local token (benchmarks.apply_bench.TOKEN)
PAGE_SIZE = 7
FAULT_RATE = 0.15
RUNS = 10  # seeded runs at scale 1.0
# The mix of a fault rate (fractions of it), inside $batch (where every read and write goes).
FAULT_MIX = {
    "429": 0.2,
    "429_no_ra": 0.1,
    "500": 0.1,
    "502": 0.1,
    "503": 0.2,
    "504": 0.1,
    "applied_error": 0.2,
}
RETRY_AFTER = 0.1  # seconds, on the injected 429s


def fault_config(rate: float, seed: int) -> dict[str, Any] | None:
    """The emulator's fault config for ``rate`` (None: no faults)."""
    if rate <= 0:
        return None
    total = sum(FAULT_MIX.values())
    faults: dict[str, Any] = {k: rate * w / total for k, w in FAULT_MIX.items()}
    faults.update(seed=seed, scope="sub", retry_after=RETRY_AFTER)
    return faults


# --- the lower bound, from the tenant and the plan --------------------------------------------------
def pages_needed(tenant: dict[str, Any], pairs: set[tuple[str, str]], page: int) -> int:
    """The pages a sync of ``pairs`` ((class id, assignment id) the exports name) must read."""
    classes = {c["id"]: c for c in tenant["classes"]}
    total = 0
    for class_id in sorted({c for c, _ in pairs}):
        cls = classes[class_id]
        total += 1  # the class lookup ($filter on its key: one page)
        total += _pages(len(cls.get("members", [])), page) + _pages(len(cls.get("assignments", [])), page)
        for asg in cls.get("assignments", []):
            if (class_id, asg["id"]) in pairs:
                total += _pages(len(asg.get("submissions", [])), page)
    return total


def _pages(items: int, page: int) -> int:
    return max(1, math.ceil(items / page))


# --- one sync ----------------------------------------------------------------------------------------
@dataclass
class Run:
    label: str
    seed: int | None
    requests: int
    pages: int
    changes: int
    faults: int
    early: int
    single_reads: int  # GET of one submission: settling a write whose fate is unknown
    listing_pages: int  # submission-listing pages read
    listing_bound: int  # submission-listing pages that must be read
    wall: float
    problems: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    gaps: list[float] = field(default_factory=list)  # read → write gap of every written cell, seconds

    @property
    def bound(self) -> int:
        return self.pages + self.changes

    @property
    def bound_with_retries(self) -> int:
        return self.bound + self.faults

    @property
    def extra(self) -> int:
        return self.requests - self.bound_with_retries


def sync_once(emu: Any, *, page: int, rate: float, seed: int | None, label: str) -> tuple[Run, Any]:
    """One default sync of the sample exports against ``emu`` (reset first), faults at ``rate``."""
    from benchmarks.robustness import check_grades, expected_grades
    from gradesync.config import Settings
    from gradesync.pipeline import Pipeline, make_client

    emu.setup(page_size=page)
    faults = fault_config(rate, seed or 0)
    emu.http.post("/_emulator/config", json={"faults": faults}).raise_for_status()
    before = emu.state()
    inputs = [SAMPLES / n for n in INPUTS]
    with tempfile.TemporaryDirectory() as scratch, _gaps() as gaps:
        apply = {"state_dir": scratch, "max_changes": "100%", "max_decreases": "100%"}
        settings = Settings.model_validate({"graph": {"base_url": emu.base_url}, "apply": apply})
        with make_client(settings, token=TOKEN) as client:
            t0 = time.perf_counter()
            result = Pipeline(settings, client).sync(inputs, report_dir=Path(scratch) / "report")
            wall = time.perf_counter() - t0
    stats = emu.stats()
    plan = result.plan
    rows = plan.rows
    pairs = set(rows[["class_id", "assignment_id"]].dropna().astype(str).itertuples(index=False, name=None))
    listing_bound = sum(
        _pages(len(a.get("submissions", [])), page)
        for c in before["classes"]
        for a in c.get("assignments", [])
        if (c["id"], a["id"]) in pairs
    )
    routes = stats["by_route"]
    problems = check_grades(before, emu.state(), expected_grades(rows), converged=True)
    problems += _row_problems(result)
    run = Run(
        label=label,
        seed=seed,
        requests=stats["graph_requests"],
        pages=pages_needed(before, pairs, page),
        changes=int(rows["action"].isin(["update", "create", "excuse"]).sum()),
        faults=sum(stats["faults"].values()),
        early=stats["early_retries"],
        single_reads=routes.get("GET /education/classes/{id}/assignments/{id}/submissions/{id}", 0),
        listing_pages=routes.get("GET /education/classes/{id}/assignments/{id}/submissions", 0),
        listing_bound=listing_bound,
        wall=wall,
        problems=problems,
        by_kind=dict(stats["faults"]),
        gaps=gaps,
    )
    return run, rows


@contextmanager
def _gaps() -> Iterator[list[float]]:
    """The read → write gaps the executor measured during a ``Pipeline.sync`` (its apply is inside
    the pipeline: the executor's ``run`` is wrapped for the duration, to hear them)."""
    from gradesync.execute import apply as apply_module

    found: list[float] = []
    run = apply_module.Executor.run

    def measured(self: Any, plan: Any) -> Any:
        try:
            return run(self, plan)
        finally:
            found.extend(self.gaps.values())

    apply_module.Executor.run = measured  # type: ignore[method-assign]
    try:
        yield found
    finally:
        apply_module.Executor.run = run  # type: ignore[method-assign]


def _row_problems(result: Any) -> list[str]:
    """Every input row reported, with the status it should have (done, or rejected as planned)."""
    problems = []
    if result.rows is None or len(result.rows) != len(result.plan.rows):
        return [f"rows reported: {0 if result.rows is None else len(result.rows)} of {len(result.plan.rows)}"]
    for r in result.rows.itertuples(index=False):
        want_rejected = r.action == "reject"
        done = r.status in ("updated", "created", "unchanged", "excused")
        if (want_rejected and r.status != "rejected") or (not want_rejected and not done):
            problems.append(f"row {r.row_key}: status {r.status} ({r.message})")
    return problems


# --- main --------------------------------------------------------------------------------------------
def measure(scale: float = 1.0, *, runs: int | None = None, rate: float = FAULT_RATE) -> dict[str, Any]:
    from benchmarks.apply_bench import Emulator

    tenant = json.loads((SAMPLES / "tenant.json").read_text(encoding="utf-8"))
    count = runs if runs is not None else max(1, round(RUNS * scale))
    emu = Emulator(tenant)
    try:
        clean, _ = sync_once(emu, page=PAGE_SIZE, rate=0.0, seed=None, label="no faults")
        faulty = [
            sync_once(emu, page=PAGE_SIZE, rate=rate, seed=seed, label=f"{rate:.0%} faults, seed {seed}")[0]
            for seed in range(1, count + 1)
        ]
    finally:
        emu.close()
    return {"page": PAGE_SIZE, "rate": rate, "clean": clean, "faulty": faulty}


def total(runs: list[Run]) -> Run:
    """The runs summed (one row of the table)."""
    out = Run(f"all {len(runs)} faulty runs", None, 0, 0, 0, 0, 0, 0, 0, 0, 0.0)
    for r in runs:
        for name in ("requests", "pages", "changes", "faults", "early", "single_reads"):
            setattr(out, name, getattr(out, name) + getattr(r, name))
        out.listing_pages += r.listing_pages
        out.listing_bound += r.listing_bound
        out.wall += r.wall
        out.problems += r.problems
        out.gaps += r.gaps
    return out


def main(scale: float = 1.0) -> dict[str, Any]:
    from rich.console import Console

    results = measure(scale)
    Console().print(_table(results))
    return results


def _table(results: dict[str, Any]) -> Any:
    from rich.table import Table

    runs: list[Run] = [results["clean"], *results["faulty"]]
    if len(results["faulty"]) > 1:
        runs.append(total(results["faulty"]))
    table = Table(
        title=f"Graph requests of one default sync of the samples, pages of {results['page']}, "
        f"{results['rate']:.0%} faults (bound = pages + changes; retries = faults injected; "
        "gap: longest read → write, window 5 s)"
    )
    cols = ("run", "requests", "pages", "changes", "faults (retries)", "req / bound")
    cols += ("req / (bound + retries)",)
    cols += ("extra", "settling reads", "listing pages − bound", "early", "gap max s", "wall s", "correct")
    for col in cols:
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in runs:
        table.add_row(
            r.label,
            f"{r.requests:,}",
            f"{r.pages:,}",
            f"{r.changes:,}",
            f"{r.faults:,}",
            f"{r.requests / r.bound:.3f}",
            f"{r.requests / r.bound_with_retries:.3f}",
            f"{r.extra:,}",
            f"{r.single_reads:,}",
            f"{r.listing_pages - r.listing_bound:,}",
            f"{r.early:,}",
            f"{max(r.gaps, default=0.0):.2f}",
            f"{r.wall:.1f}",
            "yes" if not r.problems else f"NO: {r.problems[0]}",
        )
    return table


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
