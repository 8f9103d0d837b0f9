"""Planning 1,200,000 desired grades (2,000 classes × 30 students × 20 assignments) from a Snapshot.

Side by side, in one run:

(a) ``pandas.read_csv(dtype=str)`` of the same grades as a long CSV — the floor any planner pays
    (wall and CPU time, each the median of ``READ_REPEATS`` runs);
(b) ``gradesync.plan.build_plan`` — wall and CPU time (each the median of ``PLAN_REPEATS`` runs in a
    fresh subprocess that builds the inputs and plans), and the peak memory of its first run (the
    inputs' own size is shown separately);
(c) a naive row-by-row planner (dict lookups per row), timed on a sample and extrapolated.

The aim is build_plan ≤ ``AIM_RATIO``× read_csv; the table gives the ratio by CPU (the figure: the
machine may be shared, so wall times are noisy) and by wall, and the CPU ratio's share of the bound.

``python -m benchmarks.plan_bench [scale]`` or ``make bench``. ``scale`` multiplies the number of classes.
"""

from __future__ import annotations

import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CLASSES, STUDENTS, ASSIGNMENTS = 2000, 30, 20
NAIVE_SAMPLE = 100_000
AIM_RATIO, AIM_PEAK_MB = 3.0, 2048
READ_REPEATS = 7
PLAN_REPEATS = 5


def _strs(prefix: str, values: np.ndarray, width: int = 0) -> np.ndarray:
    return np.array([f"{prefix}{v:0{width}d}" for v in values.tolist()], dtype=object)


def make_inputs(scale: float = 1.0, seed: int = 7) -> tuple[Any, pd.DataFrame]:
    """A Snapshot and a desired frame (DESIRED_COLUMNS).

    About 60% of the grades are unchanged, 30% changed, 8% new (no points outcome) and 2% rejected.
    """
    from gradesync.models import DESIRED_CODED, DESIRED_COLUMNS, Snapshot

    rng = np.random.default_rng(seed)
    n_c = max(1, round(CLASSES * scale))
    c = np.arange(n_c)
    class_ids = _strs("cls-", c)
    classes = pd.DataFrame(
        {
            "class_key": _strs("SEC-", c, 5),
            "class_id": class_ids,
            "class_name": _strs("Section ", c),
        },
        dtype=object,
    )
    mc = np.repeat(c, STUDENTS)
    ms = np.tile(np.arange(STUDENTS), n_c)
    uid_num = mc * STUDENTS + ms
    user_ids = _strs("usr-", uid_num)
    sis = _strs("S", uid_num, 7)
    members = pd.DataFrame(
        {
            "class_id": class_ids[mc],
            "user_id": user_ids,
            "display_name": _strs("Student ", uid_num),
            "upn": _strs("s", uid_num) + "@school.test",
            "mail": _strs("s", uid_num) + "@school.test",
            "sis_id": sis,
            "external_id": np.full(len(mc), None, dtype=object),
            "student_number": _strs("N", uid_num),
            "primary_role": np.full(len(mc), "student", dtype=object),
        },
        dtype=object,
    )
    ac = np.repeat(c, ASSIGNMENTS)
    ak = np.tile(np.arange(ASSIGNMENTS), n_c)
    asg_names = np.array([f"Assignment {k + 1}" for k in range(ASSIGNMENTS)], dtype=object)
    asg_ids = _strs("asg-", ac * ASSIGNMENTS + ak)
    assignments = pd.DataFrame(
        {
            "class_id": pd.Series(class_ids[ac], dtype=object),
            "assignment_id": pd.Series(asg_ids, dtype=object),
            "display_name": pd.Series(asg_names[ak], dtype=object),
            "status": pd.Series(np.full(len(ac), "assigned", dtype=object), dtype=object),
            "graded": np.ones(len(ac), dtype=bool),
            "max_points": np.full(len(ac), 100.0),
        }
    )
    # one submission per (assignment, student of its class)
    n = n_c * ASSIGNMENTS * STUDENTS
    sa = np.repeat(np.arange(len(ac)), STUDENTS)  # assignment row
    su = (ac[sa] * STUDENTS) + np.tile(np.arange(STUDENTS), len(ac))  # member row
    has_outcome = rng.random(n) < 0.92
    current = np.where(has_outcome, rng.integers(0, 101, n).astype("float64"), np.nan)
    sub_ids = _strs("sub-", np.arange(n))
    outcome_ids = np.where(has_outcome, _strs("out-", np.arange(n)), None).astype(object)
    submissions = pd.DataFrame(
        {
            "class_id": pd.Series(class_ids[ac[sa]], dtype=object),
            "assignment_id": pd.Series(asg_ids[sa], dtype=object),
            "submission_id": pd.Series(sub_ids, dtype=object),
            "user_id": pd.Series(user_ids[su], dtype=object),
            "recipient_type": pd.Series(np.full(n, "individual", dtype=object), dtype=object),
            "status": pd.Series(np.full(n, "working", dtype=object), dtype=object),
            "outcome_id": pd.Series(outcome_ids, dtype=object),
            "points": current,
            "last_modified": pd.Series(
                np.where(has_outcome, "2024-05-01T10:00:00Z", None).astype(object), dtype=object
            ),
        }
    )
    # as resolve hands them over: the repeated ids coded (categoricals), the unique ones as text
    coded = ("class_id", "assignment_id", "user_id", "recipient_type", "status")
    submissions = submissions.astype(dict.fromkeys(coded, "category"))
    snapshot = Snapshot(classes=classes, members=members, assignments=assignments, submissions=submissions)

    roll = rng.random(n)
    desired_pts = np.where(roll < 0.6, current, rng.integers(0, 101, n).astype("float64"))
    desired_pts = np.where(np.isnan(desired_pts), rng.integers(0, 101, n).astype("float64"), desired_pts)
    student_key = sis[su].copy()
    bad = roll > 0.99  # ~1%: a student key nobody has
    student_key[bad] = "X" + student_key[bad]
    desired_pts[(roll > 0.98) & (roll <= 0.99)] = 150.0  # ~1%: above the maximum
    points_raw = np.array([format_int(v) for v in desired_pts.tolist()], dtype=object)
    cols: dict[str, Any] = {
        "row_key": np.arange(n, dtype="int64"),
        "source_file": np.full(n, "grades.csv", dtype=object),
        "source_sheet": np.full(n, "", dtype=object),
        "source_row": np.arange(n, dtype="int64") + 2,
        "source_column": np.full(n, "points", dtype=object),
        "class_key": classes["class_key"].to_numpy(dtype=object)[ac[sa]],
        "assignment_key": asg_names[ak[sa]],
        "student_key": student_key,
        "points_raw": points_raw,
        "desired_points": desired_pts,
        "clear": np.zeros(n, dtype=bool),
        "excuse": np.zeros(n, dtype=bool),
        "points_possible": np.full(n, np.nan),
        "points_unit": np.full(n, "points", dtype=object),
        "points_denominator": np.full(n, np.nan),
        "maximum_rule": np.full(n, "", dtype=object),
        "percent_twin": np.full(n, "", dtype=object),
        "student_ids": np.full(n, "", dtype=object),
        "reason": np.full(n, "", dtype=object),
        "message": np.full(n, "", dtype=object),
        "note": np.full(n, "", dtype=object),
    }
    desired = pd.DataFrame({k: pd.Series(cols[k], dtype=t) for k, t in DESIRED_COLUMNS.items()})
    # as the read stage hands them over: the keys coded (categoricals of the same text)
    desired = desired.astype(dict.fromkeys(DESIRED_CODED, "category"))
    return snapshot, desired


def format_int(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


def write_csv(desired: pd.DataFrame, path: Path) -> None:
    desired[["class_key", "assignment_key", "student_key", "points_raw"]].rename(
        columns={
            "class_key": "class",
            "assignment_key": "assignment",
            "student_key": "student",
            "points_raw": "points",
        }
    ).to_csv(path, index=False)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _status_mb(field: str) -> float | None:
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the process's peak RSS (Linux ``clear_refs``), so the peak is that of planning alone."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(scale: float, repeats: int = PLAN_REPEATS) -> dict[str, Any]:
    """Run in a fresh process: build the inputs, then plan them ``repeats`` times; return the figures
    (the medians of wall and CPU time; the peak memory of the first run)."""
    import gc

    from gradesync.config import Settings
    from gradesync.plan import build_plan

    snapshot, desired = make_inputs(scale)
    gc.collect()
    before_mb = _status_mb("VmRSS") or _maxrss_mb()
    reset = _reset_peak()
    walls, cpus, peak, counts, rows = [], [], 0.0, {}, 0
    for run in range(max(1, repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        plan = build_plan(
            desired, snapshot, Settings(), created_at="2024-06-01T00:00:00Z", graph_base_url="x", inputs=[]
        )
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if run == 0:
            peak = (_status_mb("VmHWM") if reset else None) or _maxrss_mb()
            counts, rows = plan.counts(), len(plan.rows)
        del plan
        gc.collect()
    return {
        "rows": rows,
        "seconds": statistics.median(walls),
        "cpu_seconds": statistics.median(cpus),
        "cpu_range": (min(cpus), max(cpus)),
        "repeats": len(walls),
        "peak_mb": peak,
        "inputs_mb": before_mb,
        "peak_is_planning_only": reset,
        "counts": counts,
    }


def naive_indexes(snapshot: Any) -> tuple[dict, dict, dict, dict]:
    """The dicts a row-by-row planner looks rows up in (built once)."""
    classes = {r.class_key: r.class_id for r in snapshot.classes.itertuples()}
    assignments = {
        (r.class_id, r.display_name): (r.assignment_id, r.max_points)
        for r in snapshot.assignments.itertuples()
    }
    students = {(r.class_id, r.sis_id): r.user_id for r in snapshot.members.itertuples()}
    subs = {(r.assignment_id, r.user_id): (r.outcome_id, r.points) for r in snapshot.submissions.itertuples()}
    return classes, assignments, students, subs


def naive_plan(indexes: tuple[dict, dict, dict, dict], desired: pd.DataFrame) -> list[tuple[str, str]]:
    """The obvious implementation: a Python loop with dict lookups per row (for comparison only)."""
    classes, assignments, students, subs = indexes
    out = []
    for r in desired.itertuples():
        cid = classes.get(r.class_key)
        if cid is None:
            out.append(("reject", "unknown_class"))
            continue
        a = assignments.get((cid, r.assignment_key))
        if a is None:
            out.append(("reject", "unknown_assignment"))
            continue
        uid = students.get((cid, r.student_key))
        if uid is None:
            out.append(("reject", "unknown_student"))
            continue
        s = subs.get((a[0], uid))
        if s is None:
            out.append(("reject", "no_submission"))
        elif r.desired_points > a[1]:
            out.append(("reject", "above_max_points"))
        elif not math.isnan(s[1]) and round(s[1], 2) == round(r.desired_points, 2):
            out.append(("noop", ""))
        else:
            out.append(("update" if s[0] is not None else "create", ""))
    return out


def measure(scale: float = 1.0) -> dict[str, Any]:
    snapshot, desired = make_inputs(scale)
    n = len(desired)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "grades_long.csv"
        write_csv(desired, csv)
        csv_mb = csv.stat().st_size / 1e6
        timings, cpu_timings = [], []
        for _ in range(READ_REPEATS):  # one timing is noise: the median of several
            t0, c0 = time.perf_counter(), time.process_time()
            frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
            timings.append(time.perf_counter() - t0)
            cpu_timings.append(time.process_time() - c0)
            assert len(frame) == n
            del frame
        read_s, read_cpu = statistics.median(timings), statistics.median(cpu_timings)
    sample = desired.iloc[: min(NAIVE_SAMPLE, n)]
    t0 = time.perf_counter()
    indexes = naive_indexes(snapshot)
    naive_index_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_plan(indexes, sample)
    naive_sample_s = time.perf_counter() - t0
    del indexes
    del snapshot, desired
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import json, benchmarks.plan_bench as b; print(json.dumps(b.child({scale!r})))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    built = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "rows": n,
        "csv_mb": csv_mb,
        "read_csv_s": read_s,
        "read_csv_range": (min(timings), max(timings)),
        "read_csv_cpu_s": read_cpu,
        "build_plan_s": built["seconds"],
        "build_plan_cpu_s": built["cpu_seconds"],
        "build_plan_cpu_range": built["cpu_range"],
        "build_plan_repeats": built["repeats"],
        "peak_is_planning_only": built["peak_is_planning_only"],
        "build_plan_peak_mb": built["peak_mb"],
        "inputs_mb": built["inputs_mb"],
        "counts": built["counts"],
        "naive_sample_rows": len(sample),
        "naive_sample_s": naive_sample_s,
        "naive_index_s": naive_index_s,
        "naive_s": naive_index_s + naive_sample_s * n / max(len(sample), 1),
    }


def _ratio(value: float, floor: float) -> float:
    return value / floor if floor else float("inf")


def table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    n, read_s, read_cpu = result["rows"], result["read_csv_s"], result["read_csv_cpu_s"]
    cpu_ratio = _ratio(result["build_plan_cpu_s"], read_cpu)
    counts = ", ".join(f"{k} {v:,}" for k, v in result["counts"].items())
    verdict = "met" if cpu_ratio <= AIM_RATIO else "not met"
    t = Table(
        title=f"Planning {n:,} desired grades from a Snapshot",
        caption=f"plan: {counts}. Aim: build_plan ≤ {AIM_RATIO:g}× read_csv by CPU ({verdict}: "
        f"{cpu_ratio:.2f}×), peak < {AIM_PEAK_MB:,} MB.",
    )
    numeric = ("rows", "wall s", "CPU s", "× read_csv CPU", "× read_csv wall", "of bound", "memory")
    for col in ("step", *numeric, "note"):
        t.add_column(col, justify="right" if col in numeric else "left")
    low, high = result["read_csv_range"]
    t.add_row(
        "read_csv (dtype=str)",
        f"{n:,}",
        f"{read_s:.3f}",
        f"{read_cpu:.3f}",
        "1.0",
        "1.0",
        "",
        "",
        f"{result['csv_mb']:.0f} MB long CSV; median of {READ_REPEATS} (wall {low:.3f}–{high:.3f} s)",
    )
    peak_note = "peak RSS of the first run" if result["peak_is_planning_only"] else "max RSS of the process"
    c_low, c_high = result["build_plan_cpu_range"]
    t.add_row(
        "build_plan",
        f"{n:,}",
        f"{result['build_plan_s']:.3f}",
        f"{result['build_plan_cpu_s']:.3f}",
        f"{cpu_ratio:.2f}",
        f"{_ratio(result['build_plan_s'], read_s):.2f}",
        f"{cpu_ratio / AIM_RATIO:.0%}",
        f"{result['build_plan_peak_mb']:,.0f} MB",
        f"median of {result['build_plan_repeats']} (CPU {c_low:.3f}–{c_high:.3f} s); {peak_note} "
        f"(inputs alone {result['inputs_mb']:,.0f} MB)",
    )
    t.add_row(
        "naive row-by-row",
        f"{n:,}",
        f"{result['naive_s']:.2f}",
        "",
        "",
        f"{_ratio(result['naive_s'], read_s):.1f}",
        "",
        "",
        f"extrapolated: dicts {result['naive_index_s']:.2f} s + loop over "
        f"{result['naive_sample_rows']:,} rows {result['naive_sample_s']:.2f} s, scaled linearly",
    )
    return t


def main(scale: float = 1.0) -> dict[str, Any]:
    from rich.console import Console

    result = measure(scale)
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 190)  # plain logs: keep each row on one line
    console.print(table(result))
    return result


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
