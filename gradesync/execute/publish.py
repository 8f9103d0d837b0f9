"""Publishing (``--return``): return the submissions whose grades this plan wrote, so students see them.

Off by default: only with ``--return``, and only for the assignments ``[publish] assignments`` allows
(display names or ids, ``"*"`` = all). Runs after the writes, before the read-back::

    1. candidates: rows written by this plan (status updated/created in the journal, this run or an
       earlier one of the same plan) on an allowed assignment
    2. read their assignments (one paged ``submissions?$expand=outcomes`` listing each, batched):
       a submission already ``returned`` whose ``publishedPoints`` equal its points is done
    3. POST ``.../submissions/{id}/return``, batched
    4. a POST whose fate is unknown (timeout, 5xx, 429) is never re-sent blindly: the submission is
       read again (GET, batched) and only returned again if it is still not published; a 4xx is final

Nothing here decides about grades; it only reports per row whether the submission was returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import pandas as pd

from gradesync.errors import AuthError, TransientGraphError
from gradesync.execute.reads import read_assignments, read_submissions
from gradesync.graph import GraphClient, SubRequest
from gradesync.models import Action
from gradesync.outcome import Status
from gradesync.state.journal import OpRecord

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
    notes: list[str] = field(default_factory=list)


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


def publish(
    client: GraphClient,
    rows: pd.DataFrame,
    records: dict[int, OpRecord],
    names: Iterable[str],
    rounds: int = 6,
) -> PublishResult:
    """Return the written submissions of the allowed assignments (see the module docstring)."""

    result = PublishResult()
    targets = {t.row_key: t for t in candidates(rows, records, names)}
    if not targets:
        return result
    read = read_assignments(client, {(t.class_id, t.assignment_id) for t in targets.values()})
    to_send: dict[int, _Target] = {}
    for k, t in targets.items():
        if (t.class_id, t.assignment_id) in read.errors:
            err = read.errors[(t.class_id, t.assignment_id)]
            if isinstance(err, AuthError):
                raise err
            result.failed[k] = f"not returned: could not read the assignment ({err.message})"
            continue
        cur = read.current.get(t.submission_id)
        if cur is None:
            result.failed[k] = "not returned: the submission no longer exists in Teams"
        elif cur.published:
            result.returned.add(k)
            result.already.add(k)
        else:
            to_send[k] = t
    unknown: dict[int, _Target] = {}  # sent, fate unknown: read before anything else
    for _ in range(rounds):
        if to_send:
            answers = client.batch(SubRequest(str(k), "POST", t.path + "/return") for k, t in to_send.items())
            for k, t in to_send.items():
                answer = answers[str(k)]
                if answer.ok:
                    result.returned.add(k)
                elif answer.fate_unknown or isinstance(answer.error, TransientGraphError):
                    unknown[k] = t
                else:
                    if isinstance(answer.error, AuthError):
                        raise answer.error
                    msg = answer.error.message if answer.error is not None else f"HTTP {answer.status}"
                    result.failed[k] = f"not returned: {msg}"
            to_send = {}
        if not unknown:
            break
        # read each such submission again (the one re-verify path); return again only those
        # still not published; a failed read is read again next round (never re-sent blindly)
        found = read_submissions(client, {k: t.path for k, t in unknown.items()})
        for k, cur in found.items():
            t = unknown.pop(k)
            if cur is not None and cur.published:
                result.returned.add(k)
            elif cur is not None:
                to_send[k] = t
            else:
                result.failed[k] = "not returned: the submission no longer exists in Teams"
    for k in [*to_send, *unknown]:
        result.failed[k] = "not returned: Graph kept failing and the return could not be confirmed"
    if result.failed:
        result.notes.append(f"{len(result.failed)} submission(s) could not be returned (see the report)")
    return result
