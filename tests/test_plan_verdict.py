"""guards.plan_verdict and plan.digest: pure, so tested on plain frames (no Graph)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from gradesync.config import ApplySettings
from gradesync.guards import GuardLimits, plan_coverage, plan_verdict
from gradesync.models import PLAN_COLUMNS, Plan
from gradesync.plan.digest import digest_matches, plan_digest
from gradesync.plan.planfile import dumps_plan, loads_plan

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
STAMP = "2026-12-01T01:59:00Z"


def _rows(named: int) -> pd.DataFrame:
    """``named`` students of one assignment, each getting a new grade (nothing overwritten)."""
    n = named
    default = {"float64": np.nan, "bool": False, "int64": 0}
    frame = pd.DataFrame({name: [default.get(dtype)] * n for name, dtype in PLAN_COLUMNS.items()})
    frame = frame.astype({k: v for k, v in PLAN_COLUMNS.items() if v != "object"})
    frame["row_key"] = np.arange(n)
    frame["class_id"], frame["assignment_id"] = "c1", "a1"
    frame["submission_id"] = [f"s{i}" for i in range(n)]
    frame["user_id"] = [f"u{i}" for i in range(n)]
    frame["action"], frame["reason"], frame["message"] = "create", "", ""
    frame["desired_points"] = 7.0
    return frame


def _gaps(missing: int) -> list[dict[str, object]]:
    return [{"class_id": "c1", "assignment_id": "a1", "user_id": f"m{i}"} for i in range(missing)]


def _limits(**settings: object) -> GuardLimits:
    """The guards of ``[apply]`` with ``settings`` changed (the defaults are the settings' own)."""
    return GuardLimits.from_settings(ApplySettings.model_validate(settings))


def _verdict(named: int, missing: int, **settings: object) -> list[str]:
    return plan_verdict(
        _rows(named), created_at=STAMP, roster_gaps=_gaps(missing), limits=_limits(**settings), now=NOW
    )


def test_a_small_correction_file_is_not_refused_for_coverage() -> None:
    assert plan_coverage(_rows(9), _gaps(291)) == (9, 300)
    assert _verdict(9, 291) == []  # 9 of 300 students (3%), but a correction file


def test_a_half_lost_export_still_is_and_expect_full_applies_always() -> None:
    assert any("--min-coverage" in v for v in _verdict(500, 500))  # the nightly export lost half
    assert _verdict(9, 291, expect_full=True) != []  # declared full: even a small one is refused


def test_a_plan_from_the_future_is_refused_even_without_an_age_limit() -> None:
    future = (NOW + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    verdict = plan_verdict(
        _rows(3), created_at=future, roster_gaps=[], limits=_limits(max_plan_age="off"), now=NOW
    )
    assert len(verdict) == 1 and "in the future" in verdict[0]
    skewed = (
        (NOW + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    )  # within the clock-skew allowance
    assert plan_verdict(_rows(3), created_at=skewed, roster_gaps=[], limits=_limits(), now=NOW) == []


def test_the_digest_survives_the_plan_file_and_sees_an_edited_grade() -> None:
    key = bytes(range(32))
    plan = Plan(rows=_rows(5), created_at=STAMP, graph_base_url="http://g/v1.0", config_hash="x")
    again = loads_plan(dumps_plan(plan, key=key))
    assert again.digest == plan_digest(plan, key) == plan_digest(again, key)
    assert digest_matches(again.digest[:12].upper(), again.digest) and not digest_matches("abc", again.digest)
    again.rows.loc[2, "desired_points"] = 8.0
    assert plan_digest(again, key) != again.digest
