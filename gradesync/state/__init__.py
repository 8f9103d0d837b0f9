"""Services: what gradesync keeps between runs, on disk (SQLite and files stay here).

journal.py   the per-plan write journal (crash-safe, --resume)
memory.py    what gradesync last wrote per outcome (three-way sync)
lock.py      the one-run-at-a-time flock
runs.py      run directories: run.json, the log, the plan copy, retention
plankey.py   the secret that signs plan digests (made at first use, mode 600)
storage.py   the one place a failing disk becomes a named StorageError (journal, memory)
"""

__all__: list[str] = []  # a package of modules: import what you need from each
