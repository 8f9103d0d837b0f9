"""resolve: the Snapshot it reads, and exactly the Graph reads it spends to read it."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from gradesync.config import Settings
from gradesync.graph import GraphClient, RateLimit
from gradesync.models import DESIRED_COLUMNS, SNAPSHOT_COLUMNS
from gradesync.read import read_inputs
from gradesync.resolve import resolve

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [ROOT / "sample_data" / n for n in ("sis_long.csv", "gradebook_wide.csv", "gradebook.xlsx")]


def _client(emulator, token):
    return GraphClient(emulator.base_url, lambda: token, rate_limit=RateLimit.off())


def _settings(emulator) -> Settings:
    return Settings.model_validate({"graph": {"base_url": emulator.base_url}})


def _pages(n: int, size: int) -> int:
    return max(1, math.ceil(n / size))


def _desired(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "class_key": [r[0] for r in rows],
            "assignment_key": [r[1] for r in rows],
            "student_key": [r[2] for r in rows],
        }
    )
    for name, dtype in DESIRED_COLUMNS.items():
        if name not in frame:
            frame[name] = pd.Series([None] * len(rows), dtype=dtype) if dtype == "object" else 0
    return frame.astype(DESIRED_COLUMNS)


def test_sample_exports_cost_exactly_the_documented_reads(emulator, token, sample_tenant):
    """One lookup per class key, one members and one assignments listing per class, one
    submissions?$expand=outcomes listing per graded assignment the input names — all pages, no more."""
    settings = _settings(emulator)
    desired = read_inputs(SAMPLES, settings).frame
    with _client(emulator, token) as client:
        snapshot = resolve(desired, settings, client)
        client_stats = client.stats.asdict()

    by_key = {c["externalId"]: c for c in sample_tenant["classes"]}
    keys = sorted(set(desired["class_key"]) - {""})
    classes = [by_key[k] for k in keys if k in by_key]
    expected = {
        "GET /education/classes": len(keys),
        "GET /education/classes/{id}/members": sum(_pages(len(c["members"]), 25) for c in classes),
        "GET /education/classes/{id}/assignments": sum(_pages(len(c["assignments"]), 25) for c in classes),
    }
    touched = []
    for c in classes:
        names = set(desired.loc[desired["class_key"] == c["externalId"], "assignment_key"])
        touched += [a for a in c["assignments"] if a["displayName"] in names and a.get("grading")]
    expected["GET /education/classes/{id}/assignments/{id}/submissions"] = sum(
        _pages(len(a["submissions"]), 25) for a in touched
    )
    stats = emulator.stats()
    assert stats["by_route"] == expected
    assert client_stats["sub_requests"] == sum(expected.values())
    # every read went through $batch: far fewer HTTP round trips than sub-requests
    assert stats["http_requests"] < sum(expected.values()) / 4

    assert set(snapshot.classes["class_key"]) == set(keys) & set(by_key)
    assert set(snapshot.submissions["assignment_id"]) == {a["id"] for a in touched}


def test_snapshot_frames_have_the_contract_columns_and_values(emulator, token, sample_tenant):
    cls = sample_tenant["classes"][0]
    graded = next(a for a in cls["assignments"] if a.get("grading"))
    desired = _desired([(cls["externalId"], graded["displayName"], "whoever")])
    settings = _settings(emulator)
    with _client(emulator, token) as client:
        snapshot = resolve(desired, settings, client)
    for name in SNAPSHOT_COLUMNS:
        frame = getattr(snapshot, name)
        assert list(frame.columns) == list(SNAPSHOT_COLUMNS[name]), name
    assert snapshot.classes.to_dict("records") == [
        {"class_key": cls["externalId"], "class_id": cls["id"], "class_name": cls["displayName"]}
    ]
    assert set(snapshot.members["user_id"]) == set(cls["members"])
    row = snapshot.assignments.set_index("assignment_id").loc[graded["id"]]
    assert row["graded"] and row["max_points"] == graded["grading"]["maxPoints"]
    subs = snapshot.submissions.set_index("submission_id")
    for sub in graded["submissions"]:
        points = [o for o in sub.get("outcomes", []) if o["type"] == "points"]
        got = subs.loc[sub["id"]]
        assert got["status"] == sub["status"]
        if points:
            assert got["outcome_id"] == points[0]["id"]
            assert got["last_modified"] == points[0]["lastModifiedDateTime"]
            want = points[0]["points"]
            assert (math.isnan(got["points"]) and want is None) or got["points"] == want
        else:
            assert pd.isna(got["outcome_id"]) and math.isnan(got["points"])


def test_unknown_class_costs_one_lookup_and_nothing_else(emulator, token):
    desired = _desired([("SEC-NOPE", "Unit 1 Quiz", "000101")])
    with _client(emulator, token) as client:
        snapshot = resolve(desired, _settings(emulator), client)
    assert snapshot.classes.empty and snapshot.submissions.empty
    assert emulator.stats()["by_route"] == {"GET /education/classes": 1}


def test_ungraded_and_unknown_assignments_are_not_read(emulator, token, sample_tenant):
    cls = sample_tenant["classes"][0]
    ungraded = next(a for a in cls["assignments"] if not a.get("grading"))
    desired = _desired(
        [(cls["externalId"], ungraded["displayName"], "x"), (cls["externalId"], "No such", "x")]
    )
    with _client(emulator, token) as client:
        snapshot = resolve(desired, _settings(emulator), client)
    assert snapshot.submissions.empty
    assert "GET /education/classes/{id}/assignments/{id}/submissions" not in emulator.stats()["by_route"]


def test_class_lookup_by_id_treats_404_as_unknown(emulator, token, sample_tenant):
    cls = sample_tenant["classes"][1]
    settings = Settings.model_validate(
        {"graph": {"base_url": emulator.base_url}, "match": {"class_by": "id"}}
    )
    desired = _desired(
        [(cls["id"], "Unit 1 Quiz", "x"), ("00000000-0000-0000-0000-000000000000", "Unit 1 Quiz", "x")]
    )
    with _client(emulator, token) as client:
        snapshot = resolve(desired, settings, client)
    assert snapshot.classes["class_id"].tolist() == [cls["id"]]


def test_a_listing_that_cannot_be_read_fails_the_run_instead_of_planning_on_a_gap(
    emulator_factory, token, sample_tenant
):
    from gradesync.errors import GraphError
    from gradesync.graph import RetryPolicy
    from graph_emulator import FaultConfig

    srv = emulator_factory(faults=FaultConfig(seed=3, rate_503=1.0, scope="sub"))
    cls = sample_tenant["classes"][0]
    desired = _desired([(cls["externalId"], "Unit 1 Quiz", "x")])
    policy = RetryPolicy(max_attempts=2, base_delay=0, max_delay=0, max_total_seconds=5)
    with (
        GraphClient(
            srv.base_url, lambda: token, rate_limit=RateLimit.off(), policy=policy, sleep=lambda s: None
        ) as client,
        pytest.raises(GraphError) as e,
    ):
        resolve(desired, Settings.model_validate({"graph": {"base_url": srv.base_url}}), client)
    assert "could not read /education/classes" in e.value.message
    assert token not in str(e.value)


def test_submission_listings_become_columns_a_slice_at_a_time(emulator, token, monkeypatch):
    """Read one listing per get_all_many call: the same Snapshot for the same Graph requests; every
    touched assignment gets its read time; repeated ids are handed over coded."""
    import gradesync.resolve as resolve_module

    settings = _settings(emulator)
    desired = read_inputs(SAMPLES[:1], settings).frame
    moments = iter(datetime(2024, 6, 1, 12, 0, s, 123_000, tzinfo=UTC) for s in range(60))
    with _client(emulator, token) as client:
        whole = resolve(desired, settings, client)
        before = emulator.stats()["by_route"]
        monkeypatch.setattr(resolve_module, "SUBMISSION_LISTINGS_PER_READ", 1)
        sliced = resolve(desired, settings, client, clock=lambda: next(moments))
    routes = emulator.stats()["by_route"]
    assert {k: routes[k] - before.get(k, 0) for k in routes} == before  # the very same requests again
    for name in ("classes", "members", "submissions"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(sliced, name))
    read = sliced.assignments[sliced.assignments["read_at"] != ""]
    touched = set(zip(sliced.submissions["class_id"], sliced.submissions["assignment_id"], strict=True))
    assert set(zip(read["class_id"], read["assignment_id"], strict=True)) == touched
    assert sorted(read["read_at"]) == [f"2024-06-01T12:00:{s:02d}.123Z" for s in range(len(read))]
    assert all(
        t.endswith("Z") and len(t) == len("2024-06-01T12:00:00.000Z")
        for t in whole.assignments["read_at"]
        if t
    )
    for column in ("class_id", "assignment_id", "user_id", "status"):
        assert isinstance(sliced.submissions[column].dtype, pd.CategoricalDtype), column


def test_a_listings_read_time_is_taken_before_its_first_request(emulator, token):
    """A listing's pages are read one after another: its first page may show a submission seconds
    before the last page is served (retries, pacing), and a teacher's edit in between is not in the
    plan. So the read time the window counts from is taken before the first submissions request,
    never when the listing is complete."""
    settings = _settings(emulator)
    desired = read_inputs(SAMPLES[:1], settings).frame
    seen: list[int] = []  # submission-listing pages served when the read time was taken

    def clock() -> datetime:
        routes = emulator.stats()["by_route"]
        seen.append(sum(n for route, n in routes.items() if route.endswith("/submissions")))
        return datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)

    emulator.reset_stats()
    with _client(emulator, token) as client:
        snapshot = resolve(desired, settings, client, clock=clock)
    listed = sum(n for route, n in emulator.stats()["by_route"].items() if route.endswith("/submissions"))
    assert listed > 0 and seen == [0]  # one slice: stamped before any of its pages was asked for
    assert set(snapshot.assignments["read_at"]) - {""} == {"2024-06-01T12:00:00.000Z"}


def test_graph_json_is_read_tolerantly():
    """Types compared case-insensitively, unknown outcome kinds skipped, a bare-number points shape read."""
    from gradesync.resolve import SubmissionColumns, _assignment_record

    assert (
        _assignment_record(
            "c",
            {
                "id": "a",
                "grading": {
                    "@odata.type": "#Microsoft.Graph.educationAssignmentPointsGradeType",
                    "maxPoints": 10,
                },
            },
        )["max_points"]
        == 10.0
    )
    assert not _assignment_record("c", {"id": "a", "grading": None})["graded"]
    cols = SubmissionColumns()
    cols.add(
        "c",
        "a",
        [
            {
                "id": "s1",
                "status": "returned",
                "recipient": {
                    "@odata.type": "#microsoft.graph.educationSubmissionIndividualRecipient",
                    "userId": "u1",
                },
                "outcomes": [
                    {"@odata.type": "#microsoft.graph.unknownFutureValue", "id": "x"},
                    {"@odata.type": "#Microsoft.Graph.EducationPointsOutcome", "id": "o1", "points": 7},
                ],
            },
            {
                "id": "s2",
                "status": "working",
                "recipient": {
                    "@odata.type": "#microsoft.graph.educationSubmissionGroupRecipient",
                    "groupId": "g",
                },
            },
        ],
    )
    frame = cols.frame()
    assert frame["outcome_id"].tolist() == ["o1", None] and frame["points"].tolist()[0] == 7.0
    assert frame["recipient_type"].tolist() == ["individual", "group"] and frame[
        "user_id"
    ].isna().tolist() == [False, True]


def test_the_collector_is_paused_only_while_submissions_are_read():
    """On again afterwards, even after an error; left off if something else had turned it off."""
    import gc

    from gradesync.resolve import _cyclic_gc_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), _cyclic_gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("a read failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with _cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
