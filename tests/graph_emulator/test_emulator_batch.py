"""$batch over real HTTP: limits, ids, url forms, dependsOn, shuffled responses, per-request throttling."""

from __future__ import annotations

import pytest
from emulator_testkit import FakeClock, client, graded_subs, patch_body, sub_path

from graph_emulator import ThrottleConfig


def _patch_requests(tenant: dict, n: int, url_form=lambda p: p) -> list[dict]:
    reqs = []
    for i, (c, a, s, o) in enumerate(graded_subs(tenant)[:n]):
        reqs.append(
            {
                "id": str(i + 1),
                "method": "PATCH",
                "url": url_form(sub_path(c, a, s) + f"/outcomes/{o['id']}"),
                "headers": {"Content-Type": "application/json"},
                "body": patch_body(float(i % 5)),
            }
        )
    return reqs


def test_batch_of_21_is_refused_whole(emulator, sample_tenant):
    with client(emulator) as http:
        r = http.post("/$batch", json={"requests": _patch_requests(sample_tenant, 21)})
    assert r.status_code == 400
    assert r.json()["error"]["innerError"]["code"] == "invalidBatchSize"
    st = emulator.stats()
    assert st["writes_applied"] == 0 and st["graph_requests"] == 0 and st["batches"] == 1


@pytest.mark.parametrize(
    "mutate",
    [
        lambda reqs: reqs[1].update(id=reqs[0]["id"]),  # duplicate id
        lambda reqs: reqs[1].update(id=2),  # not a string
        lambda reqs: reqs[1].pop("url"),
        lambda reqs: reqs[1].update(dependsOn=["nope"]),
        lambda reqs: (reqs[0].update(dependsOn=["2"]), reqs[1].update(dependsOn=["1"])),  # cycle
    ],
)
def test_malformed_batches_are_400(emulator, sample_tenant, mutate):
    reqs = _patch_requests(sample_tenant, 3)
    mutate(reqs)
    with client(emulator) as http:
        r = http.post("/$batch", json={"requests": reqs})
        empty = http.post("/$batch", json={"requests": []})
        junk = http.post("/$batch", content=b"not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "badRequest"
    assert empty.status_code == 400 and junk.status_code == 400
    assert emulator.stats()["writes_applied"] == 0


def test_url_forms_unknown_fields_and_content_type(emulator, sample_tenant):
    forms = [
        lambda p: p,
        lambda p: p.lstrip("/"),
        lambda p: "https://graph.microsoft.com/v1.0" + p,
        lambda p: emulator.base_url + p,
        lambda p: "https://evil.example.com/v1.0" + p,
        lambda p: "/v1.0" + p,
    ]
    reqs = []
    for i, form in enumerate(forms):
        r = _patch_requests(sample_tenant, 6, form)[i]
        r["x-unknown-field"] = {"ignored": True}
        reqs.append(r)
    no_ct = _patch_requests(sample_tenant, 7)[6]
    no_ct["headers"] = {}
    reqs.append(no_ct)
    with client(emulator) as http:
        body = http.post("/$batch", json={"requests": reqs}).json()
    status = {r["id"]: r["status"] for r in body["responses"]}
    assert status == {"1": 200, "2": 200, "3": 200, "4": 200, "5": 400, "6": 400, "7": 400}
    assert emulator.stats()["writes_applied"] == 4


def test_depends_on_gets_424_after_a_failure_and_runs_in_order(emulator, sample_tenant):
    reqs = _patch_requests(sample_tenant, 4)
    reqs[0]["body"] = patch_body(-1)  # fails 400
    reqs[1]["dependsOn"] = ["1"]
    reqs[2]["dependsOn"] = ["4"]  # depends on a later request: must run after it
    reqs[3]["body"] = patch_body(2.5)
    reqs[2]["body"] = patch_body(3.5)
    reqs[2]["url"] = reqs[3]["url"]  # same outcome: the dependent write must land last
    with client(emulator) as http:
        body = http.post("/$batch", json={"requests": reqs}).json()
        final = http.get(reqs[3]["url"]).json()
    status = {r["id"]: r["status"] for r in body["responses"]}
    assert status == {"1": 400, "2": 424, "3": 200, "4": 200}
    failed = next(r for r in body["responses"] if r["id"] == "2")
    assert failed["body"]["error"]["code"] == "failedDependency"
    assert final["points"]["points"] == 3.5


def test_responses_come_shuffled_and_match_by_id(emulator, sample_tenant):
    reqs = _patch_requests(sample_tenant, 2)
    with client(emulator) as http:
        orders = [
            [r["id"] for r in http.post("/$batch", json={"requests": reqs}).json()["responses"]]
            for _ in range(3)
        ]
        big = http.post("/$batch", json={"requests": _patch_requests(sample_tenant, 20)}).json()["responses"]
    assert all(o == ["2", "1"] for o in orders)  # never in request order, even for two
    ids = [r["id"] for r in big]
    assert sorted(ids, key=int) == [str(i) for i in range(1, 21)] and ids != sorted(ids, key=int)
    for r in big:
        assert r["status"] == 200 and r["body"]["points"]["points"] == float((int(r["id"]) - 1) % 5)


def test_batched_reads_with_relative_next_link(emulator, sample_tenant):
    c = sample_tenant["classes"][0]
    emulator.configure(page_size=10)
    with client(emulator) as http:
        first = http.post(
            "/$batch",
            json={"requests": [{"id": "a", "method": "GET", "url": f"/education/classes/{c['id']}/members"}]},
        ).json()
        link = first["responses"][0]["body"]["@odata.nextLink"]
        rel = link.removeprefix(emulator.base_url)
        second = http.post("/$batch", json={"requests": [{"id": "b", "method": "GET", "url": rel}]}).json()
    assert second["responses"][0]["status"] == 200 and len(second["responses"][0]["body"]["value"]) == 10


def test_twenty_patches_under_tight_throttle(emulator_factory, sample_tenant):
    clock = FakeClock()
    srv = emulator_factory(throttle=ThrottleConfig(per_10s=8, per_hour=10_000, short_window=1.0), clock=clock)
    with client(srv) as http:
        r = http.post("/$batch", json={"requests": _patch_requests(sample_tenant, 20)})
    assert r.status_code == 200
    responses = r.json()["responses"]
    statuses = [x["status"] for x in responses]
    assert sorted(set(statuses)) == [200, 429]
    assert statuses.count(200) == 8 and statuses.count(429) == 12
    for x in responses:
        if x["status"] == 429:
            assert float(x["headers"]["Retry-After"]) > 0
            assert x["body"]["error"]["code"] == "tooManyRequests"
    assert [x["id"] for x in responses] != [str(i) for i in range(1, 21)]
    st = srv.stats()
    assert st["batches"] == 1 and st["http_requests"] == 1
    assert st["graph_requests"] == 20 and st["batch_subrequests"] == 20
    assert st["by_route"] == {
        "PATCH /education/classes/{id}/assignments/{id}/submissions/{id}/outcomes/{id}": 20
    }
    assert st["by_method"] == {"PATCH": 20}
    assert st["throttled"] == 12 and st["writes_applied"] == 8 and st["early_retries"] == 0


def test_retrying_before_retry_after_is_an_early_retry(emulator_factory, sample_tenant):
    clock = FakeClock()
    srv = emulator_factory(throttle=ThrottleConfig(per_10s=2, per_hour=10_000, short_window=1.0), clock=clock)
    reqs = _patch_requests(sample_tenant, 4)
    with client(srv) as http:
        first = http.post("/$batch", json={"requests": reqs}).json()["responses"]
        wait = max(float(x["headers"]["Retry-After"]) for x in first if x["status"] == 429)
        failed = [r for r in reqs if next(x for x in first if x["id"] == r["id"])["status"] == 429]
        clock.advance(wait / 2)
        early = http.post("/$batch", json={"requests": failed}).json()["responses"]
        early_stats = srv.stats()
        again = max(float(x["headers"]["Retry-After"]) for x in early)
        clock.advance(again + 5)  # the early retries cost quota: wait the new Retry-After and more
        late = http.post("/$batch", json={"requests": failed}).json()["responses"]
    assert [x["status"] for x in early] == [429, 429]
    assert again > wait / 2  # the block was extended, not shortened
    assert early_stats["early_retries"] == 2 and early_stats["throttled"] == 4
    assert sorted(x["status"] for x in late) == [200, 200]
    st = srv.stats()
    assert st["early_retries"] == 2 and st["graph_requests"] == 8 and st["writes_applied"] == 4
