"""Writes ``sample_data/exports/``: one small, anonymised export per format gradesync recognises.

Each file follows its vendor's documented layout (sources in README, "Export formats"), with the
decorations real exports carry: Canvas's "Points Possible" row, read-only computed columns and
Test Student; PowerSchool's cp1252 and Exempt column; OneRoster's exempt scoreStatus; Blackboard's
maxima in its headers, calculated totals and UTF-16 tab text named .xls; Brightspace's "#" prefixes,
MaxPoints headers, final grades and End-of-Line Indicator; Moodle's three display types; a
registrar's workbook with a title, a merged group row, totals, a 55% percent-formatted cell, 17/20,
A- and a date. The students and classes are those of ``sample_data/tenant.json`` (SEC-1001 …
SEC-1003), so every sample plans against the emulator. Run: ``python sample_data/make_exports.py``.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "exports"

CANVAS = (
    "Student,ID,SIS User ID,SIS Login ID,Section,Unit 1 Quiz (48211),Lab Report 1 (48212),"
    "Current Points,Final Points,Current Score,Unposted Current Score,Final Score,Unposted Final Score\r\n"
    "    Points Possible,,,,,10.00,50.00,(read only),(read only),(read only),(read only),(read only),"
    "(read only)\r\n"
    '"Moreau, Ana",5101,000101,ana.moreau101,Algebra I - P1,9.50,40.00,49.50,49.50,82.50,82.50,82.50,82.50\r\n'
    '"Alvarez, Ana",5102,000102,ana.alvarez102,Algebra I - P1,8.00,EX,8.00,8.00,80.00,80.00,13.33,13.33\r\n'
    '"Ahmed, Noah",5103,000103,noah.ahmed103,Algebra I - P1,7.00,27.50,34.50,34.50,57.50,57.50,57.50,57.50\r\n'
    '"Moreau, Isla",5105,000105,isla.moreau105,Algebra I - P1,3.50,,3.50,3.50,35.00,35.00,5.83,5.83\r\n'
    "Test Student,5999,,,Algebra I - P1,10.00,50.00,60.00,60.00,100.00,100.00,100.00,100.00\r\n"
)

# PowerSchool / PowerTeacher Pro assignment scores, long, Windows-1252 (é, ñ in names).
POWERSCHOOL = (
    "Student_Number,Student_Name,Course_Number,Course_Name,Section_Number,Teacher_Name,Assignment_Name,"
    "Due_Date,Score,Points_Possible,Exempt\r\n"
    '000101,"Moreau, Ana",SEC,Algebra I,1001,"Rossi, Tara",Unit 1 Quiz,09/08/2024,9.5,10,0\r\n'
    '000102,"Alvarez, Ana",SEC,Algebra I,1001,"Rossi, Tara",Unit 1 Quiz,09/08/2024,6,10,0\r\n'
    '000103,"Ahmed, Noah",SEC,Algebra I,1001,"Rossi, Tara",Unit 1 Quiz,09/08/2024,,10,1\r\n'
    '000105,"Moreau, Isla",SEC,Algebra I,1001,"Rossi, Tara",Unit 1 Quiz,09/08/2024,4,10,0\r\n'
    '000130,"Kim, Xavi",SEC,Biology,1002,"Núñez, José",Unit 1 Quiz,09/09/2024,13,20,0\r\n'
    '000131,"O\'Neil, Mei",SEC,Biology,1002,"Núñez, José",Unit 1 Quiz,09/09/2024,18,20,0\r\n'
)

# Infinite Campus grade book scores, long; Flags: X exempt, L late, M missing.
INFINITE_CAMPUS = (
    "Student Number,Student Name,Course Number,Course Name,Section Number,Assignment Name,Due Date,Score,"
    "Total Points,Flags,Comments\n"
    '000101,"Moreau, Ana",SEC,Algebra I,1001,Lab Report 1,09/15/2024,45,50,,\n'
    '000102,"Alvarez, Ana",SEC,Algebra I,1001,Lab Report 1,09/15/2024,,50,X,exempt: transferred in\n'
    '000103,"Ahmed, Noah",SEC,Algebra I,1001,Lab Report 1,09/15/2024,27.5,50,L,\n'
    '000105,"Moreau, Isla",SEC,Algebra I,1001,Lab Report 1,09/15/2024,,50,M,\n'
)

# Skyward Educator Access gradebook export: "*" = no grade entered, EXE = exempt.
SKYWARD = (
    "Student Name,Student ID,Other ID,Grade Level,Unit 1 Quiz,Lab Report 1,Q1 Grade,Q1 Percent\n"
    '"Moreau, Ana",5101,000101,10,9.5,*,A,95\n'
    '"Alvarez, Ana",5102,000102,11,3,EXE,F,30\n'
    '"Ahmed, Noah",5103,000103,12,*,30,C,60\n'
    "Class Average,,,,6.25,30,,62.5\n"
)

# Google Classroom: Grades → Download these grades as CSV.
GOOGLE_CLASSROOM = (
    "Last Name,First Name,Email Address,Overall,Unit 1 Quiz,Lab Report 1\n"
    'Date,,,,"Sep 8, 2024","Sep 15, 2024"\n'
    "Points,,,,10,50\n"
    "Class average,,,,7.67,36.5\n"
    "Moreau,Ana,ana.moreau101@contoso.edu,90%,9.5,45\n"
    "Alvarez,Ana,ana.alvarez102@contoso.edu,52%,5,\n"
    "Ahmed,Noah,noah.ahmed103@contoso.edu,55%,8.5,28\n"
)

# Moodle: Grades → Export → Plain text file (comma), display type Real.
MOODLE = (
    "First name,Last name,ID number,Institution,Department,Email address,Quiz: Unit 1 Quiz (Real),"
    "Assignment: Lab Report 1 (Real),Course total (Real),Last downloaded from this course\n"
    "Ana,Moreau,000101,Contoso High,Maths,ana.moreau101@contoso.edu,9.50,-,9.50,1725868800\n"
    "Ana,Alvarez,000102,Contoso High,Maths,ana.alvarez102@contoso.edu,7.00,21.00,28.00,1725868800\n"
    "Noah,Ahmed,000103,Contoso High,Maths,noah.ahmed103@contoso.edu,-,27.50,27.50,1725868800\n"
)

# Blackboard Learn (Original): Grade Center → Work Offline → Download, Full Grade Center. The six default
# user columns, the calculated "Weighted Total" and "Total", then one column per item headed
# "Name [Total Pts: <maximum> <primary display>] |<column id>". Every field quoted, a BOM, bare LF.
# Noah Lopez has no Student ID (nor an SIS id in Teams): only his Username finds him.
_BB_USERS = '"Last Name","First Name","Username","Student ID","Last Access","Availability"'
BLACKBOARD_TAB_ROWS = [
    [
        "Last Name", "First Name", "Username", "Student ID", "Last Access", "Availability",
        "Weighted Total [Total Pts: up to 0 Percentage] |1260435", "Total [Total Pts: up to 60 Score] |1260434",
        "Unit 1 Quiz [Total Pts: 10 Score] |1260436", "Lab Report 1 [Total Pts: 50 Score] |1260437",
    ],
    ["Moreau", "Ana", "ana.moreau101", "000101", "2024-09-14 10:05:00", "Yes", "", "54.50", "9.50", "45.00"],
    ["Alvarez", "Ana", "ana.alvarez102", "000102", "2024-09-13 18:40:00", "Yes", "", "8.00", "8.00", ""],
    ["Ahmed", "Noah", "noah.ahmed103", "000103", "2024-09-15 07:12:00", "Yes", "", "34.50", "7.00", "27.50"],
    ["Lopez", "Noah", "noah.lopez104", "", "2024-09-12 21:30:00", "Yes", "", "18.50", "6.00", "12.50"],
]  # fmt: skip

# The same download with the Comma delimiter, for SEC-1002, where "Lab Report 1" is worth 100 points in
# Teams but 50 in this Grade Center: refused (or scaled by a mapping that says so). One row's Student ID
# and Username name two different students (Mei and Rosa O'Neil): refused, never guessed.
BLACKBOARD_CSV_ROWS = [
    [
        "Last Name", "First Name", "Username", "Student ID", "Last Access", "Availability",
        "Weighted Total [Total Pts: up to 0 Percentage] |2260435", "Total [Total Pts: up to 70 Score] |2260434",
        "Unit 1 Quiz [Total Pts: 20 Score] |2260436", "Lab Report 1 [Total Pts: 50 Score] |2260437",
    ],
    ["Walsh", "Omar", "omar.walsh129", "000129", "2024-09-14 10:05:00", "Yes", "", "60.00", "15.00", "45.00"],
    ["Kim", "Xavi", "xavi.kim130", "000130", "2024-09-14 11:00:00", "Yes", "", "56.50", "12.50", "44.00"],
    ["O'Neil", "Mei", "rosa.oneil132", "000131", "2024-09-13 09:30:00", "Yes", "", "46.00", "16.00", "30.00"],
    ["Hughes", "Zoe", "zoe.hughes138", "", "2024-09-12 16:45:00", "Yes", "", "9.00", "9.00", ""],
]  # fmt: skip

# Blackboard Learn Ultra: Gradebook → Download (full gradebook, CSV): the same user columns, the items,
# and the calculated "Overall Grade" (shown as a letter). SEC-1003.
BLACKBOARD_ULTRA_ROWS = [
    [
        "Last Name", "First Name", "Username", "Student ID", "Last Access", "Availability",
        "Unit 1 Quiz [Total Pts: 50 Score] |3100201", "Essay 1 [Total Pts: 20 Score] |3100202",
        "Overall Grade [Total Pts: up to 70 Letter] |3100200",
    ],
    ["Rossi", "Umar", "umar.rossi157", "000157", "2024-09-14 10:05:00", "Yes", "40.00", "12.50", "B-"],
    ["Tanaka", "Zoe", "zoe.tanaka158", "", "2024-09-13 08:00:00", "Yes", "19.00", "7.00", "F"],
    ["Walsh", "Olu", "olu.walsh159", "000159", "2024-09-11 17:20:00", "Yes", "11.50", "2.00", "F"],
]  # fmt: skip


def _quoted_rows(rows: list[list[str]], sep: str) -> str:
    return "".join(sep.join(f'"{v}"' for v in row) + "\n" for row in rows)


BLACKBOARD_TAB = _quoted_rows(BLACKBOARD_TAB_ROWS, "\t")
BLACKBOARD_CSV = _quoted_rows(BLACKBOARD_CSV_ROWS, ",")
BLACKBOARD_ULTRA = _quoted_rows(BLACKBOARD_ULTRA_ROWS, ",")

# A school that scales this Grade Center's items to Teams' maxima: the blackboard preset written out
# (config/mappings/blackboard.toml) with one line added.
BLACKBOARD_SCALE_MAPPING = """\
# Blackboard Learn Grade Center, for a school whose Teams assignments have other maxima than its Grade
# Center items: the points are scaled to Teams' maximum, and every scaled row says so.
preset = "blackboard"
layout = "wide"

[[student.identifiers]]
column = "Student ID"
match = "sis_id"

[[student.identifiers]]
column = "Username"
match = "upn"
domain = "contoso.edu"

[columns]
ignore = ["Last Name", "First Name", "Last Access", "Availability", "Child Course ID"]

[values]
maximum_mismatch = "scale"
"""

# D2L Brightspace: Grades → Enter Grades → Export, key field Both, Points grade and Grade scheme, user
# details Last Name, First Name, Email. Key values carry a "#" prefix and each row ends with the
# End-of-Line Indicator "#". SEC-1002: "Lab Report 1" is worth 50 here and 100 in Teams (refused); Zoe
# Hughes has no OrgDefinedId and a Username Teams does not know: her Email finds her.
_D2L_QUIZ = "Unit 1 Quiz Points Grade <Numeric MaxPoints:20 Weight:10 Category:Quizzes CategoryWeight:40>"
_D2L_ESSAY = "Essay 1 Points Grade <Numeric MaxPoints:10 Weight:20 Category:Writing CategoryWeight:60>"
_D2L_LAB = "Lab Report 1 Points Grade <Numeric MaxPoints:50 Weight:30 Category:Labs CategoryWeight:60>"
BRIGHTSPACE = (
    f"OrgDefinedId,Username,Last Name,First Name,Email,{_D2L_QUIZ},Unit 1 Quiz Scheme Symbol,{_D2L_ESSAY},"
    f"{_D2L_LAB},Calculated Final Grade Numerator,Calculated Final Grade Denominator,"
    "Adjusted Final Grade Numerator,Adjusted Final Grade Denominator,End-of-Line Indicator\n"
    "#000129,#omar.walsh129,Walsh,Omar,omar.walsh129@contoso.edu,16,B,3,45,64,80,,,#\n"
    "#000130,#xavi.kim130,Kim,Xavi,xavi.kim130@contoso.edu,12.5,C,9.5,,22,30,,,#\n"
    ",#zoe.hughes138,Hughes,Zoe,zoe.hughes138@contoso.edu,9,D,8.5,,17.5,30,,,#\n"
)

# Moodle: Grades → Export → Plain text file with three grade display types (Real, Percentage, Letter):
# each item three times. SEC-1002: Mei's quiz says 18 points but 95 % (18 of 20 is 90 %): refused,
# naming both; Zoe Hughes has no ID number and is found by her email address.
MOODLE_DISPLAY_TYPES = (
    "First name,Last name,ID number,Institution,Department,Email address,"
    "Quiz: Unit 1 Quiz (Real),Quiz: Unit 1 Quiz (Percentage),Quiz: Unit 1 Quiz (Letter),"
    "Assignment: Essay 1 (Real),Assignment: Essay 1 (Percentage),Assignment: Essay 1 (Letter),"
    "Course total (Real),Course total (Percentage),Course total (Letter),Last downloaded from this course\n"
    "Omar,Walsh,000129,Contoso High,Science,omar.walsh129@contoso.edu,15.00,75.00 %,C,3.00,30.00 %,F,"
    "18.00,60.00 %,D,1725868800\n"
    "Xavi,Kim,000130,Contoso High,Science,xavi.kim130@contoso.edu,-,-,-,9.50,95.00 %,A,9.50,31.67 %,F,"
    "1725868800\n"
    "Mei,O'Neil,000131,Contoso High,Science,mei.oneil131@contoso.edu,18.00,95.00 %,A,7.00,70.00 %,C-,"
    "25.00,83.33 %,B,1725868800\n"
    "Zoe,Hughes,,Contoso High,Science,zoe.hughes138@contoso.edu,9.00,45.00 %,F,8.50,85.00 %,B,"
    "17.50,58.33 %,F,1725868800\n"
)

ONEROSTER_MANIFEST = (
    "propertyName,value\n"
    "manifest.version,1.0\n"
    "oneroster.version,1.1\n"
    "file.academicSessions,absent\n"
    "file.categories,absent\n"
    "file.classes,absent\n"
    "file.classResources,absent\n"
    "file.courses,absent\n"
    "file.courseResources,absent\n"
    "file.demographics,absent\n"
    "file.enrollments,absent\n"
    "file.lineItems,bulk\n"
    "file.orgs,absent\n"
    "file.resources,absent\n"
    "file.results,bulk\n"
    "file.users,absent\n"
    "source.systemName,Sample SIS\n"
    "source.systemCode,sample\n"
)
ONEROSTER_LINE_ITEMS = (
    "sourcedId,status,dateLastModified,title,description,assignDate,dueDate,classSourcedId,"
    "categorySourcedId,gradingPeriodSourcedId,resultValueMin,resultValueMax\n"
    "li-1,active,2024-09-01T08:00:00.000Z,Unit 1 Quiz,,2024-09-01,2024-09-08,SEC-1001,cat-quiz,gp-1,0,10\n"
    "li-2,active,2024-09-01T08:00:00.000Z,Lab Report 1,,2024-09-01,2024-09-15,SEC-1001,cat-lab,gp-1,0,50\n"
    "li-3,active,2024-09-01T08:00:00.000Z,Unit 1 Quiz,,2024-09-01,2024-09-09,SEC-1002,cat-quiz,gp-1,0,20\n"
)
ONEROSTER_RESULTS = (
    "sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,scoreStatus,score,scoreDate,comment\n"
    "r-1,active,2024-09-10T08:00:00.000Z,li-1,000101,fully graded,9.5,2024-09-10,\n"
    "r-2,active,2024-09-10T08:00:00.000Z,li-1,000102,fully graded,7,2024-09-10,\n"
    "r-3,active,2024-09-10T08:00:00.000Z,li-1,000103,exempt,,2024-09-10,medical\n"
    "r-4,active,2024-09-16T08:00:00.000Z,li-2,000105,fully graded,30,2024-09-16,\n"
    "r-5,active,2024-09-16T08:00:00.000Z,li-2,000101,not submitted,,,\n"
    "r-6,tobedeleted,2024-09-11T08:00:00.000Z,li-1,000106,fully graded,10,2024-09-10,\n"
    "r-7,active,2024-09-11T08:00:00.000Z,li-3,000131,fully graded,19,2024-09-11,\n"
)

# The registrar's workbook's mapping, written beside it (what `gradesync inspect --write-mapping` makes).
REGISTRAR_MAPPING = """\
# The registrar's hand-made workbook: the header is on row 3 (a title and a merged group row above it),
# ids were typed as numbers (Excel dropped the leading zeros), and the class is the whole file's.
header_row = 3

[student]
column = "Student ID"
zero_pad = 6

[class]
key = "SEC-1001"

[columns]
ignore = ["Name", "Total", "Letter"]
"""


# PowerSchool's preset builds the class key as "{Course_Number}.{Section_Number}"; this school's Teams
# classes were synced with externalIds like SEC-1001, so its mapping says so.
POWERSCHOOL_MAPPING = """\
# PowerSchool assignment scores, for a school whose Teams classes are SEC-<section>.
preset = "powerschool"
layout = "long"

[student]
column = "Student_Number"

[class]
template = "{Course_Number}-{Section_Number}"

[assignment]
column = "Assignment_Name"
points = "Score"
maximum = "Points_Possible"
excuse = "Exempt"
"""


def registrar_workbook(path: Path) -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Term 1"
    ws["A1"] = "Algebra I - P1 — Term 1 grades"
    ws.merge_cells("A1:F1")
    ws["A2"], ws["C2"], ws["E2"] = "Student", "Assignments", "Totals"
    ws.merge_cells("A2:B2")
    ws.merge_cells("C2:D2")
    ws.merge_cells("E2:F2")
    header = ["Student ID", "Name", "Unit 1 Quiz", "Lab Report 1", "Total", "Letter"]
    rows: list[list[object]] = [
        [101, "Ana Moreau", 0.55, 40, 40.55, "C"],  # 0.55 shown as 55% (typed "55%")
        [102, "Ana Alvarez", "8/10", "17/20", None, "B"],  # typed as text
        [103, "Noah Ahmed", "A-", 27.5, 27.5, "A-"],
        [105, "Isla Moreau", dt.datetime(2024, 9, 10), 2, 2, "F"],  # "9/10" that Excel made a date
        ["Class Average", None, 0.7, 23.17, None, None],
        ["Total", None, None, 69.5, None, None],
    ]
    for c, value in enumerate(header, start=1):
        ws.cell(row=3, column=c, value=value)
    for r, row in enumerate(rows, start=4):
        for c, value in enumerate(row, start=1):
            if value is not None:
                ws.cell(row=r, column=c, value=value)
    ws["C4"].number_format = "0%"
    ws["C8"].number_format = "0%"
    ws["C7"].number_format = "d-mmm"
    wb.save(path)


def oneroster_zip(path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (
            ("manifest.csv", ONEROSTER_MANIFEST),
            ("lineItems.csv", ONEROSTER_LINE_ITEMS),
            ("results.csv", ONEROSTER_RESULTS),
        ):  # a fixed time: the same bytes every run
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 9, 16, 8, 0, 0)), text)
    path.write_bytes(buf.getvalue())


def write_all(out: Path = OUT) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "oneroster").mkdir(exist_ok=True)
    files = {
        "canvas": (out / "canvas_gradebook.csv", "\ufeff" + CANVAS, "utf-8"),
        "powerschool": (out / "powerschool_scores.csv", POWERSCHOOL, "cp1252"),
        "infinite-campus": (out / "infinite_campus_scores.csv", INFINITE_CAMPUS, "utf-8"),
        "skyward": (out / "skyward_gradebook.csv", SKYWARD, "utf-8"),
        "google-classroom": (out / "google_classroom_grades.csv", GOOGLE_CLASSROOM, "utf-8"),
        "moodle": (out / "moodle_grades.csv", "\ufeff" + MOODLE, "utf-8"),
        "oneroster-manifest": (out / "oneroster" / "manifest.csv", ONEROSTER_MANIFEST, "utf-8"),
        "oneroster-lineitems": (out / "oneroster" / "lineItems.csv", ONEROSTER_LINE_ITEMS, "utf-8"),
        "oneroster": (out / "oneroster" / "results.csv", ONEROSTER_RESULTS, "utf-8"),
        "registrar-mapping": (out / "registrar_workbook.mapping.toml", REGISTRAR_MAPPING, "utf-8"),
        "powerschool-mapping": (out / "powerschool_scores.mapping.toml", POWERSCHOOL_MAPPING, "utf-8"),
        # Blackboard's Tab download: UTF-16 LE text under a .xls name (its help: "tab delimited with a
        # file extension of .xls")
        "blackboard": (out / "blackboard_grade_center.xls", "\ufeff" + BLACKBOARD_TAB, "utf-16-le"),
        "blackboard-csv": (out / "blackboard_grade_center.csv", "\ufeff" + BLACKBOARD_CSV, "utf-8"),
        "blackboard-scale-mapping": (
            out / "blackboard_scale.mapping.toml",
            BLACKBOARD_SCALE_MAPPING,
            "utf-8",
        ),
        "blackboard-ultra": (out / "blackboard_ultra_gradebook.csv", "\ufeff" + BLACKBOARD_ULTRA, "utf-8"),
        "brightspace": (out / "brightspace_grades.csv", BRIGHTSPACE, "utf-8"),
        "moodle-display-types": (out / "moodle_display_types.csv", "\ufeff" + MOODLE_DISPLAY_TYPES, "utf-8"),
    }
    paths = {}
    for name, (path, text, encoding) in files.items():
        path.write_bytes(text.encode(encoding))
        paths[name] = path
    paths["oneroster-zip"] = out / "oneroster_gradebook.zip"
    oneroster_zip(paths["oneroster-zip"])
    paths["registrar"] = out / "registrar_workbook.xlsx"
    registrar_workbook(paths["registrar"])
    return paths


if __name__ == "__main__":
    for name, path in write_all().items():
        print(f"{name}: {path.relative_to(HERE.parent)}")
