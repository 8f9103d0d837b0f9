"""The plan file: exact round trip, diff-friendly layout, whitelisted keys, version and corruption checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from gradesync.errors import InputError, UsageError
from gradesync.models import PLAN_COLUMNS, InputFile, Plan
from gradesync.plan.planfile import (
    GAP_KEYS,
    INPUT_KEYS,
    OPERATION_KEYS,
    TOP_KEYS,
    dumps_plan,
    plan_from_dict,
    plan_to_dict,
    read_plan,
    write_plan,
)

from .builders import plan_of
from .test_plan_rules import C, school

ROWS = [
    (C, "Unit 1 Quiz", "000123", "45"),  # update
    (C, "Unit 1 Quiz", "000127", "30"),  # create
    (C, "Essay", "000123", "CLEAR"),  # update to null
    (C, "Essay", "000127", "CLEAR"),  # noop already_clear
    (C, "Unit 1 Quiz", "000999", "45"),  # reject, NaN/None everywhere
    (C, "Essay", "000124", ""),  # blank
    {
        "class_key": C,
        "assignment_key": "Unit 1 Quiz",
        "student_key": "ada@school.edu",
        "points_raw": "45",
        "note": "ünïcödé “quotes” \\ back\nslash",
    },
]


@pytest.fixture
def plan() -> Plan:
    p = plan_of(school(), ROWS, strict=True)
    p.inputs = [
        InputFile("grades.csv", "ab" * 32, 7, "utf-8-sig"),
        InputFile("book.xlsx", "cd" * 32, 3, None, "Term 1"),
    ]
    p.warnings = ["grades.csv: decoded as cp1252 (fallback)"]
    return p


def assert_same_plan(a: Plan, b: Plan) -> None:
    pd.testing.assert_frame_equal(a.rows, b.rows, check_exact=True)
    for col, dtype in PLAN_COLUMNS.items():
        if dtype == "object":  # None stays None (not NaN) in text columns
            assert [v is None for v in a.rows[col]] == [v is None for v in b.rows[col]], col
    for field in (
        "created_at",
        "graph_base_url",
        "config_hash",
        "inputs",
        "roster_gaps",
        "schema_version",
        "strict",
        "warnings",
    ):
        assert getattr(a, field) == getattr(b, field), field


def test_round_trip_is_exact(plan: Plan, tmp_path: Path) -> None:
    path = tmp_path / "out" / "plan.json"
    write_plan(plan, path)
    back = read_plan(path)
    assert_same_plan(plan, back)
    assert math.isnan(back.rows["before_points"].iloc[4]) and back.rows["outcome_id"].iloc[4] is None
    assert back.operations() == plan.operations()
    assert path.read_text(encoding="utf-8") == dumps_plan(back)  # writing again changes nothing
    assert [p.name for p in path.parent.iterdir()] == ["plan.json"]  # no temporary file left behind


def test_dict_round_trip(plan: Plan) -> None:
    assert_same_plan(plan, plan_from_dict(json.loads(json.dumps(plan_to_dict(plan)))))


def test_layout_diffs_well(plan: Plan) -> None:
    text = dumps_plan(plan)
    lines = text.splitlines()
    row_lines = [ln for ln in lines if ln.lstrip().startswith('{"row_key":') and '"source_file"' in ln]
    assert len(row_lines) == len(plan.rows)  # one row object per line, in row_key order
    assert [json.loads(ln.strip().rstrip(","))["row_key"] for ln in row_lines] == list(range(len(plan.rows)))
    op_lines = [
        ln
        for ln in lines
        if ln.lstrip().startswith('{"row_key":') and '"submission_id"' in ln and '"source_file"' not in ln
    ]
    assert len(op_lines) == len(plan.operations()) == 3  # the last row is an identical duplicate
    assert list(json.loads(text)) == list(TOP_KEYS)  # stable key order
    assert "NaN" not in text and "Infinity" not in text
    assert text.endswith("}\n")
    # a changed grade changes one row line, one operation line and the digest (plus the counts)
    other = plan_of(school(), [*ROWS[:1], (C, "Unit 1 Quiz", "000127", "31"), *ROWS[2:]], strict=True)
    other.inputs, other.warnings, other.plan_id = plan.inputs, plan.warnings, plan.plan_id
    changed = [(a, b) for a, b in zip(lines, dumps_plan(other).splitlines(), strict=True) if a != b]
    assert len(changed) == 3 and changed[0][0].startswith('  "digest"')


def test_only_whitelisted_keys_are_written(plan: Plan) -> None:
    data = json.loads(dumps_plan(plan))
    assert tuple(data) == TOP_KEYS
    assert all(tuple(i) == INPUT_KEYS for i in data["inputs"])
    assert all(tuple(o) == OPERATION_KEYS for o in data["operations"])
    assert all(tuple(r) == tuple(PLAN_COLUMNS) for r in data["rows"])
    assert all(tuple(g) == GAP_KEYS for g in data["roster_gaps"]) and data["roster_gaps"]
    assert set(data["summary"]) == {
        "rows",
        "actions",
        "reasons",
        "decreases",
        "by_class",
        "by_assignment",
        "roster_gaps",
        "strict",
        "refused",
    }
    text = dumps_plan(plan).lower()
    for word in ("token", "secret", "bearer", "authorization", "password"):
        assert word not in text


def test_newer_schema_is_refused(plan: Plan, tmp_path: Path) -> None:
    data = plan_to_dict(plan)
    data["schema_version"] = 99
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UsageError) as e:
        read_plan(path)
    assert e.value.code == "plan-schema-unsupported"
    assert "schema version 99" in e.value.message and str(path) in e.value.message


def _corrupt(plan: Plan, change) -> dict:
    data = json.loads(json.dumps(plan_to_dict(plan)))
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d.pop("rows"), "missing keys: rows"),
        (lambda d: d.update(schema_version="1"), "schema_version"),
        (lambda d: d.update(schema_version=0), "schema_version"),
        (lambda d: d["rows"][0].pop("action"), "rows[0] does not have the plan columns"),
        (lambda d: d["rows"][0].update(row_key="zero"), "row_key"),
        (lambda d: d["rows"][0].update(desired_points="lots"), "desired_points"),
        (lambda d: d["rows"][0].update(clear="no"), "clear"),
        (lambda d: d["rows"][1].update(row_key=0), "ordered by row_key"),
        (lambda d: d["operations"][0].update(desired_points=99.0), "operations"),  # hand-edited
        (lambda d: d["rows"][0].update(desired_points=99.0), "operations"),
        (lambda d: d.update(strict="yes"), "strict"),
        (lambda d: d.update(inputs=[{"path": "x", "bogus": 1}]), "inputs"),
    ],
)
def test_damaged_documents_are_refused(plan: Plan, change, fragment: str) -> None:
    with pytest.raises(InputError) as e:
        plan_from_dict(_corrupt(plan, change), source="plan.json")
    assert e.value.code == "plan-corrupt"
    assert fragment in e.value.message and e.value.message.startswith("plan.json: ")


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '{"schema_version": 1', "null", "\x00\x01"])
def test_corrupt_files_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_plan(path)
    assert e.value.code == "plan-corrupt" and str(path) in str(e.value)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError) as e:
        read_plan(tmp_path / "nope.json")
    assert e.value.code == "plan-missing"
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError) as e:
        read_plan(bad)
    assert e.value.code == "plan-corrupt"


def test_each_plan_has_its_own_identity_and_keeps_it_through_the_file(plan: Plan, tmp_path: Path) -> None:
    """Two plans made in the same second from the same export are two plans: the journal refuses
    to apply *one* plan twice, never a new one (a quick second nightly sync was refused before)."""
    from gradesync.execute.apply import plan_hash

    twin = plan_of(school(), ROWS, strict=True)
    twin.created_at, twin.inputs, twin.warnings = plan.created_at, plan.inputs, plan.warnings
    assert twin.plan_id != plan.plan_id
    assert plan_hash(twin) != plan_hash(plan)
    write_plan(plan, tmp_path / "p.json")
    again = read_plan(tmp_path / "p.json")
    assert again.plan_id == plan.plan_id and plan_hash(again) == plan_hash(plan)
    older = json.loads(dumps_plan(plan))
    del older["plan_id"]  # files written before plans had an id still read
    assert plan_from_dict(older).plan_id == ""


def test_read_times_travel_through_the_plan_file(plan: Plan, tmp_path: Path) -> None:
    plan.read_at = {"c1/a-unit1": "2024-06-01T11:59:58.123Z", "c1/a-essay": "2024-06-01T11:59:59.004Z"}
    write_plan(plan, tmp_path / "p.json")
    back = read_plan(tmp_path / "p.json")
    assert back.read_at == plan.read_at
    assert json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))["read_at"] == dict(
        sorted(plan.read_at.items())
    )


def test_a_plan_file_written_before_read_times_still_loads() -> None:
    """tests/plan/data/plan_before_read_at.json was written by the previous writer (no "read_at")."""
    path = Path(__file__).parent / "data" / "plan_before_read_at.json"
    assert '"read_at"' not in path.read_text(encoding="utf-8")
    old = read_plan(path)
    assert old.read_at == {}  # every assignment's read counts as stale for the executor
    assert old.plan_id == "0123456789abcdef0123456789abcdef"
    assert old.rows["action"].tolist() == ["update", "create", "reject"]
    assert [op.desired_points for op in old.operations()] == [45.0, 30.0]


@pytest.mark.parametrize("sample", [1_000, 2])  # 2: every text column is encoded value by value
def test_the_chunked_writer_writes_what_the_records_say(
    plan: Plan, monkeypatch: pytest.MonkeyPatch, sample: int
) -> None:
    """Rows and operations are encoded column by column, a chunk at a time; the text parses back to
    exactly ``plan_to_dict`` (the reader's view), whatever the chunk size."""
    from gradesync.plan import planfile

    expected = json.loads(json.dumps(plan_to_dict(plan)))
    monkeypatch.setattr(planfile, "CHUNK_ROWS", 3)
    monkeypatch.setattr(planfile, "SAMPLE_ROWS", sample)
    assert json.loads(dumps_plan(plan)) == expected
