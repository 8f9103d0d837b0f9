"""Presets: the export formats read recognises from their header, each a ``Mapping``.

``detect(header)`` names the preset whose required headers are all present (the most specific
first); ``format="NAME"`` forces one. Sources for each format are listed in the README section
"Export formats" (and in the project notes). The OneRoster gradebook CSV is read by
``_oneroster.py`` (two files joined), so its entry here only detects it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from gradesync.read._headers import normalize_header
from gradesync.read.mapping import (
    AssignmentRule,
    ClassRule,
    ColumnRules,
    IdentifierRule,
    IgnoreRow,
    Mapping,
    StudentRule,
    ValueRules,
)

__all__ = [
    "PRESETS",
    "SUMMARY_ROW_PATTERN",
    "Preset",
    "detect",
    "is_line_items",
    "is_manifest",
    "near_miss",
    "norm",
]

#: The layout stage's header normalisation (case, spaces, ``_``, ``-``, BOM and ``:`` ignored).
norm = normalize_header


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    title: str
    requires: tuple[str, ...]  # every one of these headers (normalised) is present
    mapping: Mapping
    any_of: tuple[str, ...] = ()  # and at least one of these, when given
    header_pattern: str = ""  # and some header matches this pattern, when given
    source: str = ""  # the vendor's documentation the layout follows

    def matches(self, headers: set[str], raw: Sequence[str] = ()) -> bool:
        return not self.missing(headers, raw)

    def missing(self, headers: set[str], raw: Sequence[str] = ()) -> list[str]:
        """What the header lacks to be this format: required headers, one of ``any_of``, the pattern."""
        out = [h for h in self.requires if norm(h) not in headers]
        if self.any_of and not any(norm(h) in headers for h in self.any_of):
            out.append(" or ".join(self.any_of))
        if self.header_pattern and not any(re.search(self.header_pattern, h) for h in raw):
            out.append(f"a header like {self.example}")
        return out

    @property
    def example(self) -> str:
        return _EXAMPLES.get(self.name, self.header_pattern)

    def toml(self) -> str:
        """The preset written out as a mapping a person copies and edits (``config/mappings/NAME.toml``)."""
        detected = "all of: " + ", ".join(self.requires)
        if self.any_of:
            detected += "; one of: " + ", ".join(self.any_of)
        if self.header_pattern:
            detected += f"; a header like {self.example}"
        lines = [
            f"# {self.title}: the built-in preset, written out as a mapping to copy and edit.",
            f"# Detected from the header ({detected}); give an edited copy with",
            "# --mapping FILE, or save it beside the export as NAME.mapping.toml.",
        ]
        if self.source:
            lines.append(f"# Layout: {self.source}")
        return "\n".join(lines) + "\n" + self.mapping.to_toml()


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
        student=StudentRule(
            identifiers=[
                IdentifierRule(column="SIS User ID", match="sis_id"),
                IdentifierRule(column="SIS Login ID", match="upn"),
            ]
        ),
        columns=ColumnRules(
            decoration=r" \((\d+)\)$",
            ignore=["Student", "ID", "Section", "Integration ID", "Root Account"],
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

#: Moodle writes each grade item once per display type chosen at export: "Quiz: Unit 1 Quiz (Real)",
#: "… (Percentage)" (``95.00 %``), "… (Letter)". The prefix is the activity's module; a manual item
#: or a category total has none.
_MOODLE_ITEM = r"^(?:[^:]+: )?(.+) \({}\)$"

MOODLE = Preset(
    name="moodle",
    title="Moodle grade export (plain text / Excel)",
    requires=("First name", "Last name", "Email address"),
    any_of=("ID number", "Username"),
    source="https://docs.moodle.org/en/Grade_export",
    mapping=Mapping(
        preset="moodle",
        description='Moodle: Grades → Export → Plain text file; headers like "Quiz: Unit 1 Quiz (Real)"',
        layout="wide",
        student=StudentRule(
            identifiers=[
                IdentifierRule(column="ID number", match="sis_id"),
                IdentifierRule(column="Username", match="upn"),
                IdentifierRule(column="Email address", match="mail"),
            ]
        ),
        columns=ColumnRules(
            decoration=_MOODLE_ITEM.format("Real"),
            twins={"percent": _MOODLE_ITEM.format("Percentage"), "letter": _MOODLE_ITEM.format("Letter")},
            ignore=[
                "First name",
                "Last name",
                "Institution",
                "Department",
                "Suspended",
                "Last downloaded from this course",
            ],
            ignore_patterns=[
                r"(?i)^course total( \(.*\))?$",
                r"\(Feedback\)$",
                r"(?i) total \(.*\)$",
            ],
        ),
        values=ValueRules(blank_marks=["-"]),
    ),
)

#: Blackboard Learn's downloaded Grade Center (Original) and gradebook (Ultra): the default user
#: columns, then one column per item headed "Name [Total Pts: 50 Score] |1260437" (the maximum, the
#: primary display and the column id); calculated columns say "[Total Pts: up to 160 …]".
_BLACKBOARD_MAPPING = Mapping(
    preset="blackboard",
    description="Blackboard Learn: Grade Center → Work Offline → Download (Comma .csv or Tab .xls)",
    layout="wide",
    student=StudentRule(
        identifiers=[
            IdentifierRule(column="Student ID", match="sis_id"),
            IdentifierRule(column="Username", match="upn"),
        ]
    ),
    columns=ColumnRules(
        ignore=["Last Name", "First Name", "Last Access", "Availability", "Child Course ID"],
    ),
)
_BLACKBOARD_USERS = ("Last Name", "First Name", "Username")
_TOTAL_PTS = r"\[\s*Total Pts:"

BLACKBOARD_ULTRA = Preset(
    name="blackboard-ultra",
    title="Blackboard Learn Ultra gradebook download",
    requires=_BLACKBOARD_USERS,
    header_pattern=r"(?i)^\s*Overall Grade\s*\[\s*Total Pts:",
    source="https://help.blackboard.com/Learn/Instructor/Ultra/Grade/Grading_Tasks/Work_Offline_With_Grade_Data",
    mapping=_BLACKBOARD_MAPPING.model_copy(
        update={
            "preset": "blackboard-ultra",
            "description": "Blackboard Learn Ultra: Gradebook → Download (CSV, or tab-delimited XLS)",
        }
    ),
)

BLACKBOARD = Preset(
    name="blackboard",
    title="Blackboard Learn Original Grade Center download (Work Offline)",
    requires=_BLACKBOARD_USERS,
    header_pattern=_TOTAL_PTS,
    source="https://help.blackboard.com/Learn/Instructor/Original/Grade/Grading_Tasks/Work_Offline_With_Grade_Data",
    mapping=_BLACKBOARD_MAPPING,
)

#: D2L Brightspace: Grades → Enter Grades → Export. Key field OrgDefinedId, Username or both, each
#: value prefixed with "#" (so Excel keeps its leading zeros); one "Name Points Grade <Numeric
#: MaxPoints:50 …>" column per item when "Points grade" is chosen; the final grades; and a last
#: "End-of-Line Indicator" column of "#".
BRIGHTSPACE = Preset(
    name="brightspace",
    title="D2L Brightspace grades export",
    requires=("End-of-Line Indicator",),
    any_of=("OrgDefinedId", "Username"),
    source="https://community.d2l.com/brightspace/kb/articles/3538-importing-grades",
    mapping=Mapping(
        preset="brightspace",
        description="D2L Brightspace: Grades → Enter Grades → Export (Points grade; key field "
        "OrgDefinedId, Username or both)",
        layout="wide",
        student=StudentRule(
            identifiers=[
                IdentifierRule(column="OrgDefinedId", match="sis_id", strip_prefix="#"),
                IdentifierRule(column="Username", match="upn", strip_prefix="#"),
                IdentifierRule(column="Email", match="mail"),
            ]
        ),
        columns=ColumnRules(
            ignore=["Last Name", "First Name", "End-of-Line Indicator"],
            # only the points grades are grades: weighted grades, grade-scheme symbols, text grades,
            # subtotals and the final grades are not points of an item
            ignore_patterns=[r"(?i)^(?!.* Points Grade\s*(<[^>]*>)?\s*$)"],
        ),
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
    p.name: p
    for p in (
        ONEROSTER,
        CANVAS,
        INFINITE_CAMPUS,
        POWERSCHOOL,
        MOODLE,
        BRIGHTSPACE,
        BLACKBOARD_ULTRA,
        BLACKBOARD,
        GOOGLE_CLASSROOM,
        SKYWARD,
    )
}

_EXAMPLES = {
    "blackboard": '"Lab Report 1 [Total Pts: 50 Score] |1260437"',
    "blackboard-ultra": '"Overall Grade [Total Pts: up to 160 Letter] |1260440"',
}


def detect(headers: Iterable[str]) -> Preset | None:
    """The preset whose headers are all in ``headers`` (most specific first), or None."""
    raw = [h for h in headers if h and h.strip()]
    present = {norm(h) for h in raw}
    for preset in PRESETS.values():
        if preset.matches(present, raw):
            return preset
    return None


def near_miss(headers: Iterable[str]) -> tuple[Preset, list[str]] | None:
    """A preset the header almost is: at least half of its required headers (and its pattern, when it
    has one) present, but not all. ``inspect`` says "looks like …, but the header differs"."""
    raw = [h for h in headers if h and h.strip()]
    present = {norm(h) for h in raw}
    best: tuple[float, Preset, list[str]] | None = None
    for preset in PRESETS.values():
        missing = preset.missing(present, raw)
        wanted = len(preset.requires) + bool(preset.any_of) + bool(preset.header_pattern)
        share = 1 - len(missing) / max(wanted, 1)
        if missing and share >= 0.5 and (best is None or share > best[0]):
            best = (share, preset, missing)
    return (best[1], best[2]) if best else None


def is_line_items(headers: Iterable[str]) -> bool:
    """A OneRoster ``lineItems.csv`` (the assignments), not results."""
    present = {norm(h) for h in headers}
    return all(norm(h) in present for h in ONEROSTER_LINE_ITEMS) and norm("studentSourcedId") not in present


def is_manifest(headers: Iterable[str]) -> bool:
    present = [norm(h) for h in headers if h.strip()]
    return present[:2] == ["propertyname", "value"]
