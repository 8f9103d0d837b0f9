"""Table tests of the pure safety guards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from gradesync.errors import GuardError, UsageError
from gradesync.guards import (
    PERCENT_FLOOR,
    Figures,
    GuardLimits,
    Limit,
    OverwriteGuard,
    coverage_violation,
    guard_violations,
    parse_duration,
    plan_age_violation,
    plan_figures,
    refuse,
)


def rows(*specs: tuple[str, float, bool, bool, str]) -> pd.DataFrame:
    """(action, before_points, decrease, clear, reason) per row."""
    return pd.DataFrame(
        {
            "action": [s[0] for s in specs],
            "before_points": [s[1] for s in specs],
            "decrease": [s[2] for s in specs],
            "clear": [s[3] for s in specs],
            "reason": [s[4] for s in specs],
        }
    )


NAN = np.nan


def test_figures_count_overwrites_new_decreases_and_clears() -> None:
    frame = rows(
        ("update", 80.0, False, False, ""),  # change (raise)
        ("update", 80.0, True, False, ""),  # change, decrease
        ("update", 80.0, False, True, ""),  # clear: a change and a decrease
        ("update", NAN, False, False, ""),  # fills a null points outcome: new
        ("create", NAN, False, False, ""),  # new
        ("noop", 70.0, False, False, ""),  # already equal: a grade the input touches
        ("noop", NAN, False, False, "blank_points"),  # not a grade
        ("noop", 70.0, False, False, "duplicate_identical"),  # not a grade
        ("reject", NAN, False, False, "unknown_student"),  # not a grade
    )
    assert plan_figures(frame) == Figures(grades=6, changes=3, new=2, decreases=2, clears=1)


@pytest.mark.parametrize(
    ("text", "count", "total", "exceeded"),
    [
        ("50%", 812, 1000, True),
        ("50%", 500, 1000, False),
        ("50%", 501, 1000, True),
        ("100%", 1000, 1000, False),
        ("0%", PERCENT_FLOOR, 1000, False),  # at or below the floor a share never fires
        ("0%", PERCENT_FLOOR + 1, 1000, True),
        ("50%", 10, 10, False),  # a ten-row file changing every grade is not a broken export
        ("200", 200, 1000, False),
        ("200", 201, 1000, True),
        ("0", 1, 1000, True),  # an absolute limit always applies
        ("0", 0, 0, False),
    ],
)
def test_limit_exceeded(text: str, count: int, total: int, exceeded: bool) -> None:
    assert Limit.parse(text).exceeded(count, total) is exceeded


@pytest.mark.parametrize("text", ["", "abc", "-5", "5%%", "150%", "1e3"])
def test_limit_rejects_bad_text(text: str) -> None:
    with pytest.raises(UsageError) as e:
        Limit.parse(text, "--max-changes")
    assert e.value.code == "guard-limit-invalid"


def test_violation_message_names_the_figures() -> None:
    figures = Figures(grades=1000, changes=812, new=0, decreases=0, clears=0)
    out = guard_violations(figures, max_changes=Limit.parse("50%"), max_decreases=None, allow_clear=False)
    assert out == ["plan changes 812 of 1,000 grades (81%), above --max-changes 50%"]


def test_first_run_creates_are_not_changes() -> None:
    figures = Figures(grades=1000, changes=0, new=1000, decreases=0, clears=0)
    assert (
        guard_violations(
            figures, max_changes=Limit.parse("50%"), max_decreases=Limit.parse("20%"), allow_clear=False
        )
        == []
    )


@pytest.mark.parametrize(
    ("figures", "allow_clear", "expected"),
    [
        (
            Figures(100, 10, 0, 30, 0),
            False,
            ["plan lowers 30 of 100 grades (30%), above --max-decreases 20%"],
        ),
        (Figures(100, 10, 0, 5, 2), False, ["plan clears 2 grade(s); clearing needs --allow-clear"]),
        (Figures(100, 10, 0, 5, 2), True, []),
        (
            Figures(100, 90, 0, 45, 0),
            False,
            [
                "plan changes 90 of 100 grades (90%), above --max-changes 50%",
                "plan lowers 45 of 100 grades (45%), above --max-decreases 20%",
            ],
        ),
    ],
)
def test_guard_table(figures: Figures, allow_clear: bool, expected: list[str]) -> None:
    out = guard_violations(
        figures, max_changes=Limit.parse("50%"), max_decreases=Limit.parse("20%"), allow_clear=allow_clear
    )
    assert out == expected


def test_disabled_limits_never_fire() -> None:
    assert (
        guard_violations(Figures(10, 10, 0, 10, 0), max_changes=None, max_decreases=None, allow_clear=True)
        == []
    )


@pytest.mark.parametrize(
    ("covered", "roster", "limit", "refused"),
    [
        (500, 1000, "60%", True),  # an export that lost half its rows
        (600, 1000, "60%", False),
        (990, 1000, "60%", False),
        (5, 20, "60%", False),  # at most PERCENT_FLOOR students missing: never refused on a share
        (0, 0, "60%", False),
        (49, 100, "50", True),
    ],
)
def test_coverage(covered: int, roster: int, limit: str, refused: bool) -> None:
    msg = coverage_violation(covered, roster, Limit.parse(limit))
    assert (msg is not None) is refused
    if refused:
        assert f"{covered:,} of {roster:,} students" in msg


def test_refuse_raises_guard_error_with_every_reason() -> None:
    refuse([])
    with pytest.raises(GuardError) as e:
        refuse(["a", "b"])
    assert e.value.message == "a; b"
    assert int(e.value.exit_code) == 4


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("90m", 5400), ("2d", 172800), ("30s", 30), ("1.5", 5400)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_parse_duration_rejects_garbage() -> None:
    with pytest.raises(UsageError):
        parse_duration("yesterday")


def test_plan_age() -> None:
    now = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
    assert plan_age_violation("2024-05-02T00:00:00Z", now, timedelta(hours=24)) is None
    msg = plan_age_violation("2024-04-30T12:00:00Z", now, timedelta(hours=24))
    assert msg is not None
    assert "2d ago" in msg
    assert "--max-plan-age 24h" in msg
    assert plan_age_violation("2024-04-30T12:00:00Z", now, None) is None
    assert "not a timestamp" in (plan_age_violation("soon", now, timedelta(hours=1)) or "")


def test_refusal_hint_names_only_the_guards_that_fired():
    from gradesync.errors import GuardError
    from gradesync.guards import refuse

    with pytest.raises(GuardError) as e:
        refuse(["plan lowers 40 of 104 grades (38%), above --max-decreases 20%"])
    assert "--max-decreases (a higher limit, or 'off')" in e.value.hint
    assert "--allow-clear" not in e.value.hint and "--max-changes" not in e.value.hint
    with pytest.raises(GuardError) as e:
        refuse(["plan clears 2 grade(s); clearing needs --allow-clear"])
    assert e.value.hint.endswith("run again with --allow-clear")


def test_an_overwrite_counts_what_teams_holds_now_and_a_row_decided_twice_counts_once() -> None:
    """The plan saw 50 → 60 (a change, no decrease). Teams now holds 90: writing 60 over it lowers a
    grade. Under --max-decreases 1 one such overwrite fits, the second does not; the same row
    decided again (held back, read again) is not counted twice; a create that finds a teacher's
    grade becomes a change, and one that finds nothing adds nothing."""
    planned = Figures(grades=100, changes=10, new=0, decreases=0, clears=0)
    limits = GuardLimits(max_changes=Limit.parse("10"), max_decreases=Limit.parse("1"), min_coverage=None,
                         max_plan_age=None)  # fmt: skip
    guard = OverwriteGuard(planned, limits)
    assert guard.admit(1, before=50.0, update=True, found=90.0, desired=60.0) is None
    assert guard.admit(1, before=50.0, update=True, found=90.0, desired=60.0) is None  # same row again
    second = guard.admit(2, before=50.0, update=True, found=70.0, desired=60.0)
    assert second is not None and "above --max-decreases 1" in second
    assert guard.admit(3, before=50.0, update=True, found=55.0, desired=60.0) is None  # still a raise
    found = guard.admit(4, before=None, update=False, found=30.0, desired=60.0)  # a create: now a change
    assert found is not None and "above --max-changes 10" in found
    assert guard.admit(5, before=None, update=False, found=None, desired=60.0) is None  # gone: new again
