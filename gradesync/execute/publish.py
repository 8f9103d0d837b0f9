"""Publishing (``--return``): return the submissions whose grades this plan wrote, as a teacher would.

Graph's return publishes everything at once: the points, the feedback and the rubric ("educationSubmission:
return" makes "the grade and feedback" visible; "List outcomes": every ``published*`` value is what
was last returned), and it is allowed from every status ("Status, transitions, and limitations for
submissions") — returning a ``reassigned`` submission closes the teacher's revision request, and
returning one still ``working`` shows a grade for work not turned in. So gradesync returns only
what a teacher returns after grading.

Off by default: only with ``--return``, and only for the assignments ``[publish] assignments`` allows
(display names or ids, ``"*"`` = all). Runs after the writes, before the read-back::

    1. candidates: rows written by this plan (status updated/created in the journal, this run or an
       earlier one of the same plan) on an allowed assignment
    2. read their assignments (one paged ``submissions?$expand=outcomes`` listing each, batched):
       a submission already ``returned`` whose ``publishedPoints`` equal its points is done; one whose
       status is not in ``[publish] statuses`` (default ``submitted`` and ``returned``) is left alone
       and says why; one holding feedback or a rubric the teacher has not returned yet is returned
       and says it published them (``[publish] unreturned_feedback = "publish"``), or is left alone
       (``"refuse"``)
    3. POST ``.../submissions/{id}/return``, batched
    4. a POST whose fate is unknown (timeout, 5xx, 429) is never re-sent blindly: the submission is
       read again (GET, batched) and only returned again if it is still not published; a 4xx is final

A return is a write: the run's deadline holds for it as for grades. The run's ``gate`` carries it:
no read or return waits past it, and ``gate.ready()`` — asked by the client right before each
request leaves, and here before each step — gives a reason not to send (the deadline is too close).
What it holds back is carried over: ``apply --resume`` returns them, since the journal still says
their grades were written by this plan.

Nothing here decides about grades; it only reports per row whether the submission was returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import pandas as pd

from gradesync.errors import AuthError, TransientGraphError
from gradesync.execute.decide import Current
from gradesync.execute.reads import read_assignments, read_submissions
from gradesync.graph import Gate, GraphClient, HeldBack, SubRequest
from gradesync.models import UNRETURNED, Action
from gradesync.outcome import Status
from gradesync.state.journal import OpRecord

__all__ = ["PublishResult", "publish"]

WRITTEN = frozenset({Status.UPDATED, Status.CREATED})


@dataclass(frozen=True, slots=True)
class _Target:
    row_key: int
    class_id: str
    assignment_id: str
    submission_id: str

    @property
    def path(self) -> str:
        q = lambda v: quote(v, safe="")  # noqa: E731
        return (
            f"/education/classes/{q(self.class_id)}/assignments/{q(self.assignment_id)}"
            f"/submissions/{q(self.submission_id)}"
        )


@dataclass(slots=True)
class PublishResult:
    """Per row: returned (True), or the reason it is not (``failed``: a return that did not happen)."""

    returned: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)
    already: set[int] = field(default_factory=set)  # returned before this run with the same grade
    # not returned on purpose ([publish] statuses, unreturned_feedback): why, per row (not a failure)
    skipped: dict[int, str] = field(default_factory=dict)
    # returned, and the return also published the teacher's feedback or rubric: which, per row
    published_work: dict[int, str] = field(default_factory=dict)
    # not returned because the run's deadline came first: why, per row (the next run returns them)
    carried: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def row_notes(self) -> dict[int, str]:
        """What each row's message gains: why it was not returned, or what its return published."""
        notes = {k: f"returning also published {v} to the student" for k, v in self.published_work.items()}
        return {**notes, **self.skipped, **self.carried, **self.failed}


def allowed(names: Iterable[str], assignment_id: str | None, assignment_name: str | None) -> bool:
    """Whether ``[publish] assignments`` allows this assignment (by id, or by name ignoring case)."""
    wanted = [n.strip() for n in names if n and n.strip()]
    if "*" in wanted:
        return True
    folded = {n.casefold() for n in wanted}
    return (assignment_id is not None and assignment_id in wanted) or (
        assignment_name is not None and assignment_name.strip().casefold() in folded
    )


def candidates(rows: pd.DataFrame, records: dict[int, OpRecord], names: Iterable[str]) -> list[_Target]:
    """The written rows of allowed assignments, in row order."""
    names = list(names)
    out: list[_Target] = []
    writes = rows[rows["action"].isin([Action.UPDATE.value, Action.CREATE.value])]
    for r in writes[["row_key", "class_id", "assignment_id", "assignment_name", "submission_id"]].itertuples(
        index=False
    ):
        rec = records.get(int(r.row_key))
        if rec is None or rec.status not in WRITTEN:
            continue
        name = r.assignment_name if isinstance(r.assignment_name, str) else None
        if allowed(names, str(r.assignment_id), name):
            out.append(_Target(int(r.row_key), str(r.class_id), str(r.assignment_id), str(r.submission_id)))
    return out


# what each submission status means to a person, for the rows left alone
STATUS_MEANING = {
    "working": "still being worked on: not turned in",
    "submitted": "turned in",
    "returned": "returned",
    "reassigned": "returned for revision",
    "excused": "excused",
}


def _hold_back(cur: Current, statuses: tuple[str, ...], unreturned_feedback: str) -> str | None:
    """Why a teacher would not return this submission now (None: return it)."""
    status = cur.status or "unknown"
    if status not in statuses:
        meaning = STATUS_MEANING.get(status, "in a status gradesync does not know")
        return (
            f"not returned: the submission is {status} ({meaning}); [publish] statuses "
            f"({', '.join(statuses) or 'none'}) does not include it"
        )
    unseen = cur.work.describe(UNRETURNED)
    if unseen and unreturned_feedback == "refuse":
        return (
            f"not returned: returning would also publish {unseen}, which the teacher has not "
            'returned yet ([publish] unreturned_feedback = "refuse")'
        )
    return None


def publish(
    client: GraphClient,
    rows: pd.DataFrame,
    records: dict[int, OpRecord],
    names: Iterable[str],
    rounds: int = 6,
    *,
    statuses: Iterable[str] = ("submitted", "returned"),
    unreturned_feedback: str = "publish",
    gate: Gate | None = None,
) -> PublishResult:
    """Return the written submissions of the allowed assignments that a teacher would return (see the
    module docstring)."""
    stopped = gate.ready if gate is not None and gate.ready is not None else _never
    allowed_statuses = tuple(statuses)
    result = PublishResult()
    targets = {t.row_key: t for t in candidates(rows, records, names)}
    if not targets:
        return result
    if (why := stopped()) is not None:
        result.carried.update({k: _carried(why) for k in targets})
        return _noted(result)
    read = read_assignments(client, {(t.class_id, t.assignment_id) for t in targets.values()}, gate=gate)
    to_send: dict[int, _Target] = {}
    for k, t in targets.items():
        if (t.class_id, t.assignment_id) in read.errors:
            err = read.errors[(t.class_id, t.assignment_id)]
            if isinstance(err, AuthError):
                raise err
            if isinstance(err, HeldBack):
                result.carried[k] = _carried(err.message)
            else:
                result.failed[k] = f"not returned: could not read the assignment ({err.message})"
            continue
        cur = read.current.get(t.submission_id)
        if cur is None:
            result.failed[k] = "not returned: the submission no longer exists in Teams"
        elif cur.published:
            result.returned.add(k)
            result.already.add(k)
        elif (why := _hold_back(cur, allowed_statuses, unreturned_feedback)) is not None:
            result.skipped[k] = why
        else:
            to_send[k] = t
            if unseen := cur.work.describe(UNRETURNED):
                result.published_work[k] = unseen
    unknown: dict[int, _Target] = {}  # sent, fate unknown: read before anything else
    for _ in range(rounds):
        if to_send and (why := stopped()) is not None:
            result.carried.update({k: _carried(why) for k in to_send})
            to_send = {}
        if to_send:
            answers = client.batch(
                (SubRequest(str(k), "POST", t.path + "/return") for k, t in to_send.items()), gate=gate
            )
            for k, t in to_send.items():
                answer = answers[str(k)]
                if answer.ok:
                    result.returned.add(k)
                elif isinstance(answer.error, HeldBack):  # never sent
                    result.carried[k] = _carried(answer.error.message)
                elif answer.fate_unknown or isinstance(answer.error, TransientGraphError):
                    unknown[k] = t
                else:
                    if isinstance(answer.error, AuthError):
                        raise answer.error
                    msg = answer.error.message if answer.error is not None else f"HTTP {answer.status}"
                    result.failed[k] = f"not returned: {msg}"
            to_send = {}
        if not unknown or stopped() is not None:
            break
        # read each such submission again (the one re-verify path); return again only those
        # still not published; a failed read is read again next round (never re-sent blindly)
        found = read_submissions(client, {k: t.path for k, t in unknown.items()}, gate=gate)
        for k, cur in found.items():
            t = unknown.pop(k)
            if cur is not None and cur.published:
                result.returned.add(k)
            elif cur is not None:
                to_send[k] = t
            else:
                result.failed[k] = "not returned: the submission no longer exists in Teams"
    why = stopped()
    for k in [*to_send, *unknown]:
        if why is not None:
            result.carried[k] = _carried(why)
        else:
            result.failed[k] = "not returned: Graph kept failing and the return could not be confirmed"
    for k in set(result.published_work) - result.returned:
        del result.published_work[k]
    return _noted(result)


def _never() -> str | None:
    return None


def _carried(why: str) -> str:
    return f"not returned: {why}; `gradesync apply --resume` returns it"


def _noted(result: PublishResult) -> PublishResult:
    """``result`` with its notes: how many returns failed, were left alone, published work, waited."""
    if result.failed:
        result.notes.append(f"{len(result.failed)} submission(s) could not be returned (see the report)")
    if result.skipped:
        result.notes.append(
            f"{len(result.skipped)} written submission(s) were not returned: a teacher would not return "
            "them now ([publish] statuses, unreturned_feedback; see each row)"
        )
    if result.published_work:
        result.notes.append(
            f"{len(result.published_work)} return(s) also published feedback or a rubric the teacher "
            "had not returned yet (see each row)"
        )
    if result.carried:
        result.notes.append(
            f"{len(result.carried)} written submission(s) were not returned: the deadline came first "
            "(`gradesync apply --resume` returns them)"
        )
    return result
