"""The run summary: one value object that summary.json, the HTML report and the CLI table render."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from gradesync.errors import GradesyncError
from gradesync.groups import counts_per_group, group_rows
from gradesync.models import Action, InputFile
from gradesync.outcome import SHOWN_STATUSES, Tally, Verdict, judge
from gradesync.version import __version__

__all__ = [
    "ACTIONS",
    "EXTRA_ACTIONS",
    "EXTRA_STATUSES",
    "KINDS",
    "STATUSES",
    "CodedColumns",
    "Kind",
    "RunSummary",
    "bool_column",
    "float_column",
    "format_number",
    "map_distinct",
    "render_table",
    "text_codes",
    "text_column",
    "text_value",
]

Kind = Literal["plan", "reconciliation"]
KINDS: tuple[str, ...] = ("plan", "reconciliation")

ACTIONS: tuple[str, ...] = ("update", "create", "noop", "reject")  # always counted
# counted (and shown) only when some row has them: excused marks are off unless configured
EXTRA_ACTIONS: tuple[str, ...] = tuple(a.value for a in Action if a.value not in ACTIONS)  # excuse
STATUSES: tuple[str, ...] = SHOWN_STATUSES
# "pending" only appears in a dry-run reconciliation (would be written); counted when present
EXTRA_STATUSES: tuple[str, ...] = ("pending",)

# counters in a Graph stats dict that are not requests (never summed into the request total)
_NOT_REQUEST_COUNTERS = frozenset(
    {"retries", "throttled", "transient_errors", "fate_unknown", "wait_seconds"}
)

# keys that must never reach a report even if a caller's stats dict carries them by mistake
_SECRET_HINTS = ("token", "secret", "authorization", "password", "assertion", "cookie")


def map_distinct(values: pd.Series, fn: Callable[[Any], str]) -> pd.Series:
    """``fn`` applied to each *distinct* value (missing values get ``fn(None)``), spread back to rows.

    Report columns repeat a lot (file, class, assignment, action, points), so this turns a per-row
    Python loop over 1.2M rows into a hash-based factorize plus a loop over the few distinct values.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([*(fn(u) for u in uniques), fn(None)], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def text_column(rows: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` as clean text ("" for missing/None/NaN); an absent column reads as all "".

    Identifiers are text by contract, so anything else (a stray float) is formatted plainly.
    """
    if name not in rows.columns:
        return pd.Series([""] * len(rows), index=rows.index, dtype=object)
    return map_distinct(rows[name], text_value)


def bool_column(rows: pd.DataFrame, name: str) -> pd.Series:
    if name not in rows.columns:
        return pd.Series(False, index=rows.index, dtype=bool)
    return rows[name].fillna(False).astype(bool)


def float_column(rows: pd.DataFrame, name: str) -> pd.Series:
    if name not in rows.columns:
        return pd.Series(math.nan, index=rows.index, dtype="float64")
    return pd.to_numeric(rows[name], errors="coerce").astype("float64")


def text_value(v: Any) -> str:
    """A value as clean text: \"\" for None/NA/NaT/NaN, a float plainly (``format_number``)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else format_number(v)
    return str(v)


def format_number(v: Any) -> str:
    """85 → "85", 85.5 → "85.5", 85.50000000001 → "85.5", NaN/None → "" (six decimals at most).

    Points are < 9,999,999 and rounded to a configured precision well under 6 decimals, so rounding
    to 6 places only removes float noise; fixed notation means no "1e-07" or "1.2E+06" in a report.
    """
    if v is None or v is pd.NA:
        return ""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{round(x, 6):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _scrub(value: Any) -> Any:
    """Drop secret-looking keys and make a stats value JSON-safe (NaN → None)."""
    if isinstance(value, Mapping):
        return {
            str(k): _scrub(v)
            for k, v in value.items()
            if not any(hint in str(k).lower() for hint in _SECRET_HINTS)
        }
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalar
        return _scrub(value.item())
    return str(value)


def _input_dict(item: InputFile | Mapping[str, Any]) -> dict[str, Any]:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return _scrub(dataclasses.asdict(item))
    return _scrub(dict(item))  # type: ignore[arg-type]


def text_codes(rows: pd.DataFrame, name: str) -> tuple[np.ndarray, list[str]]:
    """Column ``name`` as (codes, texts): row i reads ``texts[codes[i]]`` (``text_column``'s text);
    the texts are distinct, in the order the rows first show them."""
    if name not in rows.columns:
        return np.zeros(len(rows), dtype=np.intp), [""]
    codes, uniques = pd.factorize(rows[name], use_na_sentinel=True)
    shown = [*(text_value(u) for u in uniques), ""]  # two values can read alike (None and "")
    again, distinct = pd.factorize(np.array(shown, dtype=object))
    return again[np.where(codes < 0, len(uniques), codes)].astype(np.intp), distinct.tolist()


class CodedColumns:
    """``text_codes`` of a frame's columns, each computed once (a summary reads some several times)."""

    def __init__(self, rows: pd.DataFrame) -> None:
        self.rows = rows
        self._done: dict[str, tuple[np.ndarray, list[str]]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def text(self, name: str) -> tuple[np.ndarray, list[str]]:
        if name not in self._done:
            self._done[name] = text_codes(self.rows, name)
        return self._done[name]

    def count(self, name: str, text: str) -> int:
        """Rows whose column ``name`` reads ``text``."""
        codes, texts = self.text(name)
        return int(np.count_nonzero(codes == texts.index(text))) if text in texts else 0

    def reads(self, name: str, accepted: Iterable[str]) -> np.ndarray:
        """Per row: does column ``name`` read one of ``accepted``?"""
        codes, texts = self.text(name)
        wanted = set(accepted)
        return np.array([t in wanted for t in texts], dtype=bool)[codes]


def _group_codes(cols: CodedColumns, keys: list[str]) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """A group number per row (groups in first-seen order, as ``groupby(sort=False)``) and each
    group's key texts."""
    coded = [cols.text(k) for k in keys]
    groups, first = group_rows([c for c, _ in coded], [len(t) for _, t in coded], sort=False)
    shown = [[texts[c] for c in codes[first].tolist()] for codes, texts in coded]
    return groups.astype(np.intp), list(zip(*shown, strict=True))


def _first_named(cols: CodedColumns, name: str, groups: np.ndarray, count: int) -> list[str]:
    """Per group, the first non-empty text of column ``name`` ("" when the group has none)."""
    codes, texts = cols.text(name)
    named = np.flatnonzero(np.array([t != "" for t in texts])[codes])
    found, first = np.unique(groups[named], return_index=True)
    out = [""] * count
    for g, i in zip(found.tolist(), named[first].tolist(), strict=True):
        out[g] = texts[codes[i]]
    return out


def _counts_by(groups: np.ndarray, count: int, cols: CodedColumns, name: str) -> dict[str, np.ndarray]:
    """Per distinct text of column ``name``: how many rows of each group hold it."""
    codes, texts = cols.text(name)
    table = counts_per_group(groups, count, codes, len(texts))
    return {t: table[:, k] for k, t in enumerate(texts)}


def _count_table(
    cols: CodedColumns, keys: list[str], labels: dict[str, str], with_status: bool
) -> list[dict[str, Any]]:
    """Per-group counts (one dict per group, in first-seen order): rows, per action, per status."""
    if not len(cols):
        return []
    groups, names = _group_codes(cols, keys)
    count = len(names)
    firsts = {label: _first_named(cols, label, groups, count) for label in labels}
    actions = _counts_by(groups, count, cols, "action")
    action_names = [*ACTIONS, *(a for a in EXTRA_ACTIONS if a in actions)]
    zeros = np.zeros(count, dtype=np.int64)
    columns = {a: actions.get(a, zeros) for a in action_names}
    writing = cols.reads("action", ("update", "create"))
    lowers = bool_column(cols.rows, "decrease").to_numpy(dtype=bool) & writing  # writes that lower a grade
    if with_status:
        statuses = _counts_by(groups, count, cols, "status")
        status_names = [*STATUSES, *(s for s in EXTRA_STATUSES if s in statuses)]
        columns.update({s: statuses.get(s, zeros) for s in status_names})
    lists = {k: v.tolist() for k, v in columns.items()}
    sizes = np.bincount(groups, minlength=count).tolist()
    decreases = np.bincount(groups[lowers], minlength=count).tolist()
    result: list[dict[str, Any]] = []
    for g in range(count):
        item: dict[str, Any] = {_PUBLIC_KEY.get(k, k): v for k, v in zip(keys, names[g], strict=True)}
        for label, public in labels.items():
            item[public] = firsts[label][g]
        item["rows"] = sizes[g]
        for a in action_names:
            item[a] = lists[a][g]
        item["decrease"] = decreases[g]
        if with_status:
            for st in status_names:
                item[st] = lists[st][g]
        result.append(item)
    return result


_PUBLIC_KEY = {"class_key": "class", "assignment_key": "assignment"}


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run did, in numbers. ``asdict()`` is summary.json; ``str()`` is a few readable lines.

    ``counts`` is per action (update/create/noop/reject, every key present); ``status_counts`` is per
    status for a reconciliation (unchanged/updated/created/conflict/failed/rejected) and empty for a
    plan. ``per_reason`` counts every row that carries a reason code (rejects and the noop reasons such
    as ``blank_points``). ``per_class`` / ``per_assignment`` are lists of dicts keyed by the input's
    class (and assignment) key, with the resolved id and name when known.

    ``verdict`` is the run's outcome (``outcome.judge``: the exit code, the rows needing attention,
    the rows carried over, why the guards refuse); every front end and file renders it from here.
    """

    kind: str
    created_at: str
    graph_base_url: str
    rows: int
    counts: dict[str, int]
    status_counts: dict[str, int]
    decreases: int
    clears: int
    per_reason: dict[str, int]
    per_class: list[dict[str, Any]]
    per_assignment: list[dict[str, Any]]
    inputs: list[dict[str, Any]] = field(default_factory=list)
    graph_requests: dict[str, Any] = field(default_factory=dict)
    elapsed_seconds: float | None = None
    retries: int = 0
    throttled: int = 0
    strict_refused: bool = False
    dry_run: bool = False
    version: str = __version__
    # three-way sync: rows a teacher changed in Teams since gradesync wrote them (reason teacher_override),
    # and those kept for review ([policy] teacher_override = "report": they need attention, exit 1)
    teacher_overrides: int = 0
    overrides_for_review: int = 0
    returned: int = 0  # submissions published by --return in this run
    # the read stage's warnings, the guards' reasons (why apply would be refused; [] = it would go
    # on; None = not evaluated) and the plan digest, when the caller has them
    warnings: list[str] = field(default_factory=list)
    guard_verdict: list[str] | None = None
    digest: str = ""
    verdict: Verdict = field(default_factory=judge)

    @classmethod
    def from_rows(
        cls,
        rows: pd.DataFrame,
        *,
        kind: Kind = "plan",
        inputs: Iterable[InputFile | Mapping[str, Any]] = (),
        graph_base_url: str = "",
        created_at: str = "",
        graph_stats: Mapping[str, Any] | None = None,
        elapsed_seconds: float | None = None,
        retries: int = 0,
        throttled: int = 0,
        strict_refused: bool = False,
        dry_run: bool = False,
        warnings: Iterable[str] = (),
        guard_verdict: Iterable[str] | None = None,
        digest: str = "",
        error: GradesyncError | None = None,
        return_failed: int = 0,
        return_carried: int = 0,
    ) -> RunSummary:
        """Count ``rows`` (PLAN_COLUMNS, plus ``status``/``after_points`` for a reconciliation) and
        judge the run (``error``: what stopped it; ``return_failed``: returns that failed;
        ``return_carried``: returns the deadline left for the next run)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        reconciliation = kind == "reconciliation"
        cols = CodedColumns(rows)  # each column's distinct texts found once, then counted by code
        counts = {a: cols.count("action", a) for a in ACTIONS}
        counts.update({a: n for a in EXTRA_ACTIONS if (n := cols.count("action", a))})
        tally = Tally.of(rows if reconciliation else rows.drop(columns="status", errors="ignore"))
        verdict = judge(
            tally,
            error=error,
            refused=guard_verdict or (),
            strict_refused=strict_refused,
            return_failed=return_failed,
            return_carried=return_carried,
        )
        writes = cols.reads("action", ("update", "create"))
        codes, texts = cols.text("reason")
        reason = pd.Series(
            np.array(texts, dtype=object)[codes], dtype=object
        )  # = text_column(rows, "reason")
        per_reason = {str(k): int(v) for k, v in reason[reason != ""].value_counts().items()}
        override = cols.reads("reason", ("teacher_override",))
        for_review = override & cols.reads("override_policy", ("report",))
        return cls(
            kind=kind,
            created_at=created_at,
            graph_base_url=graph_base_url,
            rows=len(rows),
            counts=counts,
            status_counts=dict(tally.statuses),
            decreases=int((bool_column(rows, "decrease") & writes).sum()),
            clears=int((bool_column(rows, "clear") & writes).sum()),
            per_reason=per_reason,
            per_class=_count_table(
                cols, ["class_key"], {"class_id": "class_id", "class_name": "class_name"}, reconciliation
            ),
            per_assignment=_count_table(
                cols,
                ["class_key", "assignment_key"],
                {
                    "class_id": "class_id",
                    "class_name": "class_name",
                    "assignment_id": "assignment_id",
                    "assignment_name": "assignment_name",
                },
                reconciliation,
            ),
            inputs=[_input_dict(i) for i in inputs],
            graph_requests=_scrub(dict(graph_stats or {})),
            elapsed_seconds=None if elapsed_seconds is None else round(float(elapsed_seconds), 3),
            retries=int(retries),
            throttled=int(throttled),
            strict_refused=bool(strict_refused),
            dry_run=bool(dry_run),
            teacher_overrides=int(override.sum()),
            overrides_for_review=int(for_review.sum()),
            returned=int(bool_column(rows, "returned").sum()),
            warnings=[str(w) for w in warnings],
            guard_verdict=None if guard_verdict is None else [str(v) for v in guard_verdict],
            digest=str(digest or ""),
            verdict=verdict,
        )

    # -- derived -----------------------------------------------------------------------------------
    @property
    def changes(self) -> int:
        """Rows that write a grade (plan) — update + create."""
        return self.counts.get("update", 0) + self.counts.get("create", 0)

    @property
    def attention(self) -> int:
        """Rows that need a person (the verdict's count: ``outcome`` says which)."""
        return self.verdict.attention

    @property
    def has_problems(self) -> bool:
        return self.verdict.needs_attention

    @property
    def exit_code(self) -> int:
        return int(self.verdict.exit_code)

    @property
    def graph_request_total(self) -> int | None:
        """Graph requests used: the stats' own total (``graph_requests``, ``total`` or
        ``http_requests``), else the sum of its per-kind counters; None when no stats were given."""
        stats = self.graph_requests
        for key in ("graph_requests", "total", "http_requests"):
            value = stats.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        source = stats["by_kind"] if isinstance(stats.get("by_kind"), Mapping) else stats
        numbers = [
            v
            for k, v in source.items()
            if isinstance(v, int) and not isinstance(v, bool) and k not in _NOT_REQUEST_COUNTERS
        ]
        return sum(numbers) if numbers else None

    def asdict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "created_at": self.created_at,
            "graph_base_url": self.graph_base_url,
            "gradesync_version": self.version,
            "dry_run": self.dry_run,
            "strict_refused": self.strict_refused,
            "exit_code": self.exit_code,
            "has_problems": self.has_problems,
            "attention": self.attention,
            "carried_over": self.verdict.carried_over,
            "rows": self.rows,
            "counts": dict(self.counts),
            "status_counts": dict(self.status_counts),
            "decreases": self.decreases,
            "clears": self.clears,
            "per_reason": dict(self.per_reason),
            "per_class": [dict(x) for x in self.per_class],
            "per_assignment": [dict(x) for x in self.per_assignment],
            "inputs": [dict(x) for x in self.inputs],
            "graph_requests": dict(self.graph_requests),
            "retries": self.retries,
            "throttled": self.throttled,
            "elapsed_seconds": self.elapsed_seconds,
            "teacher_overrides": self.teacher_overrides,
            "overrides_for_review": self.overrides_for_review,
            "returned": self.returned,
            "warnings": list(self.warnings),
            "guard_verdict": None if self.guard_verdict is None else list(self.guard_verdict),
            "digest": self.digest,
            "apply_refused": bool(self.guard_verdict),
            "verdict": self.verdict.asdict(),
        }

    def headline(self) -> str:
        c = self.counts
        parts = [f"{c.get(a, 0)} {a}" for a in ACTIONS] + [f"{c[a]} {a}" for a in EXTRA_ACTIONS if c.get(a)]
        text = f"{self.rows} rows: " + ", ".join(parts)
        if self.decreases:
            text += f" ({self.decreases} lower a grade)"
        return text

    def __str__(self) -> str:
        title = "Plan (dry run)" if self.kind == "plan" else "Reconciliation"
        if self.kind == "reconciliation" and self.dry_run:
            title += " (dry run)"
        lines = [f"{title} at {self.created_at or '?'} against {self.graph_base_url or '?'}"]
        lines.append("  " + self.headline())
        if self.status_counts:
            shown = [f"{n} {s}" for s, n in self.status_counts.items() if n]
            lines.append("  outcome: " + (", ".join(shown) if shown else "nothing"))
        if self.per_reason:
            lines.append("  reasons: " + ", ".join(f"{r} {n}" for r, n in self.per_reason.items()))
        if self.teacher_overrides:
            lines.append(
                f"  teacher overrides: {self.teacher_overrides} grade(s) changed in Teams since gradesync "
                f"wrote them ({self.overrides_for_review} kept for review)"
            )
        if self.returned:
            lines.append(f"  returned to students: {self.returned}")
        if self.inputs:
            names = ", ".join(
                f"{i.get('path', '?')} ({i['rows']} rows)" if "rows" in i else str(i.get("path", "?"))
                for i in self.inputs
            )
            lines.append(f"  inputs: {names}")
        extra = []
        total = self.graph_request_total
        if total is not None:
            extra.append(f"{total} Graph requests")
        if self.retries:
            extra.append(f"{self.retries} retries")
        if self.throttled:
            extra.append(f"{self.throttled} throttled")
        if self.elapsed_seconds is not None:
            extra.append(f"{self.elapsed_seconds:.1f} s")
        if extra:
            lines.append("  " + ", ".join(extra))
        if self.digest:
            lines.append(f"  plan digest: {self.digest}")
        said = [s for s in self.verdict.sentences if not s.startswith("stopped:")]  # errors print apart
        lines += [f"  {sentence}" for sentence in said]
        return "\n".join(lines)


def render_table(summary: RunSummary, console: Any) -> None:
    """Print the summary as rich tables: counts per action (and status), then per reason."""
    from rich.table import Table
    from rich.text import Text

    title = "plan" if summary.kind == "plan" else "reconciliation"
    table = Table(title=Text(f"gradesync {title}: {summary.rows} rows"), show_header=True)
    table.add_column("action")
    table.add_column("rows", justify="right")
    for a in ACTIONS:
        table.add_row(Text(a), Text(str(summary.counts.get(a, 0))))
    if summary.decreases:
        table.add_row(Text("  of which lower a grade"), Text(str(summary.decreases)))
    console.print(table)
    if summary.status_counts:
        status_table = Table(show_header=True)
        status_table.add_column("status")
        status_table.add_column("rows", justify="right")
        for s, n in summary.status_counts.items():
            status_table.add_row(Text(s), Text(str(n)))
        console.print(status_table)
    if summary.per_reason:
        reasons = Table(show_header=True)
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        for r, n in summary.per_reason.items():
            reasons.add_row(Text(r), Text(str(n)))
        console.print(reasons)
    extra = []
    total = summary.graph_request_total
    if total is not None:
        extra.append(f"Graph requests: {total}")
    if summary.retries:
        extra.append(f"retries: {summary.retries}")
    if summary.throttled:
        extra.append(f"throttled: {summary.throttled}")
    if summary.elapsed_seconds is not None:
        extra.append(f"elapsed: {summary.elapsed_seconds:.1f} s")
    if extra:
        console.print(Text(", ".join(extra)))
