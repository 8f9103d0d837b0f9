"""Row validation of the desired frame: pure, vectorised, one reason code and one message per row.

Work is done once per *distinct* value (points text, identifier) and mapped back to rows with
``numpy.take``; per-row Python runs only for rows that have a problem or a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np
import pandas as pd

from gradesync.config import PolicySettings
from gradesync.models import DESIRED_COLUMNS, ReasonCode

MAX_POINTS_EXCLUSIVE = 9_999_999.0
MAX_POINTS_TEXT = 64  # longer points text is not parsed at all

# Points kinds, per distinct points text.
_OK, _BLANK, _CLEAR, _NAN, _COMMA, _INF, _LARGE, _NEG, _LONG, _EXCUSE = range(10)
_PROBLEM = {
    _NAN: "is not a number",
    _COMMA: "is not a number (decimal comma? write it with a point, e.g. 1.5)",
    _INF: "is not a number (infinite)",
    _LARGE: "is too large (points must be below 9,999,999)",
    _NEG: "is negative (points cannot be below 0)",
    _LONG: "is not a number (too long)",
}
_DEFAULT_KEY_COLUMNS = {"class": "class", "assignment": "assignment", "student": "student"}
#: Reasons the layout stage gives (validate cannot see them in the cells); they win over all others.
_LAYOUT_REASONS = frozenset({ReasonCode.EXTRA_CELLS.value})


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


def _key_codes(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stripped text; codes equal for values equal ignoring case; a blank mask."""
    codes, uniques = _stripped_codes(arr)
    folded, _ = pd.factorize(np.array([u.casefold() for u in uniques], dtype=object))
    blank = np.array([u == "" for u in uniques], dtype=bool)
    return uniques.take(codes), folded.take(codes), blank.take(codes)


def _classify_points(uniques: np.ndarray, policy: PolicySettings) -> tuple[np.ndarray, ...]:
    """Per distinct stripped points text: kind, value (rounded), value key, rounding note."""
    k = len(uniques)
    kind = np.full(k, _OK, dtype=np.int8)
    lengths = np.fromiter((len(u) for u in uniques), dtype=np.int64, count=k)
    kind[lengths == 0] = _BLANK
    kind[lengths > MAX_POINTS_TEXT] = _LONG
    token = policy.clear_token.strip().casefold()
    if token:
        folded = np.array([u.casefold() if len(u) == len(token) else "" for u in uniques], dtype=object)
        kind[(folded == token) & (kind == _OK)] = _CLEAR
    marks = {m.strip().casefold() for m in policy.excused_marks if m.strip()}
    if marks:  # an excused mark ([policy] excused_marks): excuse the submission (the clear token wins)
        excused = np.array([u.casefold() in marks for u in uniques], dtype=bool)
        kind[excused & (kind == _OK)] = _EXCUSE
    candidates = kind == _OK
    values = np.full(k, np.nan)
    values[candidates] = pd.to_numeric(
        pd.Series(uniques[candidates], dtype=object), errors="coerce"
    ).to_numpy(dtype=float)
    nan = candidates & np.isnan(values)
    kind[nan] = _NAN
    comma = np.array([("," in u) for u in uniques], dtype=bool)
    kind[nan & comma] = _COMMA
    finite = candidates & ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        inf_text = np.array([("inf" in u.casefold()) for u in uniques], dtype=bool)
        kind[finite & np.isinf(values)] = _LARGE
        kind[finite & np.isinf(values) & inf_text] = _INF
        kind[finite & (values >= MAX_POINTS_EXCLUSIVE) & ~np.isinf(values)] = _LARGE
        kind[finite & (values < 0) & ~np.isinf(values)] = _NEG
    ok = kind == _OK
    values[~ok] = np.nan
    values[ok] += 0.0  # -0 → 0

    # Rounding: exact half-up on the decimal text, only where the float check says it changes.
    p = policy.precision
    notes = np.full(k, "", dtype=object)
    with np.errstate(invalid="ignore"):
        maybe = ok & (np.round(values, p) != values)
    quantum = Decimal(1).scaleb(-p)
    for i in np.flatnonzero(maybe):
        try:
            rounded = float(Decimal(uniques[i]).quantize(quantum, rounding=ROUND_HALF_UP))
        except InvalidOperation:  # pragma: no cover - to_numeric accepted it, Decimal should too
            rounded = round(float(values[i]), p)
        if rounded != values[i]:
            notes[i] = f"rounded {uniques[i]} → {format_points(rounded, p)}"
            values[i] = rounded
    if (values[ok] >= MAX_POINTS_EXCLUSIVE).any():  # 9999998.999 rounds up to the limit
        over = ok & (values >= MAX_POINTS_EXCLUSIVE)
        kind[over], values[over], notes[over] = _LARGE, np.nan, ""
    # What two rows must share to be identical copies: the rounded value, "clear", or the bad text.
    value_key = np.array(
        [
            f"={v!r}" if kd == _OK else "clear" if kd == _CLEAR else "excuse" if kd == _EXCUSE else f"!{u}"
            for u, kd, v in zip(uniques, kind, values, strict=True)
        ],
        dtype=object,
    )
    return kind, values, value_key, notes


def _ref(files: np.ndarray, rows: np.ndarray, columns: np.ndarray, i: int, here: int) -> str:
    text = f"{files[i]} row {rows[i]}"
    if columns[i] != columns[here]:
        text += f' column "{columns[i]}"'
    return text


def _value_text(raw: np.ndarray, i: int) -> str:
    text = str(raw[i]).strip()
    return f'"{text[:40]}…"' if len(text) > 40 else f'"{text}"'


def validate(
    frame: pd.DataFrame,
    policy: PolicySettings,
    *,
    key_columns: Mapping[str, Mapping[str, str]] | None = None,
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
    """
    n = len(frame)
    files = _text(frame["source_file"])
    rows = np.asarray(frame["source_row"], dtype=np.int64)
    columns = _text(frame["source_column"])
    raw = _text(frame["points_raw"])

    reason = np.full(n, "", dtype=object)
    message = np.full(n, "", dtype=object)
    note = np.full(n, "", dtype=object)
    incoming = _text(frame["reason"])
    layout_rejected = np.isin(incoming, list(_LAYOUT_REASONS)) if n else np.zeros(0, dtype=bool)

    # Points, per distinct text.
    pcodes, puniques = _stripped_codes(raw)
    kind_u, value_u, vkey_u, note_u = _classify_points(puniques, policy)
    kind = kind_u.take(pcodes) if n else np.zeros(0, dtype=np.int8)
    desired = value_u.take(pcodes) if n else np.zeros(0)
    clear = kind == _CLEAR
    excuse = kind == _EXCUSE
    note_rows = np.flatnonzero(note_u.take(pcodes) != "") if n else np.zeros(0, dtype=np.int64)
    note[note_rows] = note_u.take(pcodes[note_rows])

    # Identifiers: case-insensitive codes for duplicates, and which are blank.
    stripped: dict[str, np.ndarray] = {}
    key_codes: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    for role in ("class", "assignment", "student"):
        stripped[role], key_codes[role], missing[role] = _key_codes(_text(frame[f"{role}_key"]))
    any_missing = missing["class"] | missing["assignment"] | missing["student"]
    blank = kind == _BLANK
    invalid = ~blank & ~clear & ~excuse & (kind != _OK)

    # Duplicates among rows with complete keys and a non-blank points cell.
    part = np.flatnonzero(~any_missing & ~blank & ~layout_rejected)
    if len(part) > 1:
        vcodes, _ = pd.factorize(vkey_u)
        c, a, s = (key_codes[r][part].astype(np.int64) for r in ("class", "assignment", "student"))
        na, ns = int(a.max()) + 1, int(s.max()) + 1
        if (int(c.max()) + 1) * na * ns < 2**62:
            combined = pd.Series((c * na + a) * ns + s)  # one int64 key: hashing is cheap
        else:  # pragma: no cover - more than 2**62 distinct key combinations
            combined = pd.Series(pd.MultiIndex.from_arrays([c, a, s]).factorize()[0])
        dup = combined.duplicated(keep=False).to_numpy()
        if dup.any():
            dup_rows = part[dup]
            groups = combined[dup].groupby(combined[dup], sort=False).indices
            row_vcode = vcodes.take(pcodes[dup_rows])
            for members in groups.values():
                idx = dup_rows[members]  # frame positions, in reading order
                vals = row_vcode[members]
                if (vals == vals[0]).all():
                    keep = idx[0]
                    if invalid[keep]:
                        continue
                    for i in idx[1:]:
                        reason[i] = ReasonCode.DUPLICATE_IDENTICAL.value
                        message[i] = (
                            "same class, assignment, student and points as "
                            f"{_ref(files, rows, columns, keep, i)}, which is used; this row is ignored"
                        )
                    others = [_ref(files, rows, columns, i, keep) for i in idx[1:6]]
                    more = f" and {len(idx) - 6} more" if len(idx) > 6 else ""
                    note[keep] = "; ".join(
                        x for x in (note[keep], f"identical copy ignored: {', '.join(others)}{more}") if x
                    )
                else:
                    for i in idx:
                        others = [
                            f"{_ref(files, rows, columns, j, i)} says {_value_text(raw, j)}"
                            for j in idx
                            if j != i
                        ]
                        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
                        reason[i] = ReasonCode.DUPLICATE_CONFLICT.value
                        message[i] = (
                            f"conflicting grades for the same class, assignment and student: this row says "
                            f"{_value_text(raw, i)}, {', '.join(others[:5])}{more}; fix the input so only "
                            "one row remains"
                        )

    # Invalid points (overrides duplicates), with the column and the value.
    bad = np.flatnonzero(invalid)
    for i in bad:
        reason[i] = ReasonCode.INVALID_POINTS.value
        message[i] = f'points {_value_text(raw, i)} in column "{columns[i]}" {_PROBLEM[int(kind[i])]}'
        note[i] = ""

    # Missing identifiers (overrides the above).
    labels = key_columns or {}
    for i in np.flatnonzero(any_missing & ~blank):
        headers = labels.get(files[i], _DEFAULT_KEY_COLUMNS)
        roles = [r for r in ("class", "assignment", "student") if missing[r][i]]
        cols = ", ".join(f'"{headers.get(r, r)}"' for r in roles)
        verb = "is" if len(roles) == 1 else "are"
        plural = "column" if len(roles) == 1 else "columns"
        reason[i] = ReasonCode.MISSING_IDENTIFIER.value
        message[i] = f"no {' and '.join(roles)}: {plural} {cols} {verb} blank"
        note[i] = ""

    # Blank points: no change (overrides everything: nothing would happen anyway).
    blank_rows = np.flatnonzero(blank)
    reason[blank_rows] = ReasonCode.BLANK_POINTS.value
    message[blank_rows] = np.array(
        [f'no points in column "{columns[i]}": blank means no change' for i in blank_rows], dtype=object
    )
    note[blank_rows] = ""

    clear_ok = np.array([i for i in np.flatnonzero(clear) if not reason[i]], dtype=np.int64)
    note[clear_ok] = np.array(
        ["; ".join(x for x in (note[i], f"{policy.clear_token} clears the grade") if x) for i in clear_ok],
        dtype=object,
    )

    excuse_ok = np.array([i for i in np.flatnonzero(excuse) if not reason[i]], dtype=np.int64)
    note[excuse_ok] = np.array(
        [
            "; ".join(x for x in (note[i], f"{str(raw[i]).strip()} excuses the submission") if x)
            for i in excuse_ok
        ],
        dtype=object,
    )

    # Layout rejects (a shifted text row): nothing in the row can be trusted.
    if layout_rejected.any():
        lr = np.flatnonzero(layout_rejected)
        reason[lr] = incoming[lr]
        message[lr] = _text(frame["message"])[lr]
        note[lr] = ""
        desired[lr] = np.nan
        clear[lr] = False
        excuse[lr] = False

    computed = {
        "class_key": stripped["class"],
        "assignment_key": stripped["assignment"],
        "student_key": stripped["student"],
        "desired_points": desired,
        "clear": clear,
        "excuse": excuse,
        "reason": reason,
        "message": message,
        "note": note,
    }
    columns_out = {
        name: pd.Series(computed[name], index=frame.index, dtype=dtype, copy=False)
        if name in computed
        else frame[name]
        for name, dtype in DESIRED_COLUMNS.items()
    }
    return pd.DataFrame(columns_out, copy=False)  # copy=False: shares the untouched columns
