"""The reads the executor makes: one paged ``$expand=outcomes`` listing per touched assignment.

Shared by the stale-plan check (``apply``), publishing (``publish``) and reconciliation
(``reconcile``), so none of them imports another.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from gradesync.errors import AuthError, GraphError
from gradesync.execute.decide import Current
from gradesync.graph import GraphClient
from gradesync.graph.urls import submissions_url


@dataclass(slots=True)
class AssignmentRead:
    current: dict[str, Current]  # submission id → what Graph holds
    roster: dict[tuple[str, str], set[str]]  # (class, assignment) → user ids of individual submissions
    errors: dict[tuple[str, str], GraphError | AuthError]


def read_assignments(client: GraphClient, pairs: Iterable[tuple[str, str]]) -> AssignmentRead:
    """One paged ``$expand=outcomes`` listing per assignment, all batched (never a GET per submission)."""
    urls = {pair: submissions_url(*pair) for pair in sorted(set(pairs))}
    out = AssignmentRead({}, {}, {})
    if not urls:
        return out
    pages = client.get_all_many(list(urls.values()))
    for pair, url in urls.items():
        if url in pages.errors:
            out.errors[pair] = pages.errors[url]
            continue
        users: set[str] = set()
        for sub in pages.get(url, []):
            out.current[str(sub.get("id"))] = Current.from_submission(sub)
            recipient = sub.get("recipient") or {}
            if recipient.get("userId") and "groupId" not in recipient:
                users.add(str(recipient["userId"]))
        out.roster[pair] = users
    return out


def coverage(rows: pd.DataFrame, read: AssignmentRead) -> tuple[int, int]:
    """(students the input names, students with a submission) over the assignments read."""
    if not read.roster:
        return 0, 0
    named = rows[["class_id", "assignment_id", "user_id"]].dropna()
    by_pair: dict[tuple[str, str], set[str]] = {}
    for cid, aid, uid in named.itertuples(index=False, name=None):
        by_pair.setdefault((str(cid), str(aid)), set()).add(str(uid))
    covered = sum(len(users & by_pair.get(pair, set())) for pair, users in read.roster.items())
    return covered, sum(len(u) for u in read.roster.values())
