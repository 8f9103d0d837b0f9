"""End to end: ``gradesync plan`` of 1 M+ grades against a generated tenant, vs a bare ``read_csv``.

Side by side, in one run:

(a) ``pandas.read_csv(dtype=str)`` of the grades file, in this process, over several repetitions
    (median of wall time and CPU) — the floor any planner pays;
(b) ``gradesync plan FILE`` as a subprocess against the emulator in **its own process** (``python -m
    gradesync emulator --generate … --throttle off``; the client's own rate limit off too), measured
    with ``resource.getrusage(RUSAGE_CHILDREN)``: gradesync's CPU time (user + system) and its peak
    RSS (the child's own ``VmHWM``, read by the child as it exits: ``ru_maxrss`` of a child started
    by ``subprocess`` also counts this process's pages at the fork, the generated tenant included,
    so it overstated gradesync's peak). The emulator is still running while gradesync is measured,
    so its CPU is not counted. The plan is run ``--repeat`` times against the same emulator (median
    CPU and wall, the largest peak RSS);
(c) where gradesync's CPU goes, stage by stage: the child wraps the pipeline's stage functions
    (read, resolve, build_plan, encode, digest and guards, write_reports, write_plan) and records the
    process's CPU time (every thread: the Graph client decodes in worker threads) spent in each.

The tenant is ``classes × students × assignments`` (2,000 × 30 × 20 by default); the grades file has
one row per student and graded assignment (1,140,000 rows at full size) with random points.

``python -m benchmarks.plan_e2e [scale] [--repeat N]`` or ``make bench``; ``--profile`` adds a cProfile
of the child's main thread (top functions by cumulative time).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

CLASSES, STUDENTS, ASSIGNMENTS = 2000, 30, 20
AIM_CPU_RATIO, AIM_PEAK_MB = 10.0, 2048
READ_REPEATS = 5
PLAN_REPEATS = 3  # gradesync plan runs at full size (each ~1-2 min)
STAGES_ENV = "GRADESYNC_BENCH_STAGES"  # where the child writes its per-stage CPU seconds
TOKEN = "dev"  # noqa: S105 (the emulator's local test token)
ROOT = Path(__file__).resolve().parent.parent


def sizes(scale: float) -> tuple[int, int, int]:
    return max(1, round(CLASSES * scale)), STUDENTS, ASSIGNMENTS


def write_grades(classes: int, students: int, assignments: int, seed: int, path: Path) -> int:
    """The grades file for the generated tenant (same arguments as the emulator's ``--generate``)."""
    from graph_emulator.generate import generate_tenant

    tenant = generate_tenant(classes=classes, students=students, assignments=assignments, seed=seed)
    users = {u["id"]: u for u in tenant["users"]}
    rng = random.Random(seed)
    cls_col, asg_col, stu_col, pts_col = [], [], [], []
    for c in tenant["classes"]:
        keys = []
        for uid in c["members"]:
            u = users[uid]
            if u.get("primaryRole") != "student":
                continue
            sis = (u.get("student") or {}).get("externalId")
            keys.append(sis or u["userPrincipalName"])
        for a in c["assignments"]:
            grading = a.get("grading")
            if not grading or a.get("status") == "draft":
                continue
            top = int(grading["maxPoints"])
            for key in keys:
                cls_col.append(c["externalId"])
                asg_col.append(a["displayName"])
                stu_col.append(key)
                pts_col.append(str(rng.randint(0, top)))
    frame = pd.DataFrame(
        {"section_id": cls_col, "assignment": asg_col, "student_id": stu_col, "points": pts_col}
    )
    frame.to_csv(path, index=False)
    return len(frame)


def bare_read_csv(path: Path, repeats: int = READ_REPEATS) -> dict[str, float]:
    """Median wall and CPU seconds of ``read_csv(dtype=str)`` over ``repeats`` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        del frame
    return {
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "min": min(walls),
        "max": max(walls),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def emulator(classes: int, students: int, assignments: int, seed: int, page_size: int) -> Any:
    """The emulator in its own process, throttling off; yields its base URL once it answers."""
    port = _free_port()
    spec = f"classes={classes},students={students},assignments={assignments},seed={seed}"
    cmd = [sys.executable, "-m", "gradesync", "emulator", "--generate", spec, "--port", str(port)]
    cmd += ["--throttle", "off", "--page-size", str(page_size), "--token", TOKEN]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a pipe nobody reads could fill up
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
        try:
            _wait_until_it_answers(proc, base, log)
            yield f"{base}/v1.0"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _wait_until_it_answers(proc: subprocess.Popen[bytes], base: str, log: Any) -> None:
    """Ready when it answers (an event, not a guess at a delay)."""
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the emulator exited: {log.read().decode(errors='replace')[-2000:]}")
        try:
            httpx.get(f"{base}/_emulator/stats", timeout=1.0).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def run_plan(base_url: str, csv: Path, work: Path, *, profile: bool = False) -> dict[str, Any]:
    """``gradesync plan`` in a subprocess; its CPU and peak RSS from ``RUSAGE_CHILDREN``."""
    stages_file = work / "stages.json"
    env = {**os.environ, "GRADESYNC_ACCESS_TOKEN": TOKEN, "GRADESYNC_GRAPH_BASE_URL": base_url}
    env[STAGES_ENV] = str(stages_file)
    args = ["plan", str(csv), "--out", str(work / "plan.json"), "--report-dir", str(work / "reports")]
    args += ["--state-dir", str(work / "state"), "--quiet"]
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.plan_e2e",
        "--gradesync",
        *(["--profile"] if profile else []),
        *args,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # 1: some rows need attention (the generated tenant has a few)
        raise RuntimeError(f"gradesync plan exited {proc.returncode}: {proc.stderr[-3000:]}")
    plan = json.loads((work / "plan.json").read_text(encoding="utf-8"))
    stages = json.loads(stages_file.read_text(encoding="utf-8"))
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_mb": stages.pop(PEAK_KEY) / 1024,  # KiB: the child's VmHWM (see the module docstring)
        "exit_code": proc.returncode,
        "rows": plan["summary"]["rows"],
        "actions": plan["summary"]["actions"],
        "plan_mb": (work / "plan.json").stat().st_size / 1e6,
        "stages": stages,
        "profile": proc.stdout[-6000:] if profile else "",
    }


def _median_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure per measure over the repetitions: median CPU, wall and stage CPU; the largest RSS."""
    out = dict(runs[-1])
    out["repeats"] = len(runs)
    for key in ("cpu", "wall"):
        out[key] = statistics.median(r[key] for r in runs)
        out[f"{key}_range"] = (min(r[key] for r in runs), max(r[key] for r in runs))
    out["peak_mb"] = max(r["peak_mb"] for r in runs)
    out["stages"] = {k: statistics.median(r["stages"].get(k, 0.0) for r in runs) for k in runs[0]["stages"]}
    return out


def measure(
    scale: float = 1.0,
    *,
    seed: int = 1,
    page_size: int = 100,
    profile: bool = False,
    repeats: int | None = None,
) -> dict[str, Any]:
    classes, students, assignments = sizes(scale)
    repeats = repeats or (PLAN_REPEATS if scale >= 0.5 else 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        csv = work / "grades.csv"
        rows = write_grades(classes, students, assignments, seed, csv)
        read = bare_read_csv(csv)
        with emulator(classes, students, assignments, seed, page_size) as base_url:
            runs = [run_plan(base_url, csv, work, profile=profile and i == 0) for i in range(repeats)]
        return {
            "tenant": f"{classes:,} classes × {students} students × {assignments} assignments",
            "rows": rows,
            "csv_mb": csv.stat().st_size / 1e6,
            "read": read,
            "page_size": page_size,
            **_median_runs(runs),
            "profile": runs[0]["profile"],
        }


def table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    read_cpu, read_wall = result["read"]["cpu"], result["read"]["wall"]
    cpu_ratio = result["cpu"] / read_cpu if read_cpu else float("inf")
    actions = ", ".join(f"{k} {v:,}" for k, v in result["actions"].items())
    t = Table(
        title=f"`gradesync plan` of {result['rows']:,} grades end to end ({result['tenant']}, emulator in "
        f"its own process, limits off, page size {result['page_size']})",
        caption=f"plan: {actions}; exit {result['exit_code']}. Bounds: gradesync CPU ≤ {AIM_CPU_RATIO:g}× "
        f"read_csv CPU, peak RSS ≤ {AIM_PEAK_MB:,} MB.",
    )
    for col in (
        "step",
        "rows",
        "wall s",
        "CPU s",
        "× read_csv CPU",
        "of bound",
        "peak RSS",
        "of bound",
        "note",
    ):
        t.add_column(col, justify="left" if col in ("step", "note") else "right")
    t.add_row(
        "read_csv (dtype=str)",
        f"{result['rows']:,}",
        f"{read_wall:.2f}",
        f"{read_cpu:.2f}",
        "1.0",
        "",
        "",
        "",
        f"median of {READ_REPEATS} (wall {result['read']['min']:.2f}–{result['read']['max']:.2f} s); "
        f"{result['csv_mb']:.0f} MB CSV",
    )
    lo, hi = result["cpu_range"]
    t.add_row(
        "gradesync plan",
        f"{result['rows']:,}",
        f"{result['wall']:.1f}",
        f"{result['cpu']:.1f}",
        f"{cpu_ratio:.1f}",
        f"{cpu_ratio / AIM_CPU_RATIO:.0%}",
        f"{result['peak_mb']:,.0f} MB",
        f"{result['peak_mb'] / AIM_PEAK_MB:.0%}",
        f"subprocess: CPU RUSAGE_CHILDREN, RSS its VmHWM; median of {result['repeats']} "
        f"(CPU {lo:.1f}–{hi:.1f} s); "
        f"plan file {result['plan_mb']:.0f} MB",
    )
    stages = result["stages"]
    for name, seconds in stages.items():
        t.add_row(
            f"  {name}",
            "",
            "",
            f"{seconds:.2f}",
            f"{seconds / read_cpu:.1f}" if read_cpu else "",
            "",
            "",
            "",
            STAGE_NOTES.get(name, ""),
        )
    rest = result["cpu"] - sum(stages.values())
    t.add_row(
        "  start-up, CLI, the rest", "", "", f"{rest:.2f}", f"{rest / read_cpu:.1f}" if read_cpu else ""
    )
    return t


def main(scale: float = 1.0, *, profile: bool = False, repeats: int | None = None) -> dict[str, Any]:
    from rich.console import Console

    result = measure(scale, profile=profile, repeats=repeats)
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 170)
    console.print(table(result))
    if result["profile"]:
        console.print(result["profile"], markup=False, highlight=False)
    return result


def _exit_code(code: Any) -> int:
    return code if isinstance(code, int) else (0 if code is None else 2)


# The pipeline's stage functions the child times, in pipeline order: (name in the table, attribute).
STAGES: list[tuple[str, str]] = [
    ("read", "read_inputs"),
    ("resolve (Graph reads → columns)", "resolve"),
    ("build_plan", "build_plan"),
    ("encode (the plan's columns)", "encode_columns"),
    ("digest", "plan_digest"),
    ("guards", "plan_verdict"),
    ("write_reports", "write_reports"),
    ("write_plan", "write_plan"),
]
STAGE_NOTES = {
    "encode (the plan's columns)": "once, for the digest and the plan file both",
    "resolve (Graph reads → columns)": "every thread: the client decodes Graph's JSON in its workers",
    "build_plan": "see plan_bench for build_plan alone",
}


def _time_stages(stages_file: str) -> None:
    """Wrap the pipeline's stage functions so the process's CPU time in each is recorded (every
    thread counts: ``time.process_time``), written to ``stages_file`` when the child exits."""
    import atexit
    import functools

    from gradesync import pipeline

    spent = {name: 0.0 for name, _ in STAGES}

    def timed(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            c0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - c0

        return wrapper

    for name, attr in STAGES:
        setattr(pipeline, attr, timed(name, getattr(pipeline, attr)))

    def record() -> None:
        spent[PEAK_KEY] = _peak_kib()
        Path(stages_file).write_text(json.dumps(spent), encoding="utf-8")

    atexit.register(record)


PEAK_KEY = "peak_kib"


def _peak_kib() -> float:
    """This process's peak resident set (``VmHWM``, KiB) since its exec: not the parent's pages."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def _as_gradesync(args: list[str]) -> int:
    """The child: ``gradesync ARGS`` itself, with the client's rate limit off (the emulator's is off too)."""
    from gradesync.graph import ratelimit

    ratelimit.RateLimit.graph = classmethod(lambda cls: cls(enabled=False))  # type: ignore[assignment,method-assign]
    if os.environ.get(STAGES_ENV):
        _time_stages(os.environ[STAGES_ENV])
    from gradesync.cli import main as gradesync_main

    profile = args[:1] == ["--profile"]
    sys.argv = ["gradesync", *(args[1:] if profile else args)]
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    code = 0
    try:
        gradesync_main()
    except SystemExit as exc:
        code = _exit_code(exc.code)
    if prof is not None:
        import io
        import pstats

        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(45)
        print(out.getvalue())
    return code


if __name__ == "__main__":
    if sys.argv[1:2] == ["--gradesync"]:
        sys.exit(_as_gradesync(sys.argv[2:]))
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plan_e2e", description=__doc__)
    parser.add_argument("scale", nargs="?", type=float, default=1.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=None, help=f"plan runs (default {PLAN_REPEATS} at scale ≥ 0.5, else 1)"
    )
    ns = parser.parse_args()
    main(ns.scale, profile=ns.profile, repeats=ns.repeat)
