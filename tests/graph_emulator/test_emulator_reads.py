"""Reads over real HTTP: paging, $top, $filter, $select, $expand, single GETs, 401/404/400 bodies."""

from __future__ import annotations

import httpx
import pytest
from emulator_testkit import client, cls_by_section, sub_path


def _all_pages(c: httpx.Client, url: str) -> tuple[list[dict], int]:
    items, pages = [], 0
    while url:
        r = c.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["value"]
        pages += 1
        url = body.get("@odata.nextLink")
    return items, pages


def test_paging_follows_opaque_absolute_next_links(emulator, sample_tenant):
    emulator.configure(page_size=7)
    with client(emulator) as c:
        users, pages = _all_pages(c, "/education/users")
        first = c.get("/education/users").json()
    assert [u["id"] for u in users] == [u["id"] for u in sample_tenant["users"]]
    assert pages == -(-len(sample_tenant["users"]) // 7)
    link = first["@odata.nextLink"]
    assert link.startswith(emulator.base_url + "/education/users?$skiptoken=")
    assert "$top" not in link and "$filter" not in link  # the query lives inside the opaque token


def test_top_lowers_the_page_size_but_not_the_total(emulator, sample_tenant):
    with client(emulator) as c:
        first = c.get("/education/users", params={"$top": "5"}).json()
        users, pages = _all_pages(c, "/education/users?$top=5")
        big = c.get("/education/users", params={"$top": "500"}).json()
    assert len(first["value"]) == 5
    assert len(users) == len(sample_tenant["users"])
    assert pages == -(-len(users) // 5)
    assert len(big["value"]) == 25  # $top above the server's page size is only a request
    with client(emulator) as c:
        assert c.get("/education/users", params={"$top": "0"}).status_code == 400


def test_default_page_size_is_small(emulator, sample_tenant):
    cls = sample_tenant["classes"][0]
    with client(emulator) as c:
        body = c.get(f"/education/classes/{cls['id']}/members").json()
    assert len(body["value"]) == 25 and "@odata.nextLink" in body


@pytest.mark.parametrize(
    ("field", "value"),
    [("externalId", "SEC-1002"), ("displayName", "Biology - P2"), ("mailNickname", "biology-p2-1002")],
)
def test_class_filter_eq(emulator, sample_tenant, field, value):
    with client(emulator) as c:
        body = c.get("/education/classes", params={"$filter": f"{field} eq '{value}'"}).json()
    assert [x["externalId"] for x in body["value"]] == ["SEC-1002"]


def test_class_filter_by_id_or_and_quote_escaping(emulator, sample_tenant):
    t = sample_tenant
    t["classes"][2]["displayName"] = "O'Neil's History"
    emulator.reset(t)
    with client(emulator) as c:
        quoted = c.get("/education/classes", params={"$filter": "displayName eq 'O''Neil''s History'"}).json()
        by_id = c.get("/education/classes", params={"$filter": f"id eq '{t['classes'][3]['id']}'"}).json()
        either = c.get(
            "/education/classes", params={"$filter": "externalId eq 'SEC-1001' or externalId eq 'SEC-1004'"}
        ).json()
        none = c.get("/education/classes", params={"$filter": "externalId eq 'NOPE'"}).json()
        bad = c.get("/education/classes", params={"$filter": "nosuchfield eq 'x'"})
        syntax = c.get("/education/classes", params={"$filter": "externalId eq"})
    assert [x["externalId"] for x in quoted["value"]] == ["SEC-1003"]
    assert [x["externalId"] for x in by_id["value"]] == ["SEC-1004"]
    assert [x["externalId"] for x in either["value"]] == ["SEC-1001", "SEC-1004"]
    assert none["value"] == [] and "@odata.nextLink" not in none
    assert bad.status_code == 400 and bad.json()["error"]["innerError"]["code"] == "invalidFilter"
    assert syntax.status_code == 400


def test_select_limits_fields(emulator):
    with client(emulator) as c:
        body = c.get("/education/classes", params={"$select": "displayName,externalId"}).json()
        bad = c.get("/education/classes", params={"$select": "nope"})
    assert set(body["value"][0]) == {"id", "displayName", "externalId"}
    assert bad.status_code == 400


def test_user_filters(emulator, sample_tenant):
    student = next(
        u
        for u in sample_tenant["users"]
        if u["student"] and u["student"]["externalId"] and u["mail"] and u["mail"] != u["userPrincipalName"]
    )
    with client(emulator) as c:
        for flt in (
            f"userPrincipalName eq '{student['userPrincipalName']}'",
            f"mail eq '{student['mail']}'",
            f"externalId eq '{student['student']['externalId']}'",
            f"student/externalId eq '{student['student']['externalId']}'",
        ):
            body = c.get("/education/users", params={"$filter": flt}).json()
            assert [u["id"] for u in body["value"]] == [student["id"]], flt
        got = c.get(f"/education/users/{student['id']}").json()
    assert got["student"]["externalId"].startswith("0")  # SIS ids keep their leading zeros
    assert got["primaryRole"] == "student"


def test_members_assignments_and_single_gets(emulator, sample_tenant):
    cls = cls_by_section(sample_tenant, "SEC-1002")
    asg = cls["assignments"][0]
    with client(emulator) as c:
        members, _ = _all_pages(c, f"/education/classes/{cls['id']}/members")
        assignments, _ = _all_pages(c, f"/education/classes/{cls['id']}/assignments")
        one = c.get(f"/education/classes/{cls['id']}").json()
        a = c.get(f"/education/classes/{cls['id']}/assignments/{asg['id']}").json()
    assert {m["id"] for m in members} == set(cls["members"])
    assert {m["primaryRole"] for m in members} == {"student", "teacher"}
    assert [x["displayName"] for x in assignments] == [x["displayName"] for x in cls["assignments"]]
    assert one["externalId"] == "SEC-1002" and one["classCode"]
    assert a["classId"] == cls["id"] and a["grading"]["maxPoints"] == asg["grading"]["maxPoints"]
    assert a["grading"]["@odata.type"] == "#microsoft.graph.educationAssignmentPointsGradeType"
    ungraded = next(x for x in assignments if x["displayName"] == "Reading Log")
    assert ungraded["grading"] is None


def test_submissions_expand_outcomes_filter_top(emulator, sample_tenant):
    cls = cls_by_section(sample_tenant, "SEC-1002")
    asg = cls["assignments"][0]
    base = f"/education/classes/{cls['id']}/assignments/{asg['id']}/submissions"
    with client(emulator) as c:
        subs, pages = _all_pages(c, base + "?$expand=outcomes&$top=10")
        plain = c.get(base).json()["value"][0]
        star = c.get(base, params={"$expand": "*"}).json()["value"][0]
        res = c.get(base, params={"$expand": "resources"}).json()["value"][0]
        returned = c.get(base, params={"$filter": "status eq 'returned'"}).json()["value"]
        bad = c.get(base, params={"$expand": "nonsense"})
    assert pages == 3 and len(subs) == len(asg["submissions"])
    assert "outcomes" not in plain
    assert {"outcomes", "resources", "submittedResources"} <= set(star)
    assert res["resources"] == [] and "outcomes" not in res
    assert returned and all(s["status"] == "returned" for s in returned)
    assert bad.status_code == 400
    by_id = {s["id"]: s for s in subs}
    for s in asg["submissions"]:
        got = by_id[s["id"]]
        assert got["recipient"]["userId"] == s["recipient"]["userId"]
        assert {o["id"] for o in got["outcomes"]} == {o["id"] for o in s["outcomes"]}
    points = [o for s in subs for o in s["outcomes"] if o["@odata.type"].endswith("PointsOutcome")]
    assert any(o["points"] is None for o in points)  # graded-but-empty exists
    assert any(o["publishedPoints"] is not None for o in points)


def test_single_submission_and_outcome_gets(emulator, sample_tenant):
    cls = cls_by_section(sample_tenant, "SEC-1003")
    asg = cls["assignments"][0]
    sub = asg["submissions"][0]
    with client(emulator) as c:
        s = c.get(sub_path(cls, asg, sub), params={"$expand": "outcomes"}).json()
        outs = c.get(sub_path(cls, asg, sub) + "/outcomes").json()["value"]
        one = c.get(sub_path(cls, asg, sub) + f"/outcomes/{sub['outcomes'][0]['id']}").json()
    assert s["id"] == sub["id"] and len(s["outcomes"]) == len(sub["outcomes"])
    assert [o["id"] for o in outs] == [o["id"] for o in sub["outcomes"]]
    assert one["id"] == sub["outcomes"][0]["id"] and "lastModifiedDateTime" in one


def test_group_recipient_and_beta(emulator, sample_tenant):
    cls = cls_by_section(sample_tenant, "SEC-1001")
    grp = next(a for a in cls["assignments"] if a.get("assignTo") == "groups")
    with httpx.Client(base_url=emulator.url + "/beta", headers={"Authorization": "Bearer test-token"}) as c:
        subs = c.get(f"/education/classes/{cls['id']}/assignments/{grp['id']}/submissions").json()["value"]
    assert subs and all(s["recipient"]["@odata.type"].endswith("GroupRecipient") for s in subs)


@pytest.mark.parametrize(
    "path",
    [
        "/education/classes/00000000-0000-0000-0000-000000000000",
        "/education/classes/{cid}/assignments/nope",
        "/education/classes/{cid}/assignments/{aid}/submissions/nope",
        "/education/users/nope",
    ],
)
def test_unknown_ids_are_404_with_request_id(emulator, sample_tenant, path):
    cls = sample_tenant["classes"][1]
    asg = cls["assignments"][0]
    path = path.format(cid=cls["id"], aid=asg["id"], sid=asg["submissions"][0]["id"])
    with client(emulator) as c:
        r = c.get(path, headers={"client-request-id": "abc-123"})
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "itemNotFound" and err["message"]
    inner = err["innerError"]
    assert inner["request-id"] == r.headers["request-id"]
    assert inner["client-request-id"] == "abc-123" and inner["date"]


def test_auth_is_required_everywhere(emulator):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-token"}):
        r = httpx.get(emulator.base_url + "/education/classes", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["innerError"]["request-id"] == r.headers["request-id"]
    r = httpx.post(emulator.base_url + "/$batch", json={"requests": []})
    assert r.status_code == 401
    assert emulator.stats()["unauthorized"] == 4


def test_bad_paths_and_tokens(emulator):
    with client(emulator) as c:
        assert c.get("/education/nothing").status_code == 400
        assert c.delete("/education/classes").status_code == 405
        assert c.get("/education/classes", params={"$skiptoken": "forged"}).status_code == 400
    assert (
        httpx.get(
            emulator.url + "/v2.0/education/classes", headers={"Authorization": "Bearer test-token"}
        ).status_code
        == 404
    )
