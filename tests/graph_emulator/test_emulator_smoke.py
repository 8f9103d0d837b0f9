"""First checks of the emulator over real HTTP: listing, paging, auth, a PATCH, a batch."""

from __future__ import annotations

import httpx

from graph_emulator import points_outcome


def test_classes_are_paged_and_authenticated(emulator, token):
    h = {"Authorization": f"Bearer {token}"}
    emulator.configure(page_size=3)
    r = httpx.get(emulator.base_url + "/education/classes", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert len(body["value"]) == 3
    r2 = httpx.get(body["@odata.nextLink"], headers=h)
    assert [c["externalId"] for c in r2.json()["value"]] == ["SEC-1004"]
    assert "@odata.nextLink" not in r2.json()
    r3 = httpx.get(emulator.base_url + "/education/classes")
    assert r3.status_code == 401
    assert r3.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_patch_points_outcome(emulator, token, sample_tenant):
    cls = sample_tenant["classes"][1]
    asg = cls["assignments"][0]
    sub = next(s for s in asg["submissions"] if points_outcome(s))
    out = points_outcome(sub)
    url = (
        f"{emulator.base_url}/education/classes/{cls['id']}/assignments/{asg['id']}"
        f"/submissions/{sub['id']}/outcomes/{out['id']}"
    )
    body = {"@odata.type": "#microsoft.graph.educationPointsOutcome", "points": {"points": 7.5}}
    r = httpx.patch(url, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["points"]["points"] == 7.5
    assert emulator.stats()["writes_applied"] == 1
