"""gradesync: make the grades in Microsoft Teams Assignments match a school's official gradebook.

The pipeline, one module per stage::

    read.py      CSV/TSV/Excel export  → desired grades (DataFrame, every row remembers its source)
    resolve.py   Graph reads           → Snapshot of classes, members, assignments, submissions
    match.py     pure: input keys      → Graph ids
    plan.py      pure: desired + Snapshot → Plan (update / create / noop / reject per input row)
    execute/     Plan                  → Graph $batch writes, journal, reconciliation
    report.py    rows + summary        → CSV, JSON, self-contained HTML

    graph/       the one GraphClient all Graph traffic goes through (retry, paging, $batch)
    emulator/    a local Graph education emulator (the demo's and the tests' Graph)
    cli.py       a thin click CLI over the above
"""

__version__ = "0.1.0"
