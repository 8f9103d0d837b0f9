"""Fault campaign: many seeded ``gradesync sync`` runs of sample_data/ against a faulty, throttling emulator,
with SIGKILLs at random moments followed by ``gradesync apply --resume`` (or a new sync) until done.

Each run *i* of a campaign with seed *S* draws everything from ``random.Random(f"{S}:{i}")``:

* faults (``FaultConfig``): 429 with and without ``Retry-After`` (decimal, whole-second or list form),
  500/502/503/504, dropped connections and applied-then-error answers (writes that happen but are
  answered 429/5xx), slow answers past the client's 1 s timeout — at the HTTP level, inside
  ``$batch`` or both; about 5–25 % of requests in all;
* throttling (``ThrottleConfig``): a tight budget (80–240 requests per 0.3–1 s window) that the
  client's own rate limiter (Graph's 350/10 s) does not know about, so real 429s come back;
* 0–3 SIGKILLs of the ``sync``/``apply`` subprocess at random instants of its expected duration;
* teacher edits: half of the runs start as a review (``gradesync plan``, then ``apply`` of that
  plan), and a teacher grades 1–3 of its rows in between; after any SIGKILL, before the resume, a
  teacher grades 1–3 rows the plan has not written yet (real PATCHes); the apply that follows must
  never overwrite them (it reports them ``conflict``);
* token expiry (the emulator's ``token_lifetime``): tokens live 5–15 s, every
  attempt signs in with a new ``T.<n>``; a run whose token expires stops with its rows carried over
  (exit 3) and the next attempt finishes them;
* deadlines (``[apply] max_duration``): a third of the runs start with a
  0.3–2 s budget; the rows not sent are carried over (exit 6) and ``--resume`` finishes them.

After each run: **convergence** (every valid row's submission holds the desired grade), **no
duplicate** points outcome anywhere, **no wrong grade** (every grade either unchanged or the desired
value of a valid row), and **every input row** in the final ``reconciliation.csv`` with the status
it should have. The expected values come from a fault-free reference plan of the same inputs.
After every attempt: **no teacher edit overwritten** by the attempt that followed it, and **no row
``failed``** (every fault injected here is transient, so a ``failed`` row is one left failed for a
transient reason).

    python -m benchmarks.robustness                 # 50 runs (make robustness)
    python -m benchmarks.robustness --runs 200 --seed 7
    python -m benchmarks.robustness --seed 0 --only 17   # replay one failing run

Exit status 1 when any invariant failed (the failing runs' seeds are printed for ``--only``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from graph_emulator import EmulatorServer, FaultConfig, ThrottleConfig, load_tenant
from graph_emulator.state import iter_submissions

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_data"
# Two of the three sample exports (233 rows, 4 classes' worth of reads): one sync stays under the
# client's own 350-requests-per-10-s limiter, so a run takes seconds, not the limiter's window.
INPUTS = ("sis_long.csv", "gradebook_wide.csv")
TOKEN = "robustness-token"  # noqa: S105 - the local emulator's throwaway token
OK_STATUSES = frozenset({"updated", "created", "unchanged"})
GUARDS = ["--max-changes", "100%", "--max-decreases", "100%"]
CLIENT_TIMEOUT = 1.0  # seconds; "slow" faults answer after SLOW_SECONDS
SLOW_SECONDS = 1.6
CONFIG = f"""\
[graph]
timeout_seconds = {CLIENT_TIMEOUT}
max_attempts = 10
max_retry_seconds = 60
"""
TEACHER_POINTS = 0.25  # what the campaign's "teacher" gives: no sample row asks for it
_MISSING = object()


# ------------------------------------------------------------------ invariants (also used by tests)
def points_by_submission(state: dict[str, Any]) -> dict[str, list[float | None]]:
    """submission id → the points of each of its points outcomes (an emulator state dict)."""
    return {
        sub["id"]: [o.get("points") for o in sub.get("outcomes", []) if o.get("type") == "points"]
        for _, _, sub in iter_submissions(state)
    }


def expected_grades(rows: Any) -> dict[str, float | None]:
    """submission id → the grade a valid row asks for (updates, creates, and no-ops that state one)."""
    out: dict[str, float | None] = {}
    for r in rows.itertuples(index=False):
        if not isinstance(r.submission_id, str) or not r.submission_id:
            continue
        stated = r.action == "noop" and not r.reason and not _nan(r.desired_points)
        if r.action in ("update", "create") or stated:
            out[r.submission_id] = (
                None if bool(r.clear) or _nan(r.desired_points) else float(r.desired_points)
            )
    return out


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING or a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)


def check_grades(
    before: dict[str, Any], after: dict[str, Any], expected: dict[str, float | None], *, converged: bool
) -> list[str]:
    """Problems in the emulator's grades after a run (empty list: none).

    Always: no submission with two points outcomes; every grade is either what it was before or the
    desired grade of a valid row. With ``converged``: every valid row's grade is the desired one.
    """
    problems: list[str] = []
    was = points_by_submission(before)
    now = points_by_submission(after)
    for sid, values in now.items():
        if len(values) > 1:
            problems.append(f"duplicate: submission {sid} has {len(values)} points outcomes {values}")
        old = was.get(sid) or [_MISSING]
        new = values[0] if values else _MISSING
        want = expected.get(sid, _MISSING)
        if not _same(new, old[0]) and not _same(new, want):
            problems.append(f"wrong grade: submission {sid} holds {_show(new)} (was {_show(old[0])})")
        elif converged and sid in expected and not _same(new, want):
            problems.append(f"not converged: submission {sid} holds {_show(new)}, wants {_show(want)}")
    return problems


def _show(value: Any) -> str:
    return "no points outcome" if value is _MISSING else repr(value)


def row_id(r: Any) -> tuple[str, str, int, str]:
    get = r.get if isinstance(r, dict) else lambda k: getattr(r, k)
    sheet = get("source_sheet")
    return (
        Path(str(get("source_file"))).name,
        "" if _nan(sheet) else str(sheet),
        int(float(get("source_row"))),
        str(get("source_column")),
    )


def check_report(report_rows: list[dict[str, str]], reference: Any) -> tuple[int, list[str]]:
    """(rows lost, problems): every reference row in the report, valid rows done, rejected ones rejected."""
    problems: list[str] = []
    got: dict[tuple[str, str, int, str], str] = {}
    for r in report_rows:
        got[row_id(r)] = r.get("status", "")
    lost = 0
    for r in reference.itertuples(index=False):
        key = row_id(r)
        status = got.get(key)
        if not status:
            lost += 1
            problems.append(f"row lost: {key} is not in the reconciliation report")
        elif r.action == "reject" and status != "rejected":
            problems.append(f"row {key}: status {status}, expected rejected")
        elif r.action != "reject" and status not in OK_STATUSES:
            lost += 1
            problems.append(f"row {key}: status {status}, expected it done")
    return lost, problems


def reference_plan(tenant: dict[str, Any], workdir: Path) -> Any:
    """The fault-free plan of the sample inputs against ``tenant`` (in process, real HTTP)."""
    from gradesync.cli.common import graph_client
    from gradesync.config import Settings
    from gradesync.pipeline import make_plan

    with EmulatorServer(tenant, token=TOKEN, throttle=ThrottleConfig.off()) as srv:
        settings = Settings.model_validate({"graph": {"base_url": srv.base_url}})
        with graph_client(settings, token=TOKEN) as client:
            return make_plan([SAMPLES / n for n in INPUTS], settings, client).rows


# ------------------------------------------------------------------ one run
@dataclass
class RunResult:
    index: int
    seed: str
    kills: int = 0
    resumes: int = 0
    syncs: int = 0
    exit_codes: list[int] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    early_retries: int = 0
    graph_requests: int = 0
    rows: int = 0
    valid_rows: int = 0
    rows_converged: int = 0
    duplicates: int = 0
    rows_lost: int = 0
    teacher_edits: int = 0
    edits_overwritten: int = 0
    transient_failed: int = 0  # rows reported `failed` (every fault here is transient)
    carried_runs: int = 0  # attempts whose report carried rows over (a deadline, an expired token)
    token_stops: int = 0  # attempts stopped by an expired token (exit 3 with token expiry on)
    wall: float = 0.0
    problems: list[str] = field(default_factory=list)
    fault_spec: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class CampaignResult:
    seed: int
    runs: list[RunResult]
    wall: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.runs if not r.ok]

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.runs)

    @property
    def faults(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for r in self.runs:
            out.update(r.faults)
        return out


def draw_faults(rng: random.Random, scale: float = 1.0) -> FaultConfig:
    total = rng.uniform(0.05, 0.25) * scale
    kinds = ["429", "429_no_ra", "500", "502", "503", "504", "drop", "applied_error", "slow"]
    weights = [rng.random() for _ in kinds]
    weights[-1] *= 0.25  # a slow answer costs a whole client timeout: keep them rarer
    scale = total / sum(weights)
    rates = {f"rate_{k}": w * scale for k, w in zip(kinds, weights, strict=True)}
    return FaultConfig(
        seed=rng.randrange(1 << 30),
        **rates,
        retry_after=rng.choice([0.05, 0.1, 0.2, 0.3]),
        retry_after_form=rng.choice(["decimal", "decimal", "decimal", "list", "list", "seconds"]),
        slow_seconds=SLOW_SECONDS,
        latency_ms=rng.choice([0, 1, 5]),
        jitter_ms=rng.choice([0, 5]),
        scope=rng.choice(["http", "sub", "both"]),
    )


def draw_throttle(rng: random.Random, per_window: tuple[int, int] = (80, 240)) -> ThrottleConfig:
    """A tight budget: ``per_window`` requests per 0.3–1 s (the client's own limiter knows nothing of it)."""
    return ThrottleConfig(
        per_10s=rng.randint(*per_window), per_hour=1_000_000, short_window=rng.uniform(0.3, 1.0)
    )


def _fault_spec(f: FaultConfig, t: ThrottleConfig) -> str:
    kinds = ("429", "429_no_ra", "500", "502", "503", "504", "drop", "slow", "applied_error")
    rates = ",".join(f"{k}={f.rate(k):.3f}" for k in kinds if f.rate(k))
    return (
        f"faults: seed={f.seed},{rates},retry_after={f.retry_after}/{f.retry_after_form},scope={f.scope}; "
        f"throttle: {t.per_10s} per {t.short_window:.2f}s"
    )


def _read_report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _config(*, window_zero: bool, max_duration: str | None) -> str:
    lines = ['read_write_window = "0s"'] if window_zero else []
    if max_duration:
        lines.append(f'max_duration = "{max_duration}"')
    return CONFIG + ("\n[apply]\n" + "\n".join(lines) + "\n" if lines else "")


def teacher_edits(
    server: EmulatorServer,
    plan_file: Path,
    state_dir: Path,
    rng: random.Random,
    restore: tuple[FaultConfig, ThrottleConfig],
    token: str = TOKEN,
) -> dict[str, float]:
    """While the run is down: a teacher grades 1–3 rows the plan has not written yet (journal
    ``pending``, Teams still at the plan's before-value), over real HTTP with faults off.
    Returns submission id → the teacher's grade."""
    import httpx

    from gradesync.execute.apply import plan_hash
    from gradesync.execute.decide import grade_body
    from gradesync.plan.planfile import read_plan
    from gradesync.state.journal import JOURNAL_NAME, Journal

    if not plan_file.exists():
        return {}
    plan = read_plan(plan_file)
    records = {}
    if (state_dir / JOURNAL_NAME).exists():  # else the plan was never applied: every row is open
        with Journal.in_dir(state_dir) as journal:
            records = journal.ops(plan_hash(plan))
    now = points_by_submission(server.state())
    open_ops = [
        op
        for op in plan.operations()
        if op.action.value in ("update", "create")
        and ((rec := records.get(op.row_key)) is None or rec.status == "pending")
        and now.get(op.submission_id, []) == ([] if op.outcome_id is None else [op.before_points])
    ]
    chosen = rng.sample(open_ops, min(len(open_ops), rng.randint(1, 3)))
    edits: dict[str, float] = {}
    server.configure(faults=None, throttle=ThrottleConfig.off())
    try:
        headers = {"Authorization": f"Bearer {token}"}
        for op in chosen:
            url = f"{server.base_url}{op.submission_path}/outcomes"
            body = grade_body(TEACHER_POINTS)
            if op.outcome_id is None:
                r = httpx.post(url, json=body, headers=headers, timeout=10)
            else:
                r = httpx.patch(f"{url}/{op.outcome_id}", json=body, headers=headers, timeout=10)
            if r.status_code in (200, 201):
                edits[op.submission_id] = TEACHER_POINTS
    finally:
        server.configure(faults=restore[0], throttle=restore[1])
    return edits


def _check_edits(server: EmulatorServer, watched: dict[str, float], result: RunResult) -> None:
    """Count the teacher edits an attempt overwrote (each is judged by the attempt after it)."""
    if not watched:
        return
    now = points_by_submission(server.state())
    for sid, points in watched.items():
        held = now.get(sid, [])
        if not held or not _same(held[0], points):
            result.edits_overwritten += 1
            result.problems.append(f"teacher edit overwritten: submission {sid} holds {held}, not {points}")


def _spawn(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "gradesync", *argv],
            env=env,
            cwd=cwd,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


@dataclass
class _Run:
    """What one run's attempts share (its seeded draws, its directories, its environment)."""

    server: EmulatorServer
    rng: random.Random
    result: RunResult
    faults: FaultConfig
    throttle: ThrottleConfig
    run_dir: Path
    env: dict[str, str]
    window_zero: bool
    budget: str | None
    lifetime: float | None
    duration_hint: float
    need_fresh_sync: bool = True
    watched: dict[str, float] = field(default_factory=dict)  # edits the next attempt must not overwrite

    @property
    def reports(self) -> Path:
        return self.run_dir / "reports"

    @property
    def state(self) -> Path:
        return self.run_dir / "state"

    @property
    def plan_file(self) -> Path:
        return self.reports / "plan.json"

    @property
    def common(self) -> list[str]:
        out = ["--config", str(self.run_dir / "gradesync.toml"), "--report-dir", str(self.reports)]
        return [*out, "--state-dir", str(self.state), "--quiet", *GUARDS]

    def teacher(self, who: str) -> dict[str, float]:
        token = TOKEN if self.lifetime is None else f"{TOKEN}.{who}"
        edits = teacher_edits(
            self.server, self.plan_file, self.state, self.rng, (self.faults, self.throttle), token
        )
        self.result.teacher_edits += len(edits)
        return edits


def _new_run(
    server: EmulatorServer,
    campaign_seed: int,
    index: int,
    workdir: Path,
    rows: int,
    *,
    fault_scale: float,
    per_window: tuple[int, int],
    duration_hint: float,
) -> _Run:
    seed = f"{campaign_seed}:{index}"
    rng = random.Random(seed)
    result = RunResult(index=index, seed=seed, rows=rows)
    faults, throttle = draw_faults(rng, fault_scale), draw_throttle(rng, per_window)
    result.fault_spec = _fault_spec(faults, throttle)
    budget = None
    if rng.random() < 1 / 3:
        budget = f"{rng.uniform(0.3, 2.0):.1f}s"
        result.fault_spec += f"; max_duration {budget} (first attempt)"
    # long enough to plan under heavy throttling (a static token cannot be renewed mid-plan),
    # short enough that an apply often outlives it
    lifetime = rng.uniform(5.0, 15.0)
    result.fault_spec += f"; tokens live {lifetime:.1f}s"
    run_dir = workdir / f"run{index:03d}"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "reports").mkdir(parents=True)
    env = {**os.environ, "GRADESYNC_GRAPH_URL": server.base_url, "GRADESYNC_ACCESS_TOKEN": TOKEN}
    env.pop("GRADESYNC_CLIENT_SECRET", None)
    window_zero = True  # re-read right before every write: the strictest path under faults
    run = _Run(
        server, rng, result, faults, throttle, run_dir, env, window_zero, budget, lifetime, duration_hint
    )
    (run_dir / "gradesync.toml").write_text(_config(window_zero=window_zero, max_duration=None))
    return run


def _review(run: _Run) -> None:
    """Half of the runs: ``gradesync plan`` first, and a teacher grades some rows before the apply."""
    if run.rng.random() >= 0.5:
        return
    argv = ["plan", *(str(SAMPLES / n) for n in INPUTS), "--out", str(run.plan_file)]
    argv += ["--report-dir", str(run.reports / "preview"), "--state-dir", str(run.state), "--quiet"]
    argv += ["--config", str(run.run_dir / "gradesync.toml")]
    if run.lifetime is not None:
        run.env["GRADESYNC_ACCESS_TOKEN"] = f"{TOKEN}.review"
    _spawn(argv, run.env, run.run_dir, run.run_dir / "output.log").wait()
    if run.plan_file.exists():
        run.need_fresh_sync = False
        run.watched = run.teacher("teacher")


def _attempt(run: _Run, attempt: int, kill: bool, reference: Any) -> str:
    """One sync / ``apply --resume``: "again" (another attempt), "done" or "stop" (a problem)."""
    result = run.result
    config = _config(window_zero=run.window_zero, max_duration=run.budget if attempt == 0 else None)
    (run.run_dir / "gradesync.toml").write_text(config, encoding="utf-8")
    if run.lifetime is not None:  # a new sign-in per attempt: T.<n>
        run.env["GRADESYNC_ACCESS_TOKEN"] = f"{TOKEN}.{attempt}"
    if run.need_fresh_sync or not run.plan_file.exists():
        argv = ["sync", *(str(SAMPLES / n) for n in INPUTS), *run.common]
        result.syncs += 1
        run.plan_file.unlink(missing_ok=True)
    else:
        argv = ["apply", str(run.plan_file), "--resume", *run.common]
        result.resumes += 1
    report = run.reports / "reconciliation.csv"
    report.unlink(missing_ok=True)
    t0 = time.monotonic()
    proc = _spawn(argv, run.env, run.run_dir, run.run_dir / "output.log")
    if kill:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=run.rng.uniform(0.1, 0.95) * run.duration_hint)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            result.kills += 1
            proc.wait()
            result.exit_codes.append(-9)
            run.need_fresh_sync = False  # resume the plan if the sync got as far as saving it
            _check_edits(run.server, run.watched, result)
            run.watched.update(run.teacher(f"teacher{attempt}"))
            return "again"
    try:
        code = proc.wait(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        result.problems.append(f"attempt {attempt}: {argv[0]} hung for 240 s")
        return "stop"
    result.exit_codes.append(code)
    run.duration_hint = 0.5 * run.duration_hint + 0.5 * (time.monotonic() - t0)
    _check_edits(run.server, run.watched, result)
    run.watched = {}  # judged: a later sync may legitimately write the gradebook's grade
    return _judge(run, attempt, code, argv[0], reference)


def _judge(run: _Run, attempt: int, code: int, command: str, reference: Any) -> str:
    """What a finished attempt's exit code and report mean for the run."""
    result, report = run.result, run.reports / "reconciliation.csv"
    rows = _read_report(report) if report.exists() else []
    failed = sum(1 for r in rows if r.get("status") == "failed")
    if failed:
        result.transient_failed += failed
        result.problems.append(f"attempt {attempt}: {failed} row(s) left failed for a transient reason")
    if any(r.get("status") == "carried_over" for r in rows):  # exit 6, or 1 beside rejected rows
        result.carried_runs += 1
    if code == 6 and run.plan_file.exists():  # carried over (a deadline): the resume finishes it
        run.need_fresh_sync = False
        return "again"
    if code == 3 and run.lifetime is not None:  # the token expired mid-run: rows carried over
        result.token_stops += 1
        run.need_fresh_sync = not run.plan_file.exists()
        return "again"
    if code not in (0, 1) or not report.exists():
        if code in (3, 70):  # auth or a crash: retrying cannot be the answer
            tail = (run.run_dir / "output.log").read_text(errors="replace")[-1500:]
            result.problems.append(f"attempt {attempt}: {command} exited {code}:\n{tail}")
            return "stop"
        run.need_fresh_sync = True  # e.g. a read failed for good while planning: start over
        return "again"
    if any(r["status"] not in (*OK_STATUSES, "rejected") for r in rows):
        run.need_fresh_sync = True  # rows Graph kept failing: a new sync picks them up
        return "again"
    lost, problems = check_report(rows, reference)
    result.rows_lost = lost
    result.problems += problems
    return "done"


def _final_checks(
    result: RunResult,
    server: EmulatorServer,
    before: dict[str, Any],
    expected: dict[str, float | None],
    reference: Any,
) -> None:
    stats = server.stats()
    result.faults = Counter(stats["faults"])
    result.throttled = int(stats["throttled"])
    result.early_retries = int(stats["early_retries"])
    result.graph_requests = int(stats["graph_requests"])
    after = server.state()
    grade_problems = check_grades(before, after, expected, converged=True)
    result.problems += grade_problems
    result.duplicates = sum(1 for p in grade_problems if p.startswith("duplicate"))
    now = points_by_submission(after)
    valid = [
        r.submission_id
        for r in reference.itertuples(index=False)
        if isinstance(r.submission_id, str) and r.submission_id in expected and r.action != "reject"
    ]
    result.valid_rows = len(valid)
    result.rows_converged = sum(
        1 for sid in valid if len(now.get(sid, [])) == 1 and _same(now[sid][0], expected[sid])
    )


def run_one(
    server: EmulatorServer,
    tenant: dict[str, Any],
    reference: Any,
    expected: dict[str, float | None],
    campaign_seed: int,
    index: int,
    workdir: Path,
    *,
    kills: tuple[int, ...] = (0, 1, 1, 2, 3),
    duration_hint: float = 4.0,
    max_attempts: int = 14,
    fault_scale: float = 1.0,
    per_window: tuple[int, int] = (80, 240),
) -> RunResult:
    """One seeded run: sync, SIGKILLs at random instants, ``--resume`` / new syncs until done; checks."""
    run = _new_run(
        server,
        campaign_seed,
        index,
        workdir,
        len(reference),
        fault_scale=fault_scale,
        per_window=per_window,
        duration_hint=duration_hint,
    )
    planned_kills = run.rng.choice(kills)
    server.reset(tenant)
    server.configure(faults=run.faults, throttle=run.throttle)
    server.configure(token_lifetime=run.lifetime)
    before = server.state()
    started = time.monotonic()
    _review(run)
    outcome = "again"
    for attempt in range(max_attempts):
        outcome = _attempt(run, attempt, attempt < planned_kills, reference)
        if outcome != "again":
            break
    result = run.result
    result.wall = time.monotonic() - started
    if outcome != "done" and not result.problems:
        result.problems.append(f"no attempt completed in {max_attempts} ({result.exit_codes})")
        result.rows_lost = len(reference)
    _final_checks(result, server, before, expected, reference)
    return result


# ------------------------------------------------------------------ the campaign
def campaign(
    runs: int = 50,
    seed: int = 0,
    *,
    only: list[int] | None = None,
    workdir: Path | None = None,
    kills: tuple[int, ...] = (0, 1, 1, 2, 3),
    parallel: int = 4,
    fault_scale: float = 1.0,
    per_window: tuple[int, int] = (80, 240),
    console: Console | None = None,
) -> CampaignResult:
    """Run the campaign (or only the runs numbered ``only``) and return every run's result.

    ``parallel`` runs go at once, each against its own emulator (a run mostly waits: backoff,
    Retry-After, timeouts), so the campaign's wall time is about the sum of the runs / ``parallel``.
    ``fault_scale`` multiplies every fault rate and ``per_window`` bounds the throttle budget: the short
    campaign of the test suite uses gentler values than ``make robustness``.
    """
    tenant = load_tenant(SAMPLES / "tenant.json")
    own_dir = workdir is None
    base = Path(tempfile.mkdtemp(prefix="gradesync-robustness-")) if workdir is None else workdir
    started = time.monotonic()
    out: list[RunResult] = []
    indices = list(only) if only is not None else list(range(runs))
    try:
        reference = reference_plan(tenant, base)
        expected = expected_grades(reference)
        servers: queue.Queue[EmulatorServer] = queue.Queue()
        hint = [4.0]
        print_lock = threading.Lock()

        def one(i: int) -> RunResult:
            server = servers.get()
            try:
                r = run_one(
                    server,
                    tenant,
                    reference,
                    expected,
                    seed,
                    i,
                    base,
                    kills=kills,
                    duration_hint=hint[0],
                    fault_scale=fault_scale,
                    per_window=per_window,
                )
            finally:
                servers.put(server)
            hint[0] = max(1.5, min(10.0, r.wall / max(1, len(r.exit_codes)) * 1.2))
            if console is not None:
                with print_lock:
                    console.print(
                        f"run {i:3d} seed {r.seed:>7}: {'ok' if r.ok else 'FAILED':6} kills={r.kills} "
                        f"resumes={r.resumes} syncs={r.syncs} exits={r.exit_codes} "
                        f"faults={sum(r.faults.values())} throttled={r.throttled} {r.wall:5.1f}s",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
            return r

        with contextlib.ExitStack() as stack:
            for _ in range(max(1, min(parallel, len(indices)))):
                srv = EmulatorServer(tenant, token=TOKEN, throttle=ThrottleConfig.off())
                servers.put(stack.enter_context(srv))
            with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                out = list(pool.map(one, indices))
    finally:
        if own_dir and all(r.ok for r in out):
            shutil.rmtree(base, ignore_errors=True)
    return CampaignResult(seed=seed, runs=out, wall=time.monotonic() - started)


def render(result: CampaignResult, console: Console) -> None:
    table = Table(title=f"Fault campaign (seed {result.seed})", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    faults = result.faults
    table.add_row("runs", str(len(result.runs)))
    table.add_row("faults injected", str(sum(faults.values())))
    for kind in sorted(faults):
        table.add_row(f"  {kind}", str(faults[kind]))
    table.add_row("throttled (429 sent)", str(result.total("throttled")))
    table.add_row("early retries seen by the emulator", str(result.total("early_retries")))
    table.add_row("Graph requests", str(result.total("graph_requests")))
    table.add_row("SIGKILLs", str(result.total("kills")))
    table.add_row("resumes (apply --resume)", str(result.total("resumes")))
    table.add_row("syncs", str(result.total("syncs")))
    table.add_row("rows (all runs)", str(result.total("rows")))
    table.add_row("valid rows (must converge)", str(result.total("valid_rows")))
    table.add_row("rows converged", str(result.total("rows_converged")))
    table.add_row("duplicates (must be 0)", str(result.total("duplicates")))
    table.add_row("rows lost (must be 0)", str(result.total("rows_lost")))
    table.add_row("teacher edits (while a run was down)", str(result.total("teacher_edits")))
    table.add_row("teacher edits overwritten (must be 0)", str(result.total("edits_overwritten")))
    table.add_row(
        "rows left failed for a transient reason (must be 0)", str(result.total("transient_failed"))
    )
    table.add_row("attempts that carried rows over", str(result.total("carried_runs")))
    table.add_row("attempts stopped by an expired token (exit 3)", str(result.total("token_stops")))
    table.add_row("runs failed (must be 0)", str(len(result.failed)))
    table.add_row("wall time", f"{result.wall:.1f} s")
    console.print(table)
    for r in result.failed:
        console.print(
            f"run {r.index} (replay: --seed {result.seed} --only {r.index}) {r.fault_spec}", markup=False
        )
        for p in r.problems[:10]:
            console.print(f"  {p}", markup=False)


def main(
    runs: int = 50,
    seed: int = 0,
    only: list[int] | None = None,
    scale: float | None = None,
    parallel: int = 4,
) -> int:
    if scale is not None:
        runs = max(1, round(runs * scale))
    console = Console(highlight=False)
    result = campaign(runs, seed, only=only, parallel=parallel, console=console)
    render(result, console)
    return 0 if result.ok else 1


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.robustness", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", type=int, action="append", help="replay only run N (repeatable)")
    parser.add_argument("--parallel", type=int, default=4, help="runs at once (each its own emulator)")
    args = parser.parse_args(argv)
    return main(args.runs, args.seed, args.only, parallel=args.parallel)


if __name__ == "__main__":
    sys.exit(cli())
