"""Bytes on disk → a ``RawTable``: the header row and every later row as text, with row numbers.

Everything file-format specific lives here (encodings, delimiters, Excel cells); the layout stage
only sees text cells. Errors that make a file unreadable are raised as ``InputError``.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import logging
import re
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from defusedxml import DefusedXmlException, ElementTree

from gradesync.errors import GradesyncError, InputError
from gradesync.read import _cage
from gradesync.read._xlsx_size import check_shared_strings, check_sheet
from gradesync.read.limits import (
    MAX_COLUMNS,
    MAX_ZIP_UNCOMPRESSED,
    LineMeter,
    ReadLimits,
    check_archive,
    read_bounded,
    too_large,
)
from gradesync.read.member import ZipMember

log = logging.getLogger("gradesync.read")

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls, and password-protected .xlsx
_SNIFF_BYTES = 16_384
_DELIMITERS = ",\t;|"
_LEADING_BLANK_LINES = re.compile(rb"\A(?:[ \t]*(?:\r\n|\r|\n))*")
_LINE_BREAK = r"\r\n|\r|\n"
_RE_PARSER_LINE = re.compile(r"line (\d+)")
_RE_PARSER_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_RE_PARSER_EOF = re.compile(r"EOF inside string starting at row (\d+)")


@dataclass(slots=True)
class RawTable:
    """One file's cells as text. ``cells[i]`` is the object array of column ``i`` (header excluded)."""

    path: str
    sha256: str
    header: list[str]
    header_row: int  # the header's row number as a person sees it
    cells: list[np.ndarray]
    source_row: np.ndarray  # int64, one per data row
    sheet: str = ""
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: Text files: data rows with non-empty cells beyond the header's last column, as
    #: ``source_row → [(column number, text), ...]``. Their cells are shifted (an unquoted separator in
    #: a value), so layout rejects every grade of such a row (``extra_cells``). Empty extra cells
    #: (``a,b,c,d,`` from a trailing separator) are dropped silently.
    extra_cells: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    delimiter: str = ""
    #: The zip member this table was read from (``path`` is its text), or None for a file of its own.
    member: ZipMember | None = None

    @property
    def n_rows(self) -> int:
        return len(self.source_row)


def read_file(path: str | Path, limits: ReadLimits | None = None) -> tuple[bytes, str]:
    """A file's bytes and SHA-256, read within ``limits`` (``limits.read_bounded``: its size, and a text
    file's lines as they arrive); a file that cannot be read is an ``InputError`` saying why."""
    name = str(path)
    try:
        return read_bounded(path, limits or ReadLimits())
    except FileNotFoundError:
        raise InputError(
            "file not found", file=name, code="input-missing-file", hint="check the path and file name"
        ) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a file", file=name, code="input-unreadable") from None
    except OSError as e:
        raise InputError(f"cannot be read: {e.strerror}", file=name, code="input-unreadable") from None


def load_table(path: str | Path, *, sheet: str | None = None, limits: ReadLimits | None = None) -> RawTable:
    """Read one input file (CSV/TSV/semicolon text or an Excel workbook) into a ``RawTable``, within
    ``limits`` (``limits.ReadLimits``; the defaults when not given)."""
    data, sha256 = read_file(path, limits)
    return table_from_bytes(str(path), data, sheet=sheet, limits=limits, sha256=sha256)


def table_from_bytes(
    name: str,
    data: bytes,
    *,
    sheet: str | None = None,
    limits: ReadLimits | None = None,
    member: ZipMember | None = None,
    sha256: str | None = None,
) -> RawTable:
    """:func:`load_table` for bytes already read: a member of a OneRoster zip (``member``), or a file
    ``read_file`` read (``sha256``: the hash it computed; it measured the lines too)."""
    limits = limits or ReadLimits()
    return _table(name, data, sha256, sheet, limits, member=member, lines_checked=sha256 is not None)


def _table(
    name: str,
    data: bytes,
    sha256: str | None,
    sheet: str | None,
    limits: ReadLimits,
    *,
    member: ZipMember | None,
    lines_checked: bool,
) -> RawTable:
    """The reader's boundary: whatever a parser raises on a file becomes an ``InputError`` naming it
    (a hostile file is the input's problem, never a traceback); ``_cage.note_file`` tells a parent
    process watching this one which file is being read, should it crash."""
    _cage.note_file(name)
    try:
        table = _parse_bytes(name, data, sha256, sheet, limits, lines_checked=lines_checked)
    except GradesyncError:
        raise
    except MemoryError:
        raise too_large(name, "reading it ran out of memory", code="input-reader-limit") from None
    except RecursionError:
        raise InputError("is nested too deeply to read", file=name, code="input-unreadable") from None
    except Exception as e:
        log.debug("reading %s failed", name, exc_info=True)
        raise InputError(
            f"cannot be read: the reader failed ({type(e).__name__}: {e})",
            file=name,
            code="input-reader-failed",
            hint="open the file in Excel or a text editor and save it again as .csv or .xlsx, or export "
            "the gradebook again",
        ) from None
    table.member = member
    return table


def _parse_bytes(
    name: str, data: bytes, sha256: str | None, sheet: str | None, limits: ReadLimits, *, lines_checked: bool
) -> RawTable:
    p = Path(name)
    if not data:
        raise InputError("the file is empty (0 bytes)", file=name, code="input-empty", hint=_EXPORT_HINT)
    sha256 = sha256 or hashlib.sha256(data).hexdigest()
    if data.startswith(_ZIP_MAGIC) or data.startswith(_OLE_MAGIC):
        return _load_workbook(name, data, sha256, sheet, limits)
    head = data[:_SNIFF_BYTES]
    looks_html = _looks_like_html(head)
    if p.suffix.lower() in EXCEL_SUFFIXES and not looks_html:
        if not lines_checked:  # a text file's lines are measured before it is parsed, whatever its name
            LineMeter(name, limits.max_line_bytes).feed_all(data)
        return _text_named_as_workbook(name, data, sha256, p.suffix, limits)
    if p.suffix.lower() in EXCEL_SUFFIXES:
        raise InputError(
            f"is named {p.suffix} but is a web page (HTML)",
            file=name,
            code="input-html",
            hint="a download that failed or needed a login often saves a web page under a spreadsheet "
            "name; export the gradebook again and save it as .xlsx or .csv",
        )
    if looks_html:
        raise InputError(
            "is a web page (HTML), not a CSV export",
            file=name,
            code="input-html",
            hint="export the gradebook again and save it as .csv or .xlsx",
        )
    if not lines_checked:
        LineMeter(name, limits.max_line_bytes).feed_all(data)
    return _load_text(name, data, sha256, limits)


_EXPORT_HINT = "export the gradebook again; the file must have a header row and one row per grade"


def _text_named_as_workbook(name: str, data: bytes, sha256: str, suffix: str, limits: ReadLimits) -> RawTable:
    """A file named like a workbook that is not one. A legacy ``.xls`` name on delimited text is an
    export convention (Blackboard's "Work Offline" download with the Tab delimiter, several SIS
    "Excel" exports): it is read as the text it is, and a warning says so. Text under a newer
    workbook name (``.xlsx``, ``.ods``) is refused, saying what it holds; anything else is damaged."""
    body, _ = _decode_plan(name, data)
    head = body[:_SNIFF_BYTES]
    controls = sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13))
    is_text = b"\x00" not in head and controls <= max(8, len(head) // 100)
    if is_text and suffix.lower() == ".xls":
        table = _load_text(name, data, sha256, limits)
        shape = (
            "tab-separated"
            if table.delimiter == "\t"
            else f"{_DELIMITER_NAMES.get(table.delimiter, 'delimited')}"
        )
        table.warnings.append(f"{name}: named .xls but is {shape} text ({table.encoding}); read as text")
        return table
    if is_text:
        raise InputError(
            f"is named {suffix} but is not an Excel workbook: it holds text (delimited values)",
            file=name,
            code="input-not-spreadsheet",
            hint="rename it to .csv (or .txt) and read it again, or save it from the spreadsheet as .xlsx",
        )
    raise InputError(
        f"is named {suffix} but is not an Excel workbook",
        file=name,
        code="input-not-spreadsheet",
        hint="the file may be cut short or damaged; export the gradebook again as .xlsx or .csv",
    )


_DELIMITER_NAMES = {",": "comma-separated", ";": "semicolon-separated", "|": "pipe-separated"}


def _looks_like_html(head: bytes) -> bool:
    text = head[:2048].decode("latin-1").replace("\x00", "").lstrip("\ufeff\xef\xbb\xbf\xff\xfe \t\r\n")
    low = text.lower()
    return low.startswith(("<!doctype html", "<html", "<head", "<body", "<?xml")) or "<html" in low[:1024]


# ---------------------------------------------------------------------------------------------
# Text: CSV / TSV / semicolon-separated
# ---------------------------------------------------------------------------------------------
def _decode_plan(name: str, data: bytes) -> tuple[bytes, str]:
    """Return (body bytes in UTF-8, or in cp1252 if it is not UTF-8, without BOM; encoding label)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :], "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # UTF-16 exports are small (Excel "Unicode text"); re-encode once and share the UTF-8 path.
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise InputError(
                f"starts with a UTF-16 byte-order mark but is not valid UTF-16 ({e.reason})",
                file=name,
                code="input-encoding",
            ) from None
        return text.encode("utf-8"), "utf-16"
    if (codec := _bomless_utf16(data)) is not None:
        try:
            return data.decode(codec).encode("utf-8"), codec
        except UnicodeDecodeError:
            pass  # not UTF-16 after all: the binary check below refuses it
    return data, "utf-8"


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 text written without a byte-order mark: in mostly-ASCII text every other byte is 0 (the
    high byte), at odd offsets for little-endian and even ones for big-endian. Binary data has zeros
    on both sides."""
    head = data[:2048]
    if len(head) < 8 or len(head) % 2:
        head = head[: len(head) - len(head) % 2]
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    zeros_even, zeros_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if zeros_odd > 0.9 and zeros_even == 0:
        return "utf-16-le"
    if zeros_even > 0.9 and zeros_odd == 0:
        return "utf-16-be"
    return None


def _check_text(name: str, body: bytes) -> None:
    head = body[:_SNIFF_BYTES]
    controls = sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13))
    if b"\x00" in head or controls > max(8, len(head) // 100):
        raise InputError(
            "is not a text (CSV) export or an Excel workbook: it holds binary data",
            file=name,
            code="input-not-spreadsheet",
            hint="export the gradebook as .csv (comma, semicolon or tab separated) or .xlsx",
        )


def _sniff_delimiter(sample: str) -> str:
    """csv.Sniffer on a sample, checked against the header line; falls back to the best-splitting one."""
    lines = [ln for ln in sample.splitlines() if ln.strip()]
    if not lines:
        return ","
    header = lines[0]

    def fields(delimiter: str) -> int:
        return len(next(csv.reader([header], delimiter=delimiter)))

    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=_DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    if sniffed is not None and fields(sniffed) >= 2:
        return sniffed
    best = max(_DELIMITERS, key=fields)  # max keeps the first of equals: comma, tab, semicolon, pipe
    return best if fields(best) >= 2 else ","


def _count_breaks(body: bytes) -> int:
    crlf = body.count(b"\r\n")
    return body.count(b"\n") + body.count(b"\r") - crlf


def _prepare_text(name: str, data: bytes) -> tuple[bytes, str, str, int]:
    """Rule: a text export is not binary, is UTF-8 (else cp1252), and has a header after blank lines."""
    body, label = _decode_plan(name, data)
    codec = "utf-8"
    _check_text(name, body)
    try:
        body[: _SNIFF_BYTES * 4].decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < _SNIFF_BYTES * 4 - 4:  # not just a character cut at the sample's end
            codec, label = "cp1252", "cp1252 (fallback)"
    lead = _LEADING_BLANK_LINES.match(body)
    lead_lines = _count_breaks(lead.group(0)) if lead else 0
    body = body[lead.end() if lead else 0 :].rstrip(b" \t\r\n")
    if not body:
        raise InputError(
            "the file is empty (no header row)", file=name, code="input-empty", hint=_EXPORT_HINT
        )
    return body, codec, label, lead_lines


def _parse_csv(body: bytes, delimiter: str, codec: str, width: int | None, nrows: int) -> pd.DataFrame:
    """Rule: every cell is text as written (no NA guessing), blank lines stay rows, one C-engine pass
    that stops after ``nrows`` records (so a file over the row limit costs no more than the limit)."""
    return pd.read_csv(
        io.BytesIO(body),
        sep=delimiter,
        header=None,
        names=None if width is None else list(range(width)),
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=False,
        index_col=False,
        quotechar='"',
        encoding=codec,
        encoding_errors="strict" if codec == "utf-8" else "replace",
        engine="c",
        nrows=nrows,
    )


def _wider(error: pd.errors.ParserError, width: int | None, name: str, lead_lines: int, sep_name: str) -> int:
    """Rule: a row longer than the header widens the table; an unclosed quote or a huge row is refused."""
    text = str(error)
    eof = _RE_PARSER_EOF.search(text)
    if eof:
        raise InputError(
            'a quoted value is never closed: a " opens a value here and no closing " '
            "follows before the end of the file",
            file=name,
            row=int(eof.group(1)) + 1 + lead_lines,
            code="input-unclosed-quote",
            hint='remove the stray " or close the quote, or export the file again',
        ) from None
    m = _RE_PARSER_FIELDS.search(text)
    if not m:
        m2 = _RE_PARSER_LINE.search(text)
        raise InputError(
            f"cannot be split into cells ({text.rsplit('C error: ', maxsplit=1)[-1].strip()})",
            file=name,
            row=int(m2.group(1)) + lead_lines if m2 else None,
            code="input-ragged-row",
            hint="export the file again as CSV",
        ) from None
    saw = int(m.group(3))
    if saw > MAX_COLUMNS:
        raise InputError(
            f"a row has {saw} cells, more than a spreadsheet can hold",
            file=name,
            row=int(m.group(2)) + lead_lines,
            code="input-ragged-row",
            hint=f"is the separator {sep_name} right? Export the file again as CSV",
        ) from None
    return max(saw, 2 * (width or int(m.group(1))))


def _parse_ragged(
    body: bytes, delimiter: str, codec: str, name: str, lead_lines: int, bound: _Bound
) -> pd.DataFrame:
    """Rule: rows longer than the header widen the table (short rows are padded with "")."""
    sep_name = "TAB" if delimiter == "\t" else repr(delimiter)
    width: int | None = None
    for _ in range(8):
        try:
            return bound.checked(_parse_csv(body, delimiter, codec, width, bound.nrows(width)), width)
        except pd.errors.ParserError as e:
            width = _wider(e, width, name, lead_lines, sep_name)
    # Widths kept growing: measure the widest record once (slow path, only for such files).
    text_body = body.decode(codec, errors="replace")
    try:
        widest = max((len(r) for r in csv.reader(io.StringIO(text_body), delimiter=delimiter)), default=1)
    except csv.Error as e:  # a cell longer than the csv module's field limit (128 K characters)
        raise InputError(
            f"cannot be split into cells: its rows have ever more cells, and one cell is too long to "
            f"measure ({e})",
            file=name,
            code="input-ragged-row",
            hint="is the separator right? Export the file again as CSV",
        ) from None
    width = min(widest, MAX_COLUMNS)
    return bound.checked(_parse_csv(body, delimiter, codec, width, bound.nrows(width)), width)


@dataclass(frozen=True, slots=True)
class _Bound:
    """Rule: a text file holds at most ``max_rows`` records and ``max_cells`` cells (records × the
    table's width); the parser is told to stop one record past that, and the table is refused."""

    name: str
    limits: ReadLimits
    header_fields: int

    def allowed(self, width: int | None) -> int:
        return min(self.limits.max_rows, self.limits.max_cells // max(width or self.header_fields, 1))

    def nrows(self, width: int | None) -> int:
        return self.allowed(width) + 1

    def checked(self, frame: pd.DataFrame, width: int | None) -> pd.DataFrame:
        allowed = self.allowed(max(width or 0, len(frame.columns)))
        if len(frame) <= allowed:
            return frame
        columns = len(frame.columns)
        if allowed == self.limits.max_rows:
            what = f"the file has more than {allowed:,} rows ([input] max_rows)"
        else:
            what = (
                f"the file has more than {allowed:,} rows of {columns:,} columns, more than "
                f"{self.limits.max_cells:,} cells ([input] max_cells)"
            )
        raise too_large(self.name, what)


def _check_header_width(name: str, header_fields: int, lead_lines: int) -> None:
    """Rule: a header wider than a spreadsheet can be is not a gradebook's (checked before parsing)."""
    if header_fields > MAX_COLUMNS:
        raise InputError(
            f"the header has {header_fields:,} cells, more than a spreadsheet can hold ({MAX_COLUMNS:,})",
            file=name,
            row=1 + lead_lines,
            code="input-too-wide",
            hint="is this the gradebook export? Check its separator, or export it again as CSV",
        )


def _parse_text(
    body: bytes, delimiter: str, codec: str, label: str, name: str, lead_lines: int, bound: _Bound
) -> tuple[pd.DataFrame, str, str]:
    """Rule: a file that is not UTF-8 after all is read again as cp1252; no records at all is empty."""
    try:
        try:
            frame = _parse_ragged(body, delimiter, codec, name, lead_lines, bound)
        except UnicodeDecodeError:
            codec, label = "cp1252", "cp1252 (fallback)"
            frame = _parse_ragged(body, delimiter, codec, name, lead_lines, bound)
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty (no header row)", file=name, code="input-empty") from None
    return frame, codec, label


def _first_lines(frame: pd.DataFrame, body: bytes, lead_lines: int) -> np.ndarray:
    """Rule: row numbers are the physical line each record starts on, as a person sees them."""
    # Fast path: no quoted field spans lines, so record i is on physical line i + 1 (blank lines are
    # kept as rows by skip_blank_lines=False). Otherwise add the line breaks inside the earlier
    # records' cells.
    n = len(frame)
    first_line = np.arange(1, n + 1, dtype=np.int64) + lead_lines
    if _count_breaks(body) + 1 != n:
        extra = np.zeros(n, dtype=np.int64)
        for c in frame.columns:
            extra += frame[c].str.count(_LINE_BREAK).to_numpy(dtype=np.int64)
        first_line += np.concatenate(([0], np.cumsum(extra)[:-1]))
    return first_line


def _cut_beyond_header(
    cols: list[np.ndarray], header_fields: int, first_line: np.ndarray
) -> tuple[list[np.ndarray], dict[int, list[tuple[int, str]]]]:
    """Rule: cells beyond the header's last column are dropped, the rows with a non-empty one noted."""
    extra_cells: dict[int, list[tuple[int, str]]] = {}
    if len(cols) <= header_fields:
        return cols, extra_cells
    # Cells of the noted rows are shifted; layout rejects them.
    beyond = cols[header_fields:]
    if any(str(c[0]).strip() for c in beyond):  # the header itself is wider: keep its columns
        return cols, extra_cells
    for offset, col in enumerate(beyond):
        codes, uniques = pd.factorize(col[1:])
        filled = np.array([bool(str(u).strip()) for u in uniques], dtype=bool)
        if not filled.any():
            continue
        for i in np.flatnonzero(filled.take(codes)):
            row = int(first_line[i + 1])
            extra_cells.setdefault(row, []).append((header_fields + offset + 1, str(col[i + 1])))
    return cols[:header_fields], extra_cells


def _load_text(name: str, data: bytes, sha256: str, limits: ReadLimits) -> RawTable:
    """Read a CSV/TSV export: decode, sniff the separator, parse every cell as text, number the rows."""
    body, codec, label, lead_lines = _prepare_text(name, data)
    sample = body[:_SNIFF_BYTES].decode(codec, errors="replace")
    delimiter = _sniff_delimiter(sample)
    # The header record may be longer than the sample (thousands of columns): count it whole.
    first_break = min((i for i in (body.find(b"\n"), body.find(b"\r")) if i >= 0), default=len(body))
    head = sample if first_break < _SNIFF_BYTES else body[: first_break + 1].decode(codec, errors="replace")
    header_fields = _header_fields(head, delimiter)
    _check_header_width(name, header_fields, lead_lines)
    bound = _Bound(name, limits, header_fields)
    frame, codec, label = _parse_text(body, delimiter, codec, label, name, lead_lines, bound)
    warnings: list[str] = []
    if codec == "cp1252":
        warnings.append(f"{name}: not UTF-8; read as cp1252")
    first_line = _first_lines(frame, body, lead_lines)
    cols = [np.asarray(frame[c], dtype=object) for c in frame.columns]
    cols, extra_cells = _cut_beyond_header(cols, header_fields, first_line)
    return RawTable(
        path=name,
        sha256=sha256,
        header=[str(h) for h in (col[0] for col in cols)],
        header_row=int(first_line[0]),
        cells=[col[1:] for col in cols],
        source_row=first_line[1:],
        encoding=label,
        warnings=warnings,
        extra_cells=dict(sorted(extra_cells.items())),
        delimiter=delimiter,
    )


def _header_fields(sample: str, delimiter: str) -> int:
    """How many cells the header record has (the first non-blank record of the sample)."""
    try:
        first = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    except csv.Error:
        return 1
    return max(len(first), 1)


# ---------------------------------------------------------------------------------------------
# Excel workbooks (python-calamine: .xlsx, .xlsm, .xls, .xlsb, .ods)
# ---------------------------------------------------------------------------------------------
def cell_text(value: Any) -> str:
    """An Excel cell as the text a person sees: numbers without a spurious ``.0``, dates in ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _open_zip(name: str, data: bytes) -> zipfile.ZipFile:
    """The workbook's zip, its table of contents checked (a zip bomb is refused before it is opened:
    only the central directory is read, no part is inflated)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise InputError(
            f"is not a readable Excel workbook (damaged zip: {e})",
            file=name,
            code="input-not-spreadsheet",
            hint="the file may be cut short or damaged; download or export it again",
        ) from None
    check_archive(
        name,
        archive.infolist(),
        what="workbook",
        max_total=MAX_ZIP_UNCOMPRESSED,
        code="input-suspicious-xlsx",
        hint="a real gradebook is far smaller; if this one is genuine, save it as .csv (no such "
        "limit) or split it into several files",
    )
    return archive


_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CELL_REF = re.compile(r"([A-Z]+)(\d+)")


def _error_cells(data: bytes, sheet: str) -> dict[tuple[int, int], str]:
    """``(row, column) → "#N/A"`` (0-based) for the error cells of an .xlsx sheet.

    python-calamine reads an error cell (``#N/A``, ``#VALUE!``, ``#REF!`` …) as an empty string,
    which would make a broken formula in a points column mean "no change". The sheet's XML says
    ``t="e"`` for those cells; only that is looked for (the zip was size-checked before).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
            rid = next(
                (e.get(f"{_NS_REL}id") for e in book.iter(f"{_NS_MAIN}sheet") if e.get("name") == sheet), None
            )
            target = next(
                (r.get("Target") for r in rels.iter(f"{_NS_PKG_REL}Relationship") if r.get("Id") == rid), None
            )
            if not target:
                return {}
            part = target.lstrip("/") if target.startswith("/") else "xl/" + target
            xml = archive.read(part)
        if b't="e"' not in xml:
            return {}
        cells = list(ElementTree.fromstring(xml).iter(f"{_NS_MAIN}c"))
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError, DefusedXmlException, ValueError, OSError):
        return {}  # not the usual layout (or not .xlsx at all): calamine's reading stands
    found: dict[tuple[int, int], str] = {}
    for cell in cells:
        m = _CELL_REF.fullmatch(cell.get("r") or "")
        if cell.get("t") != "e" or not m:
            continue
        col = 0
        for ch in m.group(1):
            col = col * 26 + ord(ch) - 64
        value = cell.find(f"{_NS_MAIN}v")
        found[(int(m.group(2)) - 1, col - 1)] = (value.text if value is not None else None) or "#ERROR"
    return found


def percent_text(value: Any, shown: str) -> str:
    """A percent-formatted number as Excel shows it: 0.55 → ``"55%"`` (exact: decimal, not float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return shown
    scaled = (Decimal(repr(float(value))) * 100).normalize()
    text = format(scaled, "f")
    return f"{text}%"


#: Excel's built-in number formats that are percentages (0% and 0.00%).
_BUILTIN_PERCENT = frozenset({9, 10})


def _sheet_part(archive: zipfile.ZipFile, sheet: str) -> str | None:
    book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    rid = next((e.get(f"{_NS_REL}id") for e in book.iter(f"{_NS_MAIN}sheet") if e.get("name") == sheet), None)
    target = next(
        (r.get("Target") for r in rels.iter(f"{_NS_PKG_REL}Relationship") if r.get("Id") == rid), None
    )
    if not target:
        return None
    return target.lstrip("/") if target.startswith("/") else "xl/" + target


def _percent_cells(data: bytes, sheet: str) -> list[tuple[int, int]]:
    """``(row, column)`` (0-based) of the sheet's numeric cells shown with a percent number format.

    Excel stores a typed ``55%`` as 0.55 with a percent format; python-calamine hands back 0.55, which
    would be planned as 0.55 points. The styles part says which cell formats are percentages.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            part = _sheet_part(archive, sheet)
            if part is None or "xl/styles.xml" not in archive.namelist():
                return []
            styles = ElementTree.fromstring(archive.read("xl/styles.xml"))
            custom = {
                int(f.get("numFmtId") or -1): f.get("formatCode") or ""
                for f in styles.iter(f"{_NS_MAIN}numFmt")
            }
            xfs_parent = styles.find(f"{_NS_MAIN}cellXfs")
            xfs = list(xfs_parent.iter(f"{_NS_MAIN}xf")) if xfs_parent is not None else []
            percent_styles = set()
            for k, xf in enumerate(xfs):
                fmt = int(xf.get("numFmtId") or 0)
                if fmt in _BUILTIN_PERCENT or "%" in re.sub(r'"[^"]*"|\\.', "", custom.get(fmt, "")):
                    percent_styles.add(str(k))
            if not percent_styles:
                return []
            xml = archive.read(part)
        cells = list(ElementTree.fromstring(xml).iter(f"{_NS_MAIN}c"))
    except (KeyError, zipfile.BadZipFile, ElementTree.ParseError, DefusedXmlException, ValueError, OSError):
        return []
    found = []
    for cell in cells:
        if cell.get("s") not in percent_styles or cell.get("t") not in (None, "n"):
            continue
        m = _CELL_REF.fullmatch(cell.get("r") or "")
        if not m:
            continue
        col = 0
        for ch in m.group(1):
            col = col * 26 + ord(ch) - 64
        found.append((int(m.group(2)) - 1, col - 1))
    return found


def _native_rows(
    name: str, data: bytes, sheet: str | None, archive: zipfile.ZipFile | None, limits: ReadLimits
) -> tuple[str, list[list[Any]]]:
    """The chosen sheet's cells as python-calamine reads them (the first sheet unless ``sheet``). With
    ``archive`` (an .xlsx), its sizes are checked before calamine sees them: the shared strings before
    the workbook is opened, the chosen sheet before it is read."""
    import python_calamine as pc

    protected = _protected(name)
    if archive is not None:
        check_shared_strings(name, archive, limits)
    try:
        workbook = pc.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except pc.PasswordError:
        raise protected from None
    except (pc.CalamineError, ValueError, OSError) as e:
        raise InputError(
            f"is not a readable Excel workbook ({e})",
            file=name,
            code="input-not-spreadsheet",
            hint="open it in Excel and save it again as .xlsx, or export the gradebook as .csv",
        ) from None
    names = list(workbook.sheet_names)
    if not names:
        raise InputError("the workbook has no sheets", file=name, code="input-empty")
    chosen = names[0] if sheet is None else sheet
    if chosen not in names:
        raise InputError(
            f"has no sheet named {chosen!r}",
            file=name,
            code="input-missing-sheet",
            hint="sheets in this workbook: " + ", ".join(repr(s) for s in names),
        )
    if archive is not None:
        check_sheet(name, archive, chosen, limits)
    try:
        rows = workbook.get_sheet_by_name(chosen).to_python(skip_empty_area=False)
    except (pc.CalamineError, ValueError, OSError) as e:
        raise InputError(
            f"sheet {chosen!r} cannot be read ({e})", file=name, code="input-not-spreadsheet"
        ) from None
    return chosen, rows


def _protected(name: str) -> InputError:
    return InputError(
        "is password-protected",
        file=name,
        code="input-encrypted",
        hint="open it in Excel, remove the password (File → Info → Protect Workbook) and save a copy",
    )


def _sheet_rows(name: str, data: bytes, sheet: str | None, limits: ReadLimits) -> tuple[str, list[list[Any]]]:
    """Rule: a native reader only ever sees a workbook whose size was checked first. An .xlsx's sizes
    are read from its XML (``_xlsx_size``); a format whose sizes cannot be read before parsing it
    (.xls, .xlsb, .ods) is parsed in a separate process with the memory and CPU limits (``_cage``), so
    a reader that aborts takes down only that process."""
    if data.startswith(_OLE_MAGIC) and "EncryptedPackage".encode("utf-16-le") in data:
        raise _protected(name)
    if data.startswith(_ZIP_MAGIC):
        with _open_zip(name, data) as archive:
            if "xl/workbook.xml" in archive.namelist():
                return _native_rows(name, data, sheet, archive, limits)
    return _cage.run(_native_rows, (name, data, sheet, None, limits), limits=limits.cage, files=[name])


def _load_workbook(name: str, data: bytes, sha256: str, sheet: str | None, limits: ReadLimits) -> RawTable:
    chosen, rows = _sheet_rows(name, data, sheet, limits)
    columns = max((len(r) for r in rows), default=0)
    if len(rows) > limits.max_rows or len(rows) * columns > limits.max_cells:
        raise too_large(  # only formats read in a separate process get here: an .xlsx is checked first
            name,
            f"sheet {chosen!r} has {len(rows):,} rows × {columns:,} columns, above [input] max_rows "
            f"({limits.max_rows:,}) or max_cells ({limits.max_cells:,})",
        )
    text_rows = [[cell_text(v) for v in row] for row in rows]
    if data.startswith(_ZIP_MAGIC):
        for r, c in _percent_cells(data, chosen):
            if r < len(rows) and c < len(rows[r]):
                text_rows[r][c] = percent_text(rows[r][c], text_rows[r][c])
    errors = _error_cells(data, chosen) if data.startswith(_ZIP_MAGIC) else {}
    for (r, c), text in errors.items():
        if r < len(text_rows) and c < len(text_rows[r]):
            text_rows[r][c] = text  # an Excel error is a value that is not a number, never a blank
    header_index = next((i for i, r in enumerate(text_rows) if any(c.strip() for c in r)), None)
    if header_index is None:
        raise InputError(
            f"sheet {chosen!r} is empty (no header row)", file=name, code="input-empty", hint=_EXPORT_HINT
        )
    width = max(len(r) for r in text_rows)
    body = text_rows[header_index + 1 :]
    cells = []
    for j in range(width):
        col = np.empty(len(body), dtype=object)
        col[:] = [r[j] if j < len(r) else "" for r in body]
        cells.append(col)
    header = text_rows[header_index] + [""] * (width - len(text_rows[header_index]))
    return RawTable(
        path=name,
        sha256=sha256,
        header=header,
        header_row=header_index + 1,
        cells=cells,
        source_row=np.arange(header_index + 2, header_index + 2 + len(body), dtype=np.int64),
        sheet=chosen,
        encoding=None,
    )
