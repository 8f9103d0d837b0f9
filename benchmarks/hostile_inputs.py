"""Hostile input files at full size: each is read by ``gradesync inspect`` in its own process, which must
refuse it with exit 2 and the expected error code, within a memory bound — or, for the real-sized
exports, read it within that bound.

    python -m benchmarks.hostile_inputs              # full size: 2 GB single-line files (make robustness)
    python -m benchmarks.hostile_inputs --scale 0.01 # small: the smoke run in make test

==============================  ===========================================  ==============================
case                            what it is                                   before the limits
==============================  ===========================================  ==============================
one 2 GB line, separators       ``12,12,12,…`` and no line break             6 GB, then a misleading
                                                                             ``input-ragged-row``
one 2 GB line, no separators    ``1111…``                                    exit 70 and a traceback
a 1.5 MB zip of 480 MB          a OneRoster bundle: 480 MB of results        read: 3.4 GB, 20 s
a 5 KB workbook                 one cell at XFD1048576                       SIGABRT (exit 134)
a 300 MB CSV                    above ``[input] max_file_mb``                read
the 46 MB / 100 MB CSVs         real long exports (1.2 / 2.8 million rows)   read (and still read)
==============================  ===========================================  ==============================

Each case runs ``gradesync inspect FILE --offline`` in its own process; the real-sized exports run the
read stage alone (``read_inputs``), whose memory the limits are set from. Peak memory is the process's
high-water mark (``wait4``'s ``ru_maxrss``; Linux starts it at the parent's, so each case is started
from a small launcher process). Exit status 1 when any case has another outcome or exceeds its memory
bound.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
GB = 1024 * MB
_CHUNK = 8 * MB


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path, float], Path]
    expect: str  # the error code, or "read"
    bound_mb: float  # the child's peak memory must stay below this
    env: dict[str, str] | None = None  # settings for this case
    small_env: dict[str, str] | None = None  # settings for a scaled-down run (a limit lowered to match)
    read_only: bool = False  # measure the read stage alone (read_inputs), not gradesync inspect


@dataclass
class Outcome:
    case: Case
    size: int
    exit_code: int
    code: str
    wall: float
    peak_mb: float

    @property
    def ok(self) -> bool:
        expected_exit = 0 if self.case.expect == "read" else 2
        code_ok = self.case.expect in ("read", self.code)
        return self.exit_code == expected_exit and code_ok and self.peak_mb < self.case.bound_mb


def _write_repeated(path: Path, head: bytes, unit: bytes, size: int) -> Path:
    """``head`` then ``unit`` repeated up to ``size`` bytes, written in 8 MB pieces."""
    block = unit * max(1, _CHUNK // len(unit))
    with path.open("wb") as f:
        f.write(head)
        left = size - len(head)
        while left > 0:
            piece = block[:left]
            f.write(piece)
            left -= len(piece)
    return path


def one_line_with_separators(tmp: Path, scale: float) -> Path:
    return _write_repeated(tmp / "one-line.csv", b"", b"12,", max(int(2 * GB * scale), 4 * MB))


def one_line_without_separators(tmp: Path, scale: float) -> Path:
    return _write_repeated(tmp / "one-line-plain.csv", b"", b"1", max(int(2 * GB * scale), 4 * MB))


def zip_bomb(tmp: Path, scale: float) -> Path:
    size = max(int(480 * MB * scale), 24 * MB)
    results = _write_repeated(
        tmp / "results.csv",
        b"sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,score\n",
        b"\n",
        size,
    )
    path = tmp / "oneroster.zip"
    sample = REPO / "sample_data" / "exports" / "oneroster"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(sample / "manifest.csv", "manifest.csv")
        z.write(sample / "lineItems.csv", "lineItems.csv")
        z.write(results, "results.csv")
    results.unlink()
    return path


def far_cell(tmp: Path, scale: float) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["class", "assignment", "student", "points"])
    ws.append(["SEC-1001", "Unit 1 Quiz", "000101", 9])
    ws["XFD1048576"] = 1
    path = tmp / "far-cell.xlsx"
    wb.save(path)
    return path


def _long_csv(tmp: Path, name: str, plan_scale: float) -> Path:
    """A real-shaped long export (``plan_bench``'s grades), written by a separate process: a child
    inherits its parent's memory high-water mark, so this one must stay small."""
    path = tmp / name
    code = (
        "import sys; from pathlib import Path; from benchmarks.plan_bench import make_inputs, write_csv; "
        "write_csv(make_inputs(float(sys.argv[1]))[1], Path(sys.argv[2]))"
    )
    subprocess.run([sys.executable, "-c", code, str(plan_scale), str(path)], check=True, cwd=REPO)
    return path


def above_max_file(tmp: Path, scale: float) -> Path:
    size = int(300 * MB) if scale >= 1 else int(3 * MB)
    row = b"SEC-00001,Unit 1 Quiz,S0000001,9\n"
    return _write_repeated(tmp / "too-big.csv", b"class,assignment,student,points\n", row, size)


def csv_100mb(tmp: Path, scale: float) -> Path:
    return _long_csv(tmp, "long-100mb.csv", 2.36 * scale)


def csv_46mb(tmp: Path, scale: float) -> Path:
    return _long_csv(tmp, "long-46mb.csv", 1.0 * scale)


#: The single-line files are larger than [input] max_file_mb, which would refuse them unread; it is
#: raised for them so that the line limit, measured while reading, is what stops them.
_PAST_MAX_FILE = {"GRADESYNC_INPUT_MAX_FILE_MB": "4096"}
CASES = [
    Case("one 2 GB line, separators", one_line_with_separators, "input-line-too-long", 300, _PAST_MAX_FILE),
    Case(
        "one 2 GB line, no separators",
        one_line_without_separators,
        "input-line-too-long",
        300,
        _PAST_MAX_FILE,
    ),
    Case("a zip of 480 MB of results", zip_bomb, "input-suspicious-zip", 300),
    Case("a workbook, one cell at XFD1048576", far_cell, "input-sheet-too-large", 300),
    Case(
        "a 300 MB CSV (above max_file_mb)",
        above_max_file,
        "input-too-large",
        300,
        small_env={"GRADESYNC_INPUT_MAX_FILE_MB": "2"},
    ),
    Case("read: a 46 MB long CSV, 1.2 M rows", csv_46mb, "read", 800, read_only=True),
    Case("read: a 100 MB long CSV, 2.8 M rows", csv_100mb, "read", 1500, read_only=True),
]


#: The read stage alone, as the pipeline runs it: settings from the environment, exit 2 on InputError.
_READ = """
import sys
from gradesync.config import load_settings
from gradesync.errors import InputError
from gradesync.read import read_inputs
try:
    read_inputs(sys.argv[1:], load_settings())
except InputError as e:
    print(f"error [{e.code}]: {e.message}", file=sys.stderr)
    sys.exit(2)
"""


#: Runs a command and prints its peak memory (KB) and exit status. Linux starts a child's memory
#: high-water mark at its parent's, so the measured command is started from this small process, never
#: from the harness (which may be a test runner holding hundreds of MB).
_LAUNCH = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_case(case: Case, tmp: Path, scale: float, env: dict[str, str]) -> Outcome:
    path = case.make(tmp, scale)
    env = {**env, **(case.env or {}), **((case.small_env or {}) if scale < 1 else {})}
    size = path.stat().st_size
    command = (
        [sys.executable, "-c", _READ, str(path)]
        if case.read_only
        else [sys.executable, "-m", "gradesync", "inspect", str(path), "--offline"]
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCH, *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=True,
    )
    wall = time.monotonic() - started
    path.unlink()
    peak_kb, exit_code = (int(x) for x in done.stdout.split())
    code = next(
        (
            line.split("[", 1)[1].split("]", 1)[0]
            for line in done.stderr.splitlines()
            if line.startswith("error [")
        ),
        "",
    )
    return Outcome(case, size, exit_code, code, wall, peak_kb / 1024)


def measure(scale: float = 1.0, only: list[str] | None = None) -> list[Outcome]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="gradesync-hostile-") as tmp:
        for case in CASES:
            if only and not any(o in case.name for o in only):
                continue
            outcomes.append(run_case(case, Path(tmp), scale, env))
    return outcomes


def table(outcomes: list[Outcome], scale: float) -> Table:
    t = Table(
        title=f"hostile inputs (scale {scale:g}): gradesync inspect FILE --offline (read: the read stage "
        "alone), one process each; peak = the process's own high-water mark"
    )
    for column in ("case", "file", "exit", "outcome", "expected", "wall s", "peak MB", "bound MB", "ok"):
        t.add_column(
            column, justify="right" if column in ("file", "exit", "wall s", "peak MB", "bound MB") else "left"
        )
    for o in outcomes:
        t.add_row(
            o.case.name,
            f"{o.size / MB:,.1f} MB",
            str(o.exit_code),
            o.code or "read",
            o.case.expect,
            f"{o.wall:.1f}",
            f"{o.peak_mb:,.0f}",
            f"{o.case.bound_mb:,.0f}",
            "yes" if o.ok else "NO",
        )
    return t


def main(scale: float = 1.0, only: list[str] | None = None) -> list[Outcome]:
    outcomes = measure(scale, only)
    Console(width=max(Console().width, 140)).print(table(outcomes, scale))
    return outcomes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile_inputs", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="size multiplier (1.0 = the sizes above)")
    parser.add_argument("--only", nargs="*", help="run only the cases whose name contains one of these")
    args = parser.parse_args()
    sys.exit(0 if all(o.ok for o in main(args.scale, args.only)) else 1)
