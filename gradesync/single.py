"""Points as Graph stores them: a ``Single`` (a 32-bit float), so every comparison goes through one.

Graph documents ``educationAssignmentPointsGrade.points`` and ``educationAssignmentPointsGradeType
.maxPoints`` as ``Single``: 87.3 is kept as 87.30000305175781 and comes back so. A grade written as
87.3 and read back must count as 87.3 — not as a conflict, and not as a change to write again the
next night. Every place that compares points (the plan's diff and three-way memory, the executor's
decisions, the read-back, the reconciliation) compares them here:

* :func:`as_stored` — a value as Graph would keep it (float64 → float32 → float64; NaN stays NaN);
* :func:`same` — two values Graph would store identically (``None``/NaN only equals ``None``/NaN);
* :func:`key` — the value Graph would store, rounded to ``[policy] precision``: two grades are the
  same grade at that precision exactly when their keys are equal;
* :func:`decimal` — the shortest decimal that a stored value comes from (87.30000305175781 → 87.3):
  what a teacher typed, for a maximum that conversions multiply.

A Single holds 6 significant decimal digits for certain (C's ``FLT_DIG``); a grade below 100 then
keeps 4 decimals, which is why ``[policy] precision`` stops at :data:`MAX_PRECISION`. A larger grade
keeps fewer (1234.5678 is stored as 1234.5677490234375): :func:`lost` finds the values whose stored
form, at the precision, is not the value asked for, so the plan can say so on the row.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_PRECISION",
    "SINGLE_DIGITS",
    "as_stored",
    "decimal",
    "equal",
    "key",
    "lost",
    "same",
    "stored",
]

SINGLE_DIGITS = 6  # significant decimal digits a 32-bit float keeps for certain (FLT_DIG)
MAX_PRECISION = 4  # decimals kept for grades below 100: 2 integer digits + 4 decimals = SINGLE_DIGITS


def stored(value: float | None) -> float | None:
    """One value as Graph keeps it (``None`` stays ``None``)."""
    if value is None or math.isnan(value):
        return value
    return float(np.float32(value))


def as_stored(values: npt.ArrayLike) -> np.ndarray:
    """Values as Graph keeps them, as float64 (NaN stays NaN)."""
    with np.errstate(over="ignore"):  # beyond Single's range: inf, which no grade reaches
        return np.asarray(values, dtype="float64").astype("float32").astype("float64")


def same(a: float | None, b: float | None) -> bool:
    """Whether Graph would hold ``a`` and ``b`` as the same value (both missing counts as the same)."""
    a_missing = a is None or math.isnan(a)
    b_missing = b is None or math.isnan(b)
    if a_missing or b_missing:
        return a_missing and b_missing
    return bool(np.float32(a) == np.float32(b))


def equal(a: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """:func:`same`, element by element (NaN equals NaN)."""
    sa, sb = as_stored(a), as_stored(b)
    return (sa == sb) | (np.isnan(sa) & np.isnan(sb))


def key(values: npt.ArrayLike, precision: int) -> np.ndarray:
    """The value Graph would store, rounded to ``precision`` decimals: the comparison key of grades."""
    return np.round(as_stored(values), precision)


def lost(values: npt.ArrayLike, precision: int) -> np.ndarray:
    """Which values (already rounded to ``precision``) Graph cannot keep at that precision."""
    arr = np.asarray(values, dtype="float64")
    return ~np.isnan(arr) & (key(arr, precision) != np.round(arr, precision))


def decimal(values: npt.ArrayLike) -> np.ndarray:
    """The shortest decimal each stored value rounds from (87.30000305175781 → 87.3), as float64.
    Converted once per distinct value (maxima repeat: 10, 20, 50, 100 …)."""
    single = as_stored(values).astype("float32")
    uniq, at = np.unique(single, return_inverse=True)
    return uniq.astype(str).astype("float64")[at.reshape(-1)]
