"""Regenerate sample_data/ deterministically: ``.venv/bin/python sample_data/make_samples.py``.

Writes ``tenant.json`` (the emulator's sample tenant) and three SIS exports built from it, each with
the deliberate problems listed in ``README.md`` (which this script also writes, with row numbers).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from graph_emulator.generate import generate_tenant
from graph_emulator.state import points_outcome, save_tenant

HERE = Path(__file__).resolve().parent
Json = dict[str, Any]


def make_tenant() -> Json:
    # "some": the shape this file has always had (some graded submissions without a points outcome,
    # so the create path stays exercised); regenerating keeps it byte-identical and every sample plan
    # unchanged. Generated tenants default to Graph v1.0's "always".
    return generate_tenant(classes=4, students=30, assignments=5, seed=2024, points_outcomes="some")


def _cls(tenant: Json, section: str) -> Json:
    return next(c for c in tenant["classes"] if c["externalId"] == section)


def _asg(cls: Json, name: str) -> Json:
    return next(a for a in cls["assignments"] if a["displayName"] == name)


def _index(rows: list[list[str]], row: list[str]) -> int:
    return next(k for k, r in enumerate(rows) if r is row)


def _fmt(x: float) -> str:
    return f"{x:g}"


def _rows_for(
    tenant: Json, cls: Json, asg: Json, rng: random.Random
) -> list[tuple[Json, Json, float | None]]:
    """(student, submission, new points or None for "leave blank") for each individual submission."""
    users = {u["id"]: u for u in tenant["users"]}
    maxp = asg["grading"]["maxPoints"]
    out = []
    for sub in asg["submissions"]:
        uid = sub["recipient"].get("userId")
        user = users.get(uid)
        if user is None or sub["status"] == "excused":
            continue
        current = (points_outcome(sub) or {}).get("points")
        if current is not None and rng.random() < 0.2:
            new = current  # equal: no change needed
        else:
            new = round(rng.random() * maxp * 2) / 2
            if new == current:
                new = max(0.0, new - 1.0)
        out.append((user, sub, new))
    return out


def write_long(tenant: Json, notes: list[str]) -> None:
    rng = random.Random(11)
    rows: list[list[str]] = []
    for section, names in (
        ("SEC-1001", ("Unit 1 Quiz", "Lab Report 1")),
        ("SEC-1002", ("Unit 1 Quiz", "Essay 1")),
    ):
        cls = _cls(tenant, section)
        for name in names:
            for user, _sub, new in _rows_for(tenant, cls, _asg(cls, name), rng):
                sis = user["student"]["externalId"]
                if sis:  # students without an SIS id cannot appear in an SIS export keyed by it
                    rows.append([section, name, sis, _fmt(new)])
    # Deliberate problems; line numbers are file lines (header = 1), computed after all insertions.
    unknown = ["SEC-1001", "Unit 1 Quiz", "009999", "8"]
    rows.insert(5, unknown)
    above = next(r for r in rows if r[0] == "SEC-1002" and r[1] == "Unit 1 Quiz")
    above[3] = "25"
    first = [r for r in rows if r[1] == "Lab Report 1"][3]
    dup = [*first[:3], _fmt(float(first[3]) + 2 if float(first[3]) <= 48 else 1.0)]
    rows.insert(_index(rows, first) + 1, dup)
    blank = [r for r in rows if r[0] == "SEC-1002" and r[1] == "Essay 1"][2]
    blank[3] = ""

    def line(row: list[str]) -> int:
        return _index(rows, row) + 2

    notes.append(
        f"- line {line(unknown)}: student `009999` does not exist in the tenant → *unknown student*."
    )
    notes.append(
        f"- line {line(above)}: {above[2]} gets 25 on *Unit 1 Quiz* of SEC-1002, worth 20 "
        "→ *above max points*."
    )
    notes.append(
        f"- lines {line(first)} and {line(dup)}: {dup[2]} appears twice for *Lab Report 1* of SEC-1001 with "
        f"different points ({first[3]} and {dup[3]}) → *duplicate conflict*, neither row is applied."
    )
    notes.append(f"- line {line(blank)}: blank points for {blank[2]} (*Essay 1*, SEC-1002) → no change.")
    with (HERE / "sis_long.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["section_id", "assignment", "student_id", "points"])
        w.writerows(rows)


WIDE_ASSIGNMENTS = ("Unit 1 Quiz", "Lab Report 1", "Essay 1", "Unit 1 Test")


def _wide_table(
    tenant: Json, section: str, key: str, seed: int
) -> tuple[list[Json], dict[str, dict[str, str]]]:
    rng = random.Random(seed)
    cls = _cls(tenant, section)
    cells: dict[str, dict[str, str]] = {}
    students: dict[str, Json] = {}
    for name in WIDE_ASSIGNMENTS:
        for user, _sub, new in _rows_for(tenant, cls, _asg(cls, name), rng):
            ident = user["student"]["externalId"] if key == "sis" else user["userPrincipalName"]
            if not ident:
                continue
            students[ident] = user
            cells.setdefault(ident, {})[name] = "" if rng.random() < 0.05 else _fmt(new)
    return list(students.values()), cells


def write_wide_csv(tenant: Json, notes: list[str]) -> None:
    section = "SEC-1003"
    cls = _cls(tenant, section)
    maxes = [_asg(cls, n)["grading"]["maxPoints"] for n in WIDE_ASSIGNMENTS]
    students, cells = _wide_table(tenant, section, "sis", 13)
    rows = [
        ["Section ID", "Student ID", "Student Name", *WIDE_ASSIGNMENTS],
        ["", "", "Points Possible", *map(str, maxes)],
    ]
    for u in students:
        sis = u["student"]["externalId"]
        rows.append([section, sis, u["displayName"], *(cells[sis].get(n, "") for n in WIDE_ASSIGNMENTS)])
    rows.insert(6, [section, "008888", "Pat Unknown", "40", "9", "18", "45"])
    notes.append(
        "- line 7: Student ID `008888` (Pat Unknown) is not in the tenant → *unknown student* (4 cells)."
    )
    rows[9][4] = "12.5"
    notes.append(f"- line 10, *Lab Report 1*: 12.5 for {rows[9][1]}, worth 10 → *above max points*.")
    dup = list(rows[12])
    dup[3] = "1" if dup[3] != "1" else "2"
    rows.append(dup)
    notes.append(
        f"- lines 13 and {len(rows)}: {dup[1]} ({dup[2]}) twice with different *Unit 1 Quiz* points → "
        "*duplicate conflict* for that cell; the other cells of the copy are identical duplicates."
    )
    rows[15][6] = ""
    notes.append(
        f"- line 16, *Unit 1 Test*: blank cell for {rows[15][1]} → no change (other blank cells too)."
    )
    with (HERE / "gradebook_wide.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def write_xlsx(tenant: Json, notes: list[str]) -> None:
    section = "SEC-1004"
    cls = _cls(tenant, section)
    maxes = [_asg(cls, n)["grading"]["maxPoints"] for n in WIDE_ASSIGNMENTS]
    students, cells = _wide_table(tenant, section, "upn", 17)
    wb = Workbook()
    ws = wb.active
    ws.title = "Grades"
    rows: list[list[Any]] = [["Section ID", "Email", "Student Name", *WIDE_ASSIGNMENTS]]
    rows.append([None, None, "Points Possible", *maxes])

    def num(v: str) -> float | None:
        return float(v) if v else None

    for u in students:
        upn = u["userPrincipalName"]
        rows.append([section, upn, u["displayName"], *(num(cells[upn].get(n, "")) for n in WIDE_ASSIGNMENTS)])
    rows.insert(4, [section, "nobody.here@contoso.edu", "Nobody Here", 90.0, 15.0, 40.0, 88.0])
    notes.append("- row 5: `nobody.here@contoso.edu` is not in the tenant → *unknown student* (4 cells).")
    rows[7][5] = 55.0
    notes.append(f"- row 8, *Essay 1*: 55 for {rows[7][1]}, worth 50 → *above max points*.")
    dup = list(rows[10])
    dup[6] = 1.0 if dup[6] != 1.0 else 2.0
    rows.append(dup)
    notes.append(
        f"- rows 11 and {len(rows)}: {dup[1]} twice with different *Unit 1 Test* points "
        "→ *duplicate conflict*."
    )
    rows[12][3] = None
    notes.append(f"- row 13, *Unit 1 Quiz*: empty cell for {rows[12][1]} → no change.")
    for r in rows:
        ws.append(r)
    fixed = dt.datetime(2024, 10, 1, 12, 0, 0)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.properties.creator = "gradesync sample_data/make_samples.py"
    wb.save(HERE / "gradebook.xlsx")


README_HEAD = """# sample_data

Generated by `make_samples.py` (deterministic: run `.venv/bin/python sample_data/make_samples.py`);
do not edit by hand — change the script and rerun it.

- `tenant.json` — the emulator's sample tenant,
  `generate_tenant(classes=4, students=30, assignments=5, seed=2024)`: classes SEC-1001 … SEC-1004
  (Algebra I - P1, Biology - P2, World History - P3, English 9 - P4), 30 students each (two shared
  with the next class), assignments *Unit 1 Quiz* (in every class), *Reading Log* (ungraded),
  *Lab Report 1*, …; SEC-1001 also has a *Group Project* (group submissions) and a draft.
  Format: the docstring of `graph_emulator/state.py`.
- `sis_long.csv` — long layout `section_id,assignment,student_id,points` for SEC-1001
  (*Unit 1 Quiz*, *Lab Report 1*) and SEC-1002 (*Unit 1 Quiz*, *Essay 1*); `student_id` is the SIS
  id with leading zeros. Mostly grades that differ from Teams, some equal (no-ops), some for
  submissions without a points outcome yet (creates).
- `gradebook_wide.csv` — wide layout for SEC-1003: `Section ID,Student ID,Student Name,<assignments>`,
  second row `Points Possible` (each assignment's maxPoints).
- `gradebook.xlsx` — wide gradebook for SEC-1004, sheet `Grades`, students identified by `Email`
  (their UPN), with a `Points Possible` row.

Students without an SIS id (about 1 in 12) are left out of the SIS-keyed files; excused submissions
are left out (or blank) everywhere.

## Deliberate problems
"""


def main() -> None:
    tenant = make_tenant()
    save_tenant(tenant, HERE / "tenant.json")
    long_notes: list[str] = []
    wide_notes: list[str] = []
    xlsx_notes: list[str] = []
    write_long(tenant, long_notes)
    write_wide_csv(tenant, wide_notes)
    write_xlsx(tenant, xlsx_notes)
    text = README_HEAD
    text += "\n### sis_long.csv\n" + "\n".join(long_notes) + "\n"
    text += "\n### gradebook_wide.csv\n" + "\n".join(wide_notes) + "\n"
    text += "\n### gradebook.xlsx (sheet `Grades`)\n" + "\n".join(xlsx_notes) + "\n"
    (HERE / "README.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
