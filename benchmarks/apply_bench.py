"""Applying grade changes to the emulator: gradesync's executor vs a naive client, each measured
against its bound. The emulator runs in **its own process** (``python -m gradesync emulator``), and so
does the naive client, so nobody competes for the GIL with the client under test.

Tables, each with the ratio to its bound:

1. **Graph's published limits** (350 / 10 s, 10,000 / hour per app, the emulator's token buckets):
   gradesync's sub-requests per second vs the bucket-bound rate (the least time Graph's buckets need
   to admit the run's own requests; target ≥ 95 %, < 1 % throttled), and the naive client
   (one GET + one PATCH per row, sequential, sleeping ``Retry-After``; timed on a sample).
2. **A limit at half the published one** (175 / 10 s, set on the emulator): gradesync starts at the
   published ceiling and must learn the lower pace: admitted rate vs that lower bucket-bound rate
   (target ≥ 90 %), requests sent inside a Retry-After window (the emulator's ``early_retries``;
   target < 1 %).
3. **Latency-bound writes** (limits off, 50 ms per HTTP answer): the write phase vs the ideal
   ⌈n/20⌉ / in-flight × latency (target ≤ 1.2×), on a sync's fresh read (``read_at``: no read
   before writing) and for an older reviewed plan (each assignment read once before its writes —
   the reads, which the ideal does not count, overlap the previous wave's writes, except the first
   wave's).
4. Graph requests per change by page size and ``--verify``.

``python -m benchmarks apply_bench --scale 0.2`` (2,000 changes: a few minutes; 1.0 = 10,000 changes,
about 15 minutes because the limits allow 35 requests a second).
"""

from __future__ import annotations

import gc
import json
import math
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

N_CHANGES = 10_000
STUDENTS = 30
ASSIGNMENTS = 5
NAIVE_LIMITED = 1_500  # naive rows timed under Graph's limits (full scale)
NAIVE_LATENCY = 400  # naive rows timed with 50 ms latency (full scale)
LATENCY_MS = 50.0
STALE_IN_FLIGHTS = (1, 2, 4)  # the older-plan latency rows
HALF = {"per_10s": 175, "per_hour": 5_000}  # "a limit at half the published one"
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


def bench_plan(tenant: dict[str, Any], n: int, base_url: str, *, fresh: bool = False) -> Any:
    """A plan of exactly ``n`` writes (updates by ±1, creates where no points outcome) — whole assignments.

    ``fresh``: the plan says its assignments were read just now (``read_at``), as a ``sync``'s plan
    does, so the executor writes on that read; otherwise it is an older reviewed plan, and each
    assignment is read once just before its writes (the read-to-write window)."""
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
    plan = Plan(rows=frame, created_at=created, graph_base_url=base_url, config_hash="bench")
    if fresh:  # the tenant state was read from the emulator just now: that is the planning read
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        plan.read_at = {f"{r['class_id']}/{r['assignment_id']}": now for r in rows}
    return plan


# --- the emulator, in its own process ---------------------------------------------------------------
class Emulator:
    """``python -m gradesync emulator`` on a free port; configured and reset over its control API."""

    def __init__(self, tenant: dict[str, Any]) -> None:
        import httpx

        self._dir = tempfile.TemporaryDirectory()
        path = Path(self._dir.name) / "tenant.json"
        path.write_text(json.dumps(tenant), encoding="utf-8")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        cmd = [sys.executable, "-m", "gradesync", "emulator", "--tenant", str(path), "--port", str(port)]
        cmd += ["--token", TOKEN, "--throttle", "off"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = self.url + "/v1.0"
        self.http = httpx.Client(base_url=self.url, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.http.get("/_emulator/stats").raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    raise RuntimeError("the emulator process did not start") from None
                time.sleep(0.05)

    def setup(self, *, throttle: Any = "off", latency_ms: float = 0.0, page_size: int = 25) -> None:
        """Back to the initial tenant with these knobs (stats, buckets and faults reset)."""
        self.http.post("/_emulator/reset").raise_for_status()
        faults = {"latency_ms": latency_ms, "scope": "http"} if latency_ms else None
        body = {"throttle": throttle, "faults": faults, "page_size": page_size}
        self.http.post("/_emulator/config", json=body).raise_for_status()

    def state(self) -> dict[str, Any]:
        return dict(self.http.get("/_emulator/state").json())

    def stats(self) -> dict[str, Any]:
        return dict(self.http.get("/_emulator/stats").json())

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._dir.cleanup()


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
    pace: float | None = None  # gradesync's learnt pace at the end (requests/s)

    @property
    def rate(self) -> float:
        return self.changes / self.seconds if self.seconds else float("inf")

    @property
    def admitted(self) -> int:
        return self.graph_requests - self.throttled


def run_gradesync(
    emu: Emulator,
    n: int,
    *,
    throttle: Any = "off",
    latency_ms: float = 0.0,
    in_flight: int = 4,
    page_size: int = 25,
    verify: str = "all",
    label: str = "",
    fresh: bool = False,
) -> Outcome:
    from gradesync.execute.apply import ApplyOptions, apply_plan
    from gradesync.graph import GraphClient, RateLimit
    from gradesync.state.journal import Journal

    emu.setup(throttle=throttle, latency_ms=latency_ms, page_size=page_size)
    plan = bench_plan(emu.state(), n, emu.base_url, fresh=fresh)
    marks: dict[str, float] = {}

    def progress(step: str, done: int, total: int) -> None:
        if step == "writing":
            marks.setdefault("first", time.perf_counter())
            marks["last"] = time.perf_counter()

    options = ApplyOptions(verify=verify)
    rate = RateLimit.off() if throttle == "off" else RateLimit.graph()  # the client knows only Graph's docs
    with (
        tempfile.TemporaryDirectory() as state,
        GraphClient(emu.base_url, lambda: TOKEN, rate_limit=rate, max_in_flight=in_flight) as client,
        Journal.in_dir(state) as journal,
    ):
        # the apply starts on a collected heap: a full collection made due by this benchmark's own
        # setup (the whole tenant read back as Python objects, the plan built from it) would
        # otherwise stop every thread for ~40 ms inside the measured write phase
        gc.collect()
        t0 = time.perf_counter()
        result = apply_plan(plan, client, journal=journal, options=options, progress=progress)
        seconds = time.perf_counter() - t0
        pace = client.pace
    stats = emu.stats()
    done = int(result.rows["status"].isin(["updated", "created"]).sum())
    return Outcome(
        label or f"gradesync ($batch, {in_flight} in flight, verify {verify}, pages of {page_size})",
        n,
        seconds,
        stats["graph_requests"],
        stats["throttled"],
        stats["early_retries"],
        write_seconds=marks.get("last", 0.0) - marks.get("first", 0.0),
        converged=done == n,
        pace=pace,
    )


def run_naive(
    emu: Emulator, n: int, sample: int, *, throttle: Any = "off", latency_ms: float = 0.0
) -> Outcome:
    """One GET + one PATCH/POST per row, in its own process (see :func:`naive_main`)."""
    emu.setup(throttle=throttle, latency_ms=latency_ms)
    rows = bench_plan(emu.state(), n, emu.base_url).rows.head(sample)
    todo = [
        {
            "url": f"/education/classes/{r.class_id}/assignments/{r.assignment_id}"
            f"/submissions/{r.submission_id}/outcomes",
            "outcome_id": r.outcome_id,
            "points": float(r.desired_points),
        }
        for r in rows.itertuples()
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"base_url": emu.base_url, "rows": todo}, f)
    cmd = [sys.executable, "-m", "benchmarks.apply_bench", "naive", f.name]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    stats = emu.stats()
    measured = len(rows)
    # scale the sample's efficiency (not its wall time: the sample starts with a full 350-request
    # burst) up to n rows: full time = ideal(n admitted) x (sample time / ideal(sample admitted))
    admitted = stats["graph_requests"] - stats["throttled"]
    limited = throttle != "off"
    ideal_sample = ideal_limited_seconds(admitted) if limited else 0.0
    if limited and ideal_sample > 0:
        full = ideal_limited_seconds(round(admitted * n / max(1, measured))) * seconds / ideal_sample
    else:
        full = seconds * n / measured if measured else 0.0

    def scaled(x: int) -> int:
        return round(x * n / measured) if measured else 0

    return Outcome(
        "naive (GET + PATCH per row, own process)",
        n,
        full,
        scaled(stats["graph_requests"]),
        scaled(stats["throttled"]),
        scaled(stats["early_retries"]),
        extrapolated_from=measured if measured < n else None,
    )


def naive_main(path: str) -> None:
    """The naive client's process: GET the outcomes, PATCH (or POST) the grade, sleep Retry-After on 429."""
    import httpx

    from gradesync.graph import parse_retry_after

    job = json.loads(Path(path).read_text(encoding="utf-8"))

    def send(http: httpx.Client, method: str, url: str, body: Any = None) -> httpx.Response:
        while True:
            r = http.request(method, url, json=body)
            if r.status_code != 429:
                return r
            time.sleep(parse_retry_after(r.headers.get("retry-after")) or 1.0)

    headers = {"Authorization": f"Bearer {TOKEN}", "Prefer": "include-unknown-enum-members"}
    with httpx.Client(base_url=job["base_url"], headers=headers, timeout=60) as http:
        t0 = time.perf_counter()
        for row in job["rows"]:
            send(http, "GET", row["url"])
            body = {
                "@odata.type": "#microsoft.graph.educationPointsOutcome",
                "points": {
                    "@odata.type": "#microsoft.graph.educationAssignmentPointsGrade",
                    "points": row["points"],
                },
            }
            if row["outcome_id"]:
                send(http, "PATCH", f"{row['url']}/{row['outcome_id']}", body)
            else:
                send(http, "POST", row["url"], body)
        print(json.dumps({"seconds": time.perf_counter() - t0}))


def ideal_limited_seconds(requests: int, per_10s: int = 350, per_hour: int = 10_000) -> float:
    """Least time Graph's two token buckets (full at the start) need to admit ``requests``."""
    return max(0.0, (requests - per_10s) / (per_10s / 10.0), (requests - per_hour) / (per_hour / 3600.0))


def ideal_latency_seconds(n: int, in_flight: int, latency_ms: float = LATENCY_MS) -> float:
    return math.ceil(math.ceil(n / 20) / in_flight) * latency_ms / 1000.0


# --- main ------------------------------------------------------------------------------------------
def measure(scale: float = 1.0, in_flights: tuple[int, ...] = (1, 2, 4, 8)) -> dict[str, Any]:
    n = max(20, round(N_CHANGES * scale))
    emu = Emulator(bench_tenant(n))
    try:
        limited = [
            run_gradesync(emu, n, throttle="graph"),
            run_gradesync(emu, n, throttle="graph", verify="uncertain", page_size=100),
            run_naive(emu, n, min(n, max(20, round(NAIVE_LIMITED * scale))), throttle="graph"),
        ]
        half = [
            run_gradesync(
                emu, n, throttle=HALF, verify="uncertain", page_size=100, label="gradesync (learns the pace)"
            )
        ]
        latency = [
            run_gradesync(
                emu,
                n,
                latency_ms=LATENCY_MS,
                in_flight=k,
                verify="uncertain",
                fresh=True,
                label=f"gradesync ($batch, {k} in flight, on a sync's fresh read)",
            )
            for k in in_flights
        ]
        stale = [
            run_gradesync(
                emu,
                n,
                latency_ms=LATENCY_MS,
                in_flight=k,
                verify="uncertain",
                label=f"gradesync ($batch, {k} in flight, an older reviewed plan: reads each assignment)",
            )
            for k in STALE_IN_FLIGHTS
            if k in in_flights
        ]
        latency.append(
            run_naive(emu, n, min(n, max(10, round(NAIVE_LATENCY * scale))), latency_ms=LATENCY_MS)
        )
        pages = [
            run_gradesync(emu, n, page_size=p, verify=v) for p in (25, 100) for v in ("all", "uncertain")
        ]
    finally:
        emu.close()
    return {
        "n": n,
        "limited": limited,
        "half": half,
        "latency": latency,
        "in_flights": in_flights,
        "stale": stale,
        "pages": pages,
    }


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def main(scale: float = 1.0) -> dict[str, Any]:
    from rich.console import Console

    results = measure(scale)
    console = Console()
    for table in (_limited_table, _half_table, _latency_table, _pages_table):
        console.print(table(results))
    return results


def _limited_table(results: dict[str, Any]) -> Any:
    from rich.table import Table

    n = results["n"]
    t1 = Table(title=f"apply {n:,} changes under Graph's published limits (350/10 s, 10,000/h)")
    for col in (
        "client",
        "wall s",
        "requests/s",
        "bucket-bound s",
        "vs bound",
        "throttled",
        "early",
        "req/change",
    ):
        t1.add_column(col, justify="left" if col == "client" else "right")
    for o in results["limited"]:
        ideal = ideal_limited_seconds(o.admitted)  # throttled answers cost no quota
        label = o.label + (f" [timed on {o.extrapolated_from:,}]" if o.extrapolated_from else "")
        label += "" if o.converged else " NOT CONVERGED"
        t1.add_row(
            label,
            f"{o.seconds:,.1f}",
            f"{o.admitted / o.seconds:,.1f}" if o.seconds else "",
            f"{ideal:,.1f}",
            _pct(ideal, o.seconds) if ideal else "n/a (within burst)",
            f"{o.throttled:,} ({_pct(o.throttled, o.graph_requests)})",
            f"{o.early_retries:,}",
            f"{o.graph_requests / n:.3f}",
        )
    return t1


def _half_table(results: dict[str, Any]) -> Any:
    from rich.table import Table

    n = results["n"]
    t2 = Table(title=f"apply {n:,} changes, Graph limited to half its published rate ({HALF})")
    for col in (
        "client",
        "wall s",
        "admitted/s",
        "bound s",
        "vs bound",
        "throttled",
        "in Retry-After",
        "pace end",
    ):
        t2.add_column(col, justify="left" if col == "client" else "right")
    for o in results["half"]:
        ideal = ideal_limited_seconds(o.admitted, HALF["per_10s"], HALF["per_hour"])
        t2.add_row(
            o.label + ("" if o.converged else " NOT CONVERGED"),
            f"{o.seconds:,.1f}",
            f"{o.admitted / o.seconds:,.1f}" if o.seconds else "",
            f"{ideal:,.1f}",
            _pct(ideal, o.seconds) if ideal else "n/a (within burst)",
            f"{o.throttled:,} ({_pct(o.throttled, o.graph_requests)})",
            f"{o.early_retries:,} ({_pct(o.early_retries, o.graph_requests)})",
            f"{o.pace:.1f}/s" if o.pace is not None else "",
        )
    return t2


def _latency_table(results: dict[str, Any]) -> Any:
    from rich.table import Table

    n = results["n"]
    t3 = Table(title=f"apply {n:,} changes, limits off, {LATENCY_MS:g} ms latency per HTTP request")
    for col in ("client", "wall s", "write phase s", "ideal writes s", "write phase / ideal", "req/change"):
        t3.add_column(col, justify="left" if col == "client" else "right")
    fresh = list(zip(results["in_flights"], results["latency"][:-1], strict=True))
    stale_ks = [k for k in STALE_IN_FLIGHTS if k in results["in_flights"]]
    stale = list(zip(stale_ks, results.get("stale", []), strict=True))
    for k, o in [*fresh, *stale, (None, results["latency"][-1])]:
        if k is None:
            label = o.label + (f" [timed on {o.extrapolated_from:,}]" if o.extrapolated_from else "")
            t3.add_row(label, f"{o.seconds:,.1f}", "", f"{ideal_latency_seconds(n, 1):.2f} (batched)", "", "")
            continue
        ideal = ideal_latency_seconds(n, k)
        ws = o.write_seconds or o.seconds
        t3.add_row(
            o.label + ("" if o.converged else " NOT CONVERGED"),
            f"{o.seconds:,.2f}",
            f"{ws:,.2f}",
            f"{ideal:.2f}",
            f"{ws / ideal:.2f}x" if ideal else "",
            f"{o.graph_requests / n:.3f}",
        )
    return t3


def _pages_table(results: dict[str, Any]) -> Any:
    from rich.table import Table

    n = results["n"]
    t4 = Table(title="Graph requests per change (reads included), by page size and --verify")
    for col in ("client", "requests/change"):
        t4.add_column(col, justify="left" if col == "client" else "right")
    for o in results["pages"]:
        t4.add_row(o.label, f"{o.graph_requests / n:.3f}")
    return t4


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "naive":
        naive_main(sys.argv[2])
    else:
        main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
