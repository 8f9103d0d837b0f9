"""Reconciliation: read the touched assignments back and give every input row its final status.

Status per row (``status`` column; ``after_points`` is what Teams holds afterwards):

* ``rejected``  — the plan rejected the row (its reason and message are kept);
* ``unchanged`` — nothing to write (a noop), or the grade was already at its desired value;
* ``updated`` / ``created`` — written, and the read-back shows the desired value;
* ``conflict``  — not written because the grade changed in Teams since the plan (``--on-conflict
  skip``), or the read-back shows another value than the desired one (changed after our write);
* ``failed``    — Graph refused the write (its code, inner code, message and request-id are in
  ``message``/``request_id``), or its fate could not be confirmed (``--resume`` re-checks it);
* ``excused``   — an excused mark: the submission was excused (the read-back shows status ``excused``);
* ``teacher_override`` — a teacher changed the grade in Teams since gradesync last wrote it and
  ``[policy] teacher_override = "report"`` kept it: it needs a person (``teacher-wins`` rows are
  ``unchanged``, ``sis-wins`` rows ``updated``; all three keep the reason ``teacher_override``);
* ``pending``   — only in a ``--dry-run``: would be written.

Reads are one paged ``submissions?$expand=outcomes`` listing per assignment with a write, batched.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from gradesync.execute.decide import fmt
from gradesync.execute.reads import read_assignments
from gradesync.graph import GraphClient
from gradesync.models import Action, Plan
from gradesync.state.journal import SENDING, OpRecord

RECONCILIATION_EXTRA = ("after_points", "status", "request_id")


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-9


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def reconcile(
    plan: Plan,
    client: GraphClient,
    records: dict[int, OpRecord],
    *,
    dry_run: bool = False,
    verify: str = "all",
) -> tuple[pd.DataFrame, list[str]]:
    """(rows: PLAN_COLUMNS + after_points/status/request_id, notes about the read-back).

    ``verify="all"`` reads back every assignment with a write; ``"uncertain"`` only those holding a
    row whose write Graph did not confirm with a 2xx answer (failed, fate unknown) — the others are
    verified by the write answers and the pre-write read, which saves one listing per assignment.
    """

    rows = plan.rows.copy()
    notes: list[str] = []
    action = rows["action"].astype(str)
    writes = action.isin([Action.UPDATE.value, Action.CREATE.value, Action.EXCUSE.value])
    excuse = action == Action.EXCUSE.value
    current: dict[str, Any] = {}
    if not dry_run and bool(writes.any()):
        mask = writes
        if verify == "uncertain":
            done = {
                k for k, r in records.items() if r.status in ("updated", "created", "unchanged", "conflict")
            }
            mask = writes & ~rows["row_key"].astype(int).isin(done)
        pairs = set(
            rows.loc[mask, ["class_id", "assignment_id"]].astype(str).itertuples(index=False, name=None)
        )
        read = read_assignments(client, pairs)
        for (cid, aid), err in read.errors.items():
            notes.append(f"could not read back assignment {aid} of class {cid}: {err.message}")
        current = read.current
        dups = sorted(sid for sid, cur in current.items() if cur.points_outcomes > 1)
        if dups:
            notes.append(
                f"{len(dups)} submission(s) hold more than one points outcome: {', '.join(dups[:10])}"
            )

    sid = rows["submission_id"].astype(object).where(rows["submission_id"].notna(), "").astype(str)
    verified = sid.isin(current.keys()) & (sid != "")
    cur_points = sid.map(lambda s: _nan(current[s].points) if s in current else np.nan).astype(float)
    before = rows["before_points"].astype(float)
    after = before.where(~verified, cur_points)
    clear = rows["clear"].fillna(False).astype(bool)
    desired = rows["desired_points"].astype(float).where(~clear, np.nan)

    status = pd.Series("unchanged", index=rows.index, dtype=object)
    status[action == Action.REJECT.value] = "rejected"
    if "override_policy" in rows:
        kept = (rows["reason"] == "teacher_override") & (rows["override_policy"] == "report")
        status[kept & (action == Action.NOOP.value)] = "teacher_override"
    message = rows["message"].fillna("").astype(str).copy()
    request_id = pd.Series("", index=rows.index, dtype=object)

    # noop rows that state a grade: a read-back that disagrees means Teams changed since the plan
    stated = (action == Action.NOOP.value) & (rows["reason"].fillna("").astype(str) == "") & verified
    for i in rows.index[stated]:
        if not _same(after[i], desired[i]):
            status[i] = "conflict"
            message[i] = (
                f"changed in Teams since the plan: now {fmt(None if math.isnan(after[i]) else after[i])}"
            )

    row_keys = rows["row_key"].astype(int)
    for i in rows.index[writes]:
        rec = records.get(int(row_keys[i]))
        if rec is None:
            status[i], message[i] = "failed", "not attempted (no journal record)"
            continue
        st = rec.status
        if st == SENDING or (st == "pending" and not dry_run):
            st = "failed"
            if not rec.message:
                rec.message = (
                    "the write could not be confirmed; run `gradesync apply --resume` to re-check it"
                )
        status[i] = st
        if rec.message:
            message[i] = rec.message
        request_id[i] = rec.request_id or ""
        if excuse[i]:  # the points stay; the read-back must show the status
            shown_status = current[sid[i]].status if verified[i] else None
            if not dry_run and st in ("excused", "unchanged") and verified[i] and shown_status != "excused":
                status[i] = "conflict"
                message[i] = f"Teams shows the submission as {shown_status}, not excused, after this run"
            continue
        if not verified[i]:
            if rec.after_points is not None:
                after[i] = rec.after_points
            elif st == "pending":
                after[i] = before[i]
        if (
            not dry_run
            and st in ("updated", "created", "unchanged")
            and verified[i]
            and not _same(after[i], desired[i])
        ):
            status[i] = "conflict"
            shown = None if math.isnan(after[i]) else after[i]
            wanted = None if math.isnan(desired[i]) else desired[i]
            message[i] = (
                f"Teams holds {fmt(shown)} after this run, not {fmt(wanted)} (changed after the write?)"
            )

    rows["after_points"] = after.astype(float)
    rows["status"] = status
    rows["message"] = message
    rows["request_id"] = request_id
    return rows, notes
