"""Small vectorised helpers of the plan core, and ``Verdicts``: each row's reason as the rules decide it.

Everything here works on whole numpy columns (one entry per input row); no per-row Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas._libs import lib

from gradesync.models import ReasonCode

__all__ = [
    "Lazy",
    "Verdicts",
    "codes",
    "equals",
    "filled",
    "first_match",
    "first_positions",
    "lookup_sorted",
    "objects",
    "pair_codes",
    "passthrough",
    "rounded",
    "take",
    "taken",
    "taken_or_none",
    "text_codes",
    "texts",
]


def filled(n: int, value: Any) -> np.ndarray:
    """An object array of ``n`` times ``value`` (``np.full`` is several times slower for objects)."""
    out = np.empty(n, dtype=object)
    out.fill(value)
    return out


def objects(values: Any) -> np.ndarray:
    """An object array of Python values with every missing value as ``None`` (copied only if needed)."""
    arr = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    missing = pd.isna(arr)
    if missing.any():
        arr = arr.copy()
        arr[missing] = None
    return arr


def texts(values: Any) -> np.ndarray:
    """An object array of ``str`` with missing values as ``""`` (copied only if needed)."""
    arr = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(values, dtype=object)
    if len(arr) and lib.is_string_array(arr, skipna=False):  # all text: nothing to replace (fast path)
        return arr
    missing = pd.isna(arr)
    if missing.any():
        arr = arr.copy()
        arr[missing] = ""
    return arr


def passthrough(values: pd.Series) -> np.ndarray:
    """A column carried through unchanged: zero-copy when it already is ``object`` (the contract)."""
    return values.to_numpy() if values.dtype == object else objects(values)


def codes(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` that reuses the codes of a categorical column (resolve hands ids over coded)."""
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.array
        return np.asarray(cat.codes, dtype="int64"), np.asarray(cat.categories, dtype=object)
    arr = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else values
    found, uniq = pd.factorize(arr)
    return found, np.asarray(uniq, dtype=object)


def text_codes(values: pd.Series) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """``texts(values)`` and its codes ``(codes, uniques)`` as ``pd.factorize`` gives them (up to the
    order of the codes). A categorical column is not hashed again: its codes are reused, a missing
    value reading as ``""`` like ``texts``."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.array
        uniques = np.asarray(cat.categories, dtype=object)
        found = np.asarray(cat.codes, dtype="int64")
        if len(found) and found.min() < 0:
            blank = np.flatnonzero(uniques == "")
            at = int(blank[0]) if len(blank) else len(uniques)
            if not len(blank):  # a "" key for the missing ones
                uniques = np.append(uniques, np.array([""], dtype=object))
            found = np.where(found < 0, at, found)
        text = uniques.take(found) if len(uniques) else filled(len(found), "")
        return text, (found, uniques)
    arr = texts(values)
    found, uniques = pd.factorize(arr)
    return arr, (found, np.asarray(uniques, dtype=object))


def equals(values: pd.Series, value: str) -> np.ndarray:
    """``values == value`` as a bool array (on the codes of a categorical column)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.array
        at = cat.categories.get_indexer([value])[0]
        return np.asarray(cat.codes) == at if at >= 0 else np.zeros(len(values), dtype=bool)
    return np.asarray(texts(values) == value, dtype=bool)


def take(values: npt.ArrayLike, pos: np.ndarray, fill: Any) -> np.ndarray:
    """``values[pos]`` where ``pos >= 0``, ``fill`` elsewhere."""
    arr = np.asarray(values)
    if len(arr) == 0:
        out = np.empty(len(pos), dtype=arr.dtype if arr.dtype != object else object)
        out[...] = fill
        return out
    missing = pos < 0
    out = arr[np.where(missing, 0, pos)]
    if missing.any():
        out[missing] = fill
    return out


def taken(values: pd.Series, pos: np.ndarray, fill: Any) -> np.ndarray:
    """``take`` of a frame column (categorical columns are taken by their codes)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.array
        cats = np.asarray(cat.categories, dtype=object)
        at = take(np.asarray(cat.codes, dtype="int64"), pos, -1)
        return take(cats, at, fill) if len(cats) else np.full(len(pos), fill, dtype=object)
    if values.dtype == object:
        arr = values.to_numpy()
        out = take(arr, pos, fill)
        if len(arr) and lib.is_string_array(arr, skipna=False):  # all text: nothing to normalise
            return out
        # a missing value (NaN, NA) reads None, as ``objects``; found in the column in its own order
        # (reading the taken objects in the rows' order would miss the cache when the orders differ)
        missing = take(pd.isna(arr), pos, False)
        if missing.any():
            out[missing] = None
        return out
    return take(values.to_numpy(), pos, fill)


def first_positions(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``keys`` (int64, ≥ 0) in ascending order, and the position of each one's
    first occurrence in ``keys``. By sorting (numpy's sort is far cheaper than hashing a million keys)."""
    n = len(keys)
    if not n:
        return np.empty(0, dtype="int64"), np.empty(0, dtype="int64")
    keys = keys.astype("int64", copy=False)
    if int(keys.max()) < (np.iinfo(np.int64).max - n) // n:  # key × n + position fits: one plain sort
        ordered, at = np.divmod(np.sort(keys * n + np.arange(n, dtype="int64")), n)
    else:  # pragma: no cover - keys beyond 2^63 / n: a stable argsort keeps the first of equal keys first
        at = np.argsort(keys, kind="stable")
        ordered = keys[at]
    first = np.ones(n, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return ordered[first], at[first]


def lookup_sorted(space: np.ndarray, found: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Per query: ``found[i]`` where it equals ``space[i]`` (``space`` ascending and distinct), else -1;
    a negative query never matches. The queries are sorted first, so the binary searches stay in cache."""
    out = np.full(len(queries), -1, dtype="int64")
    if not len(space) or not len(queries):
        return out
    order = np.argsort(queries)
    q = queries[order]
    at = np.minimum(np.searchsorted(space, q), len(space) - 1)
    hit = (space[at] == q) & (q >= 0)
    out[order[hit]] = found[at[hit]]
    return out


def first_match(table: tuple[np.ndarray, np.ndarray], queries: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per query pair ``(a, b)``: the position of the first table row holding that pair, -1 for none.

    ``table`` and ``queries`` are pairs of object arrays of text; a ``None`` in a query matches nothing.
    Equal to a left ``merge`` on both columns against the table's ``drop_duplicates`` (first kept)."""
    (ta, tb), (qa, qb) = table, queries
    a_codes, a_uniq = pd.factorize(ta)
    b_codes, b_uniq = pd.factorize(tb)
    nb = max(len(b_uniq), 1)
    rows = np.flatnonzero((a_codes >= 0) & (b_codes >= 0))  # a missing value in the table: no pair
    space, at = first_positions(a_codes[rows].astype("int64") * nb + b_codes[rows])
    at = rows[at]
    if not len(space):
        return np.full(len(qa), -1, dtype="int64")
    qa_codes = pd.Index(np.asarray(a_uniq, dtype=object), dtype=object).get_indexer(qa)
    qb_codes = pd.Index(np.asarray(b_uniq, dtype=object), dtype=object).get_indexer(qb)
    keys = np.where((qa_codes >= 0) & (qb_codes >= 0), qa_codes.astype("int64") * nb + qb_codes, -1)
    return lookup_sorted(space, at, keys)


def taken_or_none(values: pd.Series, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``taken(values, pos, None)`` and where it is ``None`` (no row, or a missing value)."""
    if values.dtype == object:
        arr = values.to_numpy()
        out = take(arr, pos, None)
        if len(arr) and lib.is_string_array(arr, skipna=False):  # all text: only the rows without one
            return out, pos < 0
        missing = take(pd.isna(arr), pos, True)  # in the column's own order, as ``taken``
        if missing.any():
            out[missing] = None
        return out, missing
    out = taken(values, pos, None)
    return out, pd.isna(out)


def rounded(values: np.ndarray, precision: int) -> np.ndarray:
    """A converted grade (a percent, a fraction, a scaled maximum) rounded as the reader rounds a
    grade's text and as people round by hand: half away from zero at ``precision`` decimals
    (0.5 of 100 scaled to 5 is 0.025 → 0.03; 0.285 → 0.29). ``numpy.round`` rounds half to even on
    the binary value instead (0.025 → 0.02, and 0.285, held as 0.28499999999999998, → 0.28): one
    value could then be written as two different grades depending on how it arrived. The product's
    binary noise (28.499999999999996 steps) is taken off first, at a millionth of a step."""
    v = values.astype("float64")
    step = 10.0**precision
    with np.errstate(invalid="ignore"):
        steps = np.round(np.abs(v) * step, 6)
        out: np.ndarray = np.copysign(np.floor(steps + 0.5) / step, v)
    return out


def pair_codes(
    c_codes: np.ndarray, keys: tuple[np.ndarray, np.ndarray], class_ids: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Code the distinct (class, key) pairs of the rows: matching then runs once per pair.

    ``keys`` are the rows' key codes and their uniques (``text_codes``). Returns each row's pair code
    and, per pair, its class id (None for an unresolved class), its key, and whether the class resolved.
    """
    k_codes, k_uniq = keys
    nk = max(len(k_uniq), 1)
    found, pair_uniq = pd.factorize(c_codes.astype("int64") * nk + k_codes)
    pair_uniq = np.asarray(pair_uniq, dtype="int64")
    pair_class_id = take(class_ids, pair_uniq // nk, None)
    pair_key = k_uniq[pair_uniq % nk] if len(k_uniq) else np.empty(0, dtype=object)
    return found, pair_class_id, pair_key, pd.notna(pair_class_id)


class Lazy:
    """Labels for messages, computed only for the rows that get one: ``label[idx]``."""

    def __init__(self, build: Callable[[np.ndarray], Any]) -> None:
        self.build = build

    def __getitem__(self, idx: np.ndarray) -> pd.Series:
        return pd.Series(np.asarray(self.build(idx), dtype=object), dtype=object)


class Verdicts:
    """Each row's reason, message and note while the rules run: the first reason a row gets wins
    (a read-stage reason is never overwritten)."""

    def __init__(self, reason: np.ndarray, message: np.ndarray, note: np.ndarray) -> None:
        self.reason, self.message, self.note = reason, message, note
        self._open: np.ndarray = np.asarray(reason == "", dtype=bool)

    def __len__(self) -> int:
        return len(self.reason)

    def open(self) -> np.ndarray:
        """Rows without a reason yet (a copy: use ``give`` to give one)."""
        return self._open.copy()

    def give(self, mask: np.ndarray, code: ReasonCode, build: Callable[[np.ndarray], Any]) -> np.ndarray:
        """Give ``code`` to the rows of ``mask`` that have no reason yet; ``build(idx)`` → their messages."""
        idx = np.flatnonzero(mask & self._open)
        if len(idx):
            self.reason[idx] = code.value
            self.message[idx] = np.asarray(build(idx), dtype=object)
            self._open[idx] = False
        return idx

    def mask(self, idx: np.ndarray) -> np.ndarray:
        """A row mask from row positions."""
        out = np.zeros(len(self.reason), dtype=bool)
        out[idx] = True
        return out

    def add_note(self, idx: np.ndarray, note: Any) -> None:
        """Append ``note`` (one text, or one per row of ``idx``) to the rows' notes."""
        if not len(idx):
            return
        old = pd.Series(self.note[idx], dtype=object).fillna("").astype(object)
        new = pd.Series(np.broadcast_to(np.asarray(note, dtype=object), (len(idx),)), dtype=object)
        self.note[idx] = np.asarray(new.where(old == "", old + "; " + new), dtype=object)
