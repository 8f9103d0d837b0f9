"""How big an .xlsx says its sheet is, read from its XML before the native reader sees it.

python-calamine allocates a sheet as one rectangle from the top-left cell to the furthest cell the
sheet's XML names, and its shared-string table at the size the table declares; neither is checked,
and a failed allocation aborts the whole process (SIGABRT), which no ``except`` can catch. One cell
written at ``XFD1048576`` in a 5 KB workbook asks for about 550 GB. So the shared-string table's
declared counts and the chosen sheet's every row and cell reference (and its ``<dimension>``) are
read here first, and the workbook is refused when they name a cell outside Excel's grid or declare
more than ``[input] max_rows`` rows or ``[input] max_cells`` cells (the rectangle, not the cells
actually present).

The XML is read by expat with defusedxml's protections (no DTD, no entities, no external
references), as a stream in 1 MB pieces (constant memory), calling back only on start tags: about
5 s of CPU for the largest sheet Excel can hold (a million rows × 4 columns, 158 MB of XML), and
milliseconds for a class's gradebook.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from typing import NoReturn
from xml.parsers.expat import ExpatError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError, fromstring

from gradesync.errors import InputError
from gradesync.read.limits import MAX_COLUMNS, MAX_SHEET_ROWS, ReadLimits

__all__ = ["check_shared_strings", "check_sheet"]

_PIECE = 1024 * 1024
_CELL_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?([0-9]{1,7})")
_DIGITS = "0123456789"
_BAD_ZIP = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError)
_BAD_XML = (ExpatError, ParseError, DefusedXmlException)
_SHEET_ROOTS = frozenset({"worksheet", "dialogsheet", "macrosheet", "chartsheet"})
_HINT = (
    "a gradebook's sheet is far smaller: open the workbook in Excel, delete the rows and columns after "
    "the grades (or copy the grades to a new workbook) and save it, or save it as .csv"
)


class _Stop(Exception):
    """Raised from a start-tag callback once the root element has said what a part is."""


class _NoTarget:
    """A parser target with no callbacks: only the start tags this module installs are seen."""


def _parser() -> DefusedXMLParser:
    parser = DefusedXMLParser(target=_NoTarget(), forbid_dtd=True)
    parser.parser.DefaultHandlerExpand = None  # text and comments: not looked at
    return parser


def _local(tag: str) -> str:
    return tag.rpartition("}")[2].rpartition(":")[2]


def _damaged(name: str, part: str, e: BaseException) -> InputError:
    """A part that cannot be read or parsed. Refused rather than skipped: a native reader may be more
    lenient than expat and read past the point where this check stopped."""
    what = "XML a spreadsheet program never writes" if isinstance(e, DefusedXmlException) else "damaged"
    return InputError(
        f"is not a readable Excel workbook (part {part} is {what}: {e})",
        file=name,
        code="input-not-spreadsheet",
        hint="the file may be cut short or damaged; download or export it again, or open it in Excel and "
        "save it again",
    )


# ---------------------------------------------------------------------------------------------
# The shared-string table: its declared counts
# ---------------------------------------------------------------------------------------------
def check_shared_strings(name: str, archive: zipfile.ZipFile, limits: ReadLimits) -> None:
    """Rule: a shared-string table declares at most ``max_cells`` strings (calamine reserves room for
    every declared string before reading one). Every XML part's first element is looked at, so the
    table is found wherever the workbook keeps it."""
    for info in archive.infolist():
        if info.is_dir() or not info.filename.lower().endswith(".xml"):
            continue
        root, attrs = _root(name, archive, info)
        if root != "sst":
            continue
        for key in ("uniqueCount", "count"):
            value = attrs.get(key, "")
            if value and (not value.isdigit() or int(value) > limits.max_cells):
                raise InputError(
                    f"refused: its shared strings ({info.filename}) declare {key}={value[:20]!r}, more "
                    f"than the {limits.max_cells:,} cells a sheet may have ([input] max_cells); the "
                    "workbook was not opened",
                    file=name,
                    code="input-sheet-too-large",
                    hint=_HINT,
                )


def _root(name: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, dict[str, str]]:
    """A part's first element: its local name and attributes ("" when it is not XML)."""
    found: list[tuple[str, dict[str, str]]] = []

    def start(tag: str, attrs: list[str]) -> None:
        found.append((_local(tag), {_local(k): v for k, v in zip(attrs[::2], attrs[1::2], strict=True)}))
        raise _Stop

    parser = _parser()
    parser.parser.StartElementHandler = start
    try:
        with archive.open(info) as stream:
            while not found and (piece := stream.read(64 * 1024)):
                parser.parser.Parse(piece, False)
    except _Stop:
        pass
    except (*_BAD_XML, *_BAD_ZIP) as e:
        raise _damaged(name, info.filename, e) from None
    return found[0] if found else ("", {})


# ---------------------------------------------------------------------------------------------
# The chosen sheet: its rectangle
# ---------------------------------------------------------------------------------------------
def check_sheet(name: str, archive: zipfile.ZipFile, sheet: str, limits: ReadLimits) -> None:
    """Refuse the workbook when sheet ``sheet`` names a cell outside Excel's grid, or a rectangle of
    more than ``max_rows`` rows or ``max_cells`` cells. Every part the sheet's relationship could
    point at is read (readers resolve a relationship's target in slightly different ways)."""
    parts = _sheet_parts(name, archive, sheet) or _every_sheet_part(name, archive)
    for part in parts:
        extent = _SheetExtent(name, f'sheet "{sheet}"', limits)
        parser = _parser()
        parser.parser.StartElementHandler = extent.start
        try:
            with archive.open(part) as stream:
                while piece := stream.read(_PIECE):
                    parser.parser.Parse(piece, False)
                parser.parser.Parse(b"", True)
        except (*_BAD_XML, *_BAD_ZIP) as e:
            raise _damaged(name, part, e) from None


def _every_sheet_part(name: str, archive: zipfile.ZipFile) -> list[str]:
    """Every part whose first element is a sheet: when the workbook's own index does not lead to the
    chosen sheet, whatever the native reader finds is among these."""
    return [
        info.filename
        for info in archive.infolist()
        if not info.is_dir()
        and info.filename.lower().endswith(".xml")
        and _root(name, archive, info)[0] in _SHEET_ROOTS
    ]


def _sheet_parts(name: str, archive: zipfile.ZipFile, sheet: str) -> list[str]:
    """The parts of ``archive`` that sheet ``sheet``'s relationship may mean, every reading of it."""
    try:
        book = fromstring(archive.read("xl/workbook.xml"), forbid_dtd=True)
        rels = fromstring(archive.read("xl/_rels/workbook.xml.rels"), forbid_dtd=True)
    except KeyError:
        return []
    except (*_BAD_XML, *_BAD_ZIP) as e:
        raise _damaged(name, "xl/workbook.xml", e) from None
    targets = {r.get("Id"): r.get("Target") or "" for r in rels.iter() if _local(r.tag) == "Relationship"}
    present = set(archive.namelist())
    parts: list[str] = []
    for element in book.iter():
        if _local(element.tag) != "sheet" or element.get("name") != sheet:
            continue
        rid = next((v for k, v in element.attrib.items() if _local(k) == "id"), None)
        target = targets.get(rid, "")
        if not target:
            continue
        stripped = target.lstrip("/")
        readings = {stripped, "xl/" + stripped, posixpath.normpath("xl/" + target), target}
        parts += sorted(p for p in readings if p in present and p not in parts)
    return parts


class _SheetExtent:
    """The furthest cell one sheet part names (its rectangle's bottom-right corner, 1-based),
    refused as soon as it is too far. Called back on every start tag of the part."""

    __slots__ = (
        "_kinds",
        "_letters",
        "_row_text",
        "column",
        "columns",
        "limits",
        "name",
        "row",
        "rows",
        "where",
    )

    def __init__(self, name: str, where: str, limits: ReadLimits) -> None:
        self.name, self.where, self.limits = name, where, limits
        self.rows = self.columns = 0  # the rectangle so far
        self.row = self.column = 0  # the current row, and the current cell's column
        self._kinds: dict[str, str] = {}  # tag → its local name (expat gives the same str each time)
        self._letters: dict[str, int] = {}  # "XFD" → 16384
        self._row_text = "0"  # the current row's number as written

    def start(self, tag: str, attrs: list[str]) -> None:
        kind = self._kinds.get(tag)
        if not kind:  # a value, a formula, anything that is neither a cell, a row nor the dimension
            if kind is not None:
                return
            local = _local(tag)
            kind = self._kinds[tag] = local if local in ("c", "row", "dimension") else ""
            if not kind:
                return
        if kind == "c":
            # The usual cell, as spreadsheet programs write it: its reference is a column already
            # seen followed by the current row's number, inside the rectangle so far. Nothing to do
            # but note its column. (A reference split wrongly here leaves digits in the "column",
            # which is never among the columns seen: it goes the long way, as everything else does.)
            if attrs and attrs[0] == "r" and self.row <= self.rows:
                ref = attrs[1]
                if ref.endswith(self._row_text):
                    column = self._letters.get(ref[: len(ref) - len(self._row_text)])
                    if column is not None and column <= self.columns:
                        self.column = column
                        return
            self._cell(_attr(attrs, "r"))
        elif kind == "row":
            self._row(_attr(attrs, "r"))
        elif kind == "dimension":
            self._dimension(_attr(attrs, "ref") or "")

    def _row(self, ref: str | None) -> None:
        """A row's number is checked; only its cells grow the rectangle (an empty row allocates nothing)."""
        if ref is None:
            self.row += 1
        elif ref.isdigit() and 0 < int(ref) <= MAX_SHEET_ROWS:
            self.row = int(ref)
        else:
            self._refuse(f'row number "{ref[:20]}" is not a row Excel can have (1 to {MAX_SHEET_ROWS:,})')
        self.column = 0
        self._row_text = str(self.row)

    def _cell(self, ref: str | None) -> None:
        if ref is None:  # a cell without a reference follows the previous one
            self.column += 1
            self._grow(max(self.row, 1), self.column, f"cell {self.column} of row {max(self.row, 1)}")
            return
        letters = ref.rstrip(_DIGITS)
        column = self._letters.get(letters)
        digits = ref[len(letters) :]
        if column is None or not digits.isdigit() or len(digits) > 7:
            row, column = self._position(ref, "cell")
            self._letters[letters] = column
        else:
            row = int(digits)
            if not 0 < row <= MAX_SHEET_ROWS:
                self._position(ref, "cell")  # refuses it, naming the cell
        self.row, self.column = max(self.row, row), column
        self._row_text = str(self.row)
        if row > self.rows or column > self.columns:
            self._grow(row, column, f"cell {ref}")

    def _dimension(self, ref: str) -> None:
        corners = [self._position(corner, "dimension") for corner in ref.split(":") if corner]
        if corners:
            row, column = max(r for r, _ in corners), max(c for _, c in corners)
            self._grow(row, column, f'the declared dimension "{ref[:40]}"')

    def _position(self, ref: str, what: str) -> tuple[int, int]:
        m = _CELL_REF.fullmatch(ref)
        if not m:
            self._refuse(f'{what} reference "{ref[:20]}" is not a cell Excel can have')
        column = 0
        for ch in m.group(1).upper():
            column = column * 26 + ord(ch) - 64
        row = int(m.group(2))
        if not (0 < row <= MAX_SHEET_ROWS and 0 < column <= MAX_COLUMNS):
            self._refuse(
                f'{what} reference "{ref}" is outside Excel\'s {MAX_SHEET_ROWS:,} × {MAX_COLUMNS:,} grid'
            )
        return row, column

    def _grow(self, row: int, column: int, where: str) -> None:
        if column > MAX_COLUMNS:  # cells without a reference can count past the last column
            self._refuse(f"{where} is past Excel's last column ({MAX_COLUMNS:,})")
        rows, columns = max(self.rows, row), max(self.columns, column)
        if rows > self.limits.max_rows:
            self._refuse(
                f"{where} makes it {rows:,} rows long, above [input] max_rows ({self.limits.max_rows:,})"
            )
        if rows * columns > self.limits.max_cells:
            self._refuse(
                f"{where} makes it {rows:,} rows × {columns:,} columns = {rows * columns:,} cells, above "
                f"[input] max_cells ({self.limits.max_cells:,}); a reader sets memory aside for every cell "
                "of that rectangle"
            )
        self.rows, self.columns = rows, columns

    def _refuse(self, why: str) -> NoReturn:
        raise InputError(f"refused, {self.where} was not read: {why}", file=self.name,
                         code="input-sheet-too-large", hint=_HINT)  # fmt: skip


def _attr(attrs: list[str], key: str) -> str | None:
    """An attribute of expat's ordered list ``[name, value, …]`` (``r`` is usually the first); an
    attribute of that local name in any namespace counts too, in case a reader ignores the prefix."""
    if attrs and attrs[0] == key:
        return attrs[1]
    for i in range(0, len(attrs), 2):
        if attrs[i] == key or attrs[i].endswith("}" + key):
            return attrs[i + 1]
    return None
