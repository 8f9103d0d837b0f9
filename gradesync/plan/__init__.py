"""Stage 3, plan: desired grades + a Graph Snapshot → a Plan (pure: data in, data out).

match.py     input keys → Graph ids (classes, assignments, students)
build.py     build_plan: runs the plan rules in order; summarize, apply_operations
rules.py     the plan rules, one function per rule, over vectorised columns
messages.py  every reject message and note the rules write
arrays.py    vectorised helpers and Verdicts (each row's reason while the rules run)
encoding.py  a plan as its file holds it: the header's values, one array per column
digest.py    the plan digest: an HMAC of everything the plan says, keyed by the state directory's key
planfile.py  the plan file: a versioned JSON document (the one file this stage writes)
undo.py      build_undo_plan: the plan that puts back what a run changed (from its plan and journal)
legacy.py    plan files of schema 1 and 2 (one object per row) → a Plan
"""

from gradesync.plan.build import (
    apply_operations,
    build_plan,
    plan_is_refused,
    summarize,
)
from gradesync.plan.messages import MESSAGE_CREATE, MESSAGE_EXCUSE, MESSAGE_SAME, MESSAGE_UPDATE

__all__ = [
    "MESSAGE_CREATE",
    "MESSAGE_EXCUSE",
    "MESSAGE_SAME",
    "MESSAGE_UPDATE",
    "apply_operations",
    "build_plan",
    "plan_is_refused",
    "summarize",
]
