"""Stage 3, plan: desired grades + a Graph Snapshot → a Plan (pure: data in, data out).

match.py     input keys → Graph ids (classes, assignments, students)
build.py     the plan rules, one named step each, over vectorised frames
planfile.py  the plan file: a versioned JSON document (the one file this stage writes)
"""

from gradesync.plan.build import (
    MESSAGE_CREATE,
    MESSAGE_EXCUSE,
    MESSAGE_SAME,
    MESSAGE_UPDATE,
    apply_operations,
    build_plan,
    plan_is_refused,
    summarize,
)

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
