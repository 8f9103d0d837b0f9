"""The plan file: exact round trip, one array per column, whitelisted keys, version and corruption
checks, and the older schemas still read."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradesync.errors import InputError, UsageError
from gradesync.models import PLAN_COLUMNS, InputFile, Plan
from gradesync.plan.digest import key_id, legacy_digest, plan_digest
from gradesync.plan.planfile import (
    GAP_KEYS,
    INPUT_KEYS,
    SCHEMA_VERSION,
    TOP_KEYS,
    dumps_plan,
    loads_plan,
    plan_from_dict,
    plan_to_dict,
    read_plan,
    write_plan,
)

from .builders import plan_of
from .test_plan_rules import C, school

DATA = Path(__file__).parent / "data"
KEY = bytes(range(32))  # a fixed test key (a real one is 32 random bytes in the state directory)
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
        if dtype == "object":  # None stays None (not NaN), "" stays ""
            assert [v is None for v in a.rows[col]] == [v is None for v in b.rows[col]], col
            assert [type(v) for v in a.rows[col]] == [type(v) for v in b.rows[col]], col
        if dtype == "float64":  # -0.0 stays -0.0 (a NaN is a NaN: JSON's null has no sign)
            x, y = a.rows[col].to_numpy(), b.rows[col].to_numpy()
            assert np.array_equal(np.signbit(x) & ~np.isnan(x), np.signbit(y) & ~np.isnan(y)), col
    for field in (
        "created_at",
        "graph_base_url",
        "config_hash",
        "inputs",
        "roster_gaps",
        "strict",
        "warnings",
    ):
        assert getattr(a, field) == getattr(b, field), field
    assert (a.plan_id, a.read_at) == (b.plan_id, b.read_at)


def test_round_trip_is_exact(plan: Plan, tmp_path: Path) -> None:
    path = tmp_path / "out" / "plan.json"
    write_plan(plan, path, key=KEY)
    back = read_plan(path)
    assert_same_plan(plan, back)
    assert back.schema_version == SCHEMA_VERSION == 3
    assert back.digest == plan_digest(plan, KEY) == plan_digest(back, KEY) and back.key_id == key_id(KEY)
    assert math.isnan(back.rows["before_points"].iloc[4]) and back.rows["outcome_id"].iloc[4] is None
    assert back.operations() == plan.operations()  # the writes are derived from the rows
    assert path.read_text(encoding="utf-8") == dumps_plan(back, key=KEY)  # writing again changes nothing
    assert [p.name for p in path.parent.iterdir()] == ["plan.json"]  # no temporary file left behind


def test_dict_round_trip(plan: Plan) -> None:
    assert_same_plan(plan, plan_from_dict(json.loads(json.dumps(plan_to_dict(plan, key=KEY)))))


def test_one_array_per_column_one_column_per_line(plan: Plan) -> None:
    text = dumps_plan(plan, key=KEY)
    data = json.loads(text)
    assert list(data) == list(TOP_KEYS) and list(data["columns"]) == list(PLAN_COLUMNS)
    assert data["row_count"] == len(plan.rows) == 7
    lines = text.splitlines()
    column_lines = lines[lines.index('  "columns": {') + 1 : -2]
    assert [json.loads("{" + ln.rstrip(",") + "}").popitem()[0] for ln in column_lines] == list(PLAN_COLUMNS)
    columns = data["columns"]
    assert columns["source_sheet"] == {"dictionary": [""]}  # every row holds it: no codes
    assert columns["submission_id"] == {"values": plan.rows["submission_id"].tolist()}  # mostly distinct ids
    coded = columns["assignment_key"]  # few distinct values: a dictionary, in the rows' order, and codes
    assert coded["dictionary"] == ["Unit 1 Quiz", "Essay"]
    assert [coded["dictionary"][c] for c in coded["codes"]] == plan.rows["assignment_key"].tolist()
    assert "NaN" not in text and "Infinity" not in text and text.endswith("}\n")
    assert "operations" not in data  # derived from the rows on reading
    # a changed grade changes that grade's column line, the digest and nothing else but the counts
    other = plan_of(school(), [*ROWS[:1], (C, "Unit 1 Quiz", "000127", "31"), *ROWS[2:]], strict=True)
    other.inputs, other.warnings, other.plan_id = plan.inputs, plan.warnings, plan.plan_id
    changed = [
        a for a, b in zip(text.splitlines(), dumps_plan(other, key=KEY).splitlines(), strict=True) if a != b
    ]
    assert [ln.split(":")[0].strip() for ln in changed] == ['"digest"', '"points_raw"', '"desired_points"']


def test_only_whitelisted_keys_are_written(plan: Plan) -> None:
    data = plan_to_dict(plan, key=KEY)
    assert tuple(data) == TOP_KEYS
    assert all(tuple(i) == INPUT_KEYS for i in data["inputs"])
    assert all(tuple(g) == GAP_KEYS for g in data["roster_gaps"]) and data["roster_gaps"]
    assert all(set(c) <= {"values", "dictionary", "codes"} for c in data["columns"].values())
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
    text = dumps_plan(plan, key=KEY)
    assert KEY.hex() not in text and "key_id" in text  # the key's id, never the key
    for word in ("token", "secret", "bearer", "authorization", "password"):
        assert word not in text.lower()


def test_a_plan_file_is_signed_or_not_written(plan: Plan) -> None:
    with pytest.raises(TypeError):
        dumps_plan(plan)


def test_newer_schema_is_refused(plan: Plan, tmp_path: Path) -> None:
    data = plan_to_dict(plan, key=KEY)
    data["schema_version"] = 99
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UsageError) as e:
        read_plan(path)
    assert e.value.code == "plan-schema-unsupported"
    assert "schema version 99" in e.value.message and str(path) in e.value.message


def _corrupt(plan: Plan, change) -> dict:
    data = plan_to_dict(plan, key=KEY)
    change(data)
    return data


def _set_code(column: str, row: int, code: int):
    def change(d: dict) -> None:
        d["columns"][column]["codes"][row] = code

    return change


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d.pop("columns"), "columns"),
        (lambda d: d.update(schema_version="1"), "schema_version"),
        (lambda d: d.update(schema_version=0), "schema_version"),
        (lambda d: d["columns"].pop("action"), "action"),
        (lambda d: d["columns"].update(extra={"values": []}), "extra"),
        (lambda d: d["columns"]["row_key"]["values"].__setitem__(0, "zero"), "row_key"),
        (lambda d: d["columns"]["row_key"]["values"].__setitem__(0, 2**70), "row_key"),
        (lambda d: d["columns"]["row_key"]["values"].__setitem__(1, 0), "ordered by row_key"),
        (lambda d: d["columns"]["row_key"]["values"].pop(), "row_key"),
        (lambda d: d["columns"]["clear"].update(dictionary=["no"]), "clear"),
        (lambda d: d["columns"]["desired_points"].update(dictionary=["lots"]), "desired_points"),
        (_set_code("assignment_key", 0, 9), "outside its dictionary"),
        (_set_code("assignment_key", 0, -1), "outside its dictionary"),
        (lambda d: d["columns"]["assignment_key"].pop("codes"), "no codes"),
        (lambda d: d["columns"]["assignment_key"]["codes"].pop(), "codes for 7 rows"),
        (
            lambda d: d["columns"]["assignment_key"].update(values=["Essay"] * 7),
            "both values and a dictionary",
        ),
        (lambda d: d.update(row_count=8), "8 rows"),
        (lambda d: d.update(strict="yes"), "strict"),
        (lambda d: d.update(inputs=[{"path": "x", "bogus": 1}]), "inputs"),
        (lambda d: d.update(digest=""), "digest"),
        (lambda d: d.update(digest="AB" * 32), "digest"),
        (lambda d: d.update(key_id="the key"), "key_id"),
        (lambda d: d["summary"]["actions"].update(reject=0), "summary"),  # hand-edited counts
        (lambda d: d["summary"].update(decreases=0), "summary"),
    ],
)
def test_damaged_documents_are_refused(plan: Plan, change, fragment: str) -> None:
    with pytest.raises(InputError) as e:
        plan_from_dict(_corrupt(plan, change), source="plan.json")
    assert e.value.code == "plan-corrupt"
    assert fragment in e.value.message and e.value.message.startswith("plan.json: ")
    text = json.dumps(_corrupt(plan, change))  # the same through the file reader
    with pytest.raises(InputError) as e:
        loads_plan(text, source="plan.json")
    assert e.value.code == "plan-corrupt" and fragment in e.value.message


@pytest.mark.parametrize(
    "text", ["", "{", "[1, 2]", '{"schema_version": 1', "null", "\x00\x01", '{"a": NaN}']
)
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
    assert plan_digest(twin, KEY) != plan_digest(plan, KEY)
    write_plan(plan, tmp_path / "p.json", key=KEY)
    again = read_plan(tmp_path / "p.json")
    assert again.plan_id == plan.plan_id and plan_hash(again) == plan_hash(plan)


def test_read_times_travel_through_the_plan_file(plan: Plan, tmp_path: Path) -> None:
    plan.read_at = {"c1/a-unit1": "2024-06-01T11:59:58.123Z", "c1/a-essay": "2024-06-01T11:59:59.004Z"}
    write_plan(plan, tmp_path / "p.json", key=KEY)
    back = read_plan(tmp_path / "p.json")
    assert back.read_at == plan.read_at
    assert json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))["read_at"] == dict(
        sorted(plan.read_at.items())
    )


# ---------------------------------------------------------------------------------------------
# older files
# ---------------------------------------------------------------------------------------------
def test_a_plan_file_written_before_read_times_still_loads() -> None:
    """data/plan_before_read_at.json was written by a schema-2 writer before read times (no "read_at")."""
    path = DATA / "plan_before_read_at.json"
    assert '"read_at"' not in path.read_text(encoding="utf-8")
    old = read_plan(path)
    assert old.read_at == {} and old.schema_version == 2  # every assignment's read counts as stale
    assert old.plan_id == "0123456789abcdef0123456789abcdef"
    assert old.rows["action"].tolist() == ["update", "create", "reject"]
    assert [op.desired_points for op in old.operations()] == [45.0, 30.0]


def test_a_schema_2_plan_file_still_loads_and_keeps_its_digest() -> None:
    """data/plan_schema2.json is `gradesync plan sample_data/sis_long.csv` against the sample tenant,
    written by the schema-2 writer: it loads, its stored (unkeyed) digest still matches its rows, and
    written again it becomes a schema-3 file holding the same plan."""
    path = DATA / "plan_schema2.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    old = read_plan(path)
    assert old.schema_version == 2 and old.key_id == ""
    assert old.digest == doc["digest"] == legacy_digest(old)
    assert len(old.rows) == doc["summary"]["rows"] == 109
    assert old.counts() == {"update": 73, "create": 16, "noop": 16, "reject": 4, "excuse": 0}
    assert [op.row_key for op in old.operations()] == [o["row_key"] for o in doc["operations"]]
    assert old.inputs[0].sha256 == doc["inputs"][0]["sha256"]
    again = loads_plan(dumps_plan(old, key=KEY))
    assert_same_plan(old, again)
    assert again.schema_version == 3 and plan_to_dict(again, key=KEY)["summary"] == doc["summary"]


def test_an_edited_schema_2_plan_is_refused_by_its_operations() -> None:
    doc = json.loads((DATA / "plan_schema2.json").read_text(encoding="utf-8"))
    doc["operations"][0]["desired_points"] = 99.0
    with pytest.raises(InputError) as e:
        plan_from_dict(doc, source="plan.json")
    assert e.value.code == "plan-corrupt" and "operations" in e.value.message


# ---------------------------------------------------------------------------------------------
# every column round-trips exactly, whatever it holds
# ---------------------------------------------------------------------------------------------
ODD_TEXTS = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(["007", "0", "00000000000000000000123", "1e5", "NaN", "null", "None", "true", " "]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),  # ids far beyond 64 bits, as text
    st.text(max_size=12),  # any unicode (control characters, quotes, backslashes, emoji)
)
ODD_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e-320, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 2.0**53 + 1]),
)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@st.composite
def odd_columns(draw: st.DrawFn, n: int) -> dict[str, list[Any]]:
    """One list per plan column, each drawn from a pool of 1 to n values (a small pool is stored as a
    dictionary, a large one value by value), with every odd value the column's type allows."""
    out: dict[str, list[Any]] = {}
    for name, dtype in PLAN_COLUMNS.items():
        if name == "row_key":
            out[name] = sorted(draw(st.lists(INT64, min_size=n, max_size=n, unique=True)))
            continue
        base = {"object": ODD_TEXTS, "float64": ODD_FLOATS, "bool": st.booleans(), "int64": INT64}[dtype]
        pool = draw(st.lists(base, min_size=1, max_size=max(1, n)))
        picks = draw(st.lists(st.integers(0, len(pool) - 1), min_size=n, max_size=n))
        out[name] = [pool[i] for i in picks]
    return out


def _frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
    data = {}
    for name, dtype in PLAN_COLUMNS.items():
        values = columns[name]
        if dtype == "object":
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
        else:
            arr = np.array(values, dtype=dtype)
        data[name] = pd.Series(arr, dtype=dtype)
    return pd.DataFrame(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(min_value=0, max_value=12))
def test_every_column_round_trips_exactly(data: st.DataObject, n: int) -> None:
    rows = _frame(data.draw(odd_columns(n)))
    points = data.draw(st.none() | st.floats(allow_nan=False, allow_infinity=False))  # a gap's NaN is None
    gaps = [dict.fromkeys(GAP_KEYS, None) | {"class_id": "c", "current_points": points}]
    plan = Plan(
        rows=rows,
        created_at=data.draw(st.text(max_size=25)),
        graph_base_url="https://graph.example.test/v1.0",
        config_hash="0" * 16,
        inputs=[
            InputFile(data.draw(st.text(max_size=20)), "ab" * 32, n, None, data.draw(st.none() | st.text()))
        ],
        roster_gaps=gaps,
        warnings=data.draw(st.lists(st.text(max_size=10), max_size=2)),
        read_at=data.draw(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2)),
    )
    back = loads_plan(dumps_plan(plan, key=KEY))
    assert_same_plan(plan, back)
    for name, dtype in PLAN_COLUMNS.items():  # the exact values, not only what pandas calls equal
        a, b = rows[name].tolist(), back.rows[name].tolist()
        if dtype == "float64":
            assert [_bits(x) for x in a] == [_bits(y) for y in b], name
        else:
            assert a == b and [type(x) for x in a] == [type(y) for y in b], name
    assert back.digest == plan_digest(plan, KEY) == plan_digest(back, KEY)  # the same plan, the same digest


def _bits(x: float) -> str:
    """A float's exact value (NaN as one value: JSON's null)."""
    return "nan" if math.isnan(x) else x.hex()


def test_the_digest_is_a_keyed_hash_of_the_whole_plan(plan: Plan) -> None:
    """Any change to what the plan says changes the digest; another key gives another digest; the
    plain sha256 a person could recompute is not it."""
    digest = plan_digest(plan, KEY)
    assert len(digest) == 64 and digest != plan_digest(plan, bytes(32))
    assert (
        digest != legacy_digest(plan)
        and digest != hashlib.sha256(dumps_plan(plan, key=KEY).encode()).hexdigest()
    )
    changes = {
        "created_at": lambda p: setattr(p, "created_at", "2024-06-01T12:00:01Z"),
        "graph_base_url": lambda p: setattr(p, "graph_base_url", "https://graph.microsoft.us/v1.0"),
        "config_hash": lambda p: setattr(p, "config_hash", "f" * 16),
        "input sha256": lambda p: setattr(p, "inputs", [InputFile("grades.csv", "ef" * 32, 7, "utf-8-sig")]),
        "read_at": lambda p: setattr(p, "read_at", {"c1/a1": "2024-06-01T11:00:00.000Z"}),
        "strict": lambda p: setattr(p, "strict", False),
        "warnings": lambda p: setattr(p, "warnings", []),
        "roster gaps": lambda p: setattr(p, "roster_gaps", p.roster_gaps[1:]),
        "a message": lambda p: p.rows.__setitem__("message", p.rows["message"].str.upper()),
        "a student name": lambda p: p.rows.loc.__setitem__((0, "student_name"), "Mallory"),
        "a grade": lambda p: p.rows.loc.__setitem__((0, "desired_points"), 46.0),
        "'' for None": lambda p: p.rows.loc.__setitem__((4, "outcome_id"), ""),
        "-0.0 for 0.0": lambda p: p.rows.loc.__setitem__((0, "before_points"), -0.0),
    }
    plan.rows.loc[0, "before_points"] = 0.0  # so that the last change is -0.0 for 0.0
    digest = plan_digest(plan, KEY)
    seen = {digest}
    for what, change in changes.items():
        other = plan_of(school(), ROWS, strict=True)
        other.inputs, other.warnings, other.plan_id = plan.inputs, plan.warnings, plan.plan_id
        other.rows.loc[0, "before_points"] = 0.0
        assert plan_digest(other, KEY) == digest
        change(other)
        changed = plan_digest(other, KEY)
        assert changed not in seen, what
        seen.add(changed)


def test_row_keys_at_the_ends_of_int64_are_in_order(plan: Plan) -> None:
    """-2**63 then 2**63 - 1 is in order: the reader compares neighbours, it does not subtract them
    (their difference overflowed, and Hypothesis found a good plan refused as "not ordered")."""
    rows = plan.rows.iloc[:2].copy()
    rows["row_key"] = np.array([-(2**63), 2**63 - 1], dtype="int64")
    two = Plan(
        rows=rows.reset_index(drop=True),
        created_at=plan.created_at,
        graph_base_url=plan.graph_base_url,
        config_hash=plan.config_hash,
    )
    back = loads_plan(dumps_plan(two, key=KEY))
    assert back.rows["row_key"].tolist() == [-(2**63), 2**63 - 1]
