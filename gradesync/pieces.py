"""Many rows of text at once, column by column: no Python code per row.

A row's text is a run of *pieces*; each piece is computed for a whole chunk of rows at a time: either
a small table of texts with one code per row (a constant separator, a column with few distinct values,
``yes``/``no``), or one text per row (an id column). Adjacent coded pieces with few combinations are
joined into one piece (a table of every combination), and the chunk's text is one ``str.join`` of the
pieces, row after row. The plan file's long lists (``gradesync/plan/planfile.py``) and the report's CSV
(``gradesync/report/tables.py``) are written with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "MERGE_SHARE",
    "Piece",
    "coded",
    "const",
    "join_rows",
    "texts",
]

MERGE_SHARE = 4  # two coded pieces merge when their table of combinations has at most n / MERGE_SHARE texts


@dataclass(slots=True)
class Piece:
    """One piece of every row's text, for a chunk of n rows: ``table[codes]``, or with ``codes`` None,
    ``table`` holds each row's own text."""

    table: np.ndarray  # object array of str
    codes: np.ndarray | None = None  # intp, one per row, into ``table``

    def texts(self) -> np.ndarray:
        return self.table if self.codes is None else self.table[self.codes]


def texts(items: Any) -> np.ndarray:
    """A 1-d object array of ``items`` (never a 2-d array of characters, whatever the items)."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def const(text: str, n: int) -> Piece:
    return Piece(texts([text]), np.zeros(n, dtype=np.intp))


def coded(table: list[str], codes: np.ndarray) -> Piece:
    return Piece(texts(table), np.asarray(codes, dtype=np.intp))


def _merged(a: Piece, b: Piece, n: int) -> Piece | None:
    """``a`` then ``b`` as one piece, when both are coded and their combinations few; else None."""
    if a.codes is None or b.codes is None:
        return None
    first, second = a.table.tolist(), b.table.tolist()
    if len(first) == 1:
        return Piece(texts([first[0] + t for t in second]), b.codes)
    if len(second) == 1:
        return Piece(texts([t + second[0] for t in first]), a.codes)
    if len(first) * len(second) * MERGE_SHARE > n:
        return None
    table = texts([x + y for x in first for y in second])  # every combination: no hashing per row
    return Piece(table, a.codes * len(second) + b.codes)


def join_rows(pieces: list[Piece], n: int, row_end: str, last_end: str | None = None) -> str:
    """n rows' text: the pieces in order, ``row_end`` after each row (``last_end`` after the last)."""
    if n == 0:
        return ""
    runs: list[Piece] = []
    for piece in pieces:
        both = _merged(runs[-1], piece, n) if runs else None
        if both is None:
            runs.append(piece)
        else:
            runs[-1] = both
    width = len(runs) + 1
    items = [row_end] * (n * width)  # row after row: the runs' texts, then the row's end
    for k, run in enumerate(runs):
        items[k::width] = run.texts().tolist()
    items[-1] = row_end if last_end is None else last_end
    return "".join(items)
