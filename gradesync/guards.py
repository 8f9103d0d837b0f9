"""Safety guards: pure functions that decide whether a plan may be applied at all.

They are the defence against a broken SIS export. Every figure is computed from the plan rows
(and, for coverage, from the pre-write read), every refusal is a ``GuardError`` (exit 4) whose
message names the figures, e.g. ``plan changes 812 of 1,000 grades (81%), above --max-changes 50%``.

What is counted (``Figures``):

* **grades** — the rows that state a grade for a resolved submission: every ``update`` and
  ``create``, and the ``noop`` rows whose grade already matches (not blank cells, not identical
  duplicates, not rejected rows). This is the denominator of the percentage limits.
* **changes** — rows that *overwrite* a grade Teams holds (an ``update`` whose before-value is set,
  clears included). Filling an empty grade (a ``create``, or an ``update`` of a points outcome whose
  points are null) destroys nothing and is counted as **new**, not as a change: on the first run
  every grade is new and must not trip ``--max-changes``.
* **decreases** — changes that lower a grade (the plan's ``decrease`` flag; clears count).
* **clears** — rows that remove a grade; refused unless ``--allow-clear``.
* **coverage** — distinct submissions the input names / individual submissions of the assignments
  it writes to. An export that lost half its rows names half the roster.

A percentage limit is not enforced while the figure is at most ``PERCENT_FLOOR`` grades: one
change in a one-row file is 100% but harmless. An absolute limit (``--max-changes 200``) always is.

Coverage and small files: ``--min-coverage`` applies only when the input names more than
``COVERAGE_FLOOR`` students, unless the input is declared a full export (``--expect-full``,
``[apply] expect_full = true``: the nightly sync). So a 9-row correction file is never refused for
coverage, while a nightly export that lost half of its 1,000 students still is.

Plan dates: a plan older than ``--max-plan-age`` is refused, and so is a plan dated more than
``CLOCK_SKEW`` in the future (whatever ``--max-plan-age`` says: no clock makes such a plan honest).

:func:`plan_verdict` gathers every refusal that needs no Graph read; ``plan`` shows it (the preview is
the apply), ``apply`` and ``sync`` refuse on it (``gradesync.pipeline``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from gradesync.config import ApplySettings
from gradesync.errors import GuardError, UsageError
from gradesync.models import WRITE_ACTIONS, Action, ReasonCode

__all__ = [
    "CLOCK_SKEW",
    "COVERAGE_FLOOR",
    "PERCENT_FLOOR",
    "Figures",
    "GuardLimits",
    "Limit",
    "OverwriteGuard",
    "coverage_violation",
    "guard_violations",
    "parse_duration",
    "parse_time",
    "plan_age_violation",
    "plan_coverage",
    "plan_figures",
    "plan_verdict",
    "refuse",
]

PERCENT_FLOOR = 20  # a percentage guard fires only when the figure is above this many grades
COVERAGE_FLOOR = 20  # --min-coverage applies to inputs naming more students (or to a full export)
CLOCK_SKEW = timedelta(minutes=5)  # a plan dated further in the future than this is refused

_NOT_A_GRADE = {ReasonCode.BLANK_POINTS.value, ReasonCode.DUPLICATE_IDENTICAL.value}


@dataclass(frozen=True, slots=True)
class Limit:
    """``N`` (a count) or ``P%`` (a share of the grades the input touches)."""

    value: float
    percent: bool
    text: str

    @classmethod
    def parse(cls, text: str | Limit, option: str = "limit") -> Limit:
        if isinstance(text, Limit):
            return text
        raw = str(text).strip()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%?)", raw)
        if not m:
            raise UsageError(
                f"{option} {raw!r}: expected a count like 200 or a percentage like 50%",
                code="guard-limit-invalid",
            )
        value, percent = float(m.group(1)), bool(m.group(2))
        if percent and value > 100:
            raise UsageError(f"{option} {raw!r}: a percentage is at most 100%", code="guard-limit-invalid")
        return cls(value, percent, raw.replace(" ", ""))

    def exceeded(self, count: int, total: int) -> bool:
        """True when ``count`` (out of ``total``) is above this limit."""
        if not self.percent:
            return count > self.value
        if count <= PERCENT_FLOOR or total <= 0:
            return False
        return count * 100.0 > self.value * total + 1e-9

    def below(self, count: int, total: int) -> bool:
        """For a minimum (coverage): True when ``count`` of ``total`` is under this limit."""
        if total <= 0:
            return False
        if not self.percent:
            return count < self.value
        if total - count <= PERCENT_FLOOR:
            return False  # fewer than PERCENT_FLOOR students missing: never refuse on a share
        return count * 100.0 < self.value * total - 1e-9


@dataclass(frozen=True, slots=True)
class Figures:
    grades: int  # rows stating a grade for a resolved submission (the denominator)
    changes: int  # overwrites of a grade Teams holds (clears included)
    new: int  # grades filled where Teams holds none
    decreases: int
    clears: int

    def asdict(self) -> dict[str, int]:
        return {
            "grades": self.grades,
            "changes": self.changes,
            "new": self.new,
            "decreases": self.decreases,
            "clears": self.clears,
        }


def _bool(series: pd.Series) -> pd.Series:
    return series.fillna(False).astype(bool)


def plan_figures(rows: pd.DataFrame) -> Figures:
    """Count what a plan would do (pure; the rows are PLAN_COLUMNS)."""
    action = rows["action"].astype(str)
    reason = rows["reason"].fillna("").astype(str)
    writes = action.isin([Action.UPDATE.value, Action.CREATE.value])
    grades = writes | ((action == Action.NOOP.value) & ~reason.isin(_NOT_A_GRADE))
    had_grade = rows["before_points"].notna()
    clear = _bool(rows["clear"]) & writes
    changes = (action == Action.UPDATE.value) & had_grade
    new = writes & ~had_grade & ~clear
    decreases = changes & (_bool(rows["decrease"]) | clear)
    return Figures(
        grades=int(grades.sum()),
        changes=int(changes.sum()),
        new=int(new.sum()),
        decreases=int(decreases.sum()),
        clears=int(clear.sum()),
    )


def _share(count: int, total: int) -> str:
    pct = 0 if total <= 0 else round(100.0 * count / total)
    return f"{count:,} of {total:,} grades ({pct}%)"


def guard_violations(
    figures: Figures,
    *,
    max_changes: Limit | None,
    max_decreases: Limit | None,
    allow_clear: bool,
) -> list[str]:
    """The reasons a plan must not be applied (empty: it may). Pure."""
    out: list[str] = []
    if max_changes is not None and max_changes.exceeded(figures.changes, figures.grades):
        out.append(
            f"plan changes {_share(figures.changes, figures.grades)}, above --max-changes {max_changes.text}"
        )
    if max_decreases is not None and max_decreases.exceeded(figures.decreases, figures.grades):
        out.append(
            f"plan lowers {_share(figures.decreases, figures.grades)}, "
            f"above --max-decreases {max_decreases.text}"
        )
    if figures.clears and not allow_clear:
        out.append(f"plan clears {figures.clears:,} grade(s); clearing needs --allow-clear")
    return out


def _lowers(found: float | None, desired: float | None) -> bool:
    """Writing ``desired`` over ``found`` lowers a grade (a clear lowers any grade)."""
    return found is not None and (desired is None or desired < found)


@dataclass(slots=True)
class OverwriteGuard:
    """``--on-conflict overwrite`` under the same limits as the plan.

    The plan's figures count what the plan's read saw. A grade changed in Teams since, and
    overwritten, is a change the plan did not count — a teacher's 90 overwritten with the gradebook's
    60 is a decrease where the plan saw 50 → 60. Each overwrite is added to the plan's figures and
    judged by the same :func:`guard_violations` as the plan; one that would take the run past a
    limit is not made (the caller reports the row ``conflict``, saying why). Pure: figures in,
    a reason (or None) out."""

    planned: Figures
    limits: GuardLimits
    # per row: (changes, new, decreases) this overwrite adds to the plan's counts (kept per row, so a
    # row decided twice — held back and read again — is counted once); ``figures``: the plan's counts
    # with every admitted overwrite (kept as it goes: one overwrite costs the same at the millionth row)
    moved: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    figures: Figures | None = None

    def admit(
        self, row: int, *, before: float | None, update: bool, found: float | None, desired: float | None
    ) -> str | None:
        """May ``row`` write ``desired`` over ``found`` (Teams now), where the plan saw ``before``
        (``update``: the plan counted it as an update)? None, or the limit it would exceed."""
        was_change = update and before is not None
        change = found is not None
        delta = (
            int(change) - int(was_change),
            int(not change) - int(not was_change),
            int(_lowers(found, desired)) - int(was_change and _lowers(before, desired)),
        )
        now = self.figures or self.planned
        old = self.moved.get(row, (0, 0, 0))
        figures = Figures(
            grades=now.grades,
            changes=now.changes + delta[0] - old[0],
            new=now.new + delta[1] - old[1],
            decreases=now.decreases + delta[2] - old[2],
            clears=now.clears,
        )
        violations = guard_violations(
            figures,
            max_changes=self.limits.max_changes,
            max_decreases=self.limits.max_decreases,
            allow_clear=True,  # clears are the plan's own, judged before the run
        )
        if violations:
            return violations[0]
        self.moved[row], self.figures = delta, figures
        return None


def coverage_violation(
    covered: int, roster: int, min_coverage: Limit | None, *, expect_full: bool = False
) -> str | None:
    """A reason to refuse when the input names too few of the students it writes grades for.

    Unless ``expect_full``, an input naming at most ``COVERAGE_FLOOR`` students is a correction
    file, not a broken export: never refused for coverage."""
    if min_coverage is None or not min_coverage.below(covered, roster):
        return None
    if not expect_full and covered <= COVERAGE_FLOOR:
        return None
    pct = round(100.0 * covered / roster) if roster else 0
    return (
        f"input covers {covered:,} of {roster:,} students ({pct}%) in the assignments it writes to, "
        f"below --min-coverage {min_coverage.text}"
    )


def refuse(violations: list[str]) -> None:
    """Raise one GuardError naming every violated guard (no-op when the list is empty)."""
    if not violations:
        return
    options = list(dict.fromkeys(re.findall(r"--[a-z-]+", " ".join(violations))))
    fixes = [o if o == "--allow-clear" else f"{o} (a higher limit, or 'off')" for o in options]
    raise GuardError(
        "; ".join(violations),
        code="guard-refused",
        hint="check the export first (lost rows? a shifted column? the wrong file?); "
        f"if the plan is right, run again with {' and '.join(fixes)}",
    )


# --- plan age ----------------------------------------------------------------------------------
def parse_duration(text: str | timedelta, option: str = "--max-plan-age") -> timedelta:
    """``90s``, ``45m``, ``24h``, ``2d`` (a bare number is hours)."""
    if isinstance(text, timedelta):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if not m:
        raise UsageError(
            f"{option} {text!r}: expected a duration like 90m, 24h or 2d", code="duration-invalid"
        )
    unit = m.group(2) or "h"
    seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    return timedelta(seconds=seconds)


def parse_time(text: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` accepted) as an aware UTC datetime."""
    dt = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def plan_age_violation(created_at: str, now: datetime, max_age: timedelta | None) -> str | None:
    """Too old (``max_age``; None: no limit), or dated beyond ``CLOCK_SKEW`` in the future (always)."""
    try:
        created = parse_time(created_at)
    except ValueError:
        return f"plan creation time {created_at!r} is not a timestamp; cannot check --max-plan-age"
    age = now - created
    if -age > CLOCK_SKEW:
        return (
            f"plan is dated {created_at}, {_human(-age)} in the future (more than the {_human(CLOCK_SKEW)} "
            "clock-skew allowance); check this machine's clock and make a fresh plan"
        )
    if max_age is None:
        return None
    if age <= max_age:
        return None
    return (
        f"plan was made {_human(age)} ago ({created_at}), older than --max-plan-age {_human(max_age)}; "
        "make a fresh plan"
    )


def _human(delta: timedelta) -> str:
    s = max(0.0, delta.total_seconds())
    if s < 120:
        return f"{math.floor(s)}s"
    if s < 7200:
        return f"{math.floor(s / 60)}m"
    if s < 172800:
        return f"{s / 3600:.1f}h".replace(".0h", "h")
    return f"{s / 86400:.1f}d".replace(".0d", "d")


# --- everything a plan can be refused for without reading Graph --------------------------------
@dataclass(frozen=True, slots=True)
class GuardLimits:
    """The guard settings of one run: ``[apply]`` with the command line's overrides (the settings'
    defaults are the only defaults: ``GuardLimits.from_settings(ApplySettings())``)."""

    max_changes: Limit | None
    max_decreases: Limit | None
    min_coverage: Limit | None
    max_plan_age: timedelta | None
    allow_clear: bool = False
    expect_full: bool = False

    @classmethod
    def from_settings(cls, apply: ApplySettings) -> GuardLimits:
        def limit(text: str, option: str) -> Limit | None:
            return None if _off(text) else Limit.parse(text, option)

        return cls(
            max_changes=limit(apply.max_changes, "--max-changes"),
            max_decreases=limit(apply.max_decreases, "--max-decreases"),
            min_coverage=limit(apply.min_coverage, "--min-coverage"),
            max_plan_age=None if _off(apply.max_plan_age) else parse_duration(apply.max_plan_age),
            allow_clear=apply.allow_clear,
            expect_full=apply.expect_full,
        )


def _off(text: str) -> bool:
    return str(text).strip().lower() in ("off", "none", "no")


def plan_coverage(rows: pd.DataFrame, roster_gaps: list[dict[str, object]]) -> tuple[int, int]:
    """(students the input names, students with a submission) over the assignments the plan writes
    to, from the plan alone: a named student is a row matched to a submission, a missing one a
    roster gap (``Plan.roster_gaps``). Pure."""
    keys = ["class_id", "assignment_id"]
    written = rows.loc[rows["action"].isin(WRITE_ACTIONS), keys].astype(str).drop_duplicates()
    if written.empty:
        return 0, 0
    named = rows.loc[rows["submission_id"].notna(), [*keys, "submission_id"]]
    in_pairs = pd.MultiIndex.from_frame(named[keys].astype(str)).isin(pd.MultiIndex.from_frame(written))
    covered = int(named.loc[in_pairs, "submission_id"].nunique()) if len(named) else 0
    pairs = set(written.itertuples(index=False, name=None))
    missing = sum(1 for g in roster_gaps if (str(g.get("class_id")), str(g.get("assignment_id"))) in pairs)
    return covered, covered + missing


def plan_verdict(
    rows: pd.DataFrame,
    *,
    created_at: str,
    roster_gaps: list[dict[str, object]],
    limits: GuardLimits,
    now: datetime,
    check_age: bool = True,
) -> list[str]:
    """Every reason ``apply`` would refuse this plan before reading Graph ([] = it would go on).

    Age and future date (unless ``check_age`` is off: a resumed run is judged by its first start),
    changes, decreases, clears and coverage over the planned roster. Pure."""
    out: list[str] = []
    if check_age and (age := plan_age_violation(created_at, now, limits.max_plan_age)):
        out.append(age)
    out += guard_violations(
        plan_figures(rows),
        max_changes=limits.max_changes,
        max_decreases=limits.max_decreases,
        allow_clear=limits.allow_clear,
    )
    covered, roster = plan_coverage(rows, roster_gaps)
    if cov := coverage_violation(covered, roster, limits.min_coverage, expect_full=limits.expect_full):
        out.append(cov)
    return out
