"""The run's outcome, decided once: the row statuses, what "needs attention" means, the counts, the
exit code.

Every layer below the pipeline returns facts (rows with a ``status`` column, the error that stopped
a run, how many returns failed); :func:`judge` turns them into one :class:`Verdict`, and the
summary, ``run.json``, the CLI and the web app render that verdict. Nothing else decides success.

A row is, after a run, in one of three states:

* **done** — it reached its desired state (``unchanged``, ``updated``, ``created``, ``excused``);
* **needs attention** — a person must look at it (``rejected``, ``conflict``, ``failed``, and a
  teacher's change kept for review: ``teacher_override``). A status this module does not know is
  counted here too: an unknown state is never called success;
* **carried over** — not sent, or sent with a fate not yet confirmed, for a passing reason (the
  deadline, throttling, the network): the next run finishes it.

For a preview (a plan, before anything is written) the same rule reads the plan's actions: a
rejected row, or a teacher's change kept for review, needs attention; a ``--dry-run`` reports the
rows it would write as ``pending``, which is not a problem.

The exit code, in order of precedence (``errors.ExitCode``)::

    an error stopped the run (usage, auth, guard, lock, network, storage)   its own code (2-8)
    some rows need attention, or a return failed, or --strict refused       1
    a preview whose apply the guards would refuse                           4
    some rows carried over (and none needs attention)                       6
    otherwise                                                               0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from gradesync.errors import ExitCode, GradesyncError

__all__ = [
    "ATTENTION_STATUSES",
    "DONE_STATUSES",
    "SHOWN_STATUSES",
    "Status",
    "Tally",
    "Verdict",
    "judge",
    "planned_statuses",
]


class Status(StrEnum):
    """A row's final state in a reconciliation (``reconciliation.csv``'s ``status``)."""

    UNCHANGED = "unchanged"  # Teams already held the desired value (or the row asked for nothing)
    UPDATED = "updated"
    CREATED = "created"
    EXCUSED = "excused"
    CONFLICT = "conflict"  # the grade changed in Teams since it was read: left as the teacher set it
    FAILED = "failed"  # Graph refused the write for good (a terminal error)
    REJECTED = "rejected"  # the plan refused the row, with a reason
    TEACHER_OVERRIDE = "teacher_override"  # kept as the teacher set it ([policy] teacher_override)
    CARRIED_OVER = "carried_over"  # not sent (deadline, quota, a transient failure): the next run finishes it
    PENDING = "pending"  # a dry run's "would be written"; a preview's write rows


DONE_STATUSES = frozenset({Status.UNCHANGED, Status.UPDATED, Status.CREATED, Status.EXCUSED})
ATTENTION_STATUSES = frozenset({Status.CONFLICT, Status.FAILED, Status.REJECTED, Status.TEACHER_OVERRIDE})
# the statuses every reconciliation shows, even at 0 (the others appear when some row has them)
SHOWN_STATUSES: tuple[str, ...] = ("unchanged", "updated", "created", "conflict", "failed", "rejected")

_REJECT, _NOOP = "reject", "noop"  # plan actions (``models.Action``) the preview rule reads
_KEPT_FOR_REVIEW = ("teacher_override", "report")  # reason and [policy] teacher_override value
# noop reasons (models.CARRIED_REASONS) whose rows wait for the next run: nothing is written to a
# published assignment until Teams has created its submissions
_WAITING = ("assignment_publishing",)


def _text(rows: pd.DataFrame, name: str) -> pd.Series:
    if name not in rows.columns:
        return pd.Series("", index=rows.index, dtype=object)
    return rows[name].astype(object).where(rows[name].notna(), "").astype(str)


def planned_statuses(rows: pd.DataFrame) -> pd.Series:
    """What each row of a plan stands for before anything is written: ``rejected`` (the plan refused
    it), ``teacher_override`` (a teacher's change kept for review), ``pending`` (a write),
    ``carried_over`` (nothing can be written yet: a published assignment still being set up), else
    ``unchanged``. Reconciliation starts from these for the rows the executor never touches."""
    action = _text(rows, "action")
    status = pd.Series(Status.UNCHANGED.value, index=rows.index, dtype=object)
    status[action.isin(("update", "create", "excuse"))] = Status.PENDING.value
    status[action == _REJECT] = Status.REJECTED.value
    kept = (
        (action == _NOOP)
        & (_text(rows, "reason") == _KEPT_FOR_REVIEW[0])
        & (_text(rows, "override_policy") == _KEPT_FOR_REVIEW[1])
    )
    status[kept] = Status.TEACHER_OVERRIDE.value
    status[(action == _NOOP) & _text(rows, "reason").isin(_WAITING)] = Status.CARRIED_OVER.value
    return status


@dataclass(frozen=True, slots=True)
class Tally:
    """How many rows are in each state. ``statuses`` holds every ``SHOWN_STATUSES`` key (0 or more)
    and any other status some row has; for a preview it is empty (nothing has a status yet)."""

    rows: int
    statuses: dict[str, int]
    attention: int
    carried_over: int
    preview: bool

    @classmethod
    def of(cls, rows: pd.DataFrame) -> Tally:
        """Count ``rows``: a reconciliation when they have a ``status`` column, else a preview."""
        preview = "status" not in rows.columns
        status = planned_statuses(rows) if preview else _text(rows, "status")
        codes, names = pd.factorize(status, sort=False)
        counts = np.bincount(codes[codes >= 0], minlength=len(names)) if len(names) else np.zeros(0, int)
        found = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
        statuses: dict[str, int] = {}
        if not preview:
            statuses = {s: found.get(s, 0) for s in SHOWN_STATUSES}
            statuses.update({s: n for s, n in sorted(found.items()) if s not in statuses and s})
        not_attention = {*DONE_STATUSES, Status.CARRIED_OVER, Status.PENDING}
        attention = sum(n for s, n in found.items() if s not in not_attention)
        return cls(
            rows=len(rows),
            statuses=statuses,
            attention=attention,
            carried_over=found.get(Status.CARRIED_OVER.value, 0),
            preview=preview,
        )

    @classmethod
    def empty(cls) -> Tally:
        return cls(rows=0, statuses={}, attention=0, carried_over=0, preview=True)


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a plan, apply or sync came out: the one answer every front end and file renders."""

    exit_code: ExitCode
    attention: int = 0  # rows a person must look at (plus failed returns)
    carried_over: int = 0  # rows the next run finishes
    refused: tuple[str, ...] = ()  # why the guards refuse (would refuse, for a preview) the plan
    strict_refused: bool = False  # --strict and some rows are rejected: nothing is written
    error: Mapping[str, Any] | None = None  # the error that stopped the run: code, message, hint
    sentences: tuple[str, ...] = field(default=())  # what a person reads, most important first

    @property
    def ok(self) -> bool:
        return self.exit_code is ExitCode.OK

    @property
    def needs_attention(self) -> bool:
        return self.attention > 0 or self.strict_refused

    def asdict(self) -> dict[str, Any]:
        return {
            "exit_code": int(self.exit_code),
            "attention": self.attention,
            "carried_over": self.carried_over,
            "refused": list(self.refused),
            "strict_refused": self.strict_refused,
            "error": dict(self.error) if self.error is not None else None,
            "sentences": list(self.sentences),
        }


def judge(
    tally: Tally | None = None,
    *,
    error: GradesyncError | None = None,
    refused: Iterable[str] = (),
    strict_refused: bool = False,
    return_failed: int = 0,
    return_carried: int = 0,
) -> Verdict:
    """The verdict on a run's facts (see the module docstring for the order of precedence).

    ``tally``: the rows' counts (None: the run ended before it had rows); ``error``: what stopped
    it; ``refused``: the guards' reasons; ``return_failed``: written submissions ``--return`` could
    not return; ``return_carried``: written submissions not returned because the deadline came first
    (``apply --resume`` returns them: carried over, like rows)."""
    t = tally or Tally.empty()
    reasons = tuple(str(r) for r in refused)
    attention = t.attention + int(return_failed)
    carried = t.carried_over + int(return_carried)
    code = _exit_code(t, error, reasons, strict_refused, attention, carried)
    return Verdict(
        exit_code=code,
        attention=attention,
        carried_over=carried,
        refused=reasons,
        strict_refused=bool(strict_refused),
        error=error.as_dict() if error is not None else None,
        sentences=tuple(
            _sentences(t, error, reasons, strict_refused, attention, return_failed, int(return_carried))
        ),
    )


def _exit_code(
    t: Tally, error: GradesyncError | None, refused: Sequence[str], strict: bool, attention: int, carried: int
) -> ExitCode:
    if error is not None:
        return error.exit_code
    if attention or strict:
        return ExitCode.ROWS_NOT_DONE
    if t.preview and refused:
        return ExitCode.GUARD
    if carried:
        return ExitCode.CARRIED_OVER
    return ExitCode.OK


def _sentences(
    t: Tally,
    error: GradesyncError | None,
    refused: Sequence[str],
    strict: bool,
    attention: int,
    return_failed: int,
    return_carried: int = 0,
) -> list[str]:
    out: list[str] = []
    if error is not None:
        out.append(f"stopped: [{error.code}] {error.message}")
    for reason in refused:
        out.append(f"apply {'would be ' if t.preview and error is None else ''}refused: {reason}")
    if strict:
        out.append("refused: --strict and some rows are rejected; nothing will be written")
    rows_attention = attention - int(return_failed)
    if rows_attention:
        verb = "needs" if rows_attention == 1 else "need"
        out.append(f"{_rows(rows_attention)} {verb} attention (see the report)")
    if return_failed:
        out.append(f"{return_failed} written submission(s) could not be returned to students")
    if t.carried_over:
        out.append(f"{_rows(t.carried_over)} carried over: the next run (or apply --resume) finishes them")
    if return_carried:
        out.append(
            f"{return_carried} written submission(s) not returned: the deadline came first; "
            "`gradesync apply --resume` returns them"
        )
    return out


def _rows(n: int) -> str:
    return f"{n:,} row{'' if n == 1 else 's'}"
