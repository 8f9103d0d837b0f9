"""Applying 10,000 grade changes to the emulator: gradesync's executor vs a naive client.

In one run, side by side:

(a) **Graph's default limits on** (350 requests / 10 s and 10,000 / hour per app, enforced by the
    emulator): gradesync (``$batch`` of 20, client-side rate limiter, stale-plan read, journalled
    writes, read-back) against a naive client (one PATCH/POST per row, no batch, sleeping
    ``Retry-After`` on a 429). Reported: achieved rate vs the limit-bound rate (the time the
    emulator's token buckets make the run's own requests wait, at best), throttled sub-requests,
    Graph requests per change including reads.
(b) **limits off, 50 ms latency per HTTP request**: wall time against the ideal ⌈n/20⌉ batches
    spread over the batches in flight, for several ``max_in_flight`` values (this measurement chose
    the CLI default), and the naive client (timed on a sample, extrapolated).

``python -m benchmarks apply_bench`` (``--scale 0.01`` for a quick look). At full scale part (a)
takes about 5 minutes per client because the limit allows 35 requests a second; the naive client is
measured on a sample of ``NAIVE_LIMITED`` rows under the limits (it would also exhaust the hourly
budget with its early retries) and its rate is extrapolated.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

N_CHANGES = 10_000
STUDENTS = 30
ASSIGNMENTS = 5
NAIVE_LIMITED = 1_500  # naive rows timed under Graph's limits (full scale)
NAIVE_LATENCY = 400  # naive rows timed with 50 ms latency (full scale)
LATENCY_MS = 50.0
TOKEN = "bench"  # noqa: S105 - the emulator's local token


# --- a plan of n changes from a generated tenant ---------------------------------------------------
def bench_tenant(n: int) -> dict[str, Any]:
    from graph_emulator.generate import generate_tenant, materialize_tenant

    classes = max(1, math.ceil(n / (STUDENTS * (ASSIGNMENTS - 1) * 0.8)))
    tenant = materialize_tenant(generate_tenant(classes=classes, students=STUDENTS, assignments=ASSIGNMENTS))
    while len(_eligible(tenant)) < n:
        classes = math.ceil(classes * 1.3) + 1
        tenant = materialize_tenant(
            generate_tenant(classes=classes, students=STUDENTS, assignments=ASSIGNMENTS)
        )
    return tenant


def _eligible(tenant: dict[str, Any]) -> list[tuple[dict, dict, dict]]:
    from graph_emulator.state import iter_submissions

    out = []
    for cls, asg, sub in iter_submissions(tenant):
        if not asg.get("grading") or asg.get("status") != "assigned":
            continue
        if "userId" not in sub.get("recipient", {}) or sub.get("status") == "excused":
            continue
        out.append((cls, asg, sub))
    return out


def bench_plan(tenant: dict[str, Any], n: int, base_url: str) -> Any:
    """A plan of exactly ``n`` writes (updates by ±1, creates where no points outcome) — whole assignments."""
    import pandas as pd

    from gradesync.models import PLAN_COLUMNS, Plan
    from graph_emulator.state import points_outcome

    rows = []
    for key, (cls, asg, sub) in enumerate(_eligible(tenant)[:n]):
        po = points_outcome(sub)
        before = po.get("points") if po else None
        mx = float(asg["grading"]["maxPoints"])
        desired = 1.0 if before is None else (before + 1 if before + 1 <= mx else before - 1)
        rows.append(
            {
                "row_key": key,
                "source_file": "bench.csv",
                "source_sheet": "",
                "source_row": key + 2,
                "source_column": "Points",
                "class_key": cls.get("externalId") or cls["id"],
                "assignment_key": asg["displayName"],
                "student_key": sub["recipient"]["userId"],
                "points_raw": f"{desired:g}",
                "desired_points": desired,
                "clear": False,
                "excuse": False,
                "points_possible": float("nan"),
                "class_id": cls["id"],
                "class_name": cls.get("displayName"),
                "assignment_id": asg["id"],
                "assignment_name": asg["displayName"],
                "max_points": mx,
                "user_id": sub["recipient"]["userId"],
                "student_name": "",
                "submission_id": sub["id"],
                "outcome_id": po["id"] if po else None,
                "before_points": float("nan") if before is None else float(before),
                "before_modified": po.get("lastModifiedDateTime") if po else None,
                "action": "create" if po is None else "update",
                "reason": "",
                "message": "",
                "note": "",
                "decrease": before is not None and desired < before,
                "last_written_points": float("nan"),
                "override_policy": "",
            }
        )
    frame = pd.DataFrame(rows, columns=list(PLAN_COLUMNS)).astype(PLAN_COLUMNS)
    created = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return Plan(rows=frame, created_at=created, graph_base_url=base_url, config_hash="bench")


# --- runners ---------------------------------------------------------------------------------------
@dataclass
class Outcome:
    label: str
    changes: int
    seconds: float
    graph_requests: int
    throttled: int
    early_retries: int
    write_seconds: float | None = None
    extrapolated_from: int | None = None
    converged: bool = True

    @property
    def rate(self) -> float:
        return self.changes / self.seconds if self.seconds else float("inf")


def _server(tenant: dict[str, Any], *, limits: bool, latency_ms: float = 0.0, page_size: int = 25) -> Any:
    from graph_emulator import EmulatorServer, FaultConfig, ThrottleConfig

    faults = FaultConfig(latency_ms=latency_ms, scope="http") if latency_ms else None
    return EmulatorServer(
        tenant,
        token=TOKEN,
        page_size=page_size,
        throttle=ThrottleConfig.graph() if limits else ThrottleConfig.off(),
        faults=faults,
    ).start()


def run_gradesync(
    tenant: dict[str, Any],
    n: int,
    *,
    limits: bool,
    latency_ms: float = 0.0,
    in_flight: int = 4,
    page_size: int = 25,
    verify: str = "all",
) -> Outcome:
    from gradesync.execute.apply import ApplyOptions, apply_plan
    from gradesync.graph import GraphClient, RateLimit
    from gradesync.state.journal import Journal

    server = _server(tenant, limits=limits, latency_ms=latency_ms, page_size=page_size)
    try:
        plan = bench_plan(server.state(), n, server.base_url)
        marks: dict[str, float] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step == "writing":
                marks.setdefault("first", time.perf_counter())
                marks["last"] = time.perf_counter()

        options = ApplyOptions(max_changes=None, max_decreases=None, min_coverage=None, verify=verify)
        rate = RateLimit.graph() if limits else RateLimit.off()
        with (
            tempfile.TemporaryDirectory() as state,
            GraphClient(server.base_url, lambda: TOKEN, rate_limit=rate, max_in_flight=in_flight) as client,
            Journal.in_dir(state) as journal,
        ):
            t0 = time.perf_counter()
            result = apply_plan(plan, client, journal=journal, options=options, progress=progress)
            seconds = time.perf_counter() - t0
        stats = server.stats()
        done = int(result.rows["status"].isin(["updated", "created"]).sum())
        return Outcome(
            f"gradesync ($batch, {in_flight} in flight, verify {verify}, pages of {page_size})",
            n,
            seconds,
            stats["graph_requests"],
            stats["throttled"],
            stats["early_retries"],
            write_seconds=marks.get("last", 0.0) - marks.get("first", 0.0),
            converged=done == n,
        )
    finally:
        server.stop()


def run_naive(
    tenant: dict[str, Any], n: int, sample: int, *, limits: bool, latency_ms: float = 0.0
) -> Outcome:
    """One PATCH/POST per row, sequential, no batch; on 429 sleep Retry-After (else 1 s) and retry."""
    import httpx

    from gradesync.execute.decide import grade_body
    from gradesync.graph import parse_retry_after

    server = _server(tenant, limits=limits, latency_ms=latency_ms)
    try:
        plan = bench_plan(server.state(), n, server.base_url)
        rows = plan.rows.head(sample)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            t0 = time.perf_counter()
            for row in rows.itertuples():
                url = (
                    f"/education/classes/{row.class_id}/assignments/{row.assignment_id}"
                    f"/submissions/{row.submission_id}/outcomes"
                )
                body = grade_body(float(row.desired_points))
                while True:
                    if row.action == "update":
                        r = http.patch(f"{url}/{row.outcome_id}", json=body)
                    else:
                        r = http.post(url, json=body)
                    if r.status_code != 429:
                        break
                    time.sleep(parse_retry_after(r.headers.get("retry-after")) or 1.0)
            seconds = time.perf_counter() - t0
        stats = server.stats()
        measured = len(rows)
        # scale the sample's efficiency (not its wall time: the sample starts with a full 350-request
        # burst) up to n rows: full time = ideal(n admitted) x (sample time / ideal(sample admitted))
        admitted = stats["graph_requests"] - stats["throttled"]
        ideal_sample = ideal_limited_seconds(admitted) if limits else 0.0
        if limits and ideal_sample > 0:
            full = ideal_limited_seconds(round(admitted * n / max(1, measured))) * seconds / ideal_sample
        else:
            full = seconds * n / measured if measured else 0.0
        return Outcome(
            "naive (1 request per row)",
            n,
            full,
            round(stats["graph_requests"] * n / measured) if measured else 0,
            round(stats["throttled"] * n / measured) if measured else 0,
            round(stats["early_retries"] * n / measured) if measured else 0,
            extrapolated_from=measured if measured < n else None,
        )
    finally:
        server.stop()


def ideal_limited_seconds(requests: int, per_10s: int = 350, per_hour: int = 10_000) -> float:
    """Least time Graph's two token buckets (full at the start) need to admit ``requests``."""
    return max(0.0, (requests - per_10s) / (per_10s / 10.0), (requests - per_hour) / (per_hour / 3600.0))


def ideal_latency_seconds(n: int, in_flight: int, latency_ms: float = LATENCY_MS) -> float:
    return math.ceil(math.ceil(n / 20) / in_flight) * latency_ms / 1000.0


# --- main ------------------------------------------------------------------------------------------
def measure(scale: float = 1.0, in_flights: tuple[int, ...] = (1, 2, 4, 8)) -> dict[str, Any]:
    n = max(20, round(N_CHANGES * scale))
    tenant = bench_tenant(n)
    limited = [
        run_gradesync(tenant, n, limits=True),
        run_gradesync(tenant, n, limits=True, verify="uncertain", page_size=100),
        run_naive(tenant, n, min(n, max(20, round(NAIVE_LIMITED * scale))), limits=True),
    ]
    latency = [run_gradesync(tenant, n, limits=False, latency_ms=LATENCY_MS, in_flight=k) for k in in_flights]
    latency.append(
        run_naive(
            tenant, n, min(n, max(10, round(NAIVE_LATENCY * scale))), limits=False, latency_ms=LATENCY_MS
        )
    )
    pages = [
        run_gradesync(tenant, n, limits=False, page_size=p, verify=v)
        for p in (25, 100)
        for v in ("all", "uncertain")
    ]
    return {"n": n, "limited": limited, "latency": latency, "in_flights": in_flights, "pages": pages}


def main(scale: float = 1.0) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    results = measure(scale)
    n = results["n"]
    console = Console()

    t1 = Table(title=f"apply {n:,} changes with Graph's limits on (350/10 s, 10,000/h; page size 25)")
    for col in (
        "client",
        "wall s",
        "changes/s",
        "vs limit-bound",
        "throttled",
        "early retries",
        "requests/change",
    ):
        t1.add_column(col, justify="left" if col == "client" else "right")
    for o in results["limited"]:
        ideal = ideal_limited_seconds(o.graph_requests - o.throttled)  # throttled answers cost no quota
        share = f"{100 * ideal / o.seconds:.0f}%" if o.seconds and ideal else "n/a (under burst)"
        label = o.label + (f" [timed on {o.extrapolated_from:,}]" if o.extrapolated_from else "")
        label += "" if o.converged else " NOT CONVERGED"
        t1.add_row(
            label,
            f"{o.seconds:,.1f}",
            f"{o.rate:,.1f}",
            share,
            f"{o.throttled:,} ({100 * o.throttled / max(1, o.graph_requests):.1f}%)",
            f"{o.early_retries:,}",
            f"{o.graph_requests / n:.3f}",
        )
    console.print(t1)

    t2 = Table(title=f"apply {n:,} changes, limits off, {LATENCY_MS:g} ms latency per HTTP request")
    for col in ("client", "wall s", "write phase s", "ideal writes s", "writes vs ideal", "requests/change"):
        t2.add_column(col, justify="left" if col == "client" else "right")
    for k, o in zip([*results["in_flights"], None], results["latency"], strict=True):
        if k is None:
            label = o.label + (f" [timed on {o.extrapolated_from:,}]" if o.extrapolated_from else "")
            t2.add_row(label, f"{o.seconds:,.1f}", "", f"{ideal_latency_seconds(n, 1):.2f} (batched)", "", "")
            continue
        ideal = ideal_latency_seconds(n, k)
        ws = o.write_seconds or o.seconds
        t2.add_row(
            o.label + ("" if o.converged else " NOT CONVERGED"),
            f"{o.seconds:,.2f}",
            f"{ws:,.2f}",
            f"{ideal:.2f}",
            f"{100 * ideal / ws:.0f}%" if ws else "",
            f"{o.graph_requests / n:.3f}",
        )
    console.print(t2)
    t3 = Table(title="Graph requests per change (reads included), by page size and --verify")
    for col in ("client", "requests/change"):
        t3.add_column(col, justify="left" if col == "client" else "right")
    for o in results["pages"]:
        t3.add_row(o.label, f"{o.graph_requests / n:.3f}")
    console.print(t3)
    console.print(
        "reads are one paged listing per assignment before writing (the stale-plan check) and, with "
        "--verify all, one after: requests/change = 1 + (1 or 2) x pages per assignment / changes per "
        "assignment"
    )
    return results


if __name__ == "__main__":
    import sys

    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
