"""The undo of a run, as an ordinary plan (pure: data in, data out).

``build_undo_plan`` takes what a finished (or stopped) run leaves behind — the rows of the plan it
applied and the journal's record of each write (final status, the outcome written, ``after_points``)
— and, when the caller has read it, what Teams holds now; it returns a :class:`~gradesync.models.Plan`
with one row per write row of the run:

* a cell the run **updated or created** becomes an ``update`` whose ``before_points`` is what the
  run wrote and whose ``desired_points`` is the value before the run (a cell the run created had no
  grade: its undo is a clear, which needs ``--allow-clear`` like any clear). Because the executor
  never overwrites a grade that changed since it was read, a cell a teacher (or a later run) changed
  since the run is not touched: it is reported ``conflict`` with the value Teams holds;
* a cell that **cannot be undone** is a ``reject`` whose reason says why: the run excused the
  submission (Graph has no action that takes an excuse back), the students have seen the run's
  grade (a return cannot be taken back), the run never confirmed the write, or it wrote over a grade
  that had changed after its plan (the value before is not known);
* a cell with **nothing to undo** is a ``noop`` whose reason says why: the run wrote nothing there
  (carried over, failed, conflict, already at its value), Teams already holds the value from before
  the run (undone already, or put back by hand), or the submission is gone.

The undo plan has no roster gaps (it restores cells, it is not an export: coverage does not apply),
no read times (the executor reads every assignment again just before writing it) and records the run
it undoes in ``Plan.undo_of``. Reading the journal, the run directory and Teams is the caller's
(``gradesync.pipeline``); nothing here touches a file or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradesync.models import PLAN_COLUMNS, WRITE_ACTIONS, Action, InputFile, Plan, ReasonCode
from gradesync.outcome import Status
from gradesync.plan import messages as say

__all__ = [
    "UNDO_NOOP",
    "UNDO_REFUSED",
    "UndoCounts",
    "build_undo_plan",
    "describe_undo",
    "undo_counts",
]

UNDO_REFUSED = (
    ReasonCode.UNDO_EXCUSED,
    ReasonCode.UNDO_PUBLISHED,
    ReasonCode.UNDO_UNCONFIRMED,
    ReasonCode.UNDO_BEFORE_UNKNOWN,
)
UNDO_NOOP = (ReasonCode.UNDO_NOT_WRITTEN, ReasonCode.UNDO_ALREADY, ReasonCode.UNDO_GONE)
_WRITTEN = (Status.UPDATED.value, Status.CREATED.value)
_TOLERANCE = 1e-9


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal points, NaN (no grade) equal to NaN."""
    both_missing = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore"):
        return np.asarray(both_missing | (np.abs(a - b) <= _TOLERANCE), dtype=bool)


@dataclass(frozen=True, slots=True)
class _Facts:
    """Per write row of the run, aligned: what the journal and Teams say about it."""

    status: np.ndarray  # the journal's status ("" when never recorded)
    record_outcome: np.ndarray
    record_message: np.ndarray
    restore: np.ndarray  # the value before the run (NaN: no grade)
    wrote: np.ndarray  # what the run's write left in Teams (NaN: no grade)
    known: np.ndarray  # Teams was read for this submission's assignment
    gone: np.ndarray  # read, and the submission is not there
    now: np.ndarray  # what Teams holds now (NaN: no grade, or not read)
    now_outcome: np.ndarray
    published: np.ndarray  # what the students last saw (NaN: never returned, or not read)


def _facts(writes: pd.DataFrame, records: pd.DataFrame, current: pd.DataFrame | None,
           read: set[tuple[str, str]]) -> _Facts:  # fmt: skip
    """Line up the journal records and the current read with the run's write rows (one join each)."""
    rec = records.drop_duplicates("row_key", keep="last").set_index("row_key")
    rec = rec.reindex(pd.Index(writes["row_key"].astype("int64")))
    status = rec["status"].astype(object).fillna("").astype(str).to_numpy(dtype=object)
    record_outcome = rec["outcome_id"].astype(object).to_numpy(dtype=object)
    record_message = rec["message"].astype(object).fillna("").astype(str).to_numpy(dtype=object)
    after = rec["after_points"].astype("float64").to_numpy()
    clear = writes["clear"].fillna(False).astype(bool).to_numpy()
    desired = np.where(clear, np.nan, writes["desired_points"].astype("float64").to_numpy())
    # Graph answers a write with the value it holds; an answer without one wrote what was asked
    wrote = np.where(np.isnan(after) & ~clear, desired, after)
    pairs = pd.MultiIndex.from_frame(writes[["class_id", "assignment_id"]].astype(str))
    known = np.asarray(pairs.isin(list(read)), dtype=bool) if read else np.zeros(len(writes), dtype=bool)
    sid = pd.Index(writes["submission_id"].astype(str))
    if current is not None and len(current):
        cur = current.drop_duplicates("submission_id").set_index("submission_id")
        found = np.asarray(sid.isin(cur.index), dtype=bool)
        cur = cur.reindex(sid)
        now = cur["points"].astype("float64").to_numpy()
        now_outcome = cur["outcome_id"].astype(object).to_numpy(dtype=object)
        published = cur["published_points"].astype("float64").to_numpy()
    else:
        found = np.zeros(len(writes), dtype=bool)
        now = np.full(len(writes), np.nan)
        now_outcome = np.full(len(writes), None, dtype=object)
        published = np.full(len(writes), np.nan)
    return _Facts(
        status=status,
        record_outcome=record_outcome,
        record_message=record_message,
        restore=writes["before_points"].astype("float64").to_numpy(),
        wrote=wrote,
        known=known & found,
        gone=known & ~found,
        now=now,
        now_outcome=now_outcome,
        published=published,
    )


def _reasons(f: _Facts) -> tuple[np.ndarray, np.ndarray]:
    """(reason, changed_since) per row: "" for a row the undo writes; changed_since marks the written
    cells whose value in Teams is no longer the run's (the executor will report them ``conflict``)."""
    written = np.isin(f.status, _WRITTEN)
    sending = f.status == "sending"
    already = f.known & _same(f.now, f.restore)
    overwrote = np.array(
        [str(m).startswith(say.OVERWRITE_MESSAGE_STARTS) for m in f.record_message], dtype=bool
    )
    changed = f.known & ~_same(f.now, f.wrote)
    seen = f.known & ~np.isnan(f.published) & _same(f.published, f.wrote)
    conditions = [
        sending & already,
        sending,
        f.status == Status.EXCUSED.value,
        ~written,
        overwrote,
        f.gone,
        already,
        changed,
        seen,
    ]
    choices = [
        ReasonCode.UNDO_ALREADY.value,
        ReasonCode.UNDO_UNCONFIRMED.value,
        ReasonCode.UNDO_EXCUSED.value,
        ReasonCode.UNDO_NOT_WRITTEN.value,
        ReasonCode.UNDO_BEFORE_UNKNOWN.value,
        ReasonCode.UNDO_GONE.value,
        ReasonCode.UNDO_ALREADY.value,
        "",
        ReasonCode.UNDO_PUBLISHED.value,
    ]
    reason = np.select(conditions, choices, default="").astype(object)
    return reason, (reason == "") & changed


def _messages(f: _Facts, reason: np.ndarray, restores: np.ndarray, changed: np.ndarray,
              clear: np.ndarray, precision: int) -> tuple[pd.Series, pd.Series]:  # fmt: skip
    """(message, note) per row, each written by ``plan/messages.py``."""
    n = len(reason)
    message = pd.Series([""] * n, dtype=object)
    note = pd.Series([""] * n, dtype=object)

    def put(mask: np.ndarray, texts: pd.Series | str) -> None:
        if mask.any():
            message[mask] = texts if isinstance(texts, str) else texts.to_numpy()

    put(restores, say.undo_restore(f.restore[restores], f.wrote[restores], clear[restores], precision))
    put(reason == ReasonCode.UNDO_EXCUSED.value, say.UNDO_EXCUSED)
    seen = reason == ReasonCode.UNDO_PUBLISHED.value
    put(seen, say.undo_published(f.published[seen], precision))
    put(reason == ReasonCode.UNDO_UNCONFIRMED.value, say.UNDO_UNCONFIRMED)
    put(reason == ReasonCode.UNDO_BEFORE_UNKNOWN.value, say.UNDO_BEFORE_UNKNOWN)
    nothing = reason == ReasonCode.UNDO_NOT_WRITTEN.value
    put(nothing, say.undo_nothing_written(f.status[nothing]))
    already = (reason == ReasonCode.UNDO_ALREADY.value) & (f.status != "sending")
    put(already, say.undo_already(f.restore[already], precision))
    unlanded = (reason == ReasonCode.UNDO_ALREADY.value) & (f.status == "sending")
    put(unlanded, say.undo_never_landed(f.restore[unlanded], precision))
    put(reason == ReasonCode.UNDO_GONE.value, say.UNDO_GONE)
    if changed.any():
        note[changed] = say.undo_changed_since(f.now[changed], f.wrote[changed], precision).to_numpy()
    return message, note


def _points_text(values: np.ndarray, precision: int) -> np.ndarray:
    shown = say.points(values, precision).to_numpy(dtype=object)
    return np.where(np.isnan(values), "", shown).astype(object)


def undo_rows(run_rows: pd.DataFrame, records: pd.DataFrame, current: pd.DataFrame | None = None,
              *, read: Iterable[tuple[str, str]] = (), precision: int = 2) -> pd.DataFrame:  # fmt: skip
    """The undo plan's rows (PLAN_COLUMNS): one per write row of ``run_rows``, in its order.

    ``records``: ``models.JOURNAL_COLUMNS``, the journal's records of the run's plan. ``current``:
    ``models.CURRENT_COLUMNS``, what Teams holds now for the submissions of the assignments in ``read``
    (``(class_id, assignment_id)`` pairs); a cell of an assignment not read is judged on the journal
    alone (the executor still checks it before writing)."""
    writes = run_rows[run_rows["action"].astype(str).isin(WRITE_ACTIONS)].reset_index(drop=True)
    f = _facts(writes, records, current, {(str(c), str(a)) for c, a in read})
    reason, changed = _reasons(f)
    restores = reason == ""
    refused = np.isin(reason, [r.value for r in UNDO_REFUSED])
    clear = restores & np.isnan(f.restore)
    message, note = _messages(f, reason, restores, changed, clear, precision)
    out = writes.copy()
    out["action"] = np.where(restores, Action.UPDATE.value, np.where(refused, Action.REJECT.value,
                                                                      Action.NOOP.value))  # fmt: skip
    out["reason"] = reason
    out["message"] = message.to_numpy()
    out["note"] = note.to_numpy()
    out["points_raw"] = _points_text(f.restore, precision)
    out["desired_points"] = np.where(clear, np.nan, f.restore)
    out["clear"] = clear
    out["excuse"] = False
    out["points_possible"] = np.nan
    # the executor's check: the undo writes only over the value the run wrote; rows it does not write
    # show what Teams holds now when it was read
    shown_now = np.where(f.known, f.now, f.wrote)
    out["before_points"] = np.where(restores, f.wrote, shown_now)
    outcome = np.where(
        pd.notna(f.record_outcome), f.record_outcome, writes["outcome_id"].to_numpy(dtype=object)
    )
    out["outcome_id"] = np.where(pd.notna(outcome), outcome, f.now_outcome)
    out["before_modified"] = None
    with np.errstate(invalid="ignore"):
        out["decrease"] = restores & (clear | (f.restore < f.wrote))
    out["last_written_points"] = np.nan
    out["override_policy"] = ""
    return out[list(PLAN_COLUMNS)].astype(PLAN_COLUMNS)


def build_undo_plan(run_rows: pd.DataFrame, records: pd.DataFrame, current: pd.DataFrame | None = None,
                    *, undo_of: str, created_at: str, graph_base_url: str, config_hash: str,
                    inputs: Sequence[InputFile] = (), read: Iterable[tuple[str, str]] = (),
                    precision: int = 2) -> Plan:  # fmt: skip
    """The plan that puts back what the run ``undo_of`` changed (see the module docstring)."""
    rows = undo_rows(run_rows, records, current, read=read, precision=precision)
    plan = Plan(
        rows=rows,
        created_at=created_at,
        graph_base_url=graph_base_url,
        config_hash=config_hash,
        inputs=list(inputs),
        undo_of=undo_of,
    )
    plan.warnings = describe_undo(rows, undo_of)
    return plan


@dataclass(frozen=True, slots=True)
class UndoCounts:
    """What an undo plan does, in numbers (what a preview shows above its rows)."""

    restores: int  # grades put back (clears included)
    clears: int  # of which: grades the run entered where there was none, cleared
    changed_since: int  # of the restores: changed in Teams since the run (left as they are: conflict)
    refused: dict[str, int]  # cells that cannot be undone, per reason
    nothing: dict[str, int]  # cells with nothing to undo, per reason

    @property
    def not_undoable(self) -> int:
        return sum(self.refused.values())


def undo_counts(rows: pd.DataFrame) -> UndoCounts:
    """Count an undo plan's rows (PLAN_COLUMNS)."""
    action = rows["action"].astype(str)
    reason = rows["reason"].fillna("").astype(str)
    restores = action == Action.UPDATE.value

    def per(codes: Sequence[ReasonCode]) -> dict[str, int]:
        found = reason[reason.isin([c.value for c in codes])].value_counts()
        return {str(k): int(v) for k, v in found.items()}

    changed = restores & (rows["note"].fillna("").astype(str) != "")
    return UndoCounts(
        restores=int(restores.sum()),
        clears=int((restores & rows["clear"].fillna(False).astype(bool)).sum()),
        changed_since=int(changed.sum()),
        refused=per(UNDO_REFUSED),
        nothing=per(UNDO_NOOP),
    )


_REFUSED_WHY = {
    ReasonCode.UNDO_EXCUSED.value: "excused (Graph cannot take an excuse back)",
    ReasonCode.UNDO_PUBLISHED.value: "returned to the students, who have seen the grade",
    ReasonCode.UNDO_UNCONFIRMED.value: "written without confirmation (finish the run first)",
    ReasonCode.UNDO_BEFORE_UNKNOWN.value: "written over a grade that changed after the run's plan",
}


def describe_undo(rows: pd.DataFrame, undo_of: str) -> list[str]:
    """The preview's few lines about an undo plan: what goes back, what needs --allow-clear, what
    cannot be undone and why (each such row says it again)."""
    c = undo_counts(rows)
    lines = [f"undo of run {undo_of}: {c.restores:,} grade(s) put back"]
    if c.clears:
        lines.append(
            f"{c.clears:,} of them had no grade before the run: the undo clears the grade the run "
            "entered, and clearing needs --allow-clear"
        )
    if c.changed_since:
        lines.append(
            f"{c.changed_since:,} of them changed in Teams since the run: they are left as they are and "
            "reported as conflicts"
        )
    for code, n in c.refused.items():
        lines.append(f"{n:,} cannot be undone: {_REFUSED_WHY[code]} (reason {code})")
    nothing = sum(c.nothing.values())
    if nothing:
        lines.append(
            f"{nothing:,} need nothing: the run wrote nothing there, or Teams already holds the value "
            "from before the run"
        )
    return lines
