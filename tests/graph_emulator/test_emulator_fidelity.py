"""Graph v1.0 details the emulator models (handlers.py docstring), over real HTTP, both sides each."""

from __future__ import annotations

import pytest
from emulator_testkit import POINTS, client, sub_path

from graph_emulator import generate_tenant, points_outcome

PREFER = {"Prefer": "include-unknown-enum-members"}


def _with_status(tenant: dict, status: str) -> tuple[dict, dict, dict]:
    return next(
        (c, a, s)
        for c in tenant["classes"]
        for a in c["assignments"]
        for s in a.get("submissions", [])
        if s["status"] == status and "userId" in s["recipient"]
    )


def _sub_status(http, c: dict, a: dict, s: dict, headers: dict | None = None, expand: bool = False) -> str:
    listing = http.get(
        f"/education/classes/{c['id']}/assignments/{a['id']}/submissions",
        params={"$expand": "outcomes", "$top": 999} if expand else {"$top": 999},
        headers=headers or {},
    )
    pages = [listing.json()]
    while "@odata.nextLink" in pages[-1]:
        pages.append(http.get(pages[-1]["@odata.nextLink"], headers=headers or {}).json())
    return next(x["status"] for p in pages for x in p["value"] if x["id"] == s["id"])


@pytest.mark.parametrize("status", ["excused", "reassigned"])
def test_evolved_statuses_only_with_prefer_header(emulator, sample_tenant, status):
    emulator.configure(enum_evolution="v1.0")
    c, a, s = _with_status(sample_tenant, status)
    with client(emulator) as http:
        plain_get = http.get(sub_path(c, a, s)).json()
        prefer_get = http.get(sub_path(c, a, s), headers=PREFER).json()
        plain_list = _sub_status(http, c, a, s, expand=True)
        prefer_list = _sub_status(http, c, a, s, PREFER, expand=True)
        several = http.get(sub_path(c, a, s), headers={"Prefer": "odata.maxpagesize=5, " + PREFER["Prefer"]})
    assert plain_get["status"] == plain_list == "returned"
    assert prefer_get["status"] == prefer_list == several.json()["status"] == status
    if status == "reassigned":  # Graph maps reassignedDateTime to returnedDateTime for old clients
        assert plain_get["returnedDateTime"] == (s.get("reassignedDateTime") or s.get("returnedDateTime"))


def test_enum_evolution_off_shows_the_stored_status(emulator, sample_tenant):
    emulator.configure(enum_evolution="off")
    c, a, s = _with_status(sample_tenant, "excused")
    with client(emulator) as http:
        assert http.get(sub_path(c, a, s)).json()["status"] == "excused"


def test_batch_sub_requests_use_their_own_headers_not_the_envelopes(emulator, sample_tenant):
    emulator.configure(enum_evolution="v1.0")
    c, a, s = _with_status(sample_tenant, "excused")
    url = sub_path(c, a, s)
    body = {
        "requests": [
            {"id": "own", "method": "GET", "url": url, "headers": dict(PREFER)},
            {"id": "none", "method": "GET", "url": url},
        ]
    }
    with client(emulator) as http:
        r = http.post("/$batch", json=body, headers=PREFER)  # the envelope's Prefer does not travel
    got = {x["id"]: x["body"]["status"] for x in r.json()["responses"]}
    assert got == {"own": "excused", "none": "returned"}


def test_excuse_answer_and_later_reads_follow_the_header(emulator, sample_tenant):
    emulator.configure(enum_evolution="v1.0", action_lag=0)
    c, a, s = _with_status(sample_tenant, "submitted")
    with client(emulator) as http:
        answer = http.post(sub_path(c, a, s) + "/excuse")
        seen = [_sub_status(http, c, a, s), _sub_status(http, c, a, s, PREFER)]
    assert answer.status_code == 200 and answer.json()["status"] == "returned"
    assert seen == ["returned", "excused"]


def test_return_is_asynchronous_for_the_next_reads(emulator, sample_tenant):
    emulator.configure(action_lag=2)
    c, a, s = _with_status(sample_tenant, "submitted")
    with client(emulator) as http:
        answer = http.post(sub_path(c, a, s) + "/return").json()
        reads = [http.get(sub_path(c, a, s)).json()["status"], _sub_status(http, c, a, s)]
        reads += [http.get(sub_path(c, a, s)).json()["status"]]
    assert answer["status"] == "returned"
    assert reads == ["submitted", "submitted", "returned"]
    emulator.configure(action_lag=0)
    c, a, s = _with_status(sample_tenant, "working")
    with client(emulator) as http:
        http.post(sub_path(c, a, s) + "/return").raise_for_status()
        assert http.get(sub_path(c, a, s)).json()["status"] == "returned"


def test_generated_tenants_have_a_points_outcome_so_post_is_409(emulator):
    tenant = generate_tenant(classes=1, students=6, assignments=3, seed=4)
    emulator.reset(tenant)
    c = tenant["classes"][0]
    a = next(x for x in c["assignments"] if x["grading"] and x.get("assignTo") != "groups")
    s = a["submissions"][0]
    body = {"@odata.type": POINTS, "points": {"points": 3}}
    with client(emulator) as http:
        outcomes = http.get(sub_path(c, a, s) + "/outcomes").json()["value"]
        post = http.post(sub_path(c, a, s) + "/outcomes", json=body)
    assert {o["@odata.type"] for o in outcomes} == {POINTS, "#microsoft.graph.educationFeedbackOutcome"}
    assert post.status_code == 409 and post.json()["error"]["innerError"]["code"] == "outcomeExists"
    old = generate_tenant(classes=1, students=6, assignments=3, seed=4, points_outcomes="some")
    emulator.reset(old)
    c = old["classes"][0]
    a, s = next(
        (x, y)
        for x in c["assignments"]
        if x["grading"] and x.get("assignTo") != "groups"
        for y in x["submissions"]
        if points_outcome(y) is None
    )
    with client(emulator) as http:
        assert http.post(sub_path(c, a, s) + "/outcomes", json=body).status_code == 201  # the create path


def test_batch_ids_differing_only_by_case_are_duplicates(emulator, sample_tenant):
    c = sample_tenant["classes"][0]
    reqs = [
        {"id": "a1", "method": "GET", "url": f"/education/classes/{c['id']}"},
        {"id": "A1", "method": "GET", "url": f"/education/classes/{c['id']}"},
    ]
    with client(emulator) as http:
        r = http.post("/$batch", json={"requests": reqs})
        ok = http.post("/$batch", json={"requests": [reqs[0], {**reqs[1], "id": "b1"}]})
    assert r.status_code == 400 and r.json()["error"]["innerError"]["code"] == "duplicateId"
    assert ok.status_code == 200


def test_reset_restores_the_per_run_knobs(emulator_factory):
    srv = emulator_factory()
    started = srv.stats()["config"]
    srv.configure(enum_evolution="v1.0" if started["enum_evolution"] == "off" else "off", action_lag=5)
    srv.configure(token_lifetime=30, page_size=3)
    srv.reset()
    cfg = srv.stats()["config"]
    assert (cfg["enum_evolution"], cfg["action_lag"], cfg["token_lifetime"]) == (
        started["enum_evolution"],
        started["action_lag"],
        None,
    )
    assert cfg["page_size"] == 3  # like faults and throttle, the page size stays as configured


def test_group_recipients_stay_without_user_id(emulator, sample_tenant):
    c = sample_tenant["classes"][0]
    grp = next(a for a in c["assignments"] if a.get("assignTo") == "groups")
    with client(emulator) as http:
        subs = http.get(f"/education/classes/{c['id']}/assignments/{grp['id']}/submissions").json()["value"]
    assert subs and all("userId" not in x["recipient"] and x["recipient"]["groupId"] for x in subs)
