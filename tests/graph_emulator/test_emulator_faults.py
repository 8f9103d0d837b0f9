"""Fault injection over real HTTP: every kind at whole-request and sub-request level, determinism."""

from __future__ import annotations

import httpx
import pytest
from emulator_testkit import client, graded_subs, patch_body, sub_path

from graph_emulator import FaultConfig, points_outcome
from graph_emulator.faults import APPLIED_ERROR_STATUSES


def _target(tenant):
    c, a, s, o = graded_subs(tenant)[0]
    return sub_path(c, a, s) + f"/outcomes/{o['id']}", s["id"]


def _points_in_state(srv, sub_id):
    for cl in srv.state()["classes"]:
        for a in cl["assignments"]:
            for s in a.get("submissions", []):
                if s["id"] == sub_id:
                    return points_outcome(s)["points"]
    raise AssertionError(sub_id)


def _batch(url, n=3, value=4.0):
    return {
        "requests": [
            {
                "id": str(i),
                "method": "PATCH",
                "url": url,
                "headers": {"Content-Type": "application/json"},
                "body": patch_body(value),
            }
            for i in range(1, n + 1)
        ]
    }


@pytest.mark.parametrize("kind", ["429", "429_no_ra", "500", "502", "503", "504"])
def test_error_faults_on_whole_requests_are_not_applied(emulator, sample_tenant, kind):
    url, sid = _target(sample_tenant)
    before = _points_in_state(emulator, sid)
    emulator.configure(faults=FaultConfig.only(kind, scope="http"))
    status = 429 if kind.startswith("429") else int(kind)
    with client(emulator) as http:
        single = http.patch(url, json=patch_body(4.0))
        batch = http.post("/$batch", json=_batch(url))
    for r in (single, batch):
        assert r.status_code == status
        assert r.json()["error"]["innerError"]["request-id"]
        assert ("Retry-After" in r.headers) == (kind == "429")
    assert _points_in_state(emulator, sid) == before
    st = emulator.stats()
    assert st["faults"] == {kind: 2} and st["faults_by_level"]["http"] == {kind: 2}
    assert st["writes_applied"] == 0 and st["graph_requests"] == 1  # the batch never reached its sub-requests
    assert st["throttled"] == (2 if status == 429 else 0)


@pytest.mark.parametrize("kind", ["429", "429_no_ra", "500", "502", "503", "504"])
def test_error_faults_on_sub_requests(emulator, sample_tenant, kind):
    url, _ = _target(sample_tenant)
    emulator.configure(faults=FaultConfig.only(kind, scope="sub"))
    with client(emulator) as http:
        r = http.post("/$batch", json=_batch(url))
        single = http.get(url)
    assert r.status_code == 200 and single.status_code == 200  # scope=sub leaves whole requests alone
    status = 429 if kind.startswith("429") else int(kind)
    for x in r.json()["responses"]:
        assert x["status"] == status
        assert ("Retry-After" in x["headers"]) == (kind == "429")
    st = emulator.stats()
    assert st["faults_by_level"]["sub"] == {kind: 3} and st["writes_applied"] == 0


def test_applied_then_error_really_applies(emulator, sample_tenant):
    url, sid = _target(sample_tenant)
    emulator.configure(faults=FaultConfig.only("applied_error", scope="http"))
    with client(emulator) as http:
        r = http.patch(url, json=patch_body(6.0))
    assert r.status_code in APPLIED_ERROR_STATUSES
    assert _points_in_state(emulator, sid) == 6.0
    emulator.configure(faults=FaultConfig.only("applied_error", scope="sub", seed=3))
    with client(emulator) as http:
        b = http.post("/$batch", json=_batch(url, n=4, value=7.0))
    assert b.status_code == 200
    assert all(x["status"] in APPLIED_ERROR_STATUSES for x in b.json()["responses"])
    assert _points_in_state(emulator, sid) == 7.0
    emulator.configure(faults=FaultConfig.only("applied_error", scope="http", seed=5))
    with client(emulator) as http:
        whole = http.post("/$batch", json=_batch(url, n=2, value=8.0))
    assert whole.status_code in APPLIED_ERROR_STATUSES
    assert _points_in_state(emulator, sid) == 8.0
    assert emulator.stats()["writes_applied"] == 7


@pytest.mark.parametrize("scope", ["http", "sub"])
def test_dropped_connection_is_a_transport_error_after_applying(emulator, sample_tenant, scope):
    url, sid = _target(sample_tenant)
    emulator.configure(faults=FaultConfig.only("drop", scope=scope))
    with client(emulator) as http:
        with pytest.raises(httpx.TransportError):
            http.post("/$batch", json=_batch(url, value=9.5)).read()
        if scope == "http":
            with pytest.raises(httpx.TransportError):
                http.get(url).read()
    assert _points_in_state(emulator, sid) == 9.5
    emulator.configure(faults=None)
    with client(emulator) as http:  # the server is still fine afterwards
        assert http.get(url).status_code == 200


@pytest.mark.parametrize("scope", ["http", "sub"])
def test_slow_answer_exceeds_client_timeout(emulator, sample_tenant, scope):
    url, sid = _target(sample_tenant)
    emulator.configure(faults=FaultConfig.only("slow", scope=scope, slow_seconds=1.0))
    with client(emulator, timeout=0.2) as http, pytest.raises(httpx.TimeoutException):
        http.post("/$batch", json=_batch(url, value=2.5))
    assert _points_in_state(emulator, sid) == 2.5  # applied although the client gave up
    assert emulator.stats()["faults"] == {"slow": 1 if scope == "http" else 3}


def test_latency_and_faults_never_touch_control_endpoints(emulator):
    emulator.configure(faults=FaultConfig(rate_500=1.0, latency_ms=5, jitter_ms=5))
    assert httpx.get(emulator.url + "/_emulator/stats").status_code == 200
    assert httpx.get(emulator.url + "/_emulator/state").status_code == 200
    with client(emulator) as http:
        assert http.get("/education/classes").status_code == 500


def _run_sequence(srv, tenant) -> list:
    url, _ = _target(tenant)
    cls = tenant["classes"][0]
    seen = []
    with client(srv) as http:
        for i in range(12):
            seen.append(http.get(f"/education/classes/{cls['id']}").status_code)
            seen.append(http.patch(url, json=patch_body(float(i))).status_code)
        for _ in range(3):
            r = http.post("/$batch", json=_batch(url, n=5))
            body = r.json()
            seen.append((r.status_code, sorted((x["id"], x["status"]) for x in body.get("responses", []))))
    return seen


def test_same_seed_same_faults_other_seed_other_faults(emulator, sample_tenant):
    spec = "seed=7,429=0.15,429_no_ra=0.05,500=0.05,502=0.05,503=0.1,504=0.05,applied_error=0.1,scope=both"
    emulator.configure(faults=FaultConfig.parse(spec))
    first = _run_sequence(emulator, sample_tenant)
    stats1 = emulator.stats()["faults"]
    emulator.reset()
    second = _run_sequence(emulator, sample_tenant)
    emulator.configure(faults=FaultConfig.parse(spec.replace("seed=7", "seed=8")))
    emulator.reset_stats()
    other = _run_sequence(emulator, sample_tenant)
    assert first == second
    assert emulator.stats()["faults"] != stats1 or other != first
    assert other != first
    assert len({s for s in first if isinstance(s, int)}) > 2  # a real mix, not all one status


def test_fault_spec_parsing():
    cfg = FaultConfig.parse(
        "seed=7,429=0.1,429_no_ra=0.05,503=0.05,504=0.02,drop=0.02,slow=0.01,applied_error=0.05,"
        "latency_ms=20,jitter_ms=10,scope=both"
    )
    assert cfg.seed == 7 and cfg.rate_429 == 0.1 and cfg.rate_drop == 0.02 and cfg.jitter_ms == 10
    assert FaultConfig.parse("scope=batch").scope == "http"
    for bad in ("429=0.7,503=0.5", "nope=1", "429", "scope=everywhere"):
        with pytest.raises(ValueError):
            FaultConfig.parse(bad)


class _WorkClock:
    """The emulator's clock: :meth:`work` makes the next request's own work take ``seconds`` (its
    arrival reads the clock before, everything after reads it ``seconds`` later)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._armed: float | None = None

    def work(self, seconds: float) -> None:
        self._armed = seconds

    def __call__(self) -> float:
        arrival = self.now
        if self._armed is not None:  # the arrival: the work happens after this reading
            self.now, self._armed = self.now + self._armed, None
        return arrival


@pytest.mark.parametrize(("work_ms", "waits_ms"), [(0, 50), (30, 20), (80, None)])
def test_latency_is_the_answer_time_from_arrival_with_the_emulators_own_work_inside_it(
    emulator_factory, sample_tenant, work_ms, waits_ms
):
    """Graph's own work counts within the time a client waits for its answer: with 50 ms of latency
    an answer whose work took 30 ms waits 20 ms more, and one whose work took 80 ms does not wait."""
    clock = _WorkClock()
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)

    srv = emulator_factory(faults=FaultConfig(latency_ms=50, scope="http"), clock=clock, sleep=sleep)
    url, _ = _target(sample_tenant)
    with client(srv) as http:
        clock.work(work_ms / 1000)
        assert http.patch(url, json=patch_body(3.0)).status_code == 200
    assert asked == ([] if waits_ms is None else [pytest.approx(waits_ms / 1000)])
