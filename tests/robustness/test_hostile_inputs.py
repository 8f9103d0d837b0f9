"""Hostile and broken input files: each is refused with exit 2 and a message naming the file (and the
sheet, cell, line or member), never a traceback, a native abort (134) or an internal error (70).

The files are built here, small (the largest inflates to 20 MB), from a workbook openpyxl writes and
the OneRoster sample bundle; a limit a test must cross cheaply is lowered through its ``[input]``
setting, as an operator would. The gigabyte-sized versions are ``benchmarks/hostile_inputs.py``
(``make robustness``). Cases that aborted the process before are run through the CLI in a
subprocess, so a regression fails the test instead of killing the test run; the others read in
this process.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hostile import bomb_member, bundle, far_cell_workbook, lying_member, run_cli, sample_members

from gradesync.config import InputSettings, Settings
from gradesync.errors import InputError
from gradesync.read import read_inputs

CLOSED_GRAPH = {"GRADESYNC_GRAPH_URL": "http://127.0.0.1:9/v1.0", "GRADESYNC_ACCESS_TOKEN": "t"}


def _settings(**input_kw: object) -> Settings:
    return Settings(input=InputSettings(**input_kw))


def _refused(result_stderr: str, code: str, *needles: str) -> None:
    assert f"error [{code}]" in result_stderr, result_stderr[-3000:]
    for needle in needles:
        assert needle in result_stderr, (needle, result_stderr[-3000:])
    for crash in ("Traceback", "panicked", "internal error", "RUST_BACKTRACE"):
        assert crash not in result_stderr, result_stderr[-3000:]


def _rewrite(path: Path, part: str, edit: object) -> Path:
    """Rewrite one part of a zip (``edit``: bytes → bytes), keeping the others as they are."""
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    parts[part] = edit(parts[part])  # type: ignore[operator]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


def _with_shared_strings(path: Path) -> Path:
    """Give an openpyxl workbook (inline strings) a shared-string table as Excel writes one: the part,
    its relationship and its content type (ECMA-376 Part 1, 18.4)."""
    main = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    sst = b'<sst xmlns="' + main + b'" count="1" uniqueCount="1"><si><t>class</t></si></sst>'
    rel = (
        b'<Relationship Id="rIdSst" Target="sharedStrings.xml" Type="http://schemas.openxmlformats.org/'
        b'officeDocument/2006/relationships/sharedStrings"/></Relationships>'
    )
    kind = (
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
    )
    with zipfile.ZipFile(path) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    parts["xl/sharedStrings.xml"] = sst
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>", rel
    )
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(b"</Types>", kind)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return path


# --------------------------------------------------------------------------- workbooks
def test_a_workbook_with_a_cell_at_XFD1048576_is_exit_2_naming_sheet_and_cell(tmp_path: Path) -> None:
    workbook = far_cell_workbook(tmp_path / "term1.xlsx")
    assert workbook.stat().st_size < 10_000
    result = run_cli("plan", str(workbook), "--out", str(tmp_path / "plan.json"), env=CLOSED_GRAPH)
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    _refused(result.stderr, "input-sheet-too-large", "term1.xlsx", 'sheet "Grades"', "XFD1048576")


def test_the_same_workbook_as_a_bundles_results_csv_is_exit_2(tmp_path: Path) -> None:
    members = sample_members()
    members["results.csv"] = far_cell_workbook(tmp_path / "results.xlsx").read_bytes()
    zipped = bundle(tmp_path / "gradebook.zip", members)
    result = run_cli("inspect", str(zipped), "--offline")
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    _refused(result.stderr, "input-sheet-too-large", f"{zipped}!results.csv", "XFD1048576")


@pytest.mark.parametrize(
    ("what", "part", "edit", "needle"),
    [
        (
            "a shared-string table declaring four billion strings",
            "xl/sharedStrings.xml",
            lambda x: re.sub(rb'uniqueCount="\d+"', b'uniqueCount="4000000000"', x),
            "4000000000",
        ),
        (
            "a cell reference below Excel's last row",
            "xl/worksheets/sheet1.xml",
            lambda x: x.replace(b'r="D2"', b'r="D99999999999"', 1),
            "D99999999999",
        ),
        (
            "cells without references, 16,000 across, then one in the last row",
            "xl/worksheets/sheet1.xml",
            lambda x: x.replace(
                b"</row></sheetData>",
                b'</row><row r="3">'
                + b"<c><v>1</v></c>" * 16_000
                + b'</row><row r="1048576"><c r="A1048576"><v>1'
                b"</v></c></row></sheetData>",
            ),
            "1,048,576 rows × 16,000 columns",
        ),
        (
            "a declared dimension of the whole grid",
            "xl/worksheets/sheet1.xml",
            lambda x: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', x),
            "A1:XFD1048576",
        ),
    ],
)
def test_workbook_sizes_are_checked_before_the_reader(
    tmp_path: Path, what: str, part: str, edit: object, needle: str
) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Grades"
    ws.append(["class", "assignment", "student", "points"])
    ws.append(["SEC-1001", "Unit 1 Quiz", "000101", 9])
    path = tmp_path / "grades.xlsx"
    wb.save(path)
    _with_shared_strings(path)
    assert len(read_inputs([path], _settings()).frame) == 1  # as written, it reads
    _rewrite(path, part, edit)
    result = run_cli("inspect", str(path), "--offline")
    assert result.returncode == 2, (what, result.returncode, result.stderr[-3000:])
    _refused(result.stderr, "input-sheet-too-large", "grades.xlsx", needle)


def test_sheet_rows_and_cells_follow_the_settings(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["class", "assignment", "student", "points"])
    for i in range(30):
        ws.append(["SEC-1001", "Unit 1 Quiz", f"{i:06d}", i % 10])
    path = tmp_path / "grades.xlsx"
    wb.save(path)
    assert len(read_inputs([path], _settings()).frame) == 30
    with pytest.raises(InputError) as rows:
        read_inputs([path], _settings(max_rows=20))
    assert rows.value.code == "input-sheet-too-large" and "max_rows" in rows.value.message
    assert "A1:D31" in rows.value.message  # the declared dimension comes first in the sheet
    with pytest.raises(InputError) as cells:
        read_inputs([path], _settings(max_cells=100))
    assert cells.value.code == "input-sheet-too-large" and "max_cells" in cells.value.message


def test_a_binary_workbook_is_read_in_a_separate_process(tmp_path: Path) -> None:
    """.xls/.xlsb/.ods sizes cannot be read before parsing them: the parse runs caged, and its
    refusal comes back as the same InputError."""
    path = tmp_path / "legacy.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4096)  # an OLE header, no workbook
    with pytest.raises(InputError) as e:
        read_inputs([path], _settings())
    assert e.value.code == "input-not-spreadsheet" and e.value.file == str(path)


# --------------------------------------------------------------------------- text
def test_a_line_longer_than_the_limit_is_refused_while_reading(tmp_path: Path) -> None:
    rows = ["class,assignment,student,points,comment"] + [
        f"SEC-1001,Unit 1 Quiz,{i:06d},9," for i in range(5)
    ]
    rows[3] += "x" * 3000  # a 3 KB comment on line 4
    path = tmp_path / "grades.csv"
    path.write_text("\n".join(rows) + "\n")
    assert len(read_inputs([path], _settings()).frame) == 5
    with pytest.raises(InputError) as e:
        read_inputs([path], _settings(max_line_kb=2))
    assert e.value.code == "input-line-too-long" and e.value.file == str(path)
    assert "line 4 " in e.value.message and "max_line_kb" in e.value.message


@pytest.mark.parametrize("separators", [True, False])
def test_a_single_line_file_is_refused_by_the_line_limit(tmp_path: Path, separators: bool) -> None:
    line = ("12," * 400_000) if separators else ("1" * 1_200_000)
    path = tmp_path / "one-line.csv"
    path.write_text(line)
    with pytest.raises(InputError) as e:
        read_inputs([path], _settings(max_line_kb=1024))
    assert e.value.code == "input-line-too-long" and "line 1 " in e.value.message


def test_text_rows_cells_and_size_follow_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "grades.csv"
    path.write_text(
        "class,assignment,student,points\n" + "".join(f"SEC-1001,Quiz,{i:06d},9\n" for i in range(30))
    )
    assert len(read_inputs([path], _settings(max_rows=31)).frame) == 30  # the header is a row too
    for limit, setting in (({"max_rows": 20}, "max_rows"), ({"max_cells": 60}, "max_cells")):
        with pytest.raises(InputError) as e:
            read_inputs([path], _settings(**limit))
        assert e.value.code == "input-too-large" and setting in e.value.message, e.value.message
    big = tmp_path / "big.csv"
    big.write_bytes(path.read_bytes() * 2000)  # about 2 MB
    with pytest.raises(InputError) as e:
        read_inputs([big], _settings(max_file_mb=1))
    assert e.value.code == "input-too-large" and "max_file_mb" in e.value.message


def test_rows_ever_wider_with_a_huge_cell_are_exit_2(tmp_path: Path) -> None:
    """Rows that keep widening send the reader to measure the widest row with Python's csv module,
    whose 128 K-character field limit raised out of the reader (exit 70)."""
    rows, width = ["student,points"], 2
    for _ in range(9):
        width = 2 * width + 1
        rows.append(",".join(["x"] * width))
    rows.append("000101," + "9" * 200_000)
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError) as e:
        read_inputs([path], _settings(class_key="SEC-1001"))
    assert e.value.code == "input-ragged-row" and e.value.file == str(path)


def test_a_header_wider_than_a_spreadsheet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(
        "student," + ",".join(f"Quiz {i}" for i in range(17_000)) + "\n000101" + ",9" * 17_000 + "\n"
    )
    with pytest.raises(InputError) as e:
        read_inputs([path], _settings(class_key="SEC-1001"))
    assert e.value.code == "input-too-wide" and "17,001" in e.value.message


# --------------------------------------------------------------------------- OneRoster bundles
def test_a_zip_bomb_bundle_is_refused_before_inflating(tmp_path: Path) -> None:
    members = sample_members()
    members["results.csv"] = bomb_member(20)
    zipped = bundle(tmp_path / "bomb.zip", members)
    assert zipped.stat().st_size < 100_000  # 20 MB of results in a few dozen KB
    with pytest.raises(InputError) as e:
        read_inputs([zipped], _settings())
    assert e.value.code == "input-suspicious-zip" and e.value.file == str(zipped)
    assert "times" in e.value.message


def test_a_bundle_larger_than_max_file_mb_uncompressed_is_refused(tmp_path: Path) -> None:
    zipped = bundle(
        tmp_path / "big.zip", extra={"users.csv": b"".join(b"%07d,x\n" % i for i in range(200_000))}
    )
    assert read_inputs([zipped], _settings()).inputs  # 1.8 MB of users: read with the default limits
    with pytest.raises(InputError) as e:
        read_inputs([zipped], _settings(max_file_mb=1))
    assert e.value.code == "input-suspicious-zip" and "limit 1 MB" in e.value.message


@pytest.mark.parametrize("lie", ["crc", "size"])
def test_a_member_that_lies_about_itself_is_exit_2(tmp_path: Path, lie: str) -> None:
    zipped = lying_member(tmp_path / "gradebook.zip", lie)
    with pytest.raises(InputError) as e:
        read_inputs([zipped], _settings())
    assert e.value.code == "input-corrupt-zip" and e.value.file == f"{zipped}!results.csv"
    assert e.value.exit_code == 2


def test_members_whose_names_differ_only_by_case_are_refused_naming_both(tmp_path: Path) -> None:
    members = sample_members()
    zero = members["results.csv"].replace(b",9.5,", b",0,")  # the twin says 0 where the export says 9.5
    zipped = bundle(tmp_path / "gradebook.zip", members, extra={"RESULTS.csv": zero})
    with pytest.raises(InputError) as e:
        read_inputs([zipped], _settings())
    assert e.value.code == "input-ambiguous-bundle"
    assert '"results.csv"' in e.value.message and '"RESULTS.csv"' in e.value.message


def test_two_lineitems_files_for_one_results_file_are_refused_naming_both(tmp_path: Path) -> None:
    for folder in ("export", "term1", "term2"):
        (tmp_path / folder).mkdir()
    members = sample_members()
    (tmp_path / "export" / "results.csv").write_bytes(members["results.csv"])
    for folder in ("term1", "term2"):
        (tmp_path / folder / "lineItems.csv").write_bytes(members["lineItems.csv"])
    given = [
        tmp_path / "export" / "results.csv",
        tmp_path / "term1" / "lineItems.csv",
        tmp_path / "term2" / "lineItems.csv",
    ]
    with pytest.raises(InputError) as e:
        read_inputs(given, _settings())
    assert e.value.code == "input-ambiguous-files"
    assert str(given[1]) in e.value.message and str(given[2]) in e.value.message
    # the one beside the results file is not ambiguous
    (tmp_path / "export" / "lineItems.csv").write_bytes(members["lineItems.csv"])
    beside = read_inputs([*given, tmp_path / "export" / "lineItems.csv"], _settings())
    assert len(beside.frame) == len(read_inputs([tmp_path / "export" / "results.csv"], _settings()).frame)


def test_a_zip_member_is_a_typed_value(tmp_path: Path) -> None:
    from gradesync.read import ZipMember

    zipped = bundle(tmp_path / "gradebook.zip")
    read = read_inputs([zipped], _settings())
    (results,) = read.files
    assert results.member == ZipMember(str(zipped), "results.csv")
    assert results.path == str(results.member) == f"{zipped}!results.csv"  # how people see it
    assert read.inputs[0].path == f"{zipped}!results.csv"
    assert set(read.frame["source_file"]) == {f"{zipped}!results.csv"}


def test_a_folder_with_an_exclamation_mark_is_just_a_folder(tmp_path: Path) -> None:
    """A results.csv in ``term!1/`` is a file of its own: the lineItems.csv beside it is found (no
    path text is taken apart to tell files from zip members)."""
    folder = tmp_path / "term!1"
    folder.mkdir()
    members = sample_members()
    for name in ("results.csv", "lineItems.csv"):
        (folder / name).write_bytes(members[name])
    read = read_inputs([folder / "results.csv"], _settings())
    assert read.files[0].member is None and len(read.frame) > 0
    assert any("beside it" in w for w in read.warnings)


def test_inspect_names_bundle_members_as_text(tmp_path: Path) -> None:
    from gradesync.read.inspect import inspect_inputs

    zipped = bundle(tmp_path / "gradebook.zip")
    inspection = json.loads(json.dumps(inspect_inputs([zipped], _settings()).asdict(), default=str))
    assert inspection["files"][0]["path"] == f"{zipped}!results.csv"
