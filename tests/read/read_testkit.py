"""Small helpers for the read-stage tests: write a fixture file in tmp_path and read it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl

from gradesync.config import InputSettings, PolicySettings, Settings
from gradesync.read import ReadResult, read_inputs


def settings(policy: dict[str, Any] | None = None, **input_kw: Any) -> Settings:
    return Settings(input=InputSettings(**input_kw), policy=PolicySettings(**(policy or {})))


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def read(path: Path, *, policy: dict[str, Any] | None = None, **kw: Any) -> ReadResult:
    class_key = kw.pop("class_key_arg", None)
    sheet = kw.pop("sheet_arg", None)
    return read_inputs([path], settings(policy, **kw), class_key=class_key, sheet=sheet)


def xlsx(tmp_path: Path, name: str, sheets: dict[str, list[list[Any]]]) -> Path:
    """A workbook with the given sheets (rows of cell values, None = empty), in order."""
    wb = openpyxl.Workbook()
    first = True
    for title, rows in sheets.items():
        ws = wb.active if first else wb.create_sheet()
        first = False
        ws.title = title
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is not None:
                    cell = ws.cell(row=r, column=c, value=value)
                    if isinstance(value, str) and value.startswith("="):
                        cell.data_type = "s"  # text, as typed: openpyxl would store it as a formula
    path = tmp_path / name
    wb.save(path)
    return path


def col(result: ReadResult, name: str) -> list[Any]:
    return result.frame[name].tolist()
