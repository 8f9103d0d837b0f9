"""The line limit measured while bytes arrive (``read.limits.LineMeter``) agrees with reading the whole
text at once, however the bytes are cut into chunks — a CRLF split between two chunks included."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradesync.errors import InputError
from gradesync.read.limits import LineMeter

_BREAK = re.compile(rb"\r\n|\r|\n")


def _first_too_long(data: bytes, limit: int) -> int | None:
    """The reference: the 1-based number of the first line longer than ``limit``, by splitting the
    whole text on LF, CR and CRLF as a text editor does."""
    for number, line in enumerate(_BREAK.split(data), start=1):
        if len(line) > limit:
            return number
    return None


def _meter(data: bytes, cuts: list[int], limit: int) -> int | None:
    meter = LineMeter("grades.csv", limit)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    try:
        for start, end in itertools.pairwise(points):
            meter.feed(data[start:end])
    except InputError as e:
        assert e.code == "input-line-too-long" and e.file == "grades.csv"
        found = re.search(r"line ([\d,]+) is longer", e.message)
        assert found, e.message
        return int(found.group(1).replace(",", ""))
    return None


@given(
    st.lists(st.sampled_from([b"a", b"1", b",", b"\n", b"\r", b"\r\n"]), max_size=300).map(b"".join),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    st.integers(min_value=1, max_value=12),
)
def test_chunked_measure_equals_the_whole_text(data: bytes, cuts: list[int], limit: int) -> None:
    assert _meter(data, cuts, limit) == _first_too_long(data, limit)


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_line_numbers_count_as_an_editor_does(ending: bytes) -> None:
    data = ending.join([b"header", b"a", b"", b"b" * 50, b"c"])
    assert _meter(data, [7, 8, 9], 10) == 4
