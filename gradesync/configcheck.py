"""``gradesync config check``'s logic: is this configuration usable, and what would a sync do?

It prints every effective setting with where it came from (default, file, environment variable) —
secrets only as "set"/"not set" —, tries one cheap Graph read (``GET /education/classes?$top=1``) and
says what a ``sync`` would do with these settings. ``gradesync.cli.configcheck`` is the thin command.

Result: 0 usable; 1 Graph answered with an error; 2 configuration error (raised); 3 no token,
sign-in failed, or Graph refused the token; 7 Graph could not be reached.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from gradesync.config import LoadedSettings, Settings
from gradesync.errors import AuthError, ExitCode, GradesyncError, TransientGraphError
from gradesync.guards import COVERAGE_FLOOR
from gradesync.logs import SECRET_ENV
from gradesync.pipeline import NETWORK_CODES, make_client, network_error
from gradesync.state.runs import default_runs_dir

__all__ = [
    "PROBE_PATH",
    "describe_sync",
    "probe_graph",
    "run_check",
    "secret_status",
]

PROBE_PATH = "education/classes"


def secret_status(settings: Settings, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Each secret source as "set" / "not set" (a file: whether it exists) — never a value."""
    env = os.environ if environ is None else environ
    status = {name: "set" if env.get(name, "").strip() else "not set" for name in SECRET_ENV}
    for key in ("client_secret_file", "certificate_path"):
        value = getattr(settings.auth, key)
        if value:
            exists = Path(value).expanduser().is_file()
            status[f"auth.{key}"] = f"{value} ({'exists' if exists else 'MISSING'})"
    return status


def describe_sync(settings: Settings, *, state_dir: str, runs_dir: str | None) -> list[str]:
    """What ``gradesync sync`` would do with these settings, in sentences an operator can check."""
    i, m, p, r, a = settings.input, settings.match, settings.policy, settings.run, settings.apply
    columns = {
        "class": i.class_column,
        "assignment": i.assignment_column,
        "student": i.student_column,
        "points": i.points_column,
    }
    named = ", ".join(f"{k}={v!r}" for k, v in columns.items() if v) or "the documented header aliases"
    runs = runs_dir or r.runs_dir or str(default_runs_dir(state_dir))
    lines = [
        f"read: layout {i.layout}; columns by {named}"
        + (f"; sheet {i.sheet!r}" if i.sheet else "")
        + (f"; wide files belong to class {i.class_key!r}" if i.class_key else ""),
        f"match: classes by {m.class_by}, assignments by {m.assignment_by}, "
        f"students by {' then '.join(m.student_by)} (first that finds someone wins)",
        f"policy: {p.precision} decimals; {p.clear_token!r} clears a grade (only with --allow-clear); "
        f"points above the maximum: {p.above_max}; grades for excused submissions: {p.excused}; "
        + ("strict (any rejected row refuses the whole sync)" if p.strict else "not strict"),
    ]
    for key in ("teacher_override", "excused_marks", "excuse_feedback"):  # newer policies, when present
        if hasattr(p, key):
            lines.append(f"policy.{key}: {getattr(p, key)!r}")
    lines += [
        f"guards ([apply], the command line overrides them): --max-changes {a.max_changes}, "
        f"--max-decreases {a.max_decreases}, --min-coverage {a.min_coverage} "
        + (
            "(always: a full export)"
            if a.expect_full
            else f"(for inputs naming more than {COVERAGE_FLOOR} students)"
        )
        + f", --max-plan-age {a.max_plan_age} (and never a plan dated in the future); "
        + ("clearing grades allowed" if a.allow_clear else "clearing grades refused unless --allow-clear"),
        f"writes: conflicts {a.on_conflict}; read-back {a.verify}; no write on a read older than "
        f"{a.read_write_window}"
        + (f"; stop sending before {a.deadline}" if a.deadline else "")
        + (f"; stop sending after {a.max_duration}" if a.max_duration else ""),
        f"graph: {settings.graph.base_url}; {settings.graph.max_attempts} tries per request within "
        f"{settings.graph.max_retry_seconds:g} s; {a.max_in_flight} $batch requests in flight",
        f"sign-in: {settings.auth.mode}"
        + (" (GRADESYNC_ACCESS_TOKEN is set and wins)" if os.environ.get("GRADESYNC_ACCESS_TOKEN") else ""),
        f"state (journal, lock): {state_dir}; runs: {runs} (keeping the newest {r.keep_runs})",
        f"log: {r.log_format} at {r.log_level} in each run's gradesync.log"
        + (f"; notify: {r.notify}" if r.notify else ""),
    ]
    return lines


def probe_graph(settings: Settings) -> str:
    """One cheap read. Retries are cut short: a check should answer in seconds, not minutes."""
    graph = settings.graph.model_copy(update={"max_attempts": 2, "max_retry_seconds": 10.0})
    quick = settings.model_copy(update={"graph": graph})
    with make_client(quick, max_in_flight=1) as client:
        page = client.get(PROBE_PATH, params={"$top": 1})
    classes = page.get("value") or []
    return f"ok: GET /{PROBE_PATH}?$top=1 answered ({len(classes)} class{'es' if len(classes) != 1 else ''})"


def run_check(
    loaded: LoadedSettings, *, graph: bool, state_dir: str, runs_dir: str | None, say: Callable[[str], None]
) -> int:
    settings = loaded.settings
    say(f"configuration: {loaded.path if loaded.path else 'no file (defaults and environment only)'}: valid")
    say("settings (value  ← source):")
    data = settings.model_dump(mode="json")
    for section, values in data.items():
        for name, value in values.items():
            key = f"{section}.{name}"
            say(f"  {key} = {value!r}  ← {loaded.sources.get(key, 'default')}")
    say("secrets:")
    for name, state in secret_status(settings).items():
        say(f"  {name}: {state}")
    say("a sync would:")
    for line in describe_sync(settings, state_dir=state_dir, runs_dir=runs_dir):
        say(f"  {line}")
    if not graph:
        say("graph: not tried (--no-graph)")
        return int(ExitCode.OK)
    try:
        say(f"graph: {probe_graph(settings)}")
    except AuthError as e:
        say(f"graph: FAILED [{e.code}] {e.message}")
        if e.hint:
            say(f"  hint: {e.hint}")
        return int(ExitCode.AUTH)
    except GradesyncError as e:
        if isinstance(e, TransientGraphError) and e.code in NETWORK_CODES:
            e = network_error(e)
        say(f"graph: FAILED [{e.code}] {e.message}")
        if e.hint:
            say(f"  hint: {e.hint}")
        if e.exit_code in (ExitCode.AUTH, ExitCode.NETWORK):
            return int(e.exit_code)
        return int(ExitCode.ROWS_NOT_DONE)
    return int(ExitCode.OK)
