"""Row validation of the desired frame: pure, vectorised, one reason code and one message per row.

Work is done once per *distinct* value (points text, identifier) and mapped back to rows with
``numpy.take``; per-row Python runs only for rows that have a problem or a note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from gradesync.config import PolicySettings
from gradesync.models import DESIRED_COLUMNS, ReasonCode, ValueUnit
from gradesync.read.mapping import ValueRules

MAX_POINTS_EXCLUSIVE = 9_999_999.0
MAX_POINTS_TEXT = 64  # longer points text is not parsed at all

# Points kinds, per distinct points text.
_OK, _BLANK, _CLEAR, _NAN, _COMMA, _INF, _LARGE, _NEG, _LONG, _EXCUSE, _LETTER, _DATE, _PCT_OFF, _ZERO_DEN = (
    range(14)
)
_PROBLEM = {
    _NAN: "is not a number",
    _COMMA: "is not a number (decimal comma? write it with a point, e.g. 1.5)",
    _INF: "is not a number (infinite)",
    _LARGE: "is too large (points must be below 9,999,999)",
    _NEG: "is negative (points cannot be below 0)",
    _LONG: "is not a number (too long)",
    _PCT_OFF: 'is a percent, and the mapping\'s value rule says percent = "reject"',
    _ZERO_DEN: "is a fraction over 0",
}
#: Kinds with a reason code of their own (not ``invalid_points``).
_OWN_REASON = {_LETTER: ReasonCode.LETTER_GRADE, _DATE: ReasonCode.DATE_NOT_POINTS}
_DEFAULT_KEY_COLUMNS = {"class": "class", "assignment": "assignment", "student": "student"}
#: Reasons the layout stage gives (validate cannot see them in the cells); they win over all others.
_LAYOUT_REASONS = frozenset(
    {ReasonCode.EXTRA_CELLS.value, ReasonCode.IGNORED_ROW.value, ReasonCode.POINTS_POSSIBLE_MISMATCH.value}
)
#: Columns a frame built by hand may lack (a single identifier, no declared maximum rule, no twin).
_TEXT_DEFAULTS = ("maximum_rule", "percent_twin", "student_ids")

_PERCENT = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*%$")
_FRACTION = re.compile(r"^(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)$")
_LETTER_RE = re.compile(r"^[A-Fa-f][+-]?$")
#: What Excel (or a person) leaves where a number was expected: ISO dates from a date cell, and
#: the usual typed forms (9/10/2026, 10-Sep, Sep-10, 10.09.2026).
_DATES = re.compile(
    r"^(\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?"
    r"|\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}"
    r"|\d{1,2}[\- ](jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*([\- ]\d{2,4})?"
    r"|(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*[\- ]\d{1,2}([\- ,]+\d{2,4})?)$",
    re.IGNORECASE,
)


def format_points(value: float, precision: int = 6) -> str:
    """85.0 → "85", 85.5 → "85.5": the shortest text for a value at ``precision`` decimals."""
    text = f"{value:.{precision}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _text(values: pd.Series) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _stripped_codes(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes into the stripped distinct values; a missing value (None/NaN, code -1) reads as ""."""
    codes, uniques = pd.factorize(arr)
    return codes, np.array([str(u).strip() for u in uniques] + [""], dtype=object)


def _key_codes(arr: np.ndarray) -> tuple[pd.Categorical, np.ndarray, np.ndarray]:
    """Stripped text, as a categorical (coded here once: the plan reuses the codes instead of hashing
    every row's text again); codes equal for values equal ignoring case; a blank mask."""
    codes, uniques = _stripped_codes(arr)
    folded, _ = pd.factorize(np.array([u.casefold() for u in uniques], dtype=object))
    blank = np.array([u == "" for u in uniques], dtype=bool)
    text_codes, distinct = pd.factorize(uniques)  # stripping can make two raw values one
    key = pd.Categorical.from_codes(
        text_codes.take(codes), categories=pd.Index(np.asarray(distinct, dtype=object), dtype=object)
    )
    return key, folded.take(codes), blank.take(codes)


def _token_kinds(uniques: np.ndarray, policy: PolicySettings, rules: ValueRules) -> np.ndarray:
    """Rule: empty is blank, too long is not parsed; blank marks, the clear token, excused marks."""
    k = len(uniques)
    kind = np.full(k, _OK, dtype=np.int8)
    lengths = np.fromiter((len(u) for u in uniques), dtype=np.int64, count=k)
    kind[lengths == 0] = _BLANK
    kind[lengths > MAX_POINTS_TEXT] = _LONG
    blanks = {m.strip().casefold() for m in rules.blank_marks if m.strip()}
    if blanks:
        kind[np.array([u.casefold() in blanks for u in uniques], dtype=bool) & (kind == _OK)] = _BLANK
    token = policy.clear_token.strip().casefold()
    if token:
        folded = np.array([u.casefold() if len(u) == len(token) else "" for u in uniques], dtype=object)
        kind[(folded == token) & (kind == _OK)] = _CLEAR
    marks = {m.strip().casefold() for m in [*policy.excused_marks, *rules.excused_marks] if m.strip()}
    if marks:  # an excused mark ([policy] excused_marks): excuse the submission (the clear token wins)
        excused = np.array([u.casefold() in marks for u in uniques], dtype=bool)
        kind[excused & (kind == _OK)] = _EXCUSE
    return kind


def _parse_values(
    uniques: np.ndarray, kind: np.ndarray, rules: ValueRules
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rule: a number is points; other text may be a percent, fraction, mapped letter, letter or date."""
    k = len(uniques)
    unit = np.full(k, ValueUnit.POINTS.value, dtype=object)
    denominator = np.full(k, np.nan)
    notes = np.full(k, "", dtype=object)
    candidates = kind == _OK
    values = np.full(k, np.nan)
    values[candidates] = pd.to_numeric(
        pd.Series(uniques[candidates], dtype=object), errors="coerce"
    ).to_numpy(dtype=float)
    nan = candidates & np.isnan(values)
    kind[nan] = _NAN
    comma = np.array([("," in u) for u in uniques], dtype=bool)
    kind[nan & comma] = _COMMA
    letters = {str(key).strip().casefold(): value for key, value in rules.letters.items()}
    for i in np.flatnonzero(nan):  # per distinct text that is not a plain number
        kind[i], values[i], unit[i], denominator[i], notes[i] = _classify_text(uniques[i], rules, letters)
    return candidates, values, unit, denominator, notes


def _check_range(uniques: np.ndarray, kind: np.ndarray, values: np.ndarray, candidates: np.ndarray) -> None:
    """Rule: points are finite, below 9,999,999 and not negative."""
    finite = candidates & ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        inf_text = np.array([("inf" in u.casefold()) for u in uniques], dtype=bool)
        kind[finite & np.isinf(values)] = _LARGE
        kind[finite & np.isinf(values) & inf_text] = _INF
        kind[finite & (values >= MAX_POINTS_EXCLUSIVE) & ~np.isinf(values)] = _LARGE
        kind[finite & (values < 0) & ~np.isinf(values)] = _NEG


def _round_points(
    uniques: np.ndarray,
    kind: np.ndarray,
    values: np.ndarray,
    unit: np.ndarray,
    notes: np.ndarray,
    precision: int,
) -> None:
    """Rule: points (not a percent or fraction) round half-up on the decimal text, noted on the row."""
    ok = kind == _OK
    # Exact half-up on the decimal text, only where the float check says it changes.
    points = ok & (unit == ValueUnit.POINTS.value)
    plain = points & (notes == "")  # a letter mapped to points carries its own note and value
    with np.errstate(invalid="ignore"):
        maybe = plain & (np.round(values, precision) != values)
    quantum = Decimal(1).scaleb(-precision)
    for i in np.flatnonzero(maybe):
        try:
            rounded = float(Decimal(uniques[i]).quantize(quantum, rounding=ROUND_HALF_UP))
        except InvalidOperation:  # pragma: no cover - to_numeric accepted it, Decimal should too
            rounded = round(float(values[i]), precision)
        if rounded != values[i]:
            notes[i] = f"rounded {uniques[i]} → {format_points(rounded, precision)}"
            values[i] = rounded
    if (values[ok] >= MAX_POINTS_EXCLUSIVE).any():  # 9999998.999 rounds up to the limit
        over = ok & (values >= MAX_POINTS_EXCLUSIVE)
        kind[over], values[over], notes[over] = _LARGE, np.nan, ""


def _value_keys(
    uniques: np.ndarray, kind: np.ndarray, values: np.ndarray, unit: np.ndarray, denominator: np.ndarray
) -> np.ndarray:
    """Rule: identical copies share the rounded value and its unit, "clear", "excuse", or the bad text."""
    return np.array(
        [
            (f"={v!r}" if un == "points" else f"{un}={v!r}/{d!r}")
            if kd == _OK
            else "clear"
            if kd == _CLEAR
            else "excuse"
            if kd == _EXCUSE
            else f"!{u}"
            for u, kd, v, un, d in zip(uniques, kind, values, unit, denominator, strict=True)
        ],
        dtype=object,
    )


def _classify_points(
    uniques: np.ndarray, policy: PolicySettings, rules: ValueRules | None = None
) -> tuple[np.ndarray, ...]:
    """Per distinct stripped points text: kind, value (rounded), value key, note, unit, denominator.

    A number is points. With the value rules (``rules``, from the mapping or preset): a blank mark
    (``-``, ``*``) is a blank; ``95%`` is a percent (value 95, unit percent) unless percent =
    "reject"; ``17/20`` is a fraction (17, denominator 20); a letter is converted only by the
    mapping's letter table, else rejected (``letter_grade``); a date is ``date_not_points``.
    """
    rules = rules or ValueRules()
    kind = _token_kinds(uniques, policy, rules)
    candidates, values, unit, denominator, notes = _parse_values(uniques, kind, rules)
    _check_range(uniques, kind, values, candidates)
    ok = kind == _OK  # whatever is not OK carries no value, unit, denominator or note
    values[~ok] = np.nan
    denominator[~ok] = np.nan
    unit[~ok] = ValueUnit.POINTS.value
    notes[~ok] = ""
    values[ok] += 0.0  # -0 → 0
    _round_points(uniques, kind, values, unit, notes, policy.precision)
    value_key = _value_keys(uniques, kind, values, unit, denominator)
    return kind, values, value_key, notes, unit, denominator


def _classify_text(
    text: str, rules: ValueRules, letters: Mapping[str, str | float]
) -> tuple[int, float, str, float, str]:
    """One non-numeric points text → (kind, value, unit, denominator, note)."""
    nan = float("nan")
    if (m := _PERCENT.match(text)) is not None:
        if rules.percent == "reject":
            return _PCT_OFF, nan, "points", nan, ""
        return _OK, float(m.group(1)), ValueUnit.PERCENT.value, nan, ""
    if (m := _FRACTION.match(text)) is not None:
        den = float(m.group(2))
        if den == 0:
            return _ZERO_DEN, nan, "points", nan, ""
        return _OK, float(m.group(1)), ValueUnit.FRACTION.value, den, ""
    if text.casefold() in letters:
        target = letters[text.casefold()]
        shown = format_points(target) if isinstance(target, (int, float)) else str(target).strip()
        note = f'letter "{text}" → {shown} (the mapping\'s letter table)'
        if isinstance(target, (int, float)):
            return _OK, float(target), "points", nan, note
        if (m := _PERCENT.match(shown)) is not None:
            return _OK, float(m.group(1)), ValueUnit.PERCENT.value, nan, note
        try:
            return _OK, float(shown), "points", nan, note
        except ValueError:
            return _NAN, nan, "points", nan, ""
    if _LETTER_RE.match(text):
        return _LETTER, nan, "points", nan, ""
    if _DATES.match(text):
        return _DATE, nan, "points", nan, ""
    kind = _COMMA if "," in text else _NAN
    return kind, nan, "points", nan, ""


def _ref(files: np.ndarray, rows: np.ndarray, columns: np.ndarray, i: int, here: int) -> str:
    text = f"{files[i]} row {rows[i]}"
    if columns[i] != columns[here]:
        text += f' column "{columns[i]}"'
    return text


def _value_text(raw: np.ndarray, i: int) -> str:
    text = str(raw[i]).strip()
    return f'"{text[:40]}…"' if len(text) > 40 else f'"{text}"'


def _invalid_message(kind: int, value: str, column: str) -> str:
    if kind == _LETTER:
        return (
            f'letter grade {value} in column "{column}": Teams holds points, and gradesync never guesses '
            "what a letter is worth; give the points, or map letters in the mapping file "
            '([values.letters] "A-" = "90%")'
        )
    if kind == _DATE:
        return (
            f'{value} in column "{column}" is a date, not points: Excel turned this into a date (a typed '
            "9/10 becomes 10 September); type the points again, or format the column as Text first"
        )
    return f'points {value} in column "{column}" {_PROBLEM[kind]}'


def _excuse_note(raw: np.ndarray, i: int, flagged: bool, with_score: bool) -> str:
    text = str(raw[i]).strip()
    if not flagged:
        return f"{text} excuses the submission"
    if with_score:
        return f"marked exempt: excuses the submission (the score {text} is not written)"
    return "marked exempt: excuses the submission"


@dataclass(slots=True)
class _Rows:
    """The per-row inputs validate reads and the verdict columns it fills in place."""

    files: np.ndarray
    rows: np.ndarray
    columns: np.ndarray
    raw: np.ndarray
    reason: np.ndarray
    message: np.ndarray
    note: np.ndarray


@dataclass(slots=True)
class _Points:
    """Each row's points cell as classified (per distinct text), after the layout's exempt flag."""

    codes: np.ndarray
    vkey_u: np.ndarray
    kind: np.ndarray
    desired: np.ndarray
    unit: np.ndarray
    denominator: np.ndarray
    flagged: np.ndarray
    flagged_score: np.ndarray
    clear: np.ndarray
    excuse: np.ndarray


def _start_rows(frame: pd.DataFrame) -> _Rows:
    """Rule: every row starts with no reason, no message and no note."""
    n = len(frame)
    return _Rows(
        files=_text(frame["source_file"]),
        rows=np.asarray(frame["source_row"], dtype=np.int64),
        columns=_text(frame["source_column"]),
        raw=_text(frame["points_raw"]),
        reason=np.full(n, "", dtype=object),
        message=np.full(n, "", dtype=object),
        note=np.full(n, "", dtype=object),
    )


def _read_points(
    frame: pd.DataFrame,
    out: _Rows,
    layout_rejected: np.ndarray,
    policy: PolicySettings,
    rules: ValueRules | None,
) -> _Points:
    """Rule: points are classified once per distinct text; the layout's exempt flag excuses the row."""
    n = len(frame)
    pcodes, puniques = _stripped_codes(out.raw)
    kind_u, value_u, vkey_u, note_u, unit_u, den_u = _classify_points(puniques, policy, rules)
    kind = kind_u.take(pcodes) if n else np.zeros(0, dtype=np.int8)
    desired = value_u.take(pcodes) if n else np.zeros(0)
    unit = unit_u.take(pcodes) if n else np.zeros(0, dtype=object)
    denominator = den_u.take(pcodes) if n else np.zeros(0)
    # An exempt flag the layout found (an Exempt column, scoreStatus "exempt"): excuse, whatever
    # the points cell says (a score beside an exempt flag is not written; the note says so).
    flagged = np.asarray(frame["excuse"], dtype=bool) & ~layout_rejected if n else np.zeros(0, dtype=bool)
    flagged_score = flagged & (kind != _BLANK) & (kind != _EXCUSE)
    if flagged.any():
        kind = kind.copy()
        kind[flagged] = _EXCUSE
        desired = desired.copy()
        desired[flagged] = np.nan
    note_rows = np.flatnonzero(note_u.take(pcodes) != "") if n else np.zeros(0, dtype=np.int64)
    out.note[note_rows] = note_u.take(pcodes[note_rows])
    return _Points(
        codes=pcodes,
        vkey_u=vkey_u,
        kind=kind,
        desired=desired,
        unit=unit,
        denominator=denominator,
        flagged=flagged,
        flagged_score=flagged_score,
        clear=kind == _CLEAR,
        excuse=kind == _EXCUSE,
    )


def _duplicate_keys(part: np.ndarray, key_codes: dict[str, np.ndarray]) -> pd.Series:
    """Rule: a duplicate is the same (class, assignment, student) ignoring case: one int64 key each."""
    c, a, s = (key_codes[r][part].astype(np.int64) for r in ("class", "assignment", "student"))
    na, ns = int(a.max()) + 1, int(s.max()) + 1
    if (int(c.max()) + 1) * na * ns < 2**62:
        return pd.Series((c * na + a) * ns + s)  # one int64 key: hashing is cheap
    return pd.Series(pd.MultiIndex.from_arrays([c, a, s]).factorize()[0])  # pragma: no cover


def _mark_identical(out: _Rows, idx: np.ndarray) -> None:
    """Rule: identical copies keep the first row (noted) and mark the rest ``duplicate_identical``."""
    files, rows, columns = out.files, out.rows, out.columns
    keep = idx[0]
    for i in idx[1:]:
        out.reason[i] = ReasonCode.DUPLICATE_IDENTICAL.value
        out.message[i] = (
            "same class, assignment, student and points as "
            f"{_ref(files, rows, columns, keep, i)}, which is used; this row is ignored"
        )
    others = [_ref(files, rows, columns, i, keep) for i in idx[1:6]]
    more = f" and {len(idx) - 6} more" if len(idx) > 6 else ""
    out.note[keep] = "; ".join(
        x for x in (out.note[keep], f"identical copy ignored: {', '.join(others)}{more}") if x
    )


def _mark_conflict(out: _Rows, idx: np.ndarray) -> None:
    """Rule: copies with different values are every one ``duplicate_conflict``, naming the others."""
    files, rows, columns, raw = out.files, out.rows, out.columns, out.raw
    for i in idx:
        others = [f"{_ref(files, rows, columns, j, i)} says {_value_text(raw, j)}" for j in idx if j != i]
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        out.reason[i] = ReasonCode.DUPLICATE_CONFLICT.value
        out.message[i] = (
            f"conflicting grades for the same class, assignment and student: this row says "
            f"{_value_text(raw, i)}, {', '.join(others[:5])}{more}; fix the input so only "
            "one row remains"
        )


def _mark_duplicates(
    out: _Rows, points: _Points, part: np.ndarray, key_codes: dict[str, np.ndarray], invalid: np.ndarray
) -> None:
    """Rule: among complete, non-blank rows, same-key copies are identical (first kept) or in conflict."""
    if len(part) <= 1:
        return
    vcodes, _ = pd.factorize(points.vkey_u)
    combined = _duplicate_keys(part, key_codes)
    dup = combined.duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    dup_rows = part[dup]
    groups = combined[dup].groupby(combined[dup], sort=False).indices
    row_vcode = vcodes.take(points.codes[dup_rows])
    for members in groups.values():
        idx = dup_rows[members]  # frame positions, in reading order
        vals = row_vcode[members]
        if not (vals == vals[0]).all():
            _mark_conflict(out, idx)
        elif not invalid[idx[0]]:
            _mark_identical(out, idx)


def _mark_invalid(out: _Rows, kind: np.ndarray, invalid: np.ndarray) -> None:
    """Rule: invalid points (overriding duplicates) name the column and the value."""
    for i in np.flatnonzero(invalid):
        code = _OWN_REASON.get(int(kind[i]), ReasonCode.INVALID_POINTS)
        out.reason[i] = code.value
        out.message[i] = _invalid_message(int(kind[i]), _value_text(out.raw, int(i)), str(out.columns[i]))
        out.note[i] = ""


def _mark_missing(
    out: _Rows, missing: dict[str, np.ndarray], rows: np.ndarray, key_columns: Mapping[str, Mapping[str, str]]
) -> None:
    """Rule: a missing identifier (overriding the above) names the file's own blank headers."""
    for i in rows:
        headers = key_columns.get(out.files[i], _DEFAULT_KEY_COLUMNS)
        roles = [r for r in ("class", "assignment", "student") if missing[r][i]]
        cols = ", ".join(f'"{headers.get(r, r)}"' for r in roles)
        verb = "is" if len(roles) == 1 else "are"
        plural = "column" if len(roles) == 1 else "columns"
        out.reason[i] = ReasonCode.MISSING_IDENTIFIER.value
        out.message[i] = f"no {' and '.join(roles)}: {plural} {cols} {verb} blank"
        out.note[i] = ""


def _mark_blank(out: _Rows, blank: np.ndarray) -> None:
    """Rule: blank points mean no change, overriding everything (nothing would happen anyway)."""
    blank_rows = np.flatnonzero(blank)
    out.reason[blank_rows] = ReasonCode.BLANK_POINTS.value
    out.message[blank_rows] = np.array(
        [f'no points in column "{out.columns[i]}": blank means no change' for i in blank_rows], dtype=object
    )
    out.note[blank_rows] = ""


def _note_clears_and_excuses(out: _Rows, points: _Points, policy: PolicySettings) -> None:
    """Rule: a clear or excuse row with no reason says so in its note."""
    note, reason, raw = out.note, out.reason, out.raw
    clear_ok = np.array([i for i in np.flatnonzero(points.clear) if not reason[i]], dtype=np.int64)
    note[clear_ok] = np.array(
        ["; ".join(x for x in (note[i], f"{policy.clear_token} clears the grade") if x) for i in clear_ok],
        dtype=object,
    )
    flagged, flagged_score = points.flagged, points.flagged_score
    excuse_ok = np.array([i for i in np.flatnonzero(points.excuse) if not reason[i]], dtype=np.int64)
    note[excuse_ok] = np.array(
        [
            "; ".join(
                x for x in (note[i], _excuse_note(raw, i, bool(flagged[i]), bool(flagged_score[i]))) if x
            )
            for i in excuse_ok
        ],
        dtype=object,
    )


def _apply_layout_rejects(
    frame: pd.DataFrame, out: _Rows, points: _Points, incoming: np.ndarray, layout_rejected: np.ndarray
) -> None:
    """Rule: a layout reject (a shifted text row) wins over all: nothing in the row can be trusted."""
    if not layout_rejected.any():
        return
    lr = np.flatnonzero(layout_rejected)
    out.reason[lr] = incoming[lr]
    out.message[lr] = _text(frame["message"])[lr]
    out.note[lr] = ""
    points.desired[lr] = np.nan
    points.clear[lr] = False
    points.excuse[lr] = False


def _desired_frame(frame: pd.DataFrame, computed: dict[str, Any]) -> pd.DataFrame:
    """Rule: the output has DESIRED_COLUMNS' order and dtypes, sharing the columns validate left alone;
    the keys (``DESIRED_CODED``) are categoricals of their text."""
    for name in _TEXT_DEFAULTS:
        if name in computed:
            continue
        if name not in frame:
            computed[name] = pd.Categorical.from_codes(
                np.zeros(len(frame), dtype=np.int8), categories=pd.Index([""], dtype=object)
            )
        elif not isinstance(frame[name].dtype, pd.CategoricalDtype):
            values = _text(frame[name])
            values = np.where(pd.isna(values), "", values).astype(object)
            codes, uniques = pd.factorize(values)
            computed[name] = pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object))
    columns_out = {
        name: pd.Series(
            computed[name],
            index=frame.index,
            dtype=None if isinstance(computed[name], pd.Categorical) else dtype,
            copy=False,
        )
        if name in computed
        else frame[name]
        for name, dtype in DESIRED_COLUMNS.items()
    }
    return pd.DataFrame(columns_out, copy=False)  # copy=False: shares the untouched columns


def validate(
    frame: pd.DataFrame,
    policy: PolicySettings,
    *,
    key_columns: Mapping[str, Mapping[str, str]] | None = None,
    rules: ValueRules | None = None,
) -> pd.DataFrame:
    """Fill ``desired_points``, ``clear``, ``excuse``, ``reason``, ``message``, ``note``; returns a new frame.

    Identifiers come back stripped of surrounding whitespace (None/NaN → "").

    Precedence per row: blank points (``blank_points``, a noop) → missing identifier → invalid points
    → duplicates. Duplicates are keyed on (class, assignment, student) ignoring case, across all files,
    among rows with every identifier and a non-blank points cell: identical values (``85`` = ``85.0``)
    keep the first row and mark the others ``duplicate_identical``; different values mark every valid
    copy ``duplicate_conflict`` (a copy with invalid points keeps ``invalid_points``).

    ``key_columns`` maps ``source_file`` → {"class"|"assignment"|"student": header} so messages name
    the file's own headers; without it they say "class", "assignment", "student".

    The steps run in reverse precedence, each overriding the one before: duplicates, invalid points,
    missing identifiers, blank points, then the layout's own rejects.
    """
    out = _start_rows(frame)
    incoming = _text(frame["reason"])
    layout_rejected = np.isin(incoming, list(_LAYOUT_REASONS)) if len(frame) else np.zeros(0, dtype=bool)
    points = _read_points(frame, out, layout_rejected, policy, rules)

    # Identifiers: case-insensitive codes for duplicates, and which are blank.
    stripped: dict[str, pd.Categorical] = {}
    key_codes: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    for role in ("class", "assignment", "student"):
        stripped[role], key_codes[role], missing[role] = _key_codes(_text(frame[f"{role}_key"]))
    any_missing = missing["class"] | missing["assignment"] | missing["student"]
    kind = points.kind
    blank = kind == _BLANK
    invalid = ~blank & ~points.clear & ~points.excuse & (kind != _OK)

    part = np.flatnonzero(~any_missing & ~blank & ~layout_rejected)
    _mark_duplicates(out, points, part, key_codes, invalid)
    _mark_invalid(out, kind, invalid)
    _mark_missing(out, missing, np.flatnonzero(any_missing & ~blank), key_columns or {})
    _mark_blank(out, blank)
    _note_clears_and_excuses(out, points, policy)
    _apply_layout_rejects(frame, out, points, incoming, layout_rejected)

    rejected = (out.reason != "") | points.clear | points.excuse
    computed = {
        "class_key": stripped["class"],
        "assignment_key": stripped["assignment"],
        "student_key": stripped["student"],
        "desired_points": points.desired,
        "clear": points.clear,
        "excuse": points.excuse,
        "points_unit": np.where(rejected, ValueUnit.POINTS.value, points.unit).astype(object),
        "points_denominator": np.where(rejected, np.nan, points.denominator),
        "reason": out.reason,
        "message": out.message,
        "note": out.note,
    }
    return _desired_frame(frame, computed)
