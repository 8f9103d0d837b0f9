"""The Graph education resources: one :class:`Resources` method per route of :mod:`routing`.

What each behaviour models and where Graph documents it is in ``docs/GRAPH.md``; the knobs that
switch them are in :mod:`graph_emulator.behaviour`. In short (Graph v1.0, by default):

- **Enum evolution.** Without ``Prefer: include-unknown-enum-members`` (an operation's own header;
  for a ``$batch`` sub-request the sub-request's ``headers``) an excused or reassigned submission
  reads ``returned`` (a reassigned one with ``reassignedDateTime`` shown as ``returnedDateTime``)
  and an inactive assignment ``unknownFutureValue`` — in every read and in the actions' answers.
- **Actions are asynchronous.** After ``excuse`` or ``return`` the next ``action_lag`` reads that
  include that submission still show its previous status; the action's own answer shows the new one.
- **Submission transitions.** ``excuse`` of an excused submission is refused (400
  ``invalidStatusTransition``: "Excused → Excuse" is not in Graph's table of allowed transitions);
  ``return`` is allowed from every status.
- **Excuse deletes teacher work**: the feedback (draft and returned) and the rubric outcome's
  selections and quality feedback are cleared; the points stay.
- **Return publishes everything**: ``publishedPoints``, ``publishedFeedback`` and the rubric's
  published selections take the current values.
- **Assignment states.** Only an ``assigned`` assignment's submissions take writes (400
  ``invalidAssignmentStatus`` otherwise: Graph documents no error, this is the emulator's choice);
  a ``published`` one shows no submissions until its publishing finishes (``publish_lag`` reads).
- **Single points**: points and ``maxPoints`` are stored and served as 32-bit floats.
- **Unknown outcome**: 404 ``{"error": {"code": "20241", "message": "Entity not found. Outcome id:
  ..."}}``, no ``innerError``.
- **Points outcomes**: a second points (or feedback) outcome on one submission is 409
  ``outcomeExists``; generated tenants already have one on every submission of a points assignment.
- A body with ``publishedPoints`` is refused (400 ``readOnlyProperty``): only ``return`` publishes.
- Group recipients (``groupId``, no ``userId``) are served as stored.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from graph_emulator import paging
from graph_emulator import state as st
from graph_emulator.answers import ENTITY_NOT_FOUND, Answer, NotFound, Refused
from graph_emulator.behaviour import DEFAULT_ACTION_LAG, DEFAULT_ENUM_EVOLUTION, ENUM_MODES, Knobs
from graph_emulator.common import FEEDBACK_OUTCOME, POINTS_OUTCOME, RUBRIC_FIELDS, Json, new_id, now_iso
from graph_emulator.routing import Call

__all__ = [
    "CALLER_APP_ID",
    "DEFAULT_ACTION_LAG",
    "DEFAULT_ENUM_EVOLUTION",
    "ENUM_MODES",
    "MAX_POINTS",
    "Knobs",
    "Resources",
    "points_from",
    "set_points",
]

MAX_POINTS = 9_999_999
CALLER_APP_ID = "app:6f1c1f0e-5e1a-4c47-9a53-3e9a4d7c0a11"  # who writes: the app behind the token
EVOLVED_STATUSES = ("reassigned", "excused")  # educationSubmissionStatus members after unknownFutureValue
EVOLVED_ASSIGNMENT_STATUSES = ("inactive",)  # educationAssignmentStatus members after unknownFutureValue


class Resources:
    """The handlers over one tenant. Not thread-safe on its own: the Emulator holds its lock."""

    def __init__(self, tenant: st.Tenant, knobs: Knobs) -> None:
        self.tenant = tenant
        self.knobs = knobs
        self._lagging: dict[str, list[Any]] = {}  # submission id → [status shown, reads left]
        self._publishing: dict[str, int] = {}  # published assignment id → reads left showing it so

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
        s = None if self._hidden(a) else self.tenant.submissions_of(a).get(sid)
        if s is None:
            raise NotFound(f"The submission '{sid}' was not found in assignment '{aid}'.")
        return a, s

    def _outcome(self, cid: str, aid: str, sid: str, oid: str) -> tuple[Json, Json, Json]:
        a, s = self._submission(cid, aid, sid)
        o = next((o for o in s.get("outcomes", []) if o["id"] == oid), None)
        if o is None:
            raise NotFound(f"Entity not found. Outcome id: {oid}", ENTITY_NOT_FOUND)
        return a, s, o

    # --- assignment states --------------------------------------------------------------------
    def _status(self, a: Json) -> str:
        """The assignment's status after one more read of it (a GET or a listing of assignments): a
        ``published`` one finishes publishing once it has been read ``publish_lag`` times (the
        background work Graph documents for it; Graph says to poll the assignment for its status)."""
        status = str(a.get("status", "assigned"))
        if status != "published" or not self.knobs.assignment_states:
            return status
        left = self._publishing.setdefault(a["id"], self.knobs.publish_lag)
        if left > 0:
            self._publishing[a["id"]] = left - 1
            return status
        del self._publishing[a["id"]]
        a["status"] = "assigned"
        a["assignedDateTime"] = a.get("assignedDateTime") or now_iso()
        return "assigned"

    def _hidden(self, a: Json) -> bool:
        """A published assignment's submissions are still being created: none is visible yet."""
        return self.knobs.assignment_states and a.get("status") == "published"

    def _writable(self, a: Json) -> None:
        """Only an ``assigned`` assignment's submissions take grades ("Assignment states transition":
        the submissions are editable only while assigned)."""
        status = a.get("status", "assigned")
        if self.knobs.assignment_states and status != "assigned":
            raise Refused(
                400,
                f"The assignment is {status}: its submissions can be changed only while it is assigned.",
                "invalidAssignmentStatus",
            )

    def _assignment_view(self, a: Json, class_id: str, call: Call) -> Json:
        out = st.render_assignment(a, class_id)
        if out["status"] in EVOLVED_ASSIGNMENT_STATUSES and self._hides_evolved(call):
            out["status"] = "unknownFutureValue"
        if out["grading"] is not None and out["grading"].get("maxPoints") is not None:
            out["grading"]["maxPoints"] = self.knobs.points(float(out["grading"]["maxPoints"]))
        return out

    # --- what a caller sees of a submission ---------------------------------------------------
    def _hides_evolved(self, call: Call) -> bool:
        """Evolved enum members (after ``unknownFutureValue``) are hidden from this operation."""
        if self.knobs.enum_evolution != "v1.0":
            return False
        return "prefer" in self.knobs.broken or not call.wants_unknown_enums

    def _view(self, s: Json, call: Call) -> Json:
        """A submission as this operation sees it: a lagging action, then enum evolution."""
        out = st.render_submission(s)
        lag = self._lagging.get(s["id"])
        if lag is not None:
            out["status"] = lag[0]
        if out["status"] in EVOLVED_STATUSES and self._hides_evolved(call):
            if out["status"] == "reassigned":
                out["returnedDateTime"] = out.get("reassignedDateTime") or out.get("returnedDateTime")
            out["status"] = "returned"
        return out

    def _seen(self, submission_ids: list[str]) -> None:
        """Count one read of each submission for the action lag."""
        for sid in submission_ids:
            lag = self._lagging.get(sid)
            if lag is not None:
                lag[1] -= 1
                if lag[1] <= 0:
                    del self._lagging[sid]

    def _act(self, s: Json, call: Call, new_status: str) -> Answer:
        """Move a submission to ``new_status``: the answer shows it at once, the next ``action_lag``
        reads still show the status before (the action's background work)."""
        lag = self._lagging.pop(s["id"], None)
        before = lag[0] if lag is not None else s.get("status", "working")
        s["status"] = new_status
        answer = Answer(200, self._view(s, call), applied=True)
        if self.knobs.action_lag > 0 and before != new_status:
            self._lagging[s["id"]] = [before, self.knobs.action_lag]
        return answer

    def _outcomes_of(self, s: Json) -> list[Json]:
        return [st.render_outcome(o, self.tenant, self.knobs.points) for o in s.get("outcomes", [])]

    def _as_served(self, call: Call) -> Call:
        """The call as this Graph serves it: with ``broken`` ``expand``, ``$expand`` is ignored."""
        if "expand" in self.knobs.broken and "$expand" in call.params:
            return dataclasses.replace(call, params={k: v for k, v in call.params.items() if k != "$expand"})
        return call

    def _page(self, call: Call, kind: str, items: list[Json]) -> Answer:
        ans = paging.page(self._as_served(call), kind, items, self.knobs.page_size, self._outcomes_of)
        if "nextlink" in self.knobs.broken:
            ans.body.pop("@odata.nextLink", None)
        return ans

    def _one(self, item: Json, kind: str, call: Call) -> Answer:
        call = self._as_served(call)
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
        assignments = list(self.tenant.assignments_of(cid).values())
        for a in assignments:
            self._status(a)
        return self._page(call, "assignment", [self._assignment_view(a, cid, call) for a in assignments])

    def get_assignment(self, call: Call, cid: str, aid: str) -> Answer:
        a = self._assignment(cid, aid)
        self._status(a)
        return self._one(self._assignment_view(a, cid, call), "assignment", call)

    # --- submissions --------------------------------------------------------------------------
    def list_submissions(self, call: Call, cid: str, aid: str) -> Answer:
        a = self._assignment(cid, aid)
        subs = [] if self._hidden(a) else self.tenant.submissions_of(a).values()
        ans = self._page(call, "submission", [{**self._view(s, call), "_raw": s} for s in subs])
        self._seen([item["id"] for item in ans.body["value"]])
        return ans

    def get_submission(self, call: Call, cid: str, aid: str, sid: str) -> Answer:
        _, s = self._submission(cid, aid, sid)
        ans = self._one({**self._view(s, call), "_raw": s}, "submission", call)
        self._seen([sid])
        return ans

    def return_submission(self, call: Call, cid: str, aid: str, sid: str) -> Answer:
        """Return publishes the points, the feedback and the rubric, from any status."""
        a, s = self._submission(cid, aid, sid)
        self._writable(a)
        for o in s.setdefault("outcomes", []):
            if o.get("type") == "points":
                o["publishedPoints"] = o.get("points")
                o["publishedDateTime"] = o.get("gradedDateTime") if o.get("points") is not None else None
                o["publishedBy"] = o.get("gradedBy")
            elif o.get("type") == "feedback":
                o["publishedFeedback"] = o.get("feedback")
            elif o.get("type") == "rubric":
                o["publishedRubricQualitySelectedLevels"] = list(o.get("rubricQualitySelectedLevels") or [])
                o["publishedRubricQualityFeedback"] = list(o.get("rubricQualityFeedback") or [])
        s["returnedDateTime"] = now_iso()
        return self._act(s, call, "returned")

    def excuse_submission(self, call: Call, cid: str, aid: str, sid: str) -> Answer:
        """Excuse deletes the feedback and the rubric (the points stay); excusing an excused
        submission is not an allowed transition."""
        a, s = self._submission(cid, aid, sid)
        self._writable(a)
        if s.get("status") == "excused":
            raise Refused(
                400,
                "The submission is already excused; Excused → Excuse is not an allowed transition.",
                "invalidStatusTransition",
            )
        if self.knobs.excuse_clears:
            _clear_teacher_work(s)
        s["excusedDateTime"] = now_iso()
        return self._act(s, call, "excused")

    # --- outcomes -----------------------------------------------------------------------------
    def list_outcomes(self, call: Call, cid: str, aid: str, sid: str) -> Answer:
        _, s = self._submission(cid, aid, sid)
        return self._page(call, "outcome", self._outcomes_of(s))

    def get_outcome(self, call: Call, cid: str, aid: str, sid: str, oid: str) -> Answer:
        _, _, o = self._outcome(cid, aid, sid, oid)
        return Answer(200, st.render_outcome(o, self.tenant, self.knobs.points))

    def create_outcome(self, call: Call, cid: str, aid: str, sid: str) -> Answer:
        a, s = self._submission(cid, aid, sid)
        self._writable(a)
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
            pts = self.knobs.points(points_from(body)) if "points" in body else None
            o.update(
                points=pts,
                publishedPoints=None,
                gradedBy=CALLER_APP_ID if pts is not None else None,
                gradedDateTime=now if pts is not None else None,
            )
        else:
            o.update(feedback=_feedback_from(body), publishedFeedback=None)
        s.setdefault("outcomes", []).append(o)
        ans = Answer(201, st.render_outcome(o, self.tenant, self.knobs.points), applied=True)
        ans.headers["Location"] = f"{call.ctx.base}/{call.version}{call.rest}/{o['id']}"
        return ans

    def patch_outcome(self, call: Call, cid: str, aid: str, sid: str, oid: str) -> Answer:
        a, _, o = self._outcome(cid, aid, sid, oid)
        self._writable(a)
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
                set_points(o, self.knobs.points(points_from(body)), CALLER_APP_ID, now)
        elif "feedback" in body:
            o["feedback"] = _feedback_from(body)
        o["lastModifiedBy"] = CALLER_APP_ID
        o["lastModifiedDateTime"] = now
        return Answer(200, st.render_outcome(o, self.tenant, self.knobs.points), applied=True)


def _clear_teacher_work(s: Json) -> None:
    """What excusing deletes: the feedback (draft and returned) and the rubric's selections and
    quality feedback ("Grading rubrics and feedback are deleted")."""
    now = now_iso()
    for o in s.get("outcomes", []):
        if o.get("type") == "feedback" and (o.get("feedback") is not None or o.get("publishedFeedback")):
            o["feedback"] = o["publishedFeedback"] = None
        elif o.get("type") == "rubric" and any(o.get(k) for k in RUBRIC_FIELDS):
            for k in RUBRIC_FIELDS:
                o[k] = []
        else:
            continue
        o["lastModifiedBy"] = CALLER_APP_ID
        o["lastModifiedDateTime"] = now


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
