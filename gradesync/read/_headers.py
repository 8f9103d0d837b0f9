"""A header row, read once: how every reader finds its columns, and what a header itself declares.

Every reader (the header aliases, a mapping, OneRoster, preset detection) finds a column the same
way: by its name ignoring case, spaces, ``_``, ``-``, a byte-order mark and a trailing ``:``
(``Student ID`` = ``student_id`` = ``STUDENT-ID:``). ``Headers`` holds a row's names normalised once
and answers "which column is this?"; ``need`` raises the one ``input-missing-column`` error that
lists the file's headers.

A header can also declare its item's maximum. ``header_facts`` is the one rule that reads it, for
every reader and every preset, so no decoration or preset can lose a maximum by accident:

* Blackboard Learn: ``Lab Report 1 [Total Pts: 50 Score] |1260437`` → ``Lab Report 1``, maximum 50;
  ``[Total Pts: up to 160 …]`` is a calculated column (a total, an average), never an assignment;
* D2L Brightspace: ``Quiz 1 Points Grade <Numeric MaxPoints:50 Weight:25 …>`` → ``Quiz 1``, maximum
  50; ``Calculated/Adjusted Final Grade …`` and ``… Subtotal Numerator/Denominator`` are calculated;
* written by a person: ``(out of 50)``, ``(max 50)``, ``(50 pts)``, ``[50 points]``, ``(/50)``, or a
  trailing ``out of 50`` → maximum 50. These stay in the name (a Teams assignment may be called
  ``Essay (50 pts)``); a mapping's decoration removes them when Teams' names lack them.

Two statements of one maximum that disagree (``Lab (out of 50) [Total Pts: 100 Score]``) are a
conflict the caller refuses, never a choice.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from gradesync.errors import InputError

__all__ = [
    "HeaderFacts",
    "Headers",
    "header_facts",
    "normalize_header",
    "parse_maximum",
]

_NORMALIZE = re.compile(r"[\s_\-]+")


def normalize_header(header: str) -> str:
    """``" Student_ID\\ufeff"`` → ``"studentid"``: case, spaces, ``_``, ``-``, BOM and ``:`` ignored."""
    return _NORMALIZE.sub("", str(header).replace("\ufeff", "").strip().rstrip(":").casefold())


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


class Headers:
    """A table's header row with every name normalised once; the one way a reader finds a column."""

    def __init__(self, header: Sequence[str]) -> None:
        self.raw = [str(h) for h in header]
        self.norms = [normalize_header(h) for h in self.raw]

    def __len__(self) -> int:
        return len(self.raw)

    def all(self, name: str) -> list[int]:
        """Every column named ``name`` (normalised), left to right."""
        wanted = normalize_header(name)
        return [i for i, n in enumerate(self.norms) if n == wanted]

    def find(self, name: str | None) -> int | None:
        """The first column named ``name``, or None (also for no name at all)."""
        if not name:
            return None
        hits = self.all(name)
        return hits[0] if hits else None

    def first_of(self, names: Iterable[str], skip: Iterable[int] = ()) -> list[int]:
        """The columns named by any of ``names``, in the order of ``names`` (the preferred first)."""
        taken = set(skip)
        out: list[int] = []
        for name in names:
            out += [i for i in self.all(name) if i not in taken and i not in out]
        return out

    def present(self) -> set[str]:
        """The normalised names of the non-blank headers (what preset detection compares)."""
        return {n for n in self.norms if n}

    def listing(self) -> str:
        """The file's non-blank headers, quoted, for a hint."""
        return _quoted(h.strip() for h in self.raw if h.strip())

    def need(self, name: str, *, path: str, row: int, what: str, hint: str = "") -> int:
        """The first column named ``name``; else ``input-missing-column`` naming ``what`` wanted it."""
        found = self.find(name)
        if found is None:
            raise InputError(
                f'no column named "{name}" ({what})',
                file=path,
                row=row,
                column=name,
                code="input-missing-column",
                hint=(hint + "; " if hint else "") + f"headers in this file: {self.listing()}",
            )
        return found


# ---------------------------------------------------------------------------------------------
# What a header declares: its item's name, maximum, and whether it is a calculated column
# ---------------------------------------------------------------------------------------------
_NUMBER: Final = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_BLACKBOARD = re.compile(
    rf"\s*\[\s*Total Pts:\s*(?P<upto>up to\s+)?(?P<max>{_NUMBER})\s*(?P<display>[^\]]*)\]", re.IGNORECASE
)
_BLACKBOARD_ID = re.compile(r"\s*\|\s*\d+\s*$")
_BRIGHTSPACE = re.compile(
    r"\s+(?P<kind>Points|Weighted|Text) Grade\s*(?:<(?P<attrs>[^>]*)>)?\s*$", re.IGNORECASE
)
_MAX_POINTS = re.compile(rf"\bMaxPoints\s*:\s*(?P<max>{_NUMBER})", re.IGNORECASE)
_GENERIC = (
    re.compile(
        rf"[\(\[]\s*(?:out of|max(?:imum)?\.?(?:\s+points)?|possible|points possible)\s*:?\s*"
        rf"(?P<max>{_NUMBER})\s*(?:pts?\.?|points|marks)?\s*[\)\]]",
        re.IGNORECASE,
    ),
    re.compile(rf"[\(\[]\s*/\s*(?P<max>{_NUMBER})\s*[\)\]]"),
    re.compile(rf"[\(\[]\s*(?P<max>{_NUMBER})\s*(?:pts?\.?|points|marks)\s*[\)\]]", re.IGNORECASE),
    re.compile(rf"\s+out of\s+(?P<max>{_NUMBER})\s*(?:pts?\.?|points|marks)?\s*$", re.IGNORECASE),
)
#: Headers of computed columns by their name alone (Brightspace's final grades and subtotals).
_CALCULATED_NAMES = re.compile(
    r"(?i)^\s*((calculated|adjusted) final grade (numerator|denominator|scheme symbol)|"
    r".+ subtotal (numerator|denominator|scheme symbol))\s*$"
)


_MAXIMUM_TEXT = re.compile(rf"^\s*(?P<max>{_NUMBER})\s*(?:pts?\.?|points|marks)?\s*$", re.IGNORECASE)


def parse_maximum(text: str) -> float:
    """``"50"``, ``"1,499"``, ``"12.5"``, ``"50 pts"`` → the number; anything else → NaN."""
    m = _MAXIMUM_TEXT.match(str(text))
    if m is None:
        return math.nan
    value = float(m.group("max").replace(",", ""))
    return value if math.isfinite(value) else math.nan


@dataclass(frozen=True, slots=True)
class HeaderFacts:
    """What one header says about its column."""

    name: str  # the item's name: the header without the export's own syntax (Blackboard, Brightspace)
    maximum: float = math.nan  # the maximum the header declares; NaN when it declares none
    stated: str = ""  # the text that declared it, as written: '[Total Pts: 50 Score]'
    calculated: str = ""  # why the column is computed by the gradebook (never an assignment); "" if not
    conflict: str = ""  # two statements of the maximum that disagree, described; "" if none

    @property
    def declares(self) -> bool:
        return not math.isnan(self.maximum)


def header_facts(header: str) -> HeaderFacts:
    """Read what ``header`` declares (see the module docstring for the forms)."""
    text = str(header).strip()
    found: list[tuple[float, str]] = []
    calculated = ""
    name = text
    if (bb := _BLACKBOARD.search(name)) is not None:
        stated = bb.group(0).strip()
        if bb.group("upto"):
            calculated = f"a calculated column ({stated}: a total, average or overall grade)"
        else:
            found.append((parse_maximum(bb.group("max")), stated))
        name = (name[: bb.start()] + name[bb.end() :]).strip()
        name = _BLACKBOARD_ID.sub("", name).strip()
    if (ds := _BRIGHTSPACE.search(name)) is not None:
        attrs = ds.group("attrs") or ""
        if (mp := _MAX_POINTS.search(attrs)) is not None and ds.group("kind").casefold() == "points":
            found.append((parse_maximum(mp.group("max")), ds.group(0).strip()))
        if ds.group("kind").casefold() == "points":
            name = name[: ds.start()].strip()
    if _CALCULATED_NAMES.match(name):
        calculated = "a calculated column (the gradebook computes it from the items)"
    for pattern in _GENERIC:
        for m in pattern.finditer(name):
            found.append((parse_maximum(m.group("max")), m.group(0).strip()))
    found = [(v, s) for v, s in found if not math.isnan(v)]
    if not found:
        return HeaderFacts(name=name, calculated=calculated)
    values = {v for v, _ in found}
    if len(values) > 1:
        said = " and ".join(f'"{s}"' for _, s in found)
        return HeaderFacts(
            name=name, calculated=calculated, conflict=f"the header states two different maxima: {said}"
        )
    return HeaderFacts(name=name, maximum=found[0][0], stated=found[0][1], calculated=calculated)
