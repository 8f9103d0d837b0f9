"""The Graph education resources: one :class:`Resources` method per route of :mod:`routing`.

Modelled Graph v1.0 details (checked 2026-12-01; sources in the README's emulator section):

- **Enum evolution.** ``educationSubmissionStatus`` has members after ``unknownFutureValue``
  (``reassigned``, ``excused``). In ``enum_evolution="v1.0"`` mode an operation *without*
  ``Prefer: include-unknown-enum-members`` (its own header; for a ``$batch`` sub-request the
  sub-request's ``headers``) sees an excused submission as ``returned`` and a reassigned one as
  ``returned`` with ``reassignedDateTime`` shown as ``returnedDateTime`` ("educationSubmission:
  excuse", "educationSubmission: reassign"). Every read that returns submissions (list, get,
  ``$expand``) and the answers of ``return`` and ``excuse`` do this. ``enum_evolution="off"`` shows
  the stored status to everyone (the emulator's behaviour before 2026-12).
- **Return is asynchronous** ("Submissions status transition": return is among the calls whose result
  is polled): after ``return``, the next ``return_lag`` reads that include that submission still show
  its previous status (a count of reads, not wall time, so tests stay deterministic; 0 = at once).
- **Unknown outcome**: 404 ``{"error": {"code": "20241", "message": "Entity not found. Outcome id:
  ..."}}``, no ``innerError``.
- **Points outcomes**: a second points (or feedback) outcome on one submission is 409
  ``outcomeExists``; generated tenants already have one on every submission of a points assignment.
- A body with ``publishedPoints`` is refused (400 ``readOnlyProperty``): only ``return`` publishes.
- Group recipients (``groupId``, no ``userId``) are served as stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from graph_emulator import paging
from graph_emulator import state as st
from graph_emulator.answers import ENTITY_NOT_FOUND, Answer, NotFound, Refused
from graph_emulator.common import FEEDBACK_OUTCOME, POINTS_OUTCOME, Json, new_id, now_iso
from graph_emulator.routing import Call

MAX_POINTS = 9_999_999
CALLER_APP_ID = "app:6f1c1f0e-5e1a-4c47-9a53-3e9a4d7c0a11"  # who writes: the app behind the token
ENUM_MODES = ("v1.0", "off")
EVOLVED_STATUSES = ("reassigned", "excused")  # educationSubmissionStatus members after unknownFutureValue
# The enum-evolution mode a new Emulator starts in. "off" until the graph client sends
# `Prefer: include-unknown-enum-members` on every request (brief contract 6); the lead flips this
# to "v1.0" when the graph branch is merged (see the emu notes).
DEFAULT_ENUM_EVOLUTION = "v1.0"  # as real Graph v1.0: excused/reassigned hidden without the Prefer header
DEFAULT_RETURN_LAG = 1  # reads that still show the old status after a return (a count: race-free)


@dataclass
class Knobs:
    """Behaviour settings the handlers read (changed at runtime through ``/_emulator/config``)."""

    page_size: int = 25
    enum_evolution: str = DEFAULT_ENUM_EVOLUTION
    return_lag: int = DEFAULT_RETURN_LAG

    def set(self, *, page_size: Any = None, enum_evolution: Any = None, return_lag: Any = None) -> None:
        if page_size is not None:
            if int(page_size) < 1:
                raise ValueError("page_size must be at least 1")
            self.page_size = int(page_size)
        if enum_evolution is not None:
            if enum_evolution not in ENUM_MODES:
                raise ValueError(f"enum_evolution must be one of {ENUM_MODES}, not {enum_evolution!r}")
            self.enum_evolution = enum_evolution
        if return_lag is not None:
            if isinstance(return_lag, bool) or int(return_lag) < 0:
                raise ValueError("return_lag must be a whole number of reads, 0 or more")
            self.return_lag = int(return_lag)


class Resources:
    """The handlers over one tenant. Not thread-safe on its own: the Emulator holds its lock."""

    def __init__(self, tenant: st.Tenant, knobs: Knobs) -> None:
        self.tenant = tenant
        self.knobs = knobs
        self._lagging: dict[str, list[Any]] = {}  # submission id → [status shown, reads left]

    # --- lookups ------------------------------------------------------------------------------
    def _class(self, cid: str) -> Json:
        c = self.tenant.classes.get(cid)
        if c is None:
            raise NotFound(f"The class '{cid}' was not found.")
        return c

    def _assignment(self, cid: str, aid: str) -> Json:
        self._class(cid)
        a = self.tenant.assignment(cid, aid)
        if a is None:
            raise NotFound(f"The assignment '{aid}' was not found in class '{cid}'.")
        return a

    def _submission(self, cid: str, aid: str, sid: str) -> tuple[Json, Json]:
        a = self._assignment(cid, aid)
        s = self.tenant.submissions_of(a).get(sid)
        if s is None:
            raise NotFound(f"The submission '{sid}' was not found in assignment '{aid}'.")
        return a, s

    def _outcome(self, cid: str, aid: str, sid: str, oid: str) -> tuple[Json, Json, Json]:
        a, s = self._submission(cid, aid, sid)
        o = next((o for o in s.get("outcomes", []) if o["id"] == oid), None)
        if o is None:
            raise NotFound(f"Entity not found. Outcome id: {oid}", ENTITY_NOT_FOUND)
        return a, s, o

    # --- what a caller sees of a submission ---------------------------------------------------
    def _view(self, s: Json, call: Call) -> Json:
        """A submission as this operation sees it: a lagging return, then enum evolution."""
        out = st.render_submission(s)
        lag = self._lagging.get(s["id"])
        if lag is not None:
            out["status"] = lag[0]
        if (
            self.knobs.enum_evolution == "v1.0"
            and out["status"] in EVOLVED_STATUSES
            and not call.wants_unknown_enums
        ):
            if out["status"] == "reassigned":
                out["returnedDateTime"] = out.get("reassignedDateTime") or out.get("returnedDateTime")
            out["status"] = "returned"
        return out

    def _seen(self, submission_ids: list[str]) -> None:
        """Count one read of each submission for the return lag."""
        for sid in submission_ids:
            lag = self._lagging.get(sid)
            if lag is not None:
                lag[1] -= 1
                if lag[1] <= 0:
                    del self._lagging[sid]

    def _outcomes_of(self, s: Json) -> list[Json]:
        return [st.render_outcome(o, self.tenant) for o in s.get("outcomes", [])]

    def _page(self, call: Call, kind: str, items: list[Json]) -> Answer:
        return paging.page(call, kind, items, self.knobs.page_size, self._outcomes_of)

    def _one(self, item: Json, kind: str, call: Call) -> Answer:
        expand = call.params.get("$expand") if kind == "submission" else None
        return Answer(200, paging.shape(item, kind, call.params.get("$select"), expand, self._outcomes_of))

    # --- classes, users, assignments ----------------------------------------------------------
    def list_classes(self, call: Call) -> Answer:
        return self._page(call, "class", [st.render_class(c) for c in self.tenant.data["classes"]])

    def get_class(self, call: Call, cid: str) -> Answer:
        return self._one(st.render_class(self._class(cid)), "class", call)

    def list_members(self, call: Call, cid: str) -> Answer:
        users = self.tenant.users
        members = self._class(cid).get("members", [])
        return self._page(call, "user", [st.render_user(users[u]) for u in members if u in users])

    def list_teachers(self, call: Call, cid: str) -> Answer:
        users = self.tenant.users
        teachers = self._class(cid).get("teachers", [])
        return self._page(call, "user", [st.render_user(users[u]) for u in teachers if u in users])

    def list_users(self, call: Call) -> Answer:
        return self._page(call, "user", [st.render_user(u) for u in self.tenant.data["users"]])

    def get_user(self, call: Call, uid: str) -> Answer:
        u = self.tenant.users.get(uid)
        if u is None:
            raise NotFound(f"The user '{uid}' was not found.")
        return self._one(st.render_user(u), "user", call)

    def list_assignments(self, call: Call, cid: str) -> Answer:
        self._class(cid)
        items = [st.render_assignment(a, cid) for a in self.tenant.assignments_of(cid).values()]
        return self._page(call, "assignment", items)

    def get_assignment(self, call: Call, cid: str, aid: str) -> Answer:
        return self._one(st.render_assignment(self._assignment(cid, aid), cid), "assignment", call)

    # --- submissions --------------------------------------------------------------------------
    def list_submissions(self, call: Call, cid: str, aid: str) -> Answer:
        a = self._assignment(cid, aid)
        subs = self.tenant.submissions_of(a).values()
        ans = self._page(call, "submission", [{**self._view(s, call), "_raw": s} for s in subs])
        self._seen([item["id"] for item in ans.body["value"]])
        return ans

    def get_submission(self, call: Call, cid: str, aid: str, sid: str) -> Answer:
        _, s = self._submission(cid, aid, sid)
        ans = self._one({**self._view(s, call), "_raw": s}, "submission", call)
        self._seen([sid])
        return ans

    def return_submission(self, call: Call, cid: str, aid: str, sid: str) -> Answer:
        _, s = self._submission(cid, aid, sid)
        before = self._view(s, call)["status"]
        for o in s.setdefault("outcomes", []):
            if o.get("type") == "points":
                o["publishedPoints"] = o.get("points")
                o["publishedDateTime"] = o.get("gradedDateTime") if o.get("points") is not None else None
                o["publishedBy"] = o.get("gradedBy")
            elif o.get("type") == "feedback":
                o["publishedFeedback"] = o.get("feedback")
        s["status"] = "returned"
        s["returnedDateTime"] = now_iso()
        self._lagging.pop(sid, None)
        answer = Answer(200, self._view(s, call), applied=True)
        if self.knobs.return_lag > 0 and before != "returned":
            self._lagging[sid] = [before, self.knobs.return_lag]
        return answer

    def excuse_submission(self, call: Call, cid: str, aid: str, sid: str) -> Answer:
        _, s = self._submission(cid, aid, sid)
        s["status"] = "excused"
        s["excusedDateTime"] = now_iso()
        self._lagging.pop(sid, None)
        return Answer(200, self._view(s, call), applied=True)

    # --- outcomes -----------------------------------------------------------------------------
    def list_outcomes(self, call: Call, cid: str, aid: str, sid: str) -> Answer:
        _, s = self._submission(cid, aid, sid)
        return self._page(call, "outcome", self._outcomes_of(s))

    def get_outcome(self, call: Call, cid: str, aid: str, sid: str, oid: str) -> Answer:
        _, _, o = self._outcome(cid, aid, sid, oid)
        return Answer(200, st.render_outcome(o, self.tenant))

    def create_outcome(self, call: Call, cid: str, aid: str, sid: str) -> Answer:
        a, s = self._submission(cid, aid, sid)
        body = call.body
        if not isinstance(body, dict):
            raise Refused(
                400, "The request body must be a JSON object describing the outcome.", "invalidRequestBody"
            )
        otype = body.get("@odata.type")
        if otype not in (POINTS_OUTCOME, FEEDBACK_OUTCOME):
            raise Refused(
                400,
                f"'@odata.type' must be '{POINTS_OUTCOME}' or '{FEEDBACK_OUTCOME}', got {otype!r}.",
                "invalidOutcomeType",
            )
        kind = "points" if otype == POINTS_OUTCOME else "feedback"
        if any(o.get("type") == kind for o in s.get("outcomes", [])):
            raise Refused(
                409, f"The submission already has a {kind} outcome; update it instead.", "outcomeExists"
            )
        now = now_iso()
        o: Json = {"id": new_id(), "type": kind, "lastModifiedBy": CALLER_APP_ID, "lastModifiedDateTime": now}
        if kind == "points":
            if a.get("grading") is None:
                raise Refused(400, "The assignment is not graded with points.", "invalidGrading")
            _reject_published(body)
            pts = points_from(body) if "points" in body else None
            o.update(
                points=pts,
                publishedPoints=None,
                gradedBy=CALLER_APP_ID if pts is not None else None,
                gradedDateTime=now if pts is not None else None,
            )
        else:
            o.update(feedback=_feedback_from(body), publishedFeedback=None)
        s.setdefault("outcomes", []).append(o)
        ans = Answer(201, st.render_outcome(o, self.tenant), applied=True)
        ans.headers["Location"] = f"{call.ctx.base}/{call.version}{call.rest}/{o['id']}"
        return ans

    def patch_outcome(self, call: Call, cid: str, aid: str, sid: str, oid: str) -> Answer:
        _, _, o = self._outcome(cid, aid, sid, oid)
        body = call.body
        if not isinstance(body, dict):
            raise Refused(400, "The request body must be a JSON object.", "invalidRequestBody")
        otype = body.get("@odata.type")
        expected = POINTS_OUTCOME if o.get("type") == "points" else FEEDBACK_OUTCOME
        if otype is not None and otype != expected:
            raise Refused(
                400, f"'@odata.type' {otype!r} does not match the outcome ({expected}).", "invalidOutcomeType"
            )
        now = now_iso()
        if o.get("type") == "points":
            _reject_published(body)
            if "points" in body:
                set_points(o, points_from(body), CALLER_APP_ID, now)
        elif "feedback" in body:
            o["feedback"] = _feedback_from(body)
        o["lastModifiedBy"] = CALLER_APP_ID
        o["lastModifiedDateTime"] = now
        return Answer(200, st.render_outcome(o, self.tenant), applied=True)


def set_points(outcome: Json, points: float | None, by: str, when: str) -> None:
    """Grade a stored points outcome (``None`` clears it) as ``by`` at ``when``."""
    outcome["points"] = points
    outcome["gradedBy"] = by if points is not None else None
    outcome["gradedDateTime"] = when if points is not None else None


def _reject_published(body: Json) -> None:
    if "publishedPoints" in body:
        raise Refused(
            400,
            "'publishedPoints' is read-only: only returning the submission publishes points.",
            "readOnlyProperty",
        )


def points_from(body: Json) -> float | None:
    """The points of a PATCH/POST body: ``{"points": {"points": x}}``, ``{"points": x}`` or null."""
    raw = body.get("points")
    if isinstance(raw, dict):
        if "points" not in raw:
            raise Refused(400, "The grade object needs a 'points' value.", "invalidGrading")
        raw = raw["points"]
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise Refused(400, f"Points must be a number, got {raw!r}.", "invalidGrading")
    value = float(raw)
    if math.isnan(value) or math.isinf(value) or value < 0 or value >= MAX_POINTS:
        raise Refused(
            400,
            f"Invalid points value {raw!r}: points must be between 0 and {MAX_POINTS - 1}.",
            "invalidGrading",
        )
    return value


def _feedback_from(body: Json) -> str | None:
    fb = body.get("feedback")
    if fb is None:
        return None
    if isinstance(fb, dict):
        text = fb.get("text")
        if isinstance(text, dict):
            text = text.get("content")
        if text is None or isinstance(text, str):
            return text
    raise Refused(400, "feedback must be {'text': {'content': '...'}} or null.", "invalidRequestBody")
