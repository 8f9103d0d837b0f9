"""Rows grouped by several coded key columns at once: no Python code per row.

Each key column comes as integer codes (``pd.factorize``); a row's group is the tuple of its codes,
numbered densely key by key (so the numbers never outgrow int64, however many keys). The plan
summary lists its groups in sorted order (codes from a sorted factorize sort as the texts do); the
run summary in the order the rows first show them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "counts_per_group",
    "group_rows",
]


def group_rows(
    codes: Sequence[np.ndarray], sizes: Sequence[int], *, sort: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(a group number per row, 0…g-1; each group's first row) for the rows' tuples of ``codes``
    (``codes[k]`` < ``sizes[k]``). With ``sort`` the groups go in the tuples' code order, else in the
    order the rows first show them."""
    n = len(codes[0]) if codes else 0
    group = np.zeros(n, dtype=np.int64)
    for column, size in zip(codes, sizes, strict=True):
        combined = group * size + column
        if sort:
            group = np.unique(combined, return_inverse=True)[1].astype(np.int64)
        else:
            group = pd.factorize(combined)[0].astype(np.int64)
    count = int(group.max()) + 1 if n else 0
    first = np.empty(count, dtype=np.int64)
    first[group[::-1]] = np.arange(n - 1, -1, -1)  # written last = the first row of each group
    return group, first


def counts_per_group(group: np.ndarray, count: int, codes: np.ndarray, size: int) -> np.ndarray:
    """A (count × size) table: how many rows of each group hold each code."""
    return np.bincount(group * size + codes, minlength=count * size).reshape(count, size)
