"""The executor's writes, pure: a decision → its ``$batch`` sub-request; a sub-response → what it means.

Every answer becomes an :class:`~gradesync.state.journal.Outcome` whose ``status`` is one of

* a final ``Status`` (``updated``/``created``/``excused`` from a 2xx, whose body carries the value
  written — the write answer is the verification; ``failed`` for a terminal 4xx);
* ``sending`` (``SENDING``): the fate is unknown (an answer lost, a 5xx/429 after sending, a 409 on
  a create): re-read the target before anything else, never re-send blindly;
* ``pending`` (``PENDING``): certainly not applied, carried over (a 401: the token was refused).

Retryability is decided by the error's type (``TransientGraphError``), never by an attribute.
"""

from __future__ import annotations

from urllib.parse import quote

from gradesync.errors import AuthError, TransientGraphError
from gradesync.execute.decide import SEND_KINDS, Decision, Kind, fmt, grade_body
from gradesync.graph import SubRequest, SubResponse, points_of
from gradesync.models import Action, Operation
from gradesync.outcome import Status
from gradesync.state.journal import PENDING, SENDING, Outcome

__all__ = ["dry_outcome", "final_outcome", "interpret", "request_for", "written_status"]

AUTH_CARRIED = "not sent: Graph refused the token ({}); carried over: run again with a valid token"


def request_for(op: Operation, d: Decision) -> SubRequest:
    """The sub-request that carries out ``d`` (a PATCH, a create POST or an excuse POST)."""
    key = str(op.row_key)
    outcomes = op.submission_path + "/outcomes"
    if d.kind is Kind.EXCUSE:
        return SubRequest(key, "POST", op.submission_path + "/excuse")
    if d.kind is Kind.PATCH:
        url = f"{outcomes}/{quote(str(d.outcome_id), safe='')}"
        return SubRequest(key, "PATCH", url, grade_body(op.desired_points))
    return SubRequest(key, "POST", outcomes, grade_body(op.desired_points))


def written_status(op: Operation) -> Status:
    if op.action is Action.EXCUSE:
        return Status.EXCUSED
    return Status.CREATED if op.action is Action.CREATE else Status.UPDATED


def interpret(op: Operation, d: Decision, answer: SubResponse) -> Outcome:
    """What one write's answer means (see the module docstring)."""
    rid = answer.headers.get("request-id") if answer.headers else None
    if answer.ok:
        if op.action is Action.EXCUSE:
            note = d.message or None  # what excusing deleted, when it deleted something
            return Outcome(op.row_key, Status.EXCUSED, d.outcome_id, d.after, answer.status, rid, note)
        body = answer.body if isinstance(answer.body, dict) else {}
        outcome_id = str(body.get("id") or d.outcome_id or "") or None
        after = points_of(body) if body else op.desired_points
        return Outcome(
            op.row_key, written_status(op), outcome_id, after, answer.status, rid, d.message or None
        )
    err = answer.error
    if answer.fate_unknown or isinstance(err, TransientGraphError):
        return Outcome(op.row_key, SENDING)  # maybe applied: re-read first (PATCH or not)
    if answer.status == 409 and d.kind is Kind.POST:
        return Outcome(op.row_key, SENDING)  # a points outcome exists after all: re-read, then PATCH
    if answer.status == 400 and d.kind is Kind.EXCUSE:
        # Graph allows Excuse from every status but Excused ("Status, transitions, and limitations
        # for submissions"): a 400 means the submission is excused already — an earlier excuse
        # (ours, still being applied when it was read) got there first. Nothing is left to do.
        why = err.message if err is not None else "400"
        return Outcome(
            op.row_key,
            Status.UNCHANGED,
            d.outcome_id,
            d.after,
            answer.status,
            rid,
            f"already excused in Teams (Graph refused excusing it again: {why})",
        )
    message = err.message if err is not None else f"Graph answered {answer.status}"
    if isinstance(err, AuthError) and answer.status == 401:
        return Outcome(op.row_key, PENDING, http_status=401, message=AUTH_CARRIED.format(message))
    if isinstance(err, AuthError) and err.hint:
        message += f" — {err.hint}"
    return Outcome(
        op.row_key,
        Status.FAILED,
        http_status=answer.status or None,
        request_id=getattr(err, "request_id", None),
        message=message,
    )


def final_outcome(op: Operation, d: Decision) -> Outcome | None:
    """The outcome of a decision that sends nothing (done, conflict, failed); None for a send."""
    if d.kind is Kind.DONE:
        return Outcome(op.row_key, d.status, d.outcome_id, d.after, message=d.message or None)
    if d.kind is Kind.CONFLICT:
        return Outcome(op.row_key, Status.CONFLICT, d.outcome_id, d.after, message=d.message)
    if d.kind is Kind.FAILED:
        return Outcome(op.row_key, Status.FAILED, message=d.message)
    if d.kind is Kind.CARRY:
        return Outcome(op.row_key, PENDING, message=d.message)
    return None


def dry_outcome(op: Operation, d: Decision) -> Outcome:
    """What a ``--dry-run`` reports for ``d`` (``pending``: would be written)."""
    if d.kind is Kind.EXCUSE:
        return Outcome(op.row_key, "pending", d.outcome_id, op.before_points, message="dry run: would excuse")
    if d.kind in SEND_KINDS:
        verb = "create" if d.kind is Kind.POST else "update"
        msg = f"dry run: would {verb} {fmt(op.before_points)} → {fmt(op.desired_points)}"
        if d.message:
            msg += f" ({d.message})"
        return Outcome(op.row_key, "pending", d.outcome_id, op.before_points, message=msg)
    if d.kind is Kind.DONE:
        return Outcome(op.row_key, Status.UNCHANGED, d.outcome_id, d.after, message=d.message or None)
    out = final_outcome(op, d)
    assert out is not None
    return out
