"""Files → text cells: encodings, delimiters, quoted newlines, Excel, unreadable inputs."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from read_testkit import col, read, write, xlsx

from gradesync.errors import InputError
from gradesync.models import DESIRED_CODED, DESIRED_COLUMNS

LONG = "Class ID,Assignment,Student ID,Points\nS1,Quiz,00123,85\nS1,Quiz,00124,90.5\n"


@pytest.mark.parametrize(
    ("prefix", "codec", "label"),
    [
        (b"", "utf-8", "utf-8"),
        (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
    ],
)
def test_unicode_encodings(tmp_path: Path, prefix: bytes, codec: str, label: str) -> None:
    text = "Class ID,Assignment,Student ID,Points\nS1,Análisis ünit,00123,85\n"
    result = read(write(tmp_path, "g.csv", prefix + text.encode(codec)))
    assert col(result, "assignment_key") == ["Análisis ünit"]
    assert col(result, "student_key") == ["00123"]
    assert result.inputs[0].encoding == label
    assert result.warnings == []


def test_cp1252_fallback_warns_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "legacy.csv", LONG.replace("Quiz", "Quiz – Café"), encoding="cp1252")
    result = read(path)
    assert col(result, "assignment_key") == ["Quiz – Café", "Quiz – Café"]
    assert result.inputs[0].encoding == "cp1252 (fallback)"
    assert result.warnings == [f"{path}: not UTF-8; read as cp1252"]


def test_cp1252_byte_after_a_long_utf8_prefix(tmp_path: Path) -> None:
    rows = "".join(f"S1,Quiz,{i:05d},1\n" for i in range(20_000))  # > the sniffing sample
    path = write(
        tmp_path, "late.csv", ("Class,Assignment,Student,Points\n" + rows).encode() + b"S1,Caf\xe9,9,1\n"
    )
    result = read(path)
    assert col(result, "assignment_key")[-1] == "Café"
    assert result.warnings == [f"{path}: not UTF-8; read as cp1252"]


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_delimiters_are_sniffed(tmp_path: Path, delimiter: str) -> None:
    rows = [["Class", "Assignment", "Student", "Points"], ["S1", "Quiz 1", "00123", "85"]]
    text = "\n".join(delimiter.join(r) for r in rows) + "\n"
    result = read(write(tmp_path, "g.txt", text))
    assert col(result, "assignment_key") == ["Quiz 1"]
    assert col(result, "points_raw") == ["85"]


def test_semicolon_header_with_commas_in_values(tmp_path: Path) -> None:
    text = "a;b;c;class;assignment;student;points\nx,y;1;2;S1;Quiz;7;8,5\n"
    result = read(write(tmp_path, "g.csv", text))
    assert col(result, "points_raw") == ["8,5"]
    assert col(result, "reason") == ["invalid_points"]


def test_quoted_newlines_and_row_numbers(tmp_path: Path) -> None:
    text = (
        "Class,Assignment,Student,Points\r\n"  # row 1
        "S1,Quiz,1,10\r\n"  # row 2
        "\r\n"  # row 3: blank, skipped but counted
        'S1,"Essay\r\n(draft)",2,20\r\n'  # rows 4-5
        "S1,Quiz,3,30\r\n"  # row 6
        ",,,\r\n"  # row 7: every cell blank, skipped
        'S1,"a\nb\nc",4,40\n'  # rows 8-10
        "S1,Quiz,5,50\n"  # row 11
    )
    result = read(write(tmp_path, "g.csv", text))
    assert col(result, "source_row") == [2, 4, 6, 8, 11]
    assert col(result, "assignment_key")[1] == "Essay\r\n(draft)"
    assert col(result, "row_key") == [0, 1, 2, 3, 4]


def test_leading_blank_lines_count_as_rows(tmp_path: Path) -> None:
    result = read(write(tmp_path, "g.csv", "\n\n" + LONG))
    assert col(result, "source_row") == [4, 5]


def test_whitespace_only_row_is_skipped(tmp_path: Path) -> None:
    result = read(write(tmp_path, "g.csv", LONG + "  ,  ,  ,  \nS1,Quiz,00125,1\n"))
    assert col(result, "student_key") == ["00123", "00124", "00125"]
    assert col(result, "row_key") == [0, 1, 2]
    assert result.inputs[0].rows == 3


def test_frame_contract(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", LONG)
    result = read(path)
    assert list(result.frame.columns) == list(DESIRED_COLUMNS)
    assert {k: str(v) for k, v in result.frame.dtypes.items()} == {
        k: ("category" if k in DESIRED_CODED else v) for k, v in DESIRED_COLUMNS.items()
    }
    for k in DESIRED_CODED:  # categoricals of plain text: they read as the strings they hold
        assert all(type(v) is str for v in result.frame[k].tolist())
        assert result.frame[k].astype(DESIRED_COLUMNS[k]).tolist() == result.frame[k].tolist()
    assert col(result, "source_file") == [str(path)] * 2
    assert col(result, "source_sheet") == ["", ""]
    assert col(result, "source_column") == ["Points", "Points"]
    info = result.inputs[0]
    import hashlib

    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (info.path, info.rows, info.sheet) == (str(path), 2, None)


def test_leading_zero_ids_in_csv(tmp_path: Path) -> None:
    text = "Class,Assignment,Student,Points\n007,Quiz,00123,85\n0,Quiz,1.23E+02,85\n"
    result = read(write(tmp_path, "g.csv", text))
    assert col(result, "class_key") == ["007", "0"]
    assert col(result, "student_key") == ["00123", "1.23E+02"]


# --- Excel ----------------------------------------------------------------------------------------
def test_xlsx_first_sheet_typed_cells(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        "g.xlsx",
        {
            "Grades": [
                [None],
                ["Class", "Assignment", "Student", "Points"],
                ["S1", "Quiz", "00123", 85],
                [101, "Quiz", 123, 85.5],
                [None, None, None, None],
                ["S1", "Quiz", 12345678901, "90"],
            ],
            "Other": [["Class", "Assignment", "Student", "Points"], ["X", "Y", "Z", 1]],
        },
    )
    result = read(path)
    assert col(result, "student_key") == ["00123", "123", "12345678901"]
    assert col(result, "class_key") == ["S1", "101", "S1"]
    assert col(result, "points_raw") == ["85", "85.5", "90"]
    assert col(result, "desired_points") == [85.0, 85.5, 90.0]
    assert col(result, "source_row") == [3, 4, 6]
    assert col(result, "source_sheet") == ["Grades"] * 3
    assert result.inputs[0].sheet == "Grades"
    assert result.inputs[0].encoding is None


def test_xlsx_named_sheet_from_argument_and_settings(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path,
        "g.xlsx",
        {
            "Cover": [["nothing here"]],
            "Term 2": [["Class", "Assignment", "Student", "Points"], ["S1", "Quiz", "00123", 70]],
        },
    )
    for result in (read(path, sheet_arg="Term 2"), read(path, sheet="Term 2")):
        assert col(result, "source_sheet") == ["Term 2"]
        assert col(result, "source_row") == [2]
    with pytest.raises(InputError) as info:
        read(path, sheet_arg="Term 3")
    assert info.value.code == "input-missing-sheet"
    assert "'Cover', 'Term 2'" in str(info.value)


# --- unreadable inputs ------------------------------------------------------------------------------
def _error(path: Path, **kw: object) -> InputError:
    with pytest.raises(InputError) as info:
        read(path, **kw)
    assert info.value.file == str(path)
    assert str(path) in str(info.value)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.csv").code == "input-missing-file"


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", codecs.BOM_UTF8, codecs.BOM_UTF16_LE])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    assert _error(write(tmp_path, "e.csv", content)).code == "input-empty"


def test_header_only_is_zero_rows_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", "Class,Assignment,Student,Points\n")
    result = read(path)
    assert len(result.frame) == 0
    assert list(result.frame.columns) == list(DESIRED_COLUMNS)
    assert result.warnings == [f"{path}: header only, no data rows"]
    assert result.inputs[0].rows == 0


def test_html_renamed_xlsx(tmp_path: Path) -> None:
    path = write(tmp_path, "g.xlsx", "<!DOCTYPE html>\n<html><body>Sign in</body></html>")
    err = _error(path)
    assert err.code == "input-html"
    assert "is named .xlsx but is a web page (HTML)" in str(err)


def test_html_saved_as_csv(tmp_path: Path) -> None:
    assert _error(write(tmp_path, "g.csv", "  <html><head></head></html>")).code == "input-html"


def test_random_bytes_xlsx(tmp_path: Path) -> None:
    data = bytes((i * 131 + 7) % 256 for i in range(4096))
    err = _error(write(tmp_path, "g.xlsx", data))
    assert err.code == "input-not-spreadsheet"


def test_random_bytes_csv(tmp_path: Path) -> None:
    data = bytes((i * 131 + 7) % 256 for i in range(4096))
    assert _error(write(tmp_path, "g.csv", data)).code == "input-not-spreadsheet"


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "g.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    err = _error(path)
    assert err.code == "input-not-spreadsheet"
    assert "is not a readable Excel workbook" in str(err)


def test_password_protected_xlsx(tmp_path: Path) -> None:
    # An encrypted OOXML file is an OLE2 compound file holding an "EncryptedPackage" stream.
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + "EncryptedPackage".encode("utf-16-le")
    err = _error(write(tmp_path, "g.xlsx", data + b"\x00" * 512))
    assert err.code == "input-encrypted"
    assert "remove the password" in (err.hint or "")


def test_a_row_with_extra_cells_is_rejected_alone_naming_the_cells(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "\nClass,Assignment,Student,Points\nS1,Quiz,1,2\nS1,Quiz,2,8,5\n")
    result = read(path)
    assert col(result, "source_row") == [3, 4]
    assert col(result, "reason") == ["", "extra_cells"]
    assert 'column 5: "5"' in col(result, "message")[1]
    assert col(result, "desired_points")[0] == 2.0


def test_trailing_empty_cells_are_tolerated(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "Class,Assignment,Student,Points\nS1,Quiz,1,2,\nS1,Quiz,2,3,,\t,\n")
    result = read(path)
    assert col(result, "reason") == ["", ""]
    assert col(result, "desired_points") == [2.0, 3.0]


def test_unclosed_quote_names_the_row(tmp_path: Path) -> None:
    path = write(
        tmp_path, "g.csv", 'Class,Assignment,Student,Points\nS1,Quiz,1,2\nS1,"Quiz,2,3\nS1,Quiz,3,4\n'
    )
    err = _error(path)
    assert err.code == "input-unclosed-quote"
    assert err.row == 3


def test_absurdly_wide_row_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "g.csv", "Class,Assignment,Student,Points\nS1,Quiz,1,2" + ",x" * 20_000 + "\n")
    err = _error(path)
    assert err.code == "input-ragged-row"
    assert err.row == 2
