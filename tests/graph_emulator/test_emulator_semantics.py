"""What Graph v1.0 does to teacher work and to state, modelled by default, each also with its opt-out.

Sources (docs/GRAPH.md has the list): "educationSubmission: excuse" ("Grading rubrics and feedback
are deleted"), "educationSubmission: return" (the grade and feedback become visible), "List outcomes"
(the published* values are what was last returned), "Status, transitions, and limitations for
submissions" (the allowed transitions; every action "Async / Poll"), "... for assignments" (draft,
scheduled, published, assigned, inactive), the educationAssignment resource (inactive reads
unknownFutureValue without the Prefer header), educationAssignmentPointsGrade (points are Single),
and Graph's throttling limits (education rostering: 35,000 requests per 10 s per app per tenant).
"""

from __future__ import annotations

import copy

import httpx
import pytest
from emulator_testkit import FakeClock, client, sub_path

from graph_emulator import ThrottleConfig, points_outcome
from graph_emulator.behaviour import as_single

PREFER = {"Prefer": "include-unknown-enum-members"}
RUBRIC = {
    "id": "rubric-1",
    "type": "rubric",
    "rubricQualitySelectedLevels": [{"qualityId": "q1", "columnId": "c2"}],
    "rubricQualityFeedback": [
        {"qualityId": "q1", "feedback": {"content": "Clear thesis", "contentType": "text"}}
    ],
    "publishedRubricQualitySelectedLevels": [],
    "publishedRubricQualityFeedback": [],
    "lastModifiedBy": None,
    "lastModifiedDateTime": "2024-09-01T10:00:00Z",
}


def _find(tenant: dict, status: str, *, points: bool = True) -> tuple[dict, dict, dict]:
    """An individual submission of a graded, assigned assignment with ``status`` (and, with
    ``points``, a points outcome)."""
    return next(
        (c, a, s)
        for c in tenant["classes"]
        for a in c["assignments"]
        if a.get("grading") and a.get("status") == "assigned" and a.get("assignTo") != "groups"
        for s in a.get("submissions", [])
        if s["status"] == status and "userId" in s["recipient"] and (points_outcome(s) or not points)
    )


def _with_teacher_work(tenant: dict, status: str) -> tuple[dict, dict, dict]:
    """A submission holding a feedback draft, returned feedback and a filled rubric."""
    c, a, s = _find(tenant, status)
    feedback = next(o for o in s["outcomes"] if o["type"] == "feedback")
    feedback.update(feedback="Revise the conclusion", publishedFeedback="Good start")
    s["outcomes"].append(copy.deepcopy(RUBRIC))
    return c, a, s


def _outcomes(http: httpx.Client, c: dict, a: dict, s: dict) -> dict[str, dict]:
    got = http.get(sub_path(c, a, s) + "/outcomes").json()["value"]
    return {o["@odata.type"].rsplit(".", 1)[-1]: o for o in got}


def _status(http: httpx.Client, c: dict, a: dict, s: dict) -> str:
    return str(http.get(sub_path(c, a, s), headers=PREFER).json()["status"])


# --- excuse and return: what happens to teacher work ---------------------------------------------
def test_excuse_deletes_feedback_and_rubric_but_keeps_the_points(emulator, sample_tenant):
    c, a, s = _with_teacher_work(sample_tenant, "submitted")
    points = points_outcome(s)["points"]
    emulator.reset(sample_tenant)
    with client(emulator) as http:
        before = _outcomes(http, c, a, s)
        assert http.post(sub_path(c, a, s) + "/excuse", headers=PREFER).json()["status"] == "excused"
        after = _outcomes(http, c, a, s)
    assert before["educationFeedbackOutcome"]["feedback"]["text"]["content"] == "Revise the conclusion"
    assert before["educationRubricOutcome"]["rubricQualitySelectedLevels"]
    assert after["educationFeedbackOutcome"]["feedback"] is None
    assert after["educationFeedbackOutcome"]["publishedFeedback"] is None
    rubric = after["educationRubricOutcome"]
    assert rubric["rubricQualitySelectedLevels"] == rubric["rubricQualityFeedback"] == []
    assert after["educationPointsOutcome"]["points"]["points"] == points


def test_excuse_keeps_teacher_work_when_the_opt_out_is_set(emulator, sample_tenant):
    c, a, s = _with_teacher_work(sample_tenant, "submitted")
    emulator.reset(sample_tenant)
    emulator.configure(excuse_clears=False)
    with client(emulator) as http:
        http.post(sub_path(c, a, s) + "/excuse").raise_for_status()
        after = _outcomes(http, c, a, s)
    assert after["educationFeedbackOutcome"]["feedback"]["text"]["content"] == "Revise the conclusion"
    assert after["educationRubricOutcome"]["rubricQualitySelectedLevels"]


@pytest.mark.parametrize("status", ["reassigned", "excused", "working"])
def test_return_publishes_points_feedback_and_rubric_from_any_status(emulator, sample_tenant, status):
    c, a, s = _find(sample_tenant, status, points=False)
    s["outcomes"] = [
        {"id": "pts", "type": "points", "points": 7.0, "publishedPoints": None},
        {"id": "fb", "type": "feedback", "feedback": "See me", "publishedFeedback": None},
        copy.deepcopy(RUBRIC),
    ]
    emulator.reset(sample_tenant)
    with client(emulator) as http:
        answer = http.post(sub_path(c, a, s) + "/return", headers=PREFER)
        after = _outcomes(http, c, a, s)
    assert answer.status_code == 200 and answer.json()["status"] == "returned"
    assert after["educationPointsOutcome"]["publishedPoints"]["points"] == 7.0
    assert after["educationFeedbackOutcome"]["publishedFeedback"]["text"]["content"] == "See me"
    published = after["educationRubricOutcome"]["publishedRubricQualitySelectedLevels"]
    assert published == RUBRIC["rubricQualitySelectedLevels"]


def test_excusing_an_excused_submission_is_refused_even_before_reads_show_it(emulator, sample_tenant):
    c, a, s = _find(sample_tenant, "submitted")
    excused = _find(sample_tenant, "excused", points=False)
    with client(emulator) as http:
        first = http.post(sub_path(c, a, s) + "/excuse", headers=PREFER)
        lagging = _status(http, c, a, s)  # the excuse is still being applied
        again = http.post(sub_path(c, a, s) + "/excuse", headers=PREFER)
        already = http.post(sub_path(*excused) + "/excuse", headers=PREFER)
    assert first.json()["status"] == "excused" and lagging == "submitted"
    for refused in (again, already):
        assert refused.status_code == 400
        assert refused.json()["error"]["innerError"]["code"] == "invalidStatusTransition"


def test_excuse_is_asynchronous_for_the_next_reads(emulator, sample_tenant):
    c, a, s = _find(sample_tenant, "working")
    with client(emulator) as http:
        answer = http.post(sub_path(c, a, s) + "/excuse", headers=PREFER).json()["status"]
        reads = [_status(http, c, a, s), _status(http, c, a, s)]
    assert (answer, reads) == ("excused", ["working", "excused"])
    emulator.configure(action_lag=0)
    c, a, s = _find(sample_tenant, "submitted")
    with client(emulator) as http:
        http.post(sub_path(c, a, s) + "/excuse").raise_for_status()
        assert _status(http, c, a, s) == "excused"


# --- assignment states ----------------------------------------------------------------------------
def _set_status(tenant: dict, status: str) -> tuple[dict, dict, dict]:
    c, a, s = _find(tenant, "submitted")
    a["status"] = status
    return c, a, s


def test_inactive_reads_unknown_future_value_without_the_header_and_takes_no_writes(emulator, sample_tenant):
    c, a, s = _set_status(sample_tenant, "inactive")
    emulator.reset(sample_tenant)
    url = f"/education/classes/{c['id']}/assignments/{a['id']}"
    outcome = points_outcome(s)
    with client(emulator) as http:
        plain, prefer = http.get(url).json()["status"], http.get(url, headers=PREFER).json()["status"]
        listed = {
            x["id"]: x["status"]
            for x in http.get(f"/education/classes/{c['id']}/assignments").json()["value"]
        }
        read = http.get(url + "/submissions")
        write = http.patch(sub_path(c, a, s) + f"/outcomes/{outcome['id']}", json={"points": 1})
        excuse = http.post(sub_path(c, a, s) + "/excuse")
    assert (plain, prefer, listed[a["id"]]) == ("unknownFutureValue", "inactive", "unknownFutureValue")
    assert read.status_code == 200 and read.json()["value"]
    for refused in (write, excuse):
        assert refused.status_code == 400
        assert refused.json()["error"]["innerError"]["code"] == "invalidAssignmentStatus"
    emulator.configure(assignment_states=False)
    with client(emulator) as http:
        assert (
            http.patch(sub_path(c, a, s) + f"/outcomes/{outcome['id']}", json={"points": 1}).status_code
            == 200
        )


def test_a_published_assignment_gains_its_submissions_after_publishing(emulator, sample_tenant):
    c, a, s = _set_status(sample_tenant, "published")
    emulator.reset(sample_tenant)
    emulator.configure(publish_lag=1)
    url = f"/education/classes/{c['id']}/assignments/{a['id']}"
    with client(emulator) as http:
        first = http.get(url).json()["status"]
        hidden = http.get(url + "/submissions").json()["value"]
        write = http.post(sub_path(c, a, s) + "/excuse")
        then = http.get(url).json()["status"]
        shown = http.get(url + "/submissions").json()["value"]
    assert (first, hidden, write.status_code) == ("published", [], 404)
    assert then == "assigned" and s["id"] in {x["id"] for x in shown}


def test_published_submissions_are_visible_at_once_without_assignment_states(emulator, sample_tenant):
    c, a, s = _set_status(sample_tenant, "published")
    emulator.reset(sample_tenant)
    emulator.configure(assignment_states=False)
    with client(emulator) as http:
        listing = http.get(f"/education/classes/{c['id']}/assignments/{a['id']}/submissions").json()
    assert s["id"] in {x["id"] for x in listing["value"]}


# --- points are Single -----------------------------------------------------------------------------
def test_points_and_max_points_are_kept_as_single(emulator, sample_tenant):
    c, a, s = _find(sample_tenant, "submitted")
    a["grading"]["maxPoints"] = 87.3
    emulator.reset(sample_tenant)
    outcome = points_outcome(s)["id"]
    with client(emulator) as http:
        answer = http.patch(sub_path(c, a, s) + f"/outcomes/{outcome}", json={"points": 87.3}).json()
        listed = _outcomes(http, c, a, s)["educationPointsOutcome"]["points"]["points"]
        maximum = http.get(f"/education/classes/{c['id']}/assignments/{a['id']}").json()["grading"][
            "maxPoints"
        ]
    assert answer["points"]["points"] == listed == maximum == as_single(87.3) == 87.30000305175781
    emulator.configure(single_points=False)
    with client(emulator) as http:
        again = http.patch(sub_path(c, a, s) + f"/outcomes/{outcome}", json={"points": 87.3}).json()
    assert again["points"]["points"] == 87.3


# --- the rostering limit ----------------------------------------------------------------------------
@pytest.mark.parametrize("rostering", [35_000, None])
def test_rostering_reads_have_their_own_limit(emulator_factory, rostering):
    limits = ThrottleConfig(per_10s=2, per_hour=1000, rostering_per_10s=rostering)
    srv = emulator_factory(throttle=limits, clock=FakeClock())
    cid = srv.state()["classes"][0]["id"]
    with client(srv) as http:
        roster = [
            http.get(p).status_code for p in ("/education/classes", f"/education/classes/{cid}/members") * 2
        ]
        assigned = [http.get(f"/education/classes/{cid}/assignments").status_code for _ in range(3)]
    if rostering is None:  # the opt-out: everything counts against the assignment service's limit
        assert roster == [200, 200, 429, 429] and assigned == [429, 429, 429]
    else:
        assert roster == [200] * 4 and assigned == [200, 200, 429]


# --- promises broken on purpose (what gradesync doctor notices) ---------------------------------------
def _excused(tenant: dict) -> tuple[dict, dict, dict]:
    return _find(tenant, "excused", points=False)


def test_broken_prefer_hides_evolved_members_even_with_the_header(emulator, sample_tenant):
    c, a, s = _excused(sample_tenant)
    emulator.configure(broken=["prefer"])
    with client(emulator) as http:
        assert _status(http, c, a, s) == "returned"


def test_broken_expand_and_nextlink(emulator, sample_tenant):
    c, a, _ = _excused(sample_tenant)
    url = f"/education/classes/{c['id']}/assignments/{a['id']}/submissions"
    with client(emulator) as http:
        whole = http.get(url, params={"$expand": "outcomes", "$top": 2}).json()
        emulator.configure(broken="expand,nextlink")
        broken = http.get(url, params={"$expand": "outcomes", "$top": 2}).json()
    assert "outcomes" in whole["value"][0] and "@odata.nextLink" in whole
    assert "outcomes" not in broken["value"][0] and "@odata.nextLink" not in broken


def test_broken_batch_headers_ignores_the_sub_requests_own(emulator, sample_tenant):
    c, a, s = _excused(sample_tenant)
    body = {"requests": [{"id": "1", "method": "GET", "url": sub_path(c, a, s), "headers": dict(PREFER)}]}
    with client(emulator) as http:
        honoured = http.post("/$batch", json=body).json()["responses"][0]["body"]["status"]
        emulator.configure(broken=["batch-headers"])
        ignored = http.post("/$batch", json=body).json()["responses"][0]["body"]["status"]
        envelope = http.post("/$batch", json=body, headers=PREFER).json()["responses"][0]["body"]["status"]
    assert (honoured, ignored, envelope) == ("excused", "returned", "returned")


def test_broken_writes_are_forbidden(emulator, sample_tenant):
    c, a, s = _find(sample_tenant, "submitted")
    emulator.configure(broken=["writes"])
    with client(emulator) as http:
        read = http.get(sub_path(c, a, s))
        write = http.post(sub_path(c, a, s) + "/excuse")
    assert read.status_code == 200 and write.status_code == 403
    assert emulator.stats()["writes_applied"] == 0


def test_unknown_behaviour_settings_are_refused(emulator):
    with pytest.raises(ValueError, match="unknown broken"):
        emulator.configure(broken=["everything"])
    answer = httpx.post(emulator.url + "/_emulator/config", json={"action_lag": -1})
    assert answer.status_code == 400 and "action_lag" in answer.json()["error"]
