"""Presets: the export formats read recognises from their header, each a ``Mapping``.

``detect(header)`` names the preset whose required headers are all present (the most specific
first); ``format="NAME"`` forces one. Sources for each format are listed in the README section
"Export formats" (and in the project notes). The OneRoster gradebook CSV is read by
``_oneroster.py`` (two files joined), so its entry here only detects it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gradesync.read.mapping import (
    AssignmentRule,
    ClassRule,
    ColumnRules,
    IgnoreRow,
    Mapping,
    StudentRule,
    ValueRules,
)

_NORM = re.compile(r"[\s_\-]+")


def norm(header: str) -> str:
    """The same header normalisation as the layout stage: case, spaces, ``_``, ``-`` and BOM ignored."""
    return _NORM.sub("", header.replace("\ufeff", "").strip().rstrip(":").casefold())


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    title: str
    requires: tuple[str, ...]  # every one of these headers (normalised) is present
    mapping: Mapping
    any_of: tuple[str, ...] = ()  # and at least one of these, when given

    def matches(self, headers: set[str]) -> bool:
        if not all(norm(h) in headers for h in self.requires):
            return False
        return not self.any_of or any(norm(h) in headers for h in self.any_of)


#: Rows every format may carry below the students: summary rows, never a student.
SUMMARY_ROW_PATTERN: Final = (
    r"(?i)^\s*(class average|average|averages|class avg|mean|median|total|totals|grand total|"
    r"points possible|possible points|max points|maximum|high|low|std dev|standard deviation)\s*:?\s*$"
)

CANVAS = Preset(
    name="canvas",
    title="Canvas gradebook export",
    requires=("Student", "ID", "SIS User ID", "SIS Login ID", "Section"),
    mapping=Mapping(
        preset="canvas",
        description="Canvas: Grades → Export (entire gradebook, CSV)",
        layout="wide",
        student=StudentRule(column="SIS User ID"),
        columns=ColumnRules(
            decoration=r" \((\d+)\)$",
            ignore=["Student", "ID", "SIS Login ID", "Section", "Integration ID", "Root Account"],
            ignore_patterns=[
                r"(?i)^(unposted )?(current|final) (points|score|grade)$",
                r"(?i)^override (score|grade)$",
                r"(?i) (current|final|unposted current|unposted final) (points|score)$",  # group totals
            ],
        ),
        ignore_rows=[
            IgnoreRow(column="Student", pattern=r"^\s*Test Student\s*$", why="Canvas's test student"),
            IgnoreRow(column="Student", pattern=r"^\s*Student, Test\s*$", why="Canvas's test student"),
        ],
        values=ValueRules(excused_marks=["EX"]),
    ),
)

POWERSCHOOL = Preset(
    name="powerschool",
    title="PowerSchool / PowerTeacher Pro assignment scores (long)",
    requires=("Student_Number", "Course_Number", "Section_Number", "Score"),
    any_of=("Assignment_Name", "Assignment"),
    mapping=Mapping(
        preset="powerschool",
        description="PowerSchool assignment scores export, one row per student and assignment",
        layout="long",
        student=StudentRule(column="Student_Number"),
        class_=ClassRule(template="{Course_Number}.{Section_Number}"),
        assignment=AssignmentRule(
            column="Assignment_Name", points="Score", maximum="Points_Possible", excuse="Exempt"
        ),
        values=ValueRules(excused_marks=["EX", "EXC"]),
    ),
)

INFINITE_CAMPUS = Preset(
    name="infinite-campus",
    title="Infinite Campus grade book scores (long)",
    requires=("Student Number", "Course Number", "Section Number", "Assignment Name", "Score", "Flags"),
    mapping=Mapping(
        preset="infinite-campus",
        description="Infinite Campus grade book scores, one row per student and assignment; Flags X = exempt",
        layout="long",
        student=StudentRule(column="Student Number"),
        class_=ClassRule(template="{Course Number}-{Section Number}"),
        assignment=AssignmentRule(
            column="Assignment Name", points="Score", maximum="Total Points", status="Flags"
        ),
        values=ValueRules(excuse_statuses=["X"], excused_marks=["X"]),
    ),
)

SKYWARD = Preset(
    name="skyward",
    title="Skyward gradebook export (wide)",
    requires=("Student Name", "Other ID"),
    mapping=Mapping(
        preset="skyward",
        description='Skyward Educator Access gradebook export; "*" = no grade entered, EXE = exempt',
        layout="wide",
        student=StudentRule(column="Other ID"),
        columns=ColumnRules(
            ignore=["Student Name", "Student ID", "Grade", "Grade Level", "Status"],
            ignore_patterns=[
                r"(?i)^(term|semester|quarter|q\d|s\d|t\d)( grade| percent| %)?$",
                r"(?i)^(percent|%)$",
            ],
        ),
        ignore_rows=[IgnoreRow(column="Student Name", pattern=SUMMARY_ROW_PATTERN, why="a summary row")],
        values=ValueRules(excused_marks=["EXE", "EX"], blank_marks=["*"]),
    ),
)

GOOGLE_CLASSROOM = Preset(
    name="google-classroom",
    title="Google Classroom grades export (wide)",
    requires=("Last Name", "First Name", "Email Address"),
    mapping=Mapping(
        preset="google-classroom",
        description="Google Classroom: Grades → Download these grades as CSV",
        layout="wide",
        student=StudentRule(column="Email Address"),
        columns=ColumnRules(ignore=["Last Name", "First Name", "Overall", "Average", "Overall grade"]),
        ignore_rows=[
            IgnoreRow(column="Last Name", pattern=r"(?i)^\s*(date|due date)\s*$", why="the due-date row"),
            IgnoreRow(column="Last Name", pattern=SUMMARY_ROW_PATTERN, why="a summary row"),
        ],
    ),
)

MOODLE = Preset(
    name="moodle",
    title="Moodle grade export (plain text / Excel)",
    requires=("First name", "Last name", "Email address"),
    any_of=("ID number", "Username"),
    mapping=Mapping(
        preset="moodle",
        description='Moodle: Grades → Export → Plain text file; headers like "Quiz: Unit 1 Quiz (Real)"',
        layout="wide",
        student=StudentRule(column="ID number"),
        columns=ColumnRules(
            decoration=r"^[^:]+: (.+) \(Real\)$",
            ignore=[
                "First name",
                "Last name",
                "Username",
                "Institution",
                "Department",
                "Email address",
                "Suspended",
                "Last downloaded from this course",
            ],
            ignore_patterns=[
                r"(?i)^course total( \(.*\))?$",
                r"\((Letter|Feedback)\)$",
                r"(?i) total \(.*\)$",
            ],
        ),
        values=ValueRules(blank_marks=["-"]),
    ),
)

#: OneRoster 1.1/1.2 gradebook CSV: ``results.csv`` (one row per result) joined to ``lineItems.csv``.
ONEROSTER = Preset(
    name="oneroster",
    title="OneRoster 1.1/1.2 gradebook CSV (results.csv + lineItems.csv)",
    requires=("sourcedId", "lineItemSourcedId", "studentSourcedId", "score"),
    mapping=Mapping(
        preset="oneroster",
        description="OneRoster gradebook CSV: classSourcedId is the Teams class externalId",
        layout="long",
        values=ValueRules(excuse_statuses=["exempt"]),
    ),
)
ONEROSTER_LINE_ITEMS: Final = ("sourcedId", "title", "classSourcedId")

PRESETS: Final[dict[str, Preset]] = {
    p.name: p for p in (ONEROSTER, CANVAS, INFINITE_CAMPUS, POWERSCHOOL, MOODLE, GOOGLE_CLASSROOM, SKYWARD)
}


def detect(headers: Iterable[str]) -> Preset | None:
    """The preset whose headers are all in ``headers`` (most specific first), or None."""
    present = {norm(h) for h in headers if h and h.strip()}
    for preset in PRESETS.values():
        if preset.matches(present):
            return preset
    return None


def is_line_items(headers: Iterable[str]) -> bool:
    """A OneRoster ``lineItems.csv`` (the assignments), not results."""
    present = {norm(h) for h in headers}
    return all(norm(h) in present for h in ONEROSTER_LINE_ITEMS) and norm("studentSourcedId") not in present


def is_manifest(headers: Iterable[str]) -> bool:
    present = [norm(h) for h in headers if h.strip()]
    return present[:2] == ["propertyname", "value"]
