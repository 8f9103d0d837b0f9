"""How much one input file may hold, and the checks that keep a hostile or broken file from taking
more memory or time than a real gradebook ever needs.

Every limit is refused with an ``InputError`` (exit 2) that names the file, the limit and the setting
that raises it, *before* the expensive step it protects:

    ============================  ==================  ==============================================
    limit                         default             checked
    ============================  ==================  ==============================================
    ``[input] max_file_mb``       256 MB              the file's size before reading it; a zip
                                                      bundle's members uncompressed, in all
    ``[input] max_line_kb``       1,024 KB            each line of a text file, while it is read
                                                      (a long line is refused without reading on)
    ``[input] max_rows``          5,000,000           rows of a text file (the parser stops there)
                                                      and of a sheet (from its cell references)
    ``[input] max_cells``         25,000,000          rows × columns of a text file (from its
                                                      header) and of a sheet's used area
    ``MAX_COLUMNS``               16,384              columns (Excel's own limit)
    ``MAX_ZIP_UNCOMPRESSED``      200 MB              a workbook's parts uncompressed, in all
    ``MAX_ZIP_RATIO``             100×                a workbook's or a bundle's expansion, above
                                                      ``ZIP_RATIO_FLOOR`` (16 MB)
    ``MAX_ZIP_MEMBERS``           10,000              parts of a workbook, members of a bundle
    ============================  ==================  ==============================================

Why these numbers (measured on the 2-core build machine): reading a text export costs about nine
times its size in memory (a 100 MB, 2.8-million-row long CSV peaks at 0.9 GB), so 256 MB of text is
about 2.3 GB at worst; the largest real export in our benchmarks (2,000 classes × 30 students × 20
assignments, 1.2 million rows) is 46 MB and 4.8 million cells. A real gradebook line is a few KB.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gradesync.errors import InputError
from gradesync.read._cage import CageLimits

if TYPE_CHECKING:
    from gradesync.config import InputSettings

__all__ = [
    "MAX_COLUMNS",
    "MAX_ZIP_MEMBERS",
    "MAX_ZIP_RATIO",
    "MAX_ZIP_UNCOMPRESSED",
    "ZIP_RATIO_FLOOR",
    "LineMeter",
    "ReadLimits",
    "check_archive",
    "read_bounded",
]

MB = 1024 * 1024
MAX_COLUMNS = 16_384  # Excel's own column limit; a wider table is not a gradebook
MAX_SHEET_ROWS = 1_048_576  # Excel's own row limit: a reference beyond it is not a real cell
MAX_ZIP_UNCOMPRESSED = 200 * MB
MAX_ZIP_RATIO = 100
ZIP_RATIO_FLOOR = 16 * MB  # below this, expansion cannot hurt: small parts compress very well
MAX_ZIP_MEMBERS = 10_000
_CHUNK = 8 * MB
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """The ``[input]`` limits of one read, in bytes and counts (``from_settings``)."""

    max_file_bytes: int = 256 * MB
    max_line_bytes: int = 1024 * 1024
    max_rows: int = 5_000_000
    max_cells: int = 25_000_000
    #: A parse in a separate process (``[input] isolate``, and always for .xls/.xlsb/.ods)
    cage: CageLimits = field(default_factory=CageLimits)

    @classmethod
    def from_settings(cls, settings: InputSettings) -> ReadLimits:
        return cls(
            max_file_bytes=settings.max_file_mb * MB,
            max_line_bytes=settings.max_line_kb * 1024,
            max_rows=settings.max_rows,
            max_cells=settings.max_cells,
            cage=CageLimits(settings.isolate_memory_mb * MB, settings.isolate_cpu_seconds),
        )


def too_large(name: str, what: str, *, code: str = "input-too-large", hint: str | None = None) -> InputError:
    """The one shape of a refusal for size: the file, what exceeded which limit, how to get past it."""
    return InputError(
        f"refused: {what}; it was not read",
        file=name,
        code=code,
        hint=hint
        or "a real gradebook export is far smaller: check that this is the right file; if it is, split "
        "it into several files or raise the [input] limit named above (config/gradesync.toml)",
    )


# ---------------------------------------------------------------------------------------------
# Text: lines no longer than the limit, checked while the bytes arrive
# ---------------------------------------------------------------------------------------------
class LineMeter:
    """Measures line lengths across chunks and refuses the first line longer than ``limit`` bytes.

    A line ends at LF, CR or CRLF (the three line endings exports use). Only the positions of line
    breaks are looked at (numpy over the bytes), so it costs about 0.1 s per 100 MB.
    """

    __slots__ = ("_last_cr", "_line", "_name", "_since_break", "limit")

    def __init__(self, name: str, limit: int) -> None:
        self._name, self.limit = name, limit
        self._since_break = 0  # bytes of the current (unfinished) line
        self._line = 1  # the current line's number, as an editor shows it
        self._last_cr = False  # the previous chunk ended with CR (a CRLF may be split)

    def feed(self, chunk: bytes | memoryview) -> None:
        if not len(chunk):
            return
        arr = np.frombuffer(chunk, dtype=np.uint8)
        lf, cr = arr == 10, arr == 13
        breaks = np.flatnonzero(lf | cr)
        if breaks.size == 0:
            self._check(self._since_break + len(arr), 0)
            self._since_break += len(arr)
            self._last_cr = False
        else:
            self._check(self._since_break + int(breaks[0]), 0)
            if breaks.size > 1:
                gaps = np.diff(breaks) - 1
                over = np.flatnonzero(gaps > self.limit)
                if over.size:
                    first = int(over[0])
                    self._check(int(gaps[first]), self._breaks_before(arr, lf, cr, int(breaks[first]) + 1))
            self._since_break = len(arr) - int(breaks[-1]) - 1
            lines = self._breaks_before(arr, lf, cr, len(arr))
            self._check(self._since_break, lines)
            self._line += lines
            self._last_cr = bool(cr[-1])

    def feed_all(self, data: bytes) -> None:
        """``feed`` a whole text in 8 MB pieces (the masks numpy builds stay that small)."""
        view = memoryview(data)
        for start in range(0, len(data), _CHUNK):
            self.feed(view[start : start + _CHUNK])

    def _breaks_before(self, arr: np.ndarray, lf: np.ndarray, cr: np.ndarray, end: int) -> int:
        """Line breaks in ``arr[:end]``: LF and CR each end a line, CRLF ends one."""
        crlf = int(np.count_nonzero(cr[: end - 1] & lf[1:end])) if end > 1 else 0
        split_crlf = 1 if self._last_cr and end > 0 and lf[0] else 0  # CR ended the previous chunk
        return int(np.count_nonzero(lf[:end])) + int(np.count_nonzero(cr[:end])) - crlf - split_crlf

    def _check(self, length: int, breaks_before: int) -> None:
        if length > self.limit:
            line = self._line + breaks_before
            raise too_large(
                self._name,
                f"line {line:,} is longer than {self.limit // 1024:,} KB ([input] max_line_kb): a "
                "gradebook line is a few KB; this is not a gradebook export, or its line breaks are "
                "missing",
                code="input-line-too-long",
                hint="export the gradebook again as CSV; if its lines really are this long, raise "
                "[input] max_line_kb",
            )


def read_bounded(path: str | Path, limits: ReadLimits) -> tuple[bytes, str]:
    """A file's bytes and their SHA-256, read in chunks: a file larger than ``max_file_bytes`` is refused
    before reading (or, for a file whose size is not known in advance, as soon as it gets there); a text
    file's lines are measured while they arrive, so a long line is refused after at most
    ``max_line_bytes`` of it. ``OSError`` passes through (the caller names it)."""
    name = str(path)
    with Path(path).open("rb") as f:
        st = os.fstat(f.fileno())
        if st.st_size > limits.max_file_bytes:
            raise _file_too_large(name, st.st_size, limits)
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        total = 0
        meter: LineMeter | None = None
        while chunk := f.read(_CHUNK):
            total += len(chunk)
            if total > limits.max_file_bytes:
                raise _file_too_large(name, total, limits)
            if not chunks and not chunk.startswith((*_ZIP_MAGIC, _OLE_MAGIC)):
                meter = LineMeter(name, limits.max_line_bytes)
            if meter is not None:
                meter.feed(chunk)
            digest.update(chunk)
            chunks.append(chunk)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return data, digest.hexdigest()


def _file_too_large(name: str, size: int, limits: ReadLimits) -> InputError:
    return too_large(
        name,
        f"the file is {'more than ' if size > limits.max_file_bytes else ''}{size / MB:,.0f} MB, above "
        f"{limits.max_file_bytes // MB:,} MB ([input] max_file_mb)",
    )


# ---------------------------------------------------------------------------------------------
# Zip archives (workbooks and OneRoster bundles): the table of contents, before inflating anything
# ---------------------------------------------------------------------------------------------
def check_archive(
    name: str, infos: list[zipfile.ZipInfo], *, what: str, max_total: int, code: str, hint: str
) -> None:
    """Refuse an archive whose table of contents promises too much: more than ``MAX_ZIP_MEMBERS``
    members, more than ``max_total`` bytes uncompressed, or an expansion above ``MAX_ZIP_RATIO``
    (once above ``ZIP_RATIO_FLOOR``). Reading a member stops at its declared size (and a member whose
    data does not match that size fails its CRC check), so declared sizes bound what is inflated."""
    total = sum(i.file_size for i in infos)
    packed = max(sum(i.compress_size for i in infos), 1)
    why = None
    if len(infos) > MAX_ZIP_MEMBERS:
        why = f"holds {len(infos):,} parts (limit {MAX_ZIP_MEMBERS:,})"
    elif total > max_total:
        why = f"would expand to {total / MB:,.0f} MB (limit {max_total // MB:,} MB)"
    elif total > ZIP_RATIO_FLOOR and total > MAX_ZIP_RATIO * packed:
        why = (
            f"would expand {total / packed:,.0f} times, from {packed / MB:,.1f} MB to {total / MB:,.0f} MB "
            f"(limit {MAX_ZIP_RATIO} times)"
        )
    if why:
        raise InputError(
            f"refused as a possible zip bomb: the {what} {why}; it was not opened",
            file=name,
            code=code,
            hint=hint,
        )
