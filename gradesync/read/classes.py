"""Which Teams class an export's class value (or a file without one) is for: suggestions and search.

An export names its class the way its own system does: Canvas's ``Section`` column holds the
section's *name* (``Biology - P2``), PowerSchool builds ``SEC.1002``, a hand-made workbook names none.
Teams classes are matched by their key (``[match] class_by``, the SIS id by default), which a
registrar has never seen. These functions rank the tenant's classes (:class:`~gradesync.models.TeamsClass`,
read by ``resolve.read_classes``) for a value so that a person can choose by what people call a
class: its name, its SIS id, its teacher, its term. Nothing here decides: a suggestion is shown and
confirmed, never applied on its own.

Ranking, best first (ties by name):

1. the value *is* the class's name, SIS id, class code, mail nickname or id (ignoring case, spaces
   and the kind of dash) — "the name in the file";
2. the value is the SIS course name (``externalName``: several sections share it);
3. one contains the other (``Biology - P2`` in ``Biology - P2 (2024)``);
4. close spellings (``difflib`` ratio ≥ 0.6 on the name or the SIS id: ``SEC.1002`` ~ ``SEC-1002``);
5. for a file whose rows name no class, the file's own name containing the class's name
   (``Biology - P2 grades.csv``).

A single suggestion of kind 1 is *unique*: the web app preselects it for the registrar to confirm.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from gradesync.models import TeamsClass

__all__ = ["ClassSuggestion", "fold", "search_classes", "suggest_classes"]

_DASHES = re.compile(r"[\u2010-\u2015\u2212_]+")
_SPACES = re.compile(r"\s+")
# (score, why) per kind of match; a kind-1 match scores EXACT
EXACT = 1.0
_COURSE, _CONTAINS, _FILE_NAME = 0.8, 0.7, 0.5
_CLOSE_CUTOFF = 0.6
_MIN_CONTAINED = 4  # characters: "P2" is in too many names to mean anything


@dataclass(frozen=True, slots=True)
class ClassSuggestion:
    teams_class: TeamsClass
    score: float  # 1.0 = the value is one of the class's names or ids
    why: str  # in words: "same name", "same SIS id", "close to its name", …

    @property
    def exact(self) -> bool:
        return self.score >= EXACT


def fold(text: str) -> str:
    """Text as compared: Unicode-normalised, case-folded, every dash a hyphen, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text or "")
    return _SPACES.sub(" ", _DASHES.sub("-", text)).strip().casefold()


def _exact(value: str, c: TeamsClass) -> str:
    for why, field in (
        ("same name", c.display_name),
        ("same SIS id", c.external_id),
        ("same class code", c.class_code),
        ("same mail nickname", c.mail_nickname),
        ("same id", c.id),
    ):
        if field and fold(field) == value:
            return why
    return ""


def _score(value: str, c: TeamsClass) -> tuple[float, str]:
    why = _exact(value, c)
    if why:
        return EXACT, why
    name = fold(c.display_name)
    if c.external_name and fold(c.external_name) == value:
        return _COURSE, "same course"
    if len(value) >= _MIN_CONTAINED and len(name) >= _MIN_CONTAINED and (value in name or name in value):
        return _CONTAINS, "part of its name"
    best, why = 0.0, ""
    for label, field in (("close to its name", name), ("close to its SIS id", fold(c.external_id))):
        if field:
            ratio = difflib.SequenceMatcher(None, value, field).ratio()
            if ratio > best:
                best, why = ratio, label
    if best >= _CLOSE_CUTOFF:
        return best * 0.6, why  # always below the kinds above
    return 0.0, ""


def suggest_classes(
    value: str, classes: Sequence[TeamsClass], *, file_name: str = "", limit: int = 5
) -> list[ClassSuggestion]:
    """The classes ``value`` (a class cell of the export, or "" when the rows name none) most likely
    means, best first; ``file_name`` (the export's own name) ranks classes whose name it contains."""
    folded = fold(value)
    stem = fold(re.sub(r"\.[A-Za-z0-9]{1,5}$", "", file_name))
    found: list[ClassSuggestion] = []
    for c in classes:
        score, why = _score(folded, c) if folded else (0.0, "")
        name = fold(c.display_name)
        if not score and stem and len(name) >= _MIN_CONTAINED and name in stem:
            score, why = _FILE_NAME, "named in the file's name"
        if score:
            found.append(ClassSuggestion(c, score, why))
    found.sort(key=lambda s: (-s.score, fold(s.teams_class.display_name), s.teams_class.id))
    return found[:limit]


def search_classes(query: str, classes: Sequence[TeamsClass], *, limit: int = 50) -> list[TeamsClass]:
    """Classes whose name, SIS id, course name, class code, term or teachers hold every word of
    ``query`` (ignoring case), by name; at most ``limit``."""
    words = fold(query).split()
    if not words:
        return []
    out = []
    for c in classes:
        haystack = fold(
            " ".join([c.display_name, c.external_id, c.external_name, c.class_code, c.term, *c.teachers])
        )
        if all(w in haystack for w in words):
            out.append(c)
            if len(out) >= limit:
                break
    return out
