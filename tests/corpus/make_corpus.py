"""Builds the corpus files that are binary, encoding-sensitive, large or made at test time.

Run ``.venv/bin/python tests/corpus/make_corpus.py`` to (re)write the committed ones next to this
script; the plain-text cases are committed as they are. ``expected.toml`` says what each case must give.

- ``write_committed()``: files whose bytes matter (BOM, cp1252, UTF-16, CRLF, CR-only, random binary)
  and small workbooks (several sheets, merged cells, formulas with cached values, a damaged one,
  identifiers as numbers and dates). ``encrypted.xlsx`` needs ``msoffcrypto-tool`` (not a project
  dependency: ``pip install --target /tmp/msoff msoffcrypto-tool`` and ``PYTHONPATH=/tmp/msoff``); the
  committed copy is kept when it is not installed.
- ``GENERATORS``: cases made in ``tmp_path`` at test time, never committed — a zip bomb renamed .xlsx,
  a 50 MB CSV, a folder, a file without read permission, a missing file.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import re
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl

HERE = Path(__file__).resolve().parent
HEADER = "section_id,assignment,student_id,points"
# SEC-1001 "Unit 1 Quiz" (max 10) in sample_data/tenant.json: 000101 holds 9.5, 000102 holds 2,
# 000103 has no points outcome yet (a create), 000105 holds 3.5.
GOOD = [
    ("SEC-1001", "Unit 1 Quiz", "000101", "7"),
    ("SEC-1001", "Unit 1 Quiz", "000102", "6"),
    ("SEC-1001", "Unit 1 Quiz", "000103", "5"),
]


def _lines(rows: list[tuple[str, ...]], sep: str = ",", header: str = HEADER) -> list[str]:
    return [header.replace(",", sep)] + [sep.join(r) for r in rows]


# ---------------------------------------------------------------------------------------------
# committed text files whose bytes matter
# ---------------------------------------------------------------------------------------------
def text_files() -> dict[str, bytes]:
    crlf = "\r\n".join(_lines(GOOD)) + "\r\n"
    cr = "\r".join(_lines([*GOOD[:2], ("SEC-1001", "Unit 1 Quiz", "000105", "x")])) + "\r"
    cp1252_rows = [
        ("SEC-1001", "Unit 1 Quiz", "000101", "7", "très bien – élève sérieux"),
        ("SEC-1001", "Unit 1 Quiz", "000102", "6", "à revoir – “soigné”"),
    ]
    cp1252 = "\r\n".join(_lines(cp1252_rows, header=HEADER + ",commentaire")) + "\r\n"
    utf16 = "\r\n".join(_lines([*GOOD[:2], ("SEC-1001", "Unit 1 Quiz", "000103", "5")], sep="\t")) + "\r\n"
    header_mess = " Section_ID ,ASSIGNMENT,  Student Id ,Points \n" + "\n".join(_lines(GOOD)[1:]) + "\n"
    rng = random.Random(6)
    garbage = bytes(rng.randrange(256) for _ in range(4096))
    return {
        "crlf.csv": crlf.encode(),
        "cr_only.csv": cr.encode(),
        "cp1252.csv": cp1252.encode("cp1252"),
        "utf16_tab.txt": "\ufeff".encode("utf-16-le") + utf16.encode("utf-16-le"),
        "header_bom_spaces_case.csv": b"\xef\xbb\xbf" + header_mess.encode(),
        "binary_garbage.csv": garbage,
        # Blackboard's "Work Offline" download with the Tab delimiter: UTF-16 LE text named .xls
        "tab_text_named.xls": "\ufeff".encode("utf-16-le") + utf16.encode("utf-16-le"),
        # a .csv that is tab-separated (a spreadsheet's "Text (Tab delimited)" saved as .csv)
        "tab_named.csv": ("\n".join(_lines(GOOD, sep="\t")) + "\n").encode(),
    }


# ---------------------------------------------------------------------------------------------
# committed workbooks
# ---------------------------------------------------------------------------------------------
def _save(wb: openpyxl.Workbook) -> bytes:
    wb.properties.creator = "gradesync corpus"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _rows(ws: Any, rows: list[list[Any]]) -> None:
    for row in rows:
        ws.append(row)


def _cached(data: bytes, sheet_part: str, cached: dict[str, tuple[str, str]]) -> bytes:
    """Give formula cells a cached value, as Excel saves them (openpyxl writes formulas without one).

    ``cached``: cell ref → (cell type: "n" number, "str" text, "e" error; the cached value).
    """
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info)
            if info.filename == sheet_part:
                xml = part.decode()
                for ref, (kind, value) in cached.items():
                    pattern = re.compile(rf'<c r="{ref}"[^>]*><f>(.*?)</f><v\s*/>')
                    xml, n = pattern.subn(rf'<c r="{ref}" t="{kind}"><f>\1</f><v>{value}</v>', xml)
                    if n != 1:
                        raise ValueError(f"formula cell {ref} not found in {sheet_part}")
                part = xml.encode()
            dst.writestr(info, part)
    return out.getvalue()


def excel_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    header = HEADER.split(",")

    # several sheets: the first is instructions, the grades are on "Grades" (needs --sheet)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Instructions"
    _rows(ws, [["Fill in the Grades sheet, one row per student and assignment."], ["Do not rename it."]])
    _rows(wb.create_sheet("Grades"), [header, *[[*r[:3], float(r[3])] for r in GOOD]])
    _rows(wb.create_sheet("Old grades"), [header, ["SEC-1001", "Unit 1 Quiz", "000101", 1]])
    files["multi_sheet.xlsx"] = _save(wb)

    # a merged title row above the header (a very common "report" export)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Grades"
    _rows(ws, [["Algebra I - P1 — Unit 1 Quiz grades"], header, *[[*r[:3], float(r[3])] for r in GOOD]])
    ws.merge_cells("A1:D1")
    files["merged_title.xlsx"] = _save(wb)

    # merged header cells: "Unit 1 Quiz" spans C1:D1 in a wide gradebook; D holds a comment
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Grades"
    _rows(
        ws,
        [
            ["Section ID", "Student ID", "Unit 1 Quiz", None, "Lab Report 1"],
            ["SEC-1001", "000101", 7, "late", 40],
            ["SEC-1001", "000102", 6, "", 30],
        ],
    )
    ws.merge_cells("C1:D1")
    files["merged_header_cells.xlsx"] = _save(wb)

    # formulas: cached values are read, formulas never evaluated; the cached values differ from what
    # evaluating would give, so a test can tell which one was read.
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Grades"
    _rows(
        ws,
        [
            header,
            ["SEC-1001", "Unit 1 Quiz", "000101", "=1+1"],  # cached 7
            ["SEC-1001", "Unit 1 Quiz", "000102", "=2+2"],  # no cached value: blank, no change
            ["SEC-1001", "Unit 1 Quiz", "000103", '=WEBSERVICE("http://x.invalid/")'],  # cached #VALUE!
            ["SEC-1001", "Unit 1 Quiz", '="0001"&"05"', 8],  # a formula id, cached text 000105
            ["SEC-1001", "Unit 1 Quiz", "000106", "=cmd|' /C calc'!A0"],  # DDE, cached #REF!
        ],
    )
    data = _save(wb)
    files["formulas.xlsx"] = _cached(
        data,
        "xl/worksheets/sheet1.xml",
        {
            "D2": ("n", "7"),
            "D4": ("e", "#VALUE!"),
            "C5": ("str", "000105"),
            "D6": ("e", "#REF!"),
        },
    )

    # identifiers as Excel keeps them: a number (lost zeros), text with zeros, a date
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Grades"
    _rows(
        ws,
        [
            header,
            ["SEC-1001", "Unit 1 Quiz", 101, 7],
            ["SEC-1001", "Unit 1 Quiz", "000102", 6],
            ["SEC-1001", "Unit 1 Quiz", dt.date(2024, 1, 5), 5],
            ["SEC-1001", "Unit 1 Quiz", "000105", 8.25],
        ],
    )
    ws["C4"].number_format = "yyyy-mm-dd"
    files["excel_ids.xlsx"] = _save(wb)

    # a download cut short
    files["truncated.xlsx"] = files["multi_sheet.xlsx"][:1500]
    return files


def encrypted_xlsx(plain: bytes, password: str = "s3cret") -> bytes | None:  # noqa: S107
    try:
        from msoffcrypto.format.ooxml import OOXMLFile  # type: ignore[import-not-found]
    except ImportError:
        return None
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(plain)).encrypt(password, out)
    return out.getvalue()


def legacy_biff_xls() -> bytes | None:
    """A real Excel 97-2003 workbook (BIFF8 in an OLE2 container). Needs ``xlwt`` (not a project
    dependency: ``pip install --target /tmp/xlwt xlwt`` and ``PYTHONPATH=/tmp/xlwt``); the committed copy
    is kept when it is not installed."""
    try:
        import xlwt  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        return None
    book = xlwt.Workbook()
    sheet = book.add_sheet("Grades")
    for r, row in enumerate([HEADER.split(","), *GOOD]):
        for c, value in enumerate(row):
            sheet.write(r, c, float(value) if r and c == 3 else value)  # points as numbers, ids as text
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def write_committed(dest: Path = HERE) -> list[Path]:
    written = []
    files = {**text_files(), **excel_files()}
    wb = openpyxl.Workbook()
    _rows(wb.active, [HEADER.split(","), [*GOOD[0][:3], 7]])
    enc = encrypted_xlsx(_save(wb))
    if enc is not None:
        files["encrypted.xlsx"] = enc
    biff = legacy_biff_xls()
    if biff is not None:
        files["legacy_biff.xls"] = biff
    for name, data in files.items():
        (dest / name).write_bytes(data)
        written.append(dest / name)
    return written


# ---------------------------------------------------------------------------------------------
# made at test time (never committed)
# ---------------------------------------------------------------------------------------------
def zip_bomb(tmp: Path, uncompressed_mb: int = 256) -> Path:
    """A real workbook whose sheet part inflates to ``uncompressed_mb`` MB of spaces (~1,000:1)."""
    wb = openpyxl.Workbook()
    _rows(wb.active, [HEADER.split(","), [*GOOD[0][:3], 7]])
    src = zipfile.ZipFile(io.BytesIO(_save(wb)))
    path = tmp / "zip_bomb.xlsx"
    chunk = b" " * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info)
            if info.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(info, part)
                continue
            head, tail = part.split(b"<sheetData>", 1)
            big = zipfile.ZipInfo(info.filename)
            big.compress_type = zipfile.ZIP_DEFLATED
            with dst.open(big, "w") as fh:
                fh.write(head + b"<sheetData>")
                for _ in range(uncompressed_mb):
                    fh.write(chunk)
                fh.write(tail)
    return path


def big_csv(tmp: Path, megabytes: int = 50) -> Path:
    """A ~50 MB long CSV (~1.3 M rows): the 3 ``GOOD`` rows, then SEC-1001 rows for 10,000 students and
    as many assignments as it takes ("Quiz 0001", …) that the class does not have.

    Like a district-wide export run against one school's tenant: distinct (class, assignment, student)
    keys, a few distinct values per column, so reading and planning stay quick.
    """
    path = tmp / "big_50mb.csv"
    target = megabytes * 1_000_000
    students = [f"S{n:05d}" for n in range(10_000)]
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(_lines(GOOD)) + "\n")
        size = fh.tell()
        a = 0
        while size < target:
            a += 1
            block = "".join(f"SEC-1001,Quiz {a:04d},{s},{n % 10}\n" for n, s in enumerate(students))
            fh.write(block)
            size += len(block)
    return path


def directory(tmp: Path) -> Path:
    path = tmp / "grades_folder.csv"
    path.mkdir()
    return path


def no_permission(tmp: Path) -> Path:
    path = tmp / "no_permission.csv"
    path.write_text("\n".join(_lines(GOOD)) + "\n")
    path.chmod(0)
    return path


def missing(tmp: Path) -> Path:
    return tmp / "does_not_exist.csv"


GENERATORS: dict[str, Callable[[Path], Path]] = {
    "zip_bomb": zip_bomb,
    "big_csv": big_csv,
    "directory": directory,
    "no_permission": no_permission,
    "missing": missing,
}


if __name__ == "__main__":
    for p in write_committed():
        print(p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p)
    if not (HERE / "encrypted.xlsx").exists():
        print("encrypted.xlsx not written: msoffcrypto-tool is not installed", file=sys.stderr)
