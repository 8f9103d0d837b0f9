"""Teacher edits during a run, over real HTTP: the emulator changes a grade as a teacher in Teams would."""

from __future__ import annotations

import httpx
from emulator_testkit import client, graded_subs, patch_body, sub_path

from graph_emulator import points_outcome


def _edit(c: dict, a: dict, s: dict, points: float | None) -> dict:
    return {"class_id": c["id"], "assignment_id": a["id"], "submission_id": s["id"], "points": points}


def _batch_patch(http, rows: list[tuple], points: float) -> None:
    reqs = [
        {
            "id": str(i),
            "method": "PATCH",
            "url": sub_path(c, a, s) + f"/outcomes/{o['id']}",
            "headers": {"Content-Type": "application/json"},
            "body": patch_body(points),
        }
        for i, (c, a, s, o) in enumerate(rows)
    ]
    http.post("/$batch", json={"requests": reqs}).raise_for_status()


def test_edit_lands_just_before_the_nth_write(emulator, sample_tenant):
    rows = graded_subs(sample_tenant)[:4]
    c, a, s, _ = rows[2]
    ctl = emulator.url + "/_emulator/teacher-edits"
    r = httpx.post(ctl, json={"edits": [_edit(c, a, s, 7.5)], "after_writes": 3})
    assert r.json() == {"scheduled": 1}
    with client(emulator) as http:
        _batch_patch(http, rows[:2], 1.0)  # writes 1 and 2: the edit waits
        assert points_outcome(_find(emulator, s))["points"] != 7.5
        _batch_patch(http, rows[2:3], 1.0)  # write 3: the edit lands first, then this write overwrites it
    listing = httpx.get(ctl).json()
    assert listing["pending"] == [] and listing["applied"][0]["applied_at_write"] == 3
    assert points_outcome(_find(emulator, s))["points"] == 1.0
    assert emulator.stats()["teacher_edits_applied"] == 1


def test_edit_at_once_is_by_the_teacher(emulator, sample_tenant):
    c, a, s, o = graded_subs(sample_tenant)[0]
    httpx.post(
        emulator.url + "/_emulator/teacher-edits", json={"edits": [_edit(c, a, s, 4)]}
    ).raise_for_status()
    with client(emulator) as http:
        got = http.get(sub_path(c, a, s) + f"/outcomes/{o['id']}").json()
    assert got["points"]["points"] == 4.0
    assert got["lastModifiedBy"]["user"]["id"] in c["teachers"]
    assert got["lastModifiedDateTime"] > o["lastModifiedDateTime"]


def test_bad_edits_are_refused(emulator, sample_tenant):
    c, a, s, _ = graded_subs(sample_tenant)[0]
    ctl = emulator.url + "/_emulator/teacher-edits"
    for payload in (
        {"edits": [{**_edit(c, a, s, 1), "submission_id": "nope"}]},
        {"edits": [_edit(c, a, s, -1)]},
        {"edits": [_edit(c, a, s, 1)], "after_writes": -2},
        {"nothing": 1},
    ):
        assert httpx.post(ctl, json=payload).status_code == 400, payload
    assert httpx.get(ctl).json()["applied"] == []


def _find(emulator, sub: dict) -> dict:
    return next(
        x
        for c in emulator.state()["classes"]
        for a in c["assignments"]
        for x in a.get("submissions", [])
        if x["id"] == sub["id"]
    )


def test_edit_on_read_lands_right_after_a_read_that_shows_the_submission(emulator, sample_tenant):
    """``on_read``: the edit waits for a read of its submission; that read shows the old grade and
    any later read the teacher's. A read of another assignment does not release it."""
    c, a, s, o = graded_subs(sample_tenant)[0]
    other = next(x for x in graded_subs(sample_tenant) if x[1]["id"] != a["id"])
    ctl = emulator.url + "/_emulator/teacher-edits"
    assert httpx.post(ctl, json={"edits": [_edit(c, a, s, 6.5)], "on_read": True}).json() == {"scheduled": 1}
    listing_url = f"/education/classes/{c['id']}/assignments/{a['id']}/submissions?$expand=outcomes&$top=999"
    with client(emulator) as http:
        oc, oa = other[0], other[1]
        http.get(f"/education/classes/{oc['id']}/assignments/{oa['id']}/submissions").raise_for_status()
        assert httpx.get(ctl).json()["applied"] == []
        first = http.get(sub_path(c, a, s) + "?$expand=outcomes").json()
        second = http.get(listing_url).json()
    assert _graph_points(first) == o["points"]  # the read the edit waited for: the old grade
    shown = [x for x in second["value"] if x["id"] == s["id"]]
    assert [_graph_points(x) for x in shown] in ([], [6.5])  # a later read: the teacher's grade
    assert points_outcome(_find(emulator, s))["points"] == 6.5
    applied = httpx.get(ctl).json()["applied"]
    assert len(applied) == 1 and applied[0]["applied_at_read"] >= 1
    both = {"edits": [_edit(c, a, s, 1)], "on_read": True, "after_writes": 2}
    assert httpx.post(ctl, json=both).status_code == 400


def _graph_points(submission: dict) -> float | None:
    """The points of a submission's points outcome, as Graph shows it (``$expand=outcomes``)."""
    for out in submission.get("outcomes", []):
        if out.get("@odata.type") == "#microsoft.graph.educationPointsOutcome":
            return (out.get("points") or {}).get("points")
    return None
