"""The reads the executor makes, and the one re-verify read.

* :func:`read_assignments` — one paged ``$expand=outcomes`` listing per assignment, all batched:
  the before-write check of an assignment whose read went stale (``apply``), publishing's check
  (``publish``) and the read-back (``reconcile``), so none of them imports another;
* :func:`read_assignments_in_turn` — the same, one envelope at a time (the executor's early read of
  the next wave, made while its write lanes are busy);
* :func:`read_submissions` — each given submission with its outcomes (one GET each, batched): the
  one path that re-verifies a write or a return whose fate is unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gradesync.errors import AuthError, GraphError
from gradesync.execute.decide import Current
from gradesync.graph import MAX_BATCH, Gate, GraphClient
from gradesync.graph.urls import submissions_url

__all__ = [
    "AssignmentRead",
    "OnSubmissions",
    "read_assignments",
    "read_assignments_in_turn",
    "read_submissions",
]


@dataclass(slots=True)
class AssignmentRead:
    current: dict[str, Current]  # submission id → what Graph holds
    roster: dict[tuple[str, str], set[str]]  # (class, assignment) → user ids of individual submissions
    errors: dict[tuple[str, str], GraphError | AuthError]
    pages: dict[tuple[str, str], int] = field(default_factory=dict)  # pages each listing took


# told the submissions of each page of a listing as it comes (submission id → what Graph holds)
OnSubmissions = Callable[[dict[str, Current]], None]


def read_assignments(
    client: GraphClient,
    pairs: Iterable[tuple[str, str]],
    *,
    gate: Gate | None = None,
    on_page: OnSubmissions | None = None,
) -> AssignmentRead:
    """One paged ``$expand=outcomes`` listing per assignment, all batched (never a GET per submission).
    ``on_page`` hears of each page's submissions as they come (the executor writes on them before
    the listing is complete).

    Raises AuthError (nothing else can succeed then); any other failure is in ``errors``."""
    urls = {pair: submissions_url(*pair) for pair in sorted(set(pairs))}
    out = AssignmentRead({}, {}, {})
    if not urls:
        return out

    # what on_page was told, by item (each submission is read into a Current once)
    shown: dict[int, tuple[Any, Current]] = {}

    def page_read(_: str, items: list[Any]) -> None:
        current = {id(sub): (sub, Current.from_submission(sub)) for sub in items}
        shown.update(current)
        if on_page is not None:
            on_page({cur.submission_id: cur for _, cur in current.values()})

    pages = client.get_all_many(list(urls.values()), gate=gate, on_page=page_read if on_page else None)
    for pair, url in urls.items():
        if url in pages.errors:
            out.errors[pair] = pages.errors[url]
            continue
        out.pages[pair] = pages.pages.get(url, 1)
        users: set[str] = set()
        for sub in pages.get(url, []):
            seen = shown.get(id(sub))
            cur = seen[1] if seen is not None and seen[0] is sub else Current.from_submission(sub)
            out.current[str(sub.get("id"))] = cur
            recipient = sub.get("recipient") or {}
            if recipient.get("userId") and "groupId" not in recipient:
                users.add(str(recipient["userId"]))
        out.roster[pair] = users
    return out


def read_assignments_in_turn(
    client: GraphClient,
    pairs: Iterable[tuple[str, str]],
    *,
    gate: Gate | None = None,
    on_page: OnSubmissions | None = None,
) -> AssignmentRead:
    """:func:`read_assignments`, at most ``MAX_BATCH`` assignments at a time: never more than one
    envelope in flight (the executor's read ahead, made while its write lanes are busy)."""
    ordered = sorted(set(pairs))
    out = AssignmentRead({}, {}, {})
    for i in range(0, len(ordered), MAX_BATCH):
        part = read_assignments(client, ordered[i : i + MAX_BATCH], gate=gate, on_page=on_page)
        out.current.update(part.current)
        out.roster.update(part.roster)
        out.errors.update(part.errors)
        out.pages.update(part.pages)
    return out


def read_submissions(
    client: GraphClient, paths: dict[int, str], *, gate: Gate | None = None
) -> dict[int, Current | None]:
    """Each key's submission (``paths``: key → submission path) as Graph holds it now.

    ``None``: the submission is gone (404); a key absent from the answer: the read failed (try again
    later — never act on it). Raises AuthError."""
    urls = {k: p + "?$expand=outcomes" for k, p in paths.items()}
    pages = client.get_all_many(list(urls.values()), gate=gate)
    found: dict[int, Current | None] = {}
    for k, url in urls.items():
        items = pages.get(url)
        if items:
            found[k] = Current.from_submission(items[0])
        elif (err := pages.errors.get(url)) is not None:
            if isinstance(err, AuthError):
                raise err
            if err.status == 404:
                found[k] = None
    return found
