"""gradesync: make the grades in Microsoft Teams Assignments match a school's official gradebook.

Floors, top to bottom (imports point down; docs/ARCHITECTURE.md)::

    cli/           front end: click commands (plan, apply, sync, inspect, serve, auth, config, demo, emulator)
    web/           front end: the registrars' web app
    pipeline.py    runs every stage, returns one RunResult (its verdict: outcome.py)
    configcheck.py what `gradesync config check` reports

    read/          CSV/TSV/Excel export → desired grades (every row remembers its source)
    resolve.py     Graph reads → Snapshot of classes, members, assignments, submissions
    plan/          pure: desired + Snapshot → Plan (match, build, planfile, digest)
    guards.py      pure: may this plan be applied at all?
    execute/       Plan → $batch writes, journal, reconciliation (apply, decide, reads, publish, reconcile)
    report/        rows + summary → CSV, JSON, self-contained HTML

    graph/         the one GraphClient all Graph traffic goes through (retry, pacing, paging, $batch)
    auth/          sign-in and the token cache
    state/         journal, memory (three-way sync), lock, run directories

    models.py  outcome.py  errors.py  config.py  logs.py
                   data contracts, the run's verdict, errors, settings, logging
    tenants.py  samples.py                          a fleet's tenant files; where the demo's samples are

The Graph education emulator (the tests' and the demo's Graph) is its own package, ``graph_emulator``.

The public API is what ``__all__`` names here (a test keeps it so); everything else may change::

    from gradesync import Pipeline, Settings, load_settings, make_client
    settings = load_settings()
    with make_client(settings) as client:
        result = Pipeline(settings, client).sync(["grades.csv"])
    result.exit_code, result.verdict, result.summary

The names are loaded when first used, so ``gradesync --help`` stays quick (no pandas).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gradesync.version import __version__

# public name → the module that defines it
_EXPORTS = {
    "Pipeline": "gradesync.pipeline",
    "PlanResult": "gradesync.pipeline",
    "RunResult": "gradesync.pipeline",
    "Event": "gradesync.pipeline",
    "make_client": "gradesync.pipeline",
    "Settings": "gradesync.config",
    "load_settings": "gradesync.config",
    "Verdict": "gradesync.outcome",
    "Status": "gradesync.outcome",
    "RunSummary": "gradesync.report.summary",
    "ExitCode": "gradesync.errors",
    "GradesyncError": "gradesync.errors",
    "UsageError": "gradesync.errors",
    "ConfigError": "gradesync.errors",
    "InputError": "gradesync.errors",
    "AuthError": "gradesync.errors",
    "GuardError": "gradesync.errors",
    "LockError": "gradesync.errors",
    "NetworkError": "gradesync.errors",
    "StorageError": "gradesync.errors",
    "GraphError": "gradesync.errors",
    "TransientGraphError": "gradesync.errors",
    "TerminalGraphError": "gradesync.errors",
}

__all__ = [
    "AuthError",
    "ConfigError",
    "Event",
    "ExitCode",
    "GradesyncError",
    "GraphError",
    "GuardError",
    "InputError",
    "LockError",
    "NetworkError",
    "Pipeline",
    "PlanResult",
    "RunResult",
    "RunSummary",
    "Settings",
    "Status",
    "StorageError",
    "TerminalGraphError",
    "TransientGraphError",
    "UsageError",
    "Verdict",
    "__version__",
    "load_settings",
    "make_client",
]

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ loads on demand
    from gradesync.config import Settings, load_settings
    from gradesync.errors import (
        AuthError,
        ConfigError,
        ExitCode,
        GradesyncError,
        GraphError,
        GuardError,
        InputError,
        LockError,
        NetworkError,
        StorageError,
        TerminalGraphError,
        TransientGraphError,
        UsageError,
    )
    from gradesync.outcome import Status, Verdict
    from gradesync.pipeline import Event, Pipeline, PlanResult, RunResult, make_client
    from gradesync.report.summary import RunSummary


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gradesync' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
