"""Reconciliation: give every input row its final status and what Teams holds for it at the end.

Status per row (``status`` column, ``outcome.Status``; ``after_points`` is what Teams holds):

* ``rejected``  — the plan rejected the row (its reason and message are kept);
* ``unchanged`` — nothing to write (a noop), or the grade was already at its desired value;
* ``updated`` / ``created`` — written: Graph's answer to the write carries the value written;
* ``excused``   — the submission was excused;
* ``conflict``  — not written because the grade changed in Teams since it was read (never a silent
  overwrite), or Teams holds another value than the desired one after the write;
* ``failed``    — Graph refused the write for good (a terminal 4xx: its code, message and
  request-id are in ``message``/``request_id``);
* ``carried_over`` — not sent, or sent with a fate that could not be confirmed, for a passing reason
  (the deadline, 429/5xx, network, an expired token, a read that could not be made): the next run
  (``--resume`` or the next sync) finishes it;
* ``teacher_override`` — a teacher changed the grade in Teams since gradesync last wrote it and
  ``[policy] teacher_override = "report"`` kept it: it needs a person;
* ``pending``   — only in a ``--dry-run``: would be written.

What Teams holds (``after_points``) comes from the newest thing this run learnt, in this order: the
read-back, the write's answer, the before-write read, the plan's read. A write row whose final value
is neither its old nor its desired value says so in ``message`` (counted in the notes).

Read-back (``verify``): ``"uncertain"`` (default) reads back only the assignments holding a write
whose fate is still unknown; ``"all"`` every assignment with a write (one more listing each).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from gradesync.execute.decide import Current, fmt
from gradesync.execute.reads import read_assignments
from gradesync.graph import Gate, GraphClient
from gradesync.models import WRITE_ACTIONS, Action, Plan
from gradesync.outcome import Status, planned_statuses
from gradesync.single import same as single_same
from gradesync.state.journal import PENDING, SENDING, OpRecord

__all__ = ["reconcile"]

_WRITTEN = (Status.UPDATED, Status.CREATED, Status.UNCHANGED)


def _same(a: float, b: float) -> bool:
    """The same grade as Teams stores it (a Single: 87.3 reads back as 87.30000305175781)."""
    return single_same(a, b)


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _shown(v: float) -> str:
    return fmt(None if math.isnan(v) else v)


def _read_back(
    plan: Plan, client: GraphClient, records: dict[int, OpRecord], verify: str, gate: Gate | None
) -> tuple[dict[str, Current], list[str]]:
    """The read-back listings (``verify``), and notes about them."""
    rows = plan.rows
    mask = rows["action"].astype(str).isin(WRITE_ACTIONS)
    if verify == "uncertain":
        uncertain = {k for k, r in records.items() if r.status == SENDING}
        mask &= rows["row_key"].astype(int).isin(uncertain)
    if not bool(mask.any()):
        return {}, []
    pairs = set(rows.loc[mask, ["class_id", "assignment_id"]].astype(str).itertuples(index=False, name=None))
    read = read_assignments(client, pairs, gate=gate)
    notes = [
        f"could not read back assignment {aid} of class {cid}: {err.message}"
        for (cid, aid), err in read.errors.items()
    ]
    dups = sorted(sid for sid, cur in read.current.items() if cur.points_outcomes > 1)
    if dups:
        notes.append(f"{len(dups)} submission(s) hold more than one points outcome: {', '.join(dups[:10])}")
    return read.current, notes


def reconcile(
    plan: Plan,
    client: GraphClient,
    records: dict[int, OpRecord],
    *,
    seen: dict[str, Current] | None = None,
    dry_run: bool = False,
    verify: str = "uncertain",
    read_back: bool = True,
    gate: Gate | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """(rows: PLAN_COLUMNS + after_points/status/request_id, notes).

    ``seen``: the before-write reads of this run (submission id → Current); ``read_back=False``
    (a run stopped by a refused token or an unreachable Graph, or past its deadline) reads nothing
    more; ``gate``: the run's deadline, which the read-back does not wait past."""
    rows = plan.rows.copy()
    current, notes = ({}, []) if dry_run or not read_back else _read_back(plan, client, records, verify, gate)
    known = {**(seen or {}), **current}
    sid = rows["submission_id"].astype(object).where(rows["submission_id"].notna(), "").astype(str)
    before = rows["before_points"].astype(float)
    in_known = sid.isin(known.keys()) & (sid != "")
    known_points = sid.map(lambda s: _nan(known[s].points) if s in known else np.nan).astype(float)
    after = before.where(~in_known, known_points)
    clear = rows["clear"].fillna(False).astype(bool)
    desired = rows["desired_points"].astype(float).where(~clear, np.nan)
    status, message = _plan_statuses(rows, after, desired, in_known)
    request_id = pd.Series("", index=rows.index, dtype=object)
    read_back_now = sid.isin(current.keys()) & (sid != "")
    action = rows["action"].astype(str)
    row_keys = rows["row_key"].astype(int)
    for i in rows.index[action.isin(WRITE_ACTIONS)]:
        rec = records.get(int(row_keys[i]))
        if rec is None:
            status[i], message[i] = (
                Status.CARRIED_OVER,
                "not attempted (no journal record): the next run sends it",
            )
            continue
        request_id[i] = rec.request_id or ""
        status[i], message[i], after[i] = _write_row(
            rec,
            excuse=action[i] == Action.EXCUSE.value,
            shown=known.get(sid[i]) if read_back_now[i] else None,
            after=after[i],
            before=before[i],
            desired=desired[i],
            message=message[i],
            dry_run=dry_run,
        )
    odd = int(message.str.contains("neither the value before", regex=False).sum())
    if odd:
        notes.append(f"{odd} row(s) hold a value in Teams that is neither the old nor the desired one")
    rows["after_points"] = after.astype(float)
    rows["status"] = status
    rows["message"] = message
    rows["request_id"] = request_id
    return rows, notes


def _plan_statuses(
    rows: pd.DataFrame, after: pd.Series, desired: pd.Series, known: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """Statuses of the rows the plan decided alone (rejected, noop, teacher_override)."""
    action = rows["action"].astype(str)
    status = planned_statuses(rows)  # the write rows' statuses are set from their journal records
    message = rows["message"].fillna("").astype(str).copy()
    # noop rows that state a grade: a newer read that disagrees with the plan's read and with the
    # gradebook means Teams changed since the plan (the plan compared at [policy] precision, so Teams
    # may hold a value equal to the gradebook's only at that precision)
    before = rows["before_points"].astype(float)
    stated = (action == Action.NOOP.value) & (rows["reason"].fillna("").astype(str) == "") & known
    for i in rows.index[stated]:
        if not _same(after[i], desired[i]) and not _same(after[i], before[i]):
            status[i] = Status.CONFLICT
            message[i] = f"changed in Teams since the plan: now {_shown(after[i])}"
    return status, message


def _write_row(
    rec: OpRecord,
    *,
    excuse: bool,
    shown: Current | None,
    after: float,
    before: float,
    desired: float,
    message: str,
    dry_run: bool,
) -> tuple[str, str, float]:
    """(status, message, after_points) of one write row, from its journal record and the reads."""
    st = str(rec.status)
    if st in (SENDING, PENDING) and not dry_run:
        st = Status.CARRIED_OVER
        message = rec.message or "not sent in this run: the next run (or --resume) sends it"
    elif rec.message:
        message = rec.message
    if excuse:  # the points stay
        if not dry_run and st in (Status.EXCUSED, Status.UNCHANGED) and shown and shown.status != "excused":
            # Graph answered that the submission is excused (200 to the excuse, or 400: already
            # excused); excusing is asynchronous ("Async / Poll"), so a read soon after may still show
            # the old status: the answer is trusted, and the row says what the read showed
            lag = (
                f"Teams still showed it as {shown.status} when read back "
                "(excusing takes effect after a while)"
            )
            return st, (message + "; " if message else "") + lag, after
        return st, message, after
    if shown is None and st != Status.CARRIED_OVER and (rec.after_points is not None or st in _WRITTEN):
        # the write's answer (or the read it was decided on); for a write that ended in Teams, no
        # value is an answer too: the grade was cleared
        after = _nan(rec.after_points)
    if not dry_run and st in _WRITTEN and not _same(after, desired):
        wanted = _shown(desired)
        return (
            Status.CONFLICT,
            f"Teams holds {_shown(after)} after this run, not {wanted} (changed after the write?)",
            after,
        )
    if (
        not dry_run
        and st not in (*_WRITTEN, Status.CONFLICT)
        and not _same(after, before)
        and not _same(after, desired)
    ):
        message = (message + "; " if message else "") + (
            f"Teams holds {_shown(after)}: neither the value before ({_shown(before)}) "
            f"nor the desired one ({_shown(desired)})"
        )
    return st, message, after
