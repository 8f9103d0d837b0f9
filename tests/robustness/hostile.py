"""Hostile input files, built the way an attacker (or a broken exporter) would build them, for the
robustness tests and ``benchmarks/hostile_inputs.py``.

Each starts from something real — a workbook openpyxl writes, the OneRoster sample bundle built
from the 1EdTech CSV binding (``sample_data/exports/oneroster/``) — and changes one thing.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl

REPO = Path(__file__).resolve().parents[2]
ONEROSTER = REPO / "sample_data" / "exports" / "oneroster"


def far_cell_workbook(path: Path) -> Path:
    """A registrar's small sheet plus one value typed into the last cell Excel has, XFD1048576
    (about 5 KB on disk; a reader that allocates the sheet's rectangle asks for ~550 GB)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Grades"
    ws.append(["class", "assignment", "student", "points"])
    ws.append(["SEC-1001", "Unit 1 Quiz", "000101", 9])
    ws["XFD1048576"] = 1
    wb.save(path)
    return path


def bundle(
    path: Path, members: dict[str, bytes] | None = None, *, extra: dict[str, bytes] | None = None
) -> Path:
    """A OneRoster bulk zip: the sample's manifest, results and lineItems (or ``members``), plus
    ``extra`` members, deflated."""
    files = members or {name.name: name.read_bytes() for name in sorted(ONEROSTER.glob("*.csv"))}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in {**files, **(extra or {})}.items():
            z.writestr(name, data)
    return path


def sample_members() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(ONEROSTER.glob("*.csv"))}


def lying_member(path: Path, lie: str) -> Path:
    """The sample bundle with results.csv's headers lying, as in a member altered after the zip was
    made: ``lie="crc"`` changes its CRC-32, ``lie="size"`` halves its declared uncompressed size (in
    the local header and the central directory both, as a forger would)."""
    raw = bytearray(bundle(path).read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        info = z.getinfo("results.csv")
    if lie == "crc":
        value, local_at, central_at = info.CRC ^ 0xDEADBEEF, 14, 16
    else:
        value, local_at, central_at = info.file_size // 2, 22, 24
    forged = struct.pack("<I", value)
    raw[info.header_offset + local_at : info.header_offset + local_at + 4] = forged
    entry = raw.find(b"PK\x01\x02")
    while entry != -1:  # the central directory's entries
        (name_len,) = struct.unpack_from("<H", raw, entry + 28)
        if raw[entry + 46 : entry + 46 + name_len] == b"results.csv":
            raw[entry + central_at : entry + central_at + 4] = forged
        entry = raw.find(b"PK\x01\x02", entry + 46)
    path.write_bytes(bytes(raw))
    return path


def bomb_member(megabytes: int) -> bytes:
    """A results.csv of ``megabytes`` MB: the real header, then blank lines (deflates about 1000:1)."""
    header = ONEROSTER.joinpath("results.csv").read_bytes().splitlines()[0] + b"\n"
    return header + b"\n" * (megabytes * 1024 * 1024 - len(header))


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """``gradesync ARGS`` in its own process (a reader that aborts would take pytest down with it)."""
    import os

    return subprocess.run(
        [sys.executable, "-m", "gradesync", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
