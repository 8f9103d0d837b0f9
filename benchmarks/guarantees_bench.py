"""The time-bound guarantees of an apply, measured against a Graph in its own process.

Three runs against the emulator (``python -m gradesync emulator``, its own process; Graph's pacing
— 350 requests per 10 s, 10,000 per hour — and a per-request latency, both configurable), with
gradesync at its **default settings** (read-to-write window 5 s, 4 envelopes in flight, Graph's
documented limits as the pacer's ceiling):

1. **A long apply while teachers grade** — an older reviewed plan of ``n`` changes (each assignment
   is read just in time), and teacher edits injected by the emulator at random moments (just before
   its k-th grade write, k drawn at random) on random cells. Measured:

   * the **read → write gap** of every written cell: from the start of the read its write rested on
     to the end of the write's answer (gradesync's clock: an upper bound of the true gap) —
     p50 / p99 / max, against the window;
   * the **edits overwritten**, by how long before gradesync's write the teacher made them (both
     times from the emulator: the edit's time, and the outcome's ``lastModifiedDateTime`` once
     gradesync wrote over it) — none may be older than the window; the others were kept (a
     ``conflict``, or gradesync had written that cell before the teacher);
   * the **Graph requests** against the lower bound (each touched assignment's listing pages once +
     the changes).

2. **A deadline, slow Graph** — the same plan, ``--max-duration`` cut short, every request answered
   after ``slow_latency_ms``: no envelope may leave after the deadline, and the last answer may come
   after it by no more than one envelope's time (the longest measured in that run).

The table gives each figure with its bound and the ratio to it. ``python -m benchmarks
guarantees_bench`` (scale 1.0: 3,500 changes, a few minutes under Graph's pace), or
``python -m benchmarks.guarantees_bench --scale 0.2 --latency-ms 50 --slow-latency-ms 300
--throttle graph``. A smoke run in the tests checks the counts at a tiny scale, never the timings.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

N_CHANGES = 3_500  # "a teacher grading in Teams during a 3,500-write sync"
EDITS_PER_1000 = 20  # teacher edits per 1,000 writes (at least 6)
EDIT_LEAD = 250  # an edit's cell is written at most this many writes after it (about 7 s at Graph's pace)
LATENCY_MS = 50.0
SLOW_LATENCY_MS = 300.0
DEADLINE_SHARE = 0.3  # the deadline run stops after this share of the first run's duration
MIN_CUT = 4.0  # seconds: at least this long (a small run must get some envelopes out before it)
AGE_BUCKETS = (1.0, 2.0, 5.0)  # seconds: ≤1, 1–2, 2–5, >5


@dataclass
class Edits:
    """What became of the teacher edits the emulator made during a run."""

    made: int = 0
    kept_conflict: int = 0  # gradesync found it and left it: a conflict
    kept_after: int = 0  # the teacher edited a cell gradesync had already written
    overwritten_ages: list[float] = field(default_factory=list)  # seconds between edit and our write

    def overwritten_in(self, low: float, high: float) -> int:
        return sum(1 for a in self.overwritten_ages if low < a <= high)


@dataclass
class Run:
    n: int
    seconds: float
    gaps: list[float]
    edits: Edits
    requests: int
    bound: int  # listing pages of the touched assignments (once) + changes
    converged: bool
    statuses: dict[str, int]
    window: float
    sends: list[tuple[float, float]] = field(default_factory=list)
    deadline: float | None = None  # monotonic

    def gap(self, q: float) -> float:
        if not self.gaps:
            return 0.0
        ordered = sorted(self.gaps)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    @property
    def sent_after_deadline(self) -> int:
        assert self.deadline is not None
        return sum(1 for left, _ in self.sends if left > self.deadline)

    @property
    def overshoot(self) -> float:
        assert self.deadline is not None
        return max((answered for _, answered in self.sends), default=self.deadline) - self.deadline

    @property
    def envelope_seconds(self) -> float:
        return max((answered - left for left, answered in self.sends), default=0.0)


def _schedule_edits(emu: Any, plan: Any, rng: random.Random, count: int) -> None:
    """``count`` teacher edits on distinct cells, each just before a random grade write k of the run,
    on a cell gradesync writes a little later (up to ``EDIT_LEAD`` writes after k, in the order it
    writes them): some land before gradesync's read of that cell, some between its read and its write."""
    from gradesync.execute.apply import order_of

    order = [op.row_key for op in order_of(plan.operations())]
    rows = plan.rows.set_index("row_key")
    chosen: set[int] = set()
    for _ in range(min(count, len(order))):
        at = rng.randint(1, len(order))
        later = [k for k in order[at - 1 : at - 1 + EDIT_LEAD] if k not in chosen] or [
            k for k in order if k not in chosen
        ]
        key = rng.choice(later)
        chosen.add(key)
        r = rows.loc[key]
        edit = {"class_id": r.class_id, "assignment_id": r.assignment_id, "submission_id": r.submission_id}
        edit["points"] = 0.5  # neither the old grade nor the new one
        payload = {"edits": [edit], "after_writes": at}
        emu.http.post("/_emulator/teacher-edits", json=payload).raise_for_status()


def _judge_edits(emu: Any, result_rows: Any) -> Edits:
    """Each edit the emulator made: kept (conflict, or made after our write) or overwritten (how long
    after it our write landed), from the emulator's own times."""
    from graph_emulator.state import iter_submissions

    applied = emu.http.get("/_emulator/teacher-edits").json()["applied"]
    outcomes = {
        sub["id"]: next((o for o in sub.get("outcomes", []) if o.get("type") == "points"), None)
        for _, _, sub in iter_submissions(emu.state())
    }
    status = dict(zip(result_rows["submission_id"], result_rows["status"], strict=False))
    out = Edits(made=len(applied))
    for edit in applied:
        now = outcomes.get(edit["submission_id"]) or {}
        edited_at = _time(edit["applied_at"])
        written_at = _time(str(now.get("lastModifiedDateTime")))
        if now.get("points") == edit["points"] and written_at <= edited_at:
            if status.get(edit["submission_id"]) == "conflict":
                out.kept_conflict += 1
            else:
                out.kept_after += 1
        else:
            out.overwritten_ages.append((written_at - edited_at).total_seconds())
    return out


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _bound(emu: Any, plan: Any, page_size: int) -> int:
    from graph_emulator.state import iter_submissions

    pairs = set(zip(plan.rows["class_id"], plan.rows["assignment_id"], strict=True))
    subs: dict[tuple[str, str], int] = {}
    for cls, asg, _ in iter_submissions(emu.state()):
        if (cls["id"], asg["id"]) in pairs:
            subs[(cls["id"], asg["id"])] = subs.get((cls["id"], asg["id"]), 0) + 1
    return sum(max(1, math.ceil(v / page_size)) for v in subs.values()) + len(plan.rows)


def run_apply(
    emu: Any,
    n: int,
    *,
    throttle: Any,
    latency_ms: float,
    edits: int = 0,
    max_duration: float | None = None,
    seed: int = 1,
    page_size: int = 25,
) -> Run:
    """One default apply of an older reviewed plan of ``n`` changes, teachers grading meanwhile."""
    from benchmarks.apply_bench import TOKEN, bench_plan
    from gradesync.config import Settings
    from gradesync.execute.apply import ApplyOptions, Executor
    from gradesync.graph import GraphClient, RateLimit
    from gradesync.state.journal import Journal

    emu.setup(throttle=throttle, latency_ms=latency_ms, page_size=page_size)
    plan = bench_plan(emu.state(), n, emu.base_url)
    bound = _bound(emu, plan, page_size)
    _schedule_edits(emu, plan, random.Random(seed), edits)
    emu.http.post("/_emulator/stats/reset").raise_for_status()
    settings = Settings()
    if max_duration is not None:
        settings = settings.override("apply", max_duration=f"{max_duration:.3f}s")
    options = ApplyOptions.from_settings(settings)
    rate = RateLimit.off() if throttle == "off" else RateLimit.graph()  # the client knows only the docs
    with (
        tempfile.TemporaryDirectory() as state,
        GraphClient(
            emu.base_url, lambda: TOKEN, rate_limit=rate, max_in_flight=settings.apply.max_in_flight
        ) as client,
        Journal.in_dir(state) as journal,
    ):
        executor = Executor(client, journal, options)
        t0 = time.perf_counter()
        result = executor.run(plan)
        seconds = time.perf_counter() - t0
    rows = result.rows
    statuses = {str(k): int(v) for k, v in rows["status"].value_counts().items()}
    return Run(
        n=n,
        seconds=seconds,
        gaps=list(executor.gaps.values()),
        edits=_judge_edits(emu, rows),
        requests=int(emu.stats()["graph_requests"]),
        bound=bound,
        converged=not set(statuses) - {"updated", "created", "conflict", "carried_over"},
        statuses=statuses,
        window=options.read_write_window.total_seconds(),
        sends=list(executor.sends),
        deadline=executor.deadline.end,
    )


def measure(
    scale: float = 1.0,
    *,
    latency_ms: float = LATENCY_MS,
    slow_latency_ms: float = SLOW_LATENCY_MS,
    throttle: Any = "graph",
    seed: int = 1,
) -> dict[str, Any]:
    from benchmarks.apply_bench import Emulator, bench_tenant

    n = max(20, round(N_CHANGES * scale))
    edits = max(6, round(n * EDITS_PER_1000 / 1000))
    emu = Emulator(bench_tenant(n))
    try:
        long = run_apply(emu, n, throttle=throttle, latency_ms=latency_ms, edits=edits, seed=seed)
        cut = max(MIN_CUT, long.seconds * DEADLINE_SHARE)
        slow = run_apply(emu, n, throttle=throttle, latency_ms=slow_latency_ms, max_duration=cut, seed=seed)
    finally:
        emu.close()
    return {
        "n": n,
        "long": long,
        "deadline": slow,
        "cut": cut,
        "latency_ms": latency_ms,
        "slow_latency_ms": slow_latency_ms,
        "throttle": throttle,
    }


def main(scale: float = 1.0, **kw: Any) -> dict[str, Any]:
    from rich.console import Console

    results = measure(scale, **kw)
    Console().print(table(results))
    return results


def table(results: dict[str, Any]) -> Any:
    from rich.table import Table

    long: Run = results["long"]
    cut: Run = results["deadline"]
    e = long.edits
    w = long.window
    t = Table(
        title=f"guarantees of a default apply of {results['n']:,} changes (Graph's pace: "
        f"{results['throttle']}, {results['latency_ms']:g} ms per request; deadline run: "
        f"{results['slow_latency_ms']:g} ms, "
        f"--max-duration {results['cut']:.1f}s)"
    )
    for col in ("guarantee", "measured", "bound", "ratio to bound"):
        t.add_column(col, justify="left" if col == "guarantee" else "right")

    def ratio(x: float, bound: float) -> str:
        return f"{x / bound:.2f}" if bound else ("0" if x == 0 else "over")

    t.add_row("read → write gap, p50 (s)", f"{long.gap(0.5):.2f}", f"{w:g}", ratio(long.gap(0.5), w))
    t.add_row("read → write gap, p99 (s)", f"{long.gap(0.99):.2f}", f"{w:g}", ratio(long.gap(0.99), w))
    t.add_row(
        "read → write gap, max (s)",
        f"{max(long.gaps, default=0):.2f}",
        f"{w:g}",
        ratio(max(long.gaps, default=0), w),
    )
    low = 0.0
    for high in (*AGE_BUCKETS, math.inf):
        name = (
            f"edits overwritten, made {low:g}–{high:g} s before the write"
            if high != math.inf
            else (f"edits overwritten, made > {low:g} s before the write")
        )
        count = e.overwritten_in(low if low else -math.inf, high)
        bound = "0" if low >= w else "—"
        t.add_row(name, f"{count}", bound, ratio(count, 0) if low >= w else "")
        low = high
    t.add_row(
        "edits kept (conflict / made after our write)",
        f"{e.kept_conflict} / {e.kept_after}",
        f"of {e.made}",
        "",
    )
    t.add_row(
        "envelopes sent after the deadline",
        f"{cut.sent_after_deadline}",
        "0",
        ratio(cut.sent_after_deadline, 0),
    )
    t.add_row(
        "deadline overshoot, last answer (s)",
        f"{cut.overshoot:.2f}",
        f"{cut.envelope_seconds:.2f} (one envelope)",
        ratio(max(0.0, cut.overshoot), cut.envelope_seconds),
    )
    t.add_row(
        "Graph requests / (listing pages + changes)",
        f"{long.requests:,} / {long.bound:,}",
        "1.10",
        f"{long.requests / long.bound / 1.10:.2f}",
    )
    t.add_row(
        "apply wall time (s), statuses",
        f"{long.seconds:.1f}",
        "",
        ", ".join(f"{k} {v}" for k, v in sorted(long.statuses.items())),
    )
    return t


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.guarantees_bench", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    parser.add_argument("--slow-latency-ms", type=float, default=SLOW_LATENCY_MS)
    parser.add_argument("--throttle", default="graph", help="graph, off, or the emulator's LIMITS form")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    main(
        args.scale,
        latency_ms=args.latency_ms,
        slow_latency_ms=args.slow_latency_ms,
        throttle=args.throttle,
        seed=args.seed,
    )


__all__ = ["Edits", "Run", "main", "measure", "run_apply", "table"]
