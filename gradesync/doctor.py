"""``gradesync doctor``: check, against the configured tenant, each assumption gradesync makes of Graph.

gradesync and its emulator are built on what Graph v1.0 documents (``docs/GRAPH.md``); a tenant can
differ — a proxy that drops a header, an older service, a token without the right permission. The
doctor reads a few classes, assignments and submissions (about twenty requests, all reads) and says,
check by check, whether the assumption holds, with the evidence:

==================  ========  ======================================================================
check               critical  what it verifies
==================  ========  ======================================================================
graph-read          yes       Graph answers a read with this token (``GET /education/classes``)
token-permissions   yes       the token's ``roles`` (application) or ``scp`` (delegated) claims,
                              decoded without verifying (never printed), include a permission that
                              writes grades; an opaque token is a warning
write-access        yes       with ``--write-check CLASS ASSIGNMENT``: one write that changes no
                              grade (the points outcome PATCHed with its own value) is accepted
expand-outcomes     yes       ``$expand=outcomes`` lists submissions with their points outcomes
paging              yes       ``$top`` pages end in an ``@odata.nextLink`` on Graph's host that
                              leads to the next page
prefer-header       yes       ``Prefer: include-unknown-enum-members`` shows excused/reassigned
                              submissions (a read without it shows them ``returned``)
batch-headers       yes       a ``$batch`` sub-request's own ``Prefer`` header is honoured
assignment-states   no        the assignment statuses seen (``unknownFutureValue``: an inactive
                              one read without the header)
==================  ========  ======================================================================

A check is ``pass``, ``fail``, ``warn`` (an answer gradesync can live with, or nothing to decide
on) or ``skip`` (not tried, or nothing to try it on: say, no excused submission in the sample).
The CLI records the report in the state directory (``gradesync.state.doctor``); ``sync`` and
``apply`` refuse to start while a critical check failed last time against the same Graph.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gradesync.config import Settings
from gradesync.errors import AuthError, ExitCode, GradesyncError
from gradesync.graph import GraphClient, SubRequest
from gradesync.graph.odata import is_points_outcome, points_of
from gradesync.graph.urls import (
    CLASS_SELECT,
    assignments_url,
    class_lookup_url,
    outcome_url,
    submission_path,
    submissions_url,
)

__all__ = ["CHECKS", "Check", "DoctorReport", "run_doctor", "token_claims"]

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
# (name, title, critical), in the order the table shows them
CHECKS: tuple[tuple[str, str, bool], ...] = (
    ("graph-read", "Graph answers a read with this token", True),
    ("token-permissions", "the token carries a permission that writes grades", True),
    ("write-access", "a write that changes no grade is accepted", True),
    ("expand-outcomes", "$expand=outcomes lists submissions with their points outcomes", True),
    ("paging", "$top pages end in an @odata.nextLink to the next page", True),
    ("prefer-header", "the Prefer header reveals excused and reassigned submissions", True),
    ("batch-headers", "a $batch sub-request's own Prefer header is honoured", True),
    ("assignment-states", "the assignment statuses seen", False),
)
EVOLVED = ("excused", "reassigned")  # educationSubmissionStatus members shown only with the header
WRITE_PERMISSIONS = {"EduAssignments.ReadWrite.All": "application", "EduAssignments.ReadWrite": "delegated"}
BASIC_WRITE = ("EduAssignments.ReadWriteBasic.All", "EduAssignments.ReadWriteBasic")
APP_ONLY_NOTE = (
    "Graph's v1.0 permission table for updating an outcome lists this application permission, while "
    'its "Update data in assignments and grades" page says app-only access is beta-only: '
    "--write-check finds out which this tenant honours"
)
DELEGATED_NOTE = "a delegated token writes only to the classes its user teaches"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's table."""

    name: str
    title: str
    critical: bool
    result: str  # pass | fail | warn | skip
    evidence: str

    def asdict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "critical": self.critical,
            "result": self.result,
            "evidence": self.evidence,
        }


@dataclass(slots=True)
class DoctorReport:
    graph_base_url: str
    at: str
    checks: list[Check] = field(default_factory=list)
    error: GradesyncError | None = None  # what stopped the reads (a refused token, no network)

    @property
    def critical_failures(self) -> list[Check]:
        return [c for c in self.checks if c.critical and c.result == FAIL]

    @property
    def exit_code(self) -> ExitCode:
        """3 for a refused token, 7 for an unreachable Graph, 1 when a critical check failed, else 0."""
        if self.error is not None and self.error.exit_code in (ExitCode.AUTH, ExitCode.NETWORK):
            return self.error.exit_code
        return ExitCode.ROWS_NOT_DONE if self.critical_failures else ExitCode.OK

    def asdict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "graph_base_url": self.graph_base_url,
            "checks": [c.asdict() for c in self.checks],
            "critical_failed": [c.name for c in self.critical_failures],
            "exit_code": int(self.exit_code),
        }


def token_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT access token, decoded *without* verifying it (only to say what it
    carries); None for a token that is not a readable JWT (opaque, encrypted, the emulator's)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def permissions_check(claims: dict[str, Any] | None) -> tuple[str, str]:
    """(result, evidence) of ``token-permissions`` from the token's claims."""
    if claims is None:
        return WARN, (
            "the token is not a JWT whose claims can be read (opaque or encrypted): its permissions are "
            "unknown; --write-check makes one write that changes no grade to find out"
        )
    roles = [str(r) for r in claims.get("roles") or [] if isinstance(r, str)]
    scopes = str(claims.get("scp") or "").split()
    delegated = bool(scopes)
    granted = scopes if delegated else roles
    edu = sorted(p for p in granted if p.startswith("Edu"))
    who = (
        f"delegated token of {claims.get('upn') or claims.get('preferred_username') or 'a user'} (scp)"
        if delegated
        else "application token (roles)"
    )
    shown = ", ".join(edu) or "no Edu* permission"
    others = len(granted) - len(edu)
    evidence = f"{who}: {shown}" + (f" (+{others} other)" if others else "")
    writes = [p for p in edu if p in WRITE_PERMISSIONS]
    if writes:
        note = DELEGATED_NOTE if delegated else APP_ONLY_NOTE
        return PASS, f"{evidence}; {note}"
    wanted = "EduAssignments.ReadWrite" if delegated else "EduAssignments.ReadWrite.All"
    if any(p in BASIC_WRITE for p in edu):
        return FAIL, f"{evidence}; the ...Basic permissions leave out grades: grant {wanted}"
    return FAIL, f"{evidence}; nothing here writes grades: grant {wanted} (and admin consent)"


class _Doctor:
    """One doctor run: reads a sample, then decides each check on what it read."""

    def __init__(self, settings: Settings, client: GraphClient, *, classes: int, assignments: int) -> None:
        self.settings = settings
        self.client = client
        self.n_classes = classes
        self.n_assignments = assignments
        self.results: dict[str, tuple[str, str]] = {}
        self.classes: list[dict[str, Any]] = []
        self.assignments: list[tuple[str, dict[str, Any]]] = []  # (class id, assignment)
        self.submissions: list[tuple[str, str, dict[str, Any]]] = []  # (class id, assignment id, sub)

    def say(self, name: str, result: str, evidence: str) -> None:
        self.results[name] = (result, evidence)

    # ------------------------------------------------------------------ reads
    def read_sample(self) -> None:
        page = self.client.get("/education/classes", {"$top": str(self.n_classes), "$select": CLASS_SELECT})
        self.classes = [c for c in page.get("value") or [] if isinstance(c, dict)][: self.n_classes]
        self.say("graph-read", PASS, f"GET /education/classes answered: {len(self.classes)} class(es) read")
        ids = [str(c.get("id")) for c in self.classes]
        listings = self.client.get_all_many([assignments_url(cid) for cid in ids])
        for cid in ids:
            for a in listings.get(assignments_url(cid), []):
                self.assignments.append((cid, a))
        graded = [
            (cid, a)
            for cid, a in self.assignments
            if a.get("status") == "assigned" and isinstance(a.get("grading"), dict)
        ][: self.n_assignments]
        # one direct GET each (their first page): the Prefer check needs reads outside $batch, which
        # batch-headers then compares with
        for cid, a in graded:
            aid = str(a.get("id"))
            page = self.client.get(submissions_url(cid, aid))
            self.submissions += [(cid, aid, s) for s in page.get("value") or [] if isinstance(s, dict)]

    # ------------------------------------------------------------------ checks on what was read
    def check_expand(self) -> None:
        subs = [s for _, _, s in self.submissions]
        if not subs:
            self.say("expand-outcomes", SKIP, "no assigned, points-graded assignment with submissions read")
            return
        with_key = [s for s in subs if isinstance(s.get("outcomes"), list)]
        points = [s for s in with_key if any(is_points_outcome(o) for o in s["outcomes"])]
        n_asg = len({aid for _, aid, _ in self.submissions})
        if not with_key:
            self.say(
                "expand-outcomes",
                FAIL,
                f"{len(subs)} submission(s) of {n_asg} assignment(s) came back without outcomes: Graph "
                "ignored $expand=outcomes, so gradesync would see no grade at all",
            )
        elif points:
            self.say(
                "expand-outcomes",
                PASS,
                f"{len(subs)} submission(s) of {n_asg} assignment(s) listed with their outcomes; "
                f"{len(points)} carry a points outcome",
            )
        else:
            self.say(
                "expand-outcomes",
                WARN,
                f"{len(subs)} submission(s) listed with outcomes, none a points outcome: gradesync creates "
                "them (POST) when it grades",
            )

    def check_paging(self) -> None:
        cls = next(iter(self.classes), None)
        if cls is None:
            self.say("paging", SKIP, "no class read")
            return
        base = f"/education/classes/{cls.get('id')}/members"
        first = self.client.get(base, {"$top": "1", "$select": "id"})
        items, link = first.get("value") or [], first.get("@odata.nextLink")
        if len(items) == 1 and isinstance(link, str):
            nxt = self.client.get(link)  # on another host or scheme the client refuses it
            ids = [i.get("id") for i in nxt.get("value") or []]
            ok = bool(ids) and ids[0] != items[0].get("id")
            self.say(
                "paging",
                PASS if ok else FAIL,
                f"members of class {cls.get('displayName')!r} with $top=1: 1 item and an @odata.nextLink on "
                f"Graph's host; following it gave {'the next member' if ok else 'no new member'}",
            )
            return
        if len(items) > 1:
            self.say(
                "paging",
                WARN,
                f"$top=1 on a class's members served {len(items)} items: $top is a request, not a "
                "promise; no nextLink seen to check (gradesync follows nextLinks whatever the page size)",
            )
            return
        more = self.client.get(base, {"$top": "2", "$select": "id"}).get("value") or []
        if len(more) > len(items):
            self.say(
                "paging",
                FAIL,
                f"$top=1 served {len(items)} member(s) and no @odata.nextLink, though $top=2 serves "
                f"{len(more)}: listings end early without saying so, and gradesync would miss students "
                "and submissions",
            )
        else:
            self.say("paging", SKIP, "the class read has a single member: nothing to page through")

    def _evolved(self) -> tuple[str, str, dict[str, Any]] | None:
        return next((x for x in self.submissions if x[2].get("status") in EVOLVED), None)

    def check_prefer(self) -> None:
        found = self._evolved()
        if found is None:
            hidden = next((x for x in self.submissions if _looks_hidden(x[2])), None)
            if hidden is not None:
                sub = hidden[2]
                self.say(
                    "prefer-header",
                    FAIL,
                    f"submission {sub.get('id')} reads {sub.get('status')!r} with the Prefer header although "
                    f"its latest change is {_latest_change(sub)}: Graph ignored the header, so excused and "
                    "reassigned submissions would read as returned",
                )
            else:
                self.say(
                    "prefer-header",
                    SKIP,
                    f"no excused or reassigned submission among the {len(self.submissions)} read: nothing to "
                    "compare (run again when one exists, or sample more classes)",
                )
            return
        cid, aid, sub = found
        plain = self.client.get(submission_path(cid, aid, str(sub.get("id"))), enum_members=False)
        shown = sub.get("status")
        self.say(
            "prefer-header",
            PASS,
            f"submission {sub.get('id')}: {shown!r} with the header, {plain.get('status')!r} without it",
        )

    def check_batch_headers(self) -> None:
        found = self._evolved()
        if found is None:
            failed = self.results.get("prefer-header", ("",))[0] == FAIL
            why = "see prefer-header" if failed else "nothing to compare"
            self.say("batch-headers", SKIP, f"no excused or reassigned submission seen: {why}")
            return
        cid, aid, sub = found
        path = submission_path(cid, aid, str(sub.get("id")))
        answers = self.client.batch(
            [SubRequest("own", "GET", path), SubRequest("none", "GET", path, enum_members=False)]
        )
        own, none = (answers[k] for k in ("own", "none"))
        if not own.ok:
            raise own.error or GradesyncError("the $batch read failed", code="doctor-batch-failed")
        own_status = own.body.get("status") if isinstance(own.body, dict) else None
        none_status = none.body.get("status") if none.ok and isinstance(none.body, dict) else None
        if own_status in EVOLVED:
            self.say(
                "batch-headers",
                PASS,
                f"in one $batch: {own_status!r} for the sub-request with its own Prefer header, "
                f"{none_status!r} for the one without",
            )
        else:
            self.say(
                "batch-headers",
                FAIL,
                f"a direct read shows submission {sub.get('id')} {sub.get('status')!r}, but a $batch "
                f"sub-request carrying its own Prefer header shows {own_status!r}: Graph ignores "
                "sub-request headers, and gradesync reads submissions through $batch",
            )

    def check_states(self) -> None:
        if not self.assignments:
            self.say("assignment-states", SKIP, "no assignment read")
            return
        counts = Counter(str(a.get("status")) for _, a in self.assignments)
        shown = ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
        evidence = f"{len(self.assignments)} assignment(s) of {len(self.classes)} class(es): {shown}"
        if counts.get("unknownFutureValue"):
            self.say(
                "assignment-states",
                WARN,
                evidence + "; unknownFutureValue is how an inactive assignment reads without the Prefer "
                "header: gradesync rejects its rows either way",
            )
        else:
            self.say("assignment-states", PASS, evidence + "; gradesync writes only the assigned ones")

    # ------------------------------------------------------------------ the optional write
    def check_write(self, target: tuple[str, str] | None) -> None:
        if target is None:
            self.say(
                "write-access",
                SKIP,
                "not tried: `gradesync doctor --write-check CLASS ASSIGNMENT` makes one write that changes "
                "no grade",
            )
            return
        class_key, name = target
        by = self.settings.match.class_by
        found = self.client.get_all_many([class_lookup_url(class_key, by)])
        classes = next(iter(found.values()), []) if not found.errors else []
        if len(classes) != 1:
            matches = f"class {class_key!r} ({by}) matches {len(classes)} classes in Teams"
            self.say("write-access", FAIL, matches)
            return
        cid = str(classes[0].get("id"))
        listing = self.client.get_all_many([assignments_url(cid)]).get(assignments_url(cid), [])
        wanted = name.strip().casefold()
        named = [a for a in listing if str(a.get("displayName", "")).strip().casefold() == wanted]
        named.sort(key=lambda a: a.get("status") != "assigned")
        if not named or named[0].get("status") != "assigned":
            state = f"is {named[0].get('status')}" if named else "was not found"
            self.say(
                "write-access", FAIL, f"assignment {name!r} in {class_key} {state}: name an assigned one"
            )
            return
        aid = str(named[0].get("id"))
        subs = self.client.get_all_many([submissions_url(cid, aid)]).get(submissions_url(cid, aid), [])
        target_sub, outcome = _no_change_target(subs)
        if outcome is None or target_sub is None:
            self.say("write-access", SKIP, f"no submission of {name!r} has a points outcome to write to")
            return
        points = points_of(outcome)
        url = outcome_url(cid, aid, str(target_sub.get("id")), str(outcome.get("id")))
        body = {
            "@odata.type": "#microsoft.graph.educationPointsOutcome",
            "points": None
            if points is None
            else {"@odata.type": "#microsoft.graph.educationAssignmentPointsGrade", "points": points},
        }
        what = "no grade" if points is None else f"{points:g}"
        try:
            self.client.request("PATCH", url, body)
        except AuthError as e:
            self.say("write-access", FAIL, f"PATCH of a points outcome of {name!r} refused: {e.message}")
            return
        except GradesyncError as e:
            self.say("write-access", FAIL, f"PATCH of a points outcome of {name!r} failed: {e.message}")
            return
        self.say(
            "write-access",
            PASS,
            f"PATCH of submission {target_sub.get('id')}'s points outcome in {name!r} with its own value "
            f"({what}) answered 2xx: this token writes grades there (Teams now shows the app as its last "
            "modifier; no grade changed)",
        )


def _latest_change(sub: dict[str, Any]) -> str:
    stamps = {k: sub.get(k) for k in ("excusedDateTime", "reassignedDateTime", "returnedDateTime")}
    key, value = max(((k, v) for k, v in stamps.items() if isinstance(v, str)), key=lambda kv: kv[1])
    return f"{key[: -len('DateTime')]} ({value})"


def _looks_hidden(sub: dict[str, Any]) -> bool:
    """A submission shown ``returned`` whose latest change is an excuse or a reassignment: what an
    evolved status looks like when Graph hides it."""
    stamps = {k: sub.get(k) for k in ("excusedDateTime", "reassignedDateTime", "returnedDateTime")}
    dated = {k: v for k, v in stamps.items() if isinstance(v, str) and v}
    if sub.get("status") != "returned" or not dated:
        return False
    return max(dated, key=lambda k: dated[k]) != "returnedDateTime"


def _no_change_target(subs: Iterable[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A submission and its points outcome to PATCH with its own value: one with no grade yet first."""
    candidates = []
    for s in subs:
        if s.get("status") == "excused" or "groupId" in (s.get("recipient") or {}):
            continue
        for o in s.get("outcomes") or []:
            if is_points_outcome(o):
                candidates.append((points_of(o) is not None, s, o))
                break
    if not candidates:
        return None, None
    _, sub, outcome = min(candidates, key=lambda c: c[0])
    return sub, outcome


def run_doctor(
    settings: Settings,
    client: GraphClient,
    token: Callable[[], str] | None,
    *,
    write_check: tuple[str, str] | None = None,
    classes: int = 3,
    assignments: int = 5,
    now: Callable[[], datetime] | None = None,
) -> DoctorReport:
    """Run every check (see the module docstring); ``token`` gives the bearer token whose claims are
    read (never shown), ``write_check`` (class key, assignment name) allows the one no-change write."""
    at = (now or (lambda: datetime.now(UTC)))().isoformat(timespec="seconds").replace("+00:00", "Z")
    report = DoctorReport(graph_base_url=settings.graph.base_url, at=at)
    doctor = _Doctor(settings, client, classes=classes, assignments=assignments)
    claims = None
    if token is not None:
        try:
            claims = token_claims(token())
        except GradesyncError as e:
            report.error = e
    doctor.say("token-permissions", *permissions_check(claims))
    steps: list[tuple[str, Callable[[], None]]] = [
        ("graph-read", doctor.read_sample),
        ("write-access", lambda: doctor.check_write(write_check)),
        ("expand-outcomes", doctor.check_expand),
        ("paging", doctor.check_paging),
        ("prefer-header", doctor.check_prefer),
        ("batch-headers", doctor.check_batch_headers),
        ("assignment-states", doctor.check_states),
    ]
    for name, step in steps:
        if report.error is not None:
            break
        try:
            step()
        except AuthError as e:  # a refused token or a missing read permission: nothing else can be read
            report.error = e
        except GradesyncError as e:
            if name == "graph-read":  # no sample to decide anything on
                report.error = e
            else:
                doctor.say(name, FAIL, f"Graph answered with an error: [{e.code}] {e.message}")
    if report.error is not None and "graph-read" not in doctor.results:
        doctor.say("graph-read", FAIL, f"[{report.error.code}] {report.error.message}")
    for name, title, critical in CHECKS:
        result, evidence = doctor.results.get(name, (SKIP, "not tried: Graph could not be read"))
        report.checks.append(Check(name, title, critical, result, evidence))
    return report
