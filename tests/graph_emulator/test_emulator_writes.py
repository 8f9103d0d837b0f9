"""Writes over real HTTP: outcome PATCH/POST validation and metadata, return, excuse."""

from __future__ import annotations

import json

import pytest
from emulator_testkit import POINTS, client, graded_subs, patch_body, sub_path

from graph_emulator import find_submission, points_outcome


def _outcome_url(c, a, s, o):
    return sub_path(c, a, s) + f"/outcomes/{o['id']}"


@pytest.mark.parametrize(
    "raw", ["-1", "-0.5", "NaN", "Infinity", "-Infinity", "9999999", "1e12", '"85"', "true"]
)
def test_patch_rejects_invalid_points(emulator, sample_tenant, raw):
    c, a, s, o = graded_subs(sample_tenant)[0]
    body = '{"@odata.type": "%s", "points": {"points": %s}}' % (POINTS, raw)  # noqa: UP031 - raw JSON tokens
    with client(emulator) as http:
        r = http.patch(_outcome_url(c, a, s, o), content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "badRequest" and err["innerError"]["code"] == "invalidGrading"
    assert points_outcome(find_submission(emulator.state(), c["id"], a["id"], s["recipient"]["userId"])) == o
    assert emulator.stats()["writes_applied"] == 0


def test_patch_sets_metadata_and_never_touches_published(emulator, sample_tenant):
    c, a, s, o = next(x for x in graded_subs(sample_tenant) if x[3]["publishedPoints"] is not None)
    with client(emulator) as http:
        r = http.patch(_outcome_url(c, a, s, o), json=patch_body(9999998.5))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["@odata.type"] == POINTS and got["id"] == o["id"]
    assert got["points"]["points"] == 9999998.0  # kept as a Single: 9999998.5 has no 32-bit float
    assert got["points"]["gradedDateTime"] and got["points"]["gradedBy"]["application"]["id"]
    assert got["lastModifiedDateTime"] != o["lastModifiedDateTime"]
    assert got["lastModifiedBy"]["application"] is not None
    assert got["publishedPoints"]["points"] == o["publishedPoints"]
    stored = points_outcome(find_submission(emulator.state(), c["id"], a["id"], s["recipient"]["userId"]))
    assert stored["points"] == 9999998.0 and stored["publishedPoints"] == o["publishedPoints"]


def test_patch_accepts_bare_number_and_null_clears(emulator, sample_tenant):
    c, a, s, o = graded_subs(sample_tenant)[1]
    with client(emulator) as http:
        bare = http.patch(_outcome_url(c, a, s, o), json={"@odata.type": POINTS, "points": 3})
        inner_null = http.patch(_outcome_url(c, a, s, o), json=patch_body(None))
        again = http.patch(_outcome_url(c, a, s, o), json={"points": 4.5})
        top_null = http.patch(_outcome_url(c, a, s, o), json={"points": None})
    assert bare.status_code == 200 and bare.json()["points"]["points"] == 3.0
    assert inner_null.status_code == 200 and inner_null.json()["points"] is None
    assert again.json()["points"]["points"] == 4.5
    assert top_null.json()["points"] is None
    assert emulator.stats()["writes_applied"] == 4


def test_patch_refuses_published_points_bad_type_and_unknown_outcome(emulator, sample_tenant):
    c, a, s, o = graded_subs(sample_tenant)[2]
    with client(emulator) as http:
        pub = http.patch(_outcome_url(c, a, s, o), json={**patch_body(5), "publishedPoints": {"points": 5}})
        typ = http.patch(
            _outcome_url(c, a, s, o), json={"@odata.type": "#microsoft.graph.educationRubricOutcome"}
        )
        notjson = http.patch(
            _outcome_url(c, a, s, o), content=b"{", headers={"Content-Type": "application/json"}
        )
        unknown = http.patch(sub_path(c, a, s) + "/outcomes/nope", json=patch_body(5))
    assert pub.status_code == 400 and pub.json()["error"]["innerError"]["code"] == "readOnlyProperty"
    assert typ.status_code == 400 and notjson.status_code == 400
    # the education service's own 404 shape: numeric code, no innerError; request-id in the headers
    assert unknown.status_code == 404 and unknown.headers["request-id"]
    assert unknown.json() == {"error": {"code": "20241", "message": "Entity not found. Outcome id: nope"}}


def test_post_points_outcome_then_409(emulator, sample_tenant):
    c, a, s, _ = graded_subs(sample_tenant, with_points=False)[0]
    url = sub_path(c, a, s) + "/outcomes"
    with client(emulator) as http:
        created = http.post(url, json=patch_body(7))
        second = http.post(url, json=patch_body(8))
        listed = http.get(url).json()["value"]
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["id"] and new["points"]["points"] == 7.0 and new["publishedPoints"] is None
    assert created.headers["Location"].endswith(new["id"])
    assert second.status_code == 409
    assert [o["id"] for o in listed if o["@odata.type"] == POINTS] == [new["id"]]
    assert emulator.stats()["writes_applied"] == 1


def test_post_bad_bodies(emulator, sample_tenant):
    c, a, s, _ = graded_subs(sample_tenant, with_points=False)[0]
    url = sub_path(c, a, s) + "/outcomes"
    ungraded_cls = c
    reading = next(x for x in ungraded_cls["assignments"] if x["grading"] is None)
    rs = reading["submissions"][0]
    with client(emulator) as http:
        no_type = http.post(url, json={"points": {"points": 5}})
        bad_type = http.post(url, json={"@odata.type": "#microsoft.graph.nothing", "points": 5})
        negative = http.post(url, json=patch_body(-3))
        array = http.post(url, json=[1, 2])
        on_ungraded = http.post(sub_path(c, reading, rs) + "/outcomes", json=patch_body(1))
        feedback_twice = http.post(
            url,
            json={
                "@odata.type": "#microsoft.graph.educationFeedbackOutcome",
                "feedback": {"text": {"content": "x"}},
            },
        )
    for r in (no_type, bad_type, negative, array, on_ungraded):
        assert r.status_code == 400, r.text
    assert negative.json()["error"]["innerError"]["code"] == "invalidGrading"
    assert feedback_twice.status_code == 409  # every generated submission already has a feedback outcome
    assert emulator.stats()["writes_applied"] == 0


def test_return_publishes_points_and_sets_status(emulator, sample_tenant):
    c, a, s, o = next(x for x in graded_subs(sample_tenant) if x[2]["status"] != "returned")
    with client(emulator) as http:
        http.patch(_outcome_url(c, a, s, o), json=patch_body(6.5)).raise_for_status()
        before = http.get(_outcome_url(c, a, s, o)).json()
        r = http.post(sub_path(c, a, s) + "/return")
        after = http.get(_outcome_url(c, a, s, o)).json()
        lagging = http.get(sub_path(c, a, s)).json()  # return is asynchronous: one read still lags
        sub = http.get(sub_path(c, a, s)).json()
    assert (before["publishedPoints"] or {}).get("points") == o["publishedPoints"]  # PATCH does not publish
    assert r.status_code == 200 and r.json()["status"] == "returned"
    assert emulator.stats()["config"]["action_lag"] == 1 and lagging["status"] == s["status"]
    assert (
        after["publishedPoints"]["points"] == 6.5 and sub["status"] == "returned" and sub["returnedDateTime"]
    )


def test_excuse(emulator, sample_tenant):
    c, a, s, _ = graded_subs(sample_tenant)[3]
    with client(emulator) as http:
        prefer = {"Prefer": "include-unknown-enum-members"}  # without it v1.0 shows "returned"
        r = http.post(sub_path(c, a, s) + "/excuse", headers=prefer)
        unknown = http.post(sub_path(c, a, {"id": "nope"}) + "/excuse", headers=prefer)
    assert r.status_code == 200 and r.json()["status"] == "excused" and r.json()["excusedDateTime"]
    assert unknown.status_code == 404


def test_state_reflects_writes_and_reset_restores(emulator, sample_tenant):
    c, a, s, o = graded_subs(sample_tenant)[4]
    with client(emulator) as http:
        http.patch(_outcome_url(c, a, s, o), json=patch_body(1.5)).raise_for_status()
    state = json.loads(json.dumps(emulator.state()))
    assert points_outcome(find_submission(state, c["id"], a["id"], s["recipient"]["userId"]))["points"] == 1.5
    emulator.reset()
    assert emulator.state() == sample_tenant
    assert emulator.stats()["graph_requests"] == 0
