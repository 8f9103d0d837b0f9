"""gradesync: make the grades in Microsoft Teams Assignments match a school's official gradebook.

Floors, top to bottom (imports point down; docs/ARCHITECTURE.md)::

    cli/           front end: click commands (plan, apply, sync, inspect, serve, auth, config, demo, emulator)
    web/           front end: the registrars' web app
    pipeline.py    runs every stage, returns one RunResult (the only definition of success)
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

    models.py  errors.py  config.py  logs.py      data contracts, errors, settings, logging
    tenants.py  samples.py                          a fleet's tenant files; where the demo's samples are

The Graph education emulator (the tests' and the demo's Graph) is its own package, ``graph_emulator``.
"""

__version__ = "0.1.0"
