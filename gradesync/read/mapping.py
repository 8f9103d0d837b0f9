"""The mapping: how one export's rows and columns become desired grades, written as TOML a person edits.

A mapping says which row is the header, which column holds the student (and how its ids are
normalised), where the class comes from (a column, a template over several columns, or one key for
the whole file), what each other column is (an assignment, ignored, a maximum), which rows to ignore
(totals, averages, test students) and how grade cells are read (excused marks, letter tables,
percent). Every preset in ``gradesync.read.presets`` is a ``Mapping``; ``gradesync inspect
--write-mapping`` writes one for a person to edit. Example (``config/mappings/powerschool.toml``)::

    layout = "long"
    [student]
    column = "Student_Number"
    zero_pad = 6
    [class]
    template = "{Course_Number}.{Section_Number}"
    [assignment]
    column = "Assignment_Name"
    points = "Score"
    maximum = "Points_Possible"
    excuse = "Exempt"
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gradesync.config import StudentKey
from gradesync.errors import ConfigError

__all__ = [
    "AssignmentRule",
    "ClassRule",
    "ColumnRules",
    "IdentifierRule",
    "IgnoreRow",
    "Mapping",
    "StudentRule",
    "ValueRules",
    "find_mapping_beside",
    "load_mapping",
]

#: The placeholders of a class template: ``{Course_Number}`` names a column by its header.
TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentifierRule(_Part):
    """One student identifier column and the Teams attribute it is matched by."""

    column: str
    # the Teams attribute: sis_id (student.externalId, then externalId), student_number, upn, mail, id
    match: StudentKey
    # appended as "@domain" to a value without "@" (a username → its UPN); for upn, [input]
    # username_domain is the default
    domain: str | None = None
    strip_prefix: str | None = None  # removed from the start of every value ("#" in Brightspace exports)
    zero_pad: int | None = Field(None, ge=1, le=32)  # all-digit values shorter than this get leading zeros

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "@" in v or " " in v.strip()):
            raise ValueError('domain is a mail domain such as "contoso.edu" (no "@", no spaces)')
        return v.strip() if v is not None else v


class StudentRule(_Part):
    """The student id column and how its ids are normalised before matching.

    ``column`` alone: one identifier, matched by ``[match] student_by``. ``identifiers``: an ordered
    list, each matched by its own Teams attribute; the first that finds the student wins, and two that
    find different students refuse the row (``identifier_conflict``).
    """

    column: str | None = None
    # An all-digit id shorter than this gets leading zeros (Excel turned 000123 into 123).
    zero_pad: int | None = Field(None, ge=1, le=32)
    # Removed from the start of every id ("S000101" → "000101"); exact, case-sensitive.
    strip_prefix: str | None = None
    identifiers: list[IdentifierRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _column_or_identifiers(self) -> StudentRule:
        if self.identifiers and (self.column or self.zero_pad or self.strip_prefix):
            raise ValueError(
                "give student.column (one identifier) or student.identifiers (several, in order), not "
                "both; zero_pad and strip_prefix go on each identifier"
            )
        return self


class ClassRule(_Part):
    """Where a row's class key comes from: one of column, template or key (or --class)."""

    column: str | None = None
    template: str | None = None  # "{Course_Number}.{Section_Number}"
    key: str | None = None  # every row of the file belongs to this class
    # a class value of the file → the Teams class key it means ("Biology - P2" = "SEC-1002"): how the
    # web app's class chooser records a choice; a value not listed is matched as it is
    values: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one(self) -> ClassRule:
        given = [n for n in ("column", "template", "key") if getattr(self, n)]
        if len(given) > 1:
            raise ValueError(
                f"give only one of class.column, class.template, class.key (got {', '.join(given)})"
            )
        if self.key and self.values:
            raise ValueError(
                "class.values renames the file's class values; class.key already names one class"
            )
        if self.template is not None and not TEMPLATE_FIELD.search(self.template):
            raise ValueError(
                'class.template names no column: write it like "{Course_Number}.{Section_Number}"'
            )
        return self

    def template_columns(self) -> list[str]:
        return TEMPLATE_FIELD.findall(self.template or "")


class AssignmentRule(_Part):
    """Long layout: the columns that hold the assignment, the points, the maximum and an exempt flag."""

    column: str | None = None
    points: str | None = None
    maximum: str | None = None  # points possible per row (checked against Teams' maximum)
    excuse: str | None = None  # a column whose true value (1, Y, yes, true, X) excuses the submission
    status: str | None = None  # a status column (OneRoster scoreStatus): see ValueRules.excuse_statuses


class ColumnRules(_Part):
    """Wide layout: which header is which assignment, its maximum, and which columns are not grades."""

    # A pattern removed from every header to get the assignment name (Canvas ids: ``Unit 1 Quiz
    # (48211)`` → ``Unit 1 Quiz``). With a group and a leading ^, group 1 is the name instead. It is
    # applied after an export's own maximum syntax is read and taken out (Blackboard's ``[Total Pts:
    # 50 Score] |1260437``, Brightspace's ``Points Grade <Numeric MaxPoints:50>``), so it never
    # removes a maximum unread.
    decoration: str | None = None
    # header → Teams assignment name; wins over the decoration
    assignments: dict[str, str] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)  # exact headers (case and spaces ignored)
    ignore_patterns: list[str] = Field(default_factory=list)  # regular expressions on the header
    # ignore every column not named in ``assignments`` (a file with many unrelated columns)
    only_listed: bool = False
    # header or assignment name → its maximum (points possible), checked against Teams' maximum
    maxima: dict[str, float] = Field(default_factory=dict)
    # a pattern whose group "max" (or group 1) captures the maximum a header states, for a form
    # gradesync does not know ("Lab 1 - worth 50" → '(?i)worth (?P<max>\d+)')
    maximum_pattern: str | None = None
    # the same grade in another display, beside the value column: display → a pattern whose group 1
    # is the item's name as the decoration gives it. "percent" twins are checked against the points;
    # "letter" twins are ignored with a note (a letter's range is not in the file)
    twins: dict[Literal["percent", "letter"], str] = Field(default_factory=dict)

    @field_validator("decoration")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            _compile(v, "columns.decoration")
        return v

    @field_validator("ignore_patterns")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        for p in v:
            _compile(p, "columns.ignore_patterns")
        return v

    @field_validator("maximum_pattern")
    @classmethod
    def _maximum(cls, v: str | None) -> str | None:
        if v is not None:
            compiled = _compile(v, "columns.maximum_pattern")
            if "max" not in compiled.groupindex and compiled.groups < 1:
                raise ValueError("columns.maximum_pattern needs a group that captures the number: (?P<max>…)")
        return v

    @field_validator("maxima")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        for key, value in v.items():
            if not value >= 0:
                raise ValueError(f'columns.maxima: "{key}" = {value} is not a maximum (0 or more points)')
        return v

    @field_validator("twins")
    @classmethod
    def _twin_patterns(cls, v: dict[str, str]) -> dict[str, str]:
        for kind, p in v.items():
            if _compile(p, f"columns.twins.{kind}").groups < 1:
                raise ValueError(f"columns.twins.{kind}: the pattern needs a group capturing the item's name")
        return v


class IgnoreRow(_Part):
    """Rows whose cell in ``column`` (any identifier column when absent) matches ``pattern``."""

    pattern: str
    column: str | None = None
    why: str = "ignored by the mapping"

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        _compile(v, "ignore_rows.pattern")
        return v


class ValueRules(_Part):
    """How a grade cell is read. Nothing here guesses: a cell that fits no rule is rejected, saying why."""

    excused_marks: list[str] = Field(default_factory=list)  # "EX", "EXE", "X": excuse the submission
    blank_marks: list[str] = Field(default_factory=list)  # "-", "*": no grade entered (no change)
    # "accept": 95% (text, or an Excel percent-formatted cell) is a share of Teams' maximum, which
    # the plan converts and notes on the row; "reject": a percent is refused.
    percent: Literal["accept", "reject"] = "accept"
    # letter → points or percent ("A" = "95%", "B" = 85): without an entry a letter is refused
    letters: dict[str, str | float] = Field(default_factory=dict)
    # status values that excuse (OneRoster scoreStatus "exempt"); case-insensitive
    excuse_statuses: list[str] = Field(default_factory=list)
    # a maximum the file declares that differs from Teams': "reject" refuses the row
    # (points_possible_mismatch); "scale" writes points × Teams' maximum / the file's, and says so
    maximum_mismatch: Literal["reject", "scale"] = "reject"


class Mapping(_Part):
    """One export format: everything read needs to turn its rows into desired grades."""

    preset: str | None = None  # the preset this mapping started from (informational)
    description: str = ""
    layout: Literal["auto", "long", "wide"] = "auto"
    header_row: int | None = Field(None, ge=1)  # the header's row number as a person sees it
    student: StudentRule = StudentRule()
    class_: ClassRule = Field(ClassRule(), alias="class")
    assignment: AssignmentRule = AssignmentRule()
    columns: ColumnRules = ColumnRules()
    ignore_rows: list[IgnoreRow] = Field(default_factory=list)
    values: ValueRules = ValueRules()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_toml(self) -> str:
        """The mapping as TOML a person can read and edit (defaults left out, sections commented)."""
        return _to_toml(self)


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"{where}: not a valid regular expression ({e})") from None


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping TOML file; ``ConfigError`` (exit 2) names the file and the wrong key."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: mapping file not found", code="mapping-missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: mapping file cannot be read ({e})", code="mapping-unreadable") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}", code="mapping-syntax") from None
    try:
        return Mapping.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(
            f"{p}: {problems}",
            code="mapping-invalid",
            hint="see config/mappings/*.toml for examples, or write one with "
            "gradesync inspect FILE --write-mapping",
        ) from None


def find_mapping_beside(path: str | Path) -> Path | None:
    """``exports/algebra.xlsx`` → ``exports/algebra.mapping.toml`` when that file exists."""
    p = Path(path)
    candidate = p.with_name(f"{p.stem}.mapping.toml")
    return candidate if candidate.is_file() else None


# ---------------------------------------------------------------------------------------------
# TOML writing (tomllib only reads): small and explicit, for the shapes a Mapping has
# ---------------------------------------------------------------------------------------------
def _q(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # a pattern with backslashes reads better as a literal string
        if "\\" in value and "'" not in value and "\n" not in value:
            return f"'{value}'"
        return _q(value)
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")  # pragma: no cover


_SECTION_HELP = {
    "student": "the student id column, and how ids are normalised before matching",
    "class": "where each row's class comes from: column, template or key (or --class)",
    "assignment": "long layout: the assignment, points, maximum and exempt columns",
    "columns": "wide layout: header → assignment, and columns that are not grades",
    "values": "how grade cells are read (nothing is guessed: what fits no rule is refused)",
}


def _to_toml(m: Mapping) -> str:
    data = m.model_dump(by_alias=True, exclude_defaults=True)
    lines = ['# gradesync mapping: see README, section "The mapping file"']
    for key in ("preset", "description", "layout", "header_row"):
        if key in data:
            lines.append(f"{key} = {_literal(data[key])}")
    for section in ("student", "class", "assignment", "columns", "values"):
        body = data.get(section)
        if not body:
            continue
        lines += ["", f"# {_SECTION_HELP[section]}", f"[{section}]"]
        tables = {k: v for k, v in body.items() if isinstance(v, dict)}
        arrays = {k: v for k, v in body.items() if isinstance(v, list) and v and isinstance(v[0], dict)}
        for k, v in body.items():
            if k not in tables and k not in arrays:
                lines.append(f"{k} = {_literal(v)}")
        for k, table in tables.items():
            lines += ["", f"[{section}.{k}]"]
            lines += [f"{_q(str(tk))} = {_literal(tv)}" for tk, tv in table.items()]
        for k, items in arrays.items():
            for item in items:
                lines += ["", f"[[{section}.{k}]]"]
                lines += [f"{ik} = {_literal(iv)}" for ik, iv in item.items()]
    for rule in data.get("ignore_rows", []):
        lines += ["", "[[ignore_rows]]"]
        lines += [f"{k} = {_literal(v)}" for k, v in rule.items()]
    return "\n".join(lines) + "\n"
