"""The class chooser: the tenant's classes as people know them, cached, and what the Map page offers.

**The catalog.** The tenant's classes are read from Graph in one listing (``Pipeline.classes``) and kept
in the web app's database with the moment they were read; pages say how old the list is and offer
"Read the class list again". A list older than ``max_age`` is read again when next needed. Teachers
are not in Graph's class listing (one more request per class, batched): see :class:`ClassCatalog`.

**The chooser.** For each class value of a file (or the whole file, when its rows name no class) the
Map page shows one ``<select>`` (no JavaScript needed): the class found in Teams, else the suggestions
(``read.classes.suggest_classes``: the value equal to a class's name first), then the results of a
search the registrar made for this value, then — in a tenant small enough (:data:`LIST_ALL_UP_TO`)
— every class. A value found in Teams, or a single exact suggestion, is preselected for the registrar
to confirm; otherwise nothing is chosen until the registrar chooses. Each option reads
"name — SIS id · teacher · term".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gradesync.models import TeamsClass
from gradesync.read.classes import fold, search_classes, suggest_classes
from gradesync.state.webstore import WebStore

__all__ = [
    "LIST_ALL_UP_TO",
    "TEACHERS_FOR_ALL_UP_TO",
    "Chooser",
    "ClassCatalog",
    "Option",
    "chooser",
    "with_names",
]

LIST_ALL_UP_TO = 200  # a tenant with more classes: suggestions and search only (a page stays small)
TEACHERS_FOR_ALL_UP_TO = 1000  # classes whose teachers are all read (a request each, once a day)
SEARCH_RESULTS = 50
_CATALOG = "classes"
_TEACHERS = "teachers"


@dataclass(frozen=True, slots=True)
class Option:
    id: str  # Graph's id of the class (the form's value; never shown as a file's name)
    label: str  # its name
    detail: str  # SIS id · teachers · term
    why: str = ""  # why it is suggested


@dataclass(slots=True)
class Chooser:
    """One class value of one file and the classes offered for it."""

    form_name: str  # the form field
    value: str  # the file's class value ("" for "every row of the file")
    rows: int
    found: bool  # the value is a class key Teams has
    selected: str  # the preselected (or chosen) class id; "" none
    state: str  # "found" | "suggested" | "chosen" | "choose"
    groups: list[tuple[str, list[Option]]] = field(default_factory=list)
    query: str = ""
    searched: bool = False
    results: int = 0  # classes the search found


def _data(c: TeamsClass) -> dict[str, Any]:
    return {
        "id": c.id,
        "display_name": c.display_name,
        "external_id": c.external_id,
        "external_name": c.external_name,
        "class_code": c.class_code,
        "mail_nickname": c.mail_nickname,
        "term": c.term,
    }


class ClassCatalog:
    """The tenant's classes, read through the pipeline and kept in the web app's database.

    Teachers are one request per class: for a tenant of at most :data:`TEACHERS_FOR_ALL_UP_TO` classes
    they are read for every class (once a day), so a search by a teacher's name finds any class; a
    larger tenant has them read for the classes a page shows (a search by name, SIS id, course or term
    always covers every class)."""

    def __init__(
        self,
        store: WebStore,
        fetch: Callable[[], list[TeamsClass]],
        fetch_teachers: Callable[[Sequence[str]], dict[str, tuple[str, ...]]],
        *,
        max_age: float = 3600.0,
        teachers_max_age: float = 24 * 3600.0,
    ) -> None:
        self.store, self.fetch, self.fetch_teachers = store, fetch, fetch_teachers
        self.max_age, self.teachers_max_age = max_age, teachers_max_age
        self._lock = threading.Lock()

    def _teachers(self) -> tuple[float, dict[str, list[str]]]:
        kept = self.store.catalog(_TEACHERS)
        return (kept[0], dict(kept[1])) if kept is not None else (0.0, {})

    def classes(self, *, refresh: bool = False) -> tuple[list[TeamsClass], float]:
        """``(classes, read at)``: the kept list, read again when asked or older than ``max_age``."""
        with self._lock:
            kept = self.store.catalog(_CATALOG)
            if kept is not None and not refresh and time.time() - kept[0] <= self.max_age:
                found, read_at = [TeamsClass(**c) for c in kept[1]], kept[0]
            else:
                found, read_at = self.fetch(), time.time()
                self.store.save_catalog(_CATALOG, read_at, [_data(c) for c in found])
            at, known = self._teachers()
            stale = refresh or time.time() - at > self.teachers_max_age
            if len(found) <= TEACHERS_FOR_ALL_UP_TO and (stale or any(c.id not in known for c in found)):
                fresh = self.fetch_teachers([c.id for c in found]) if found else {}
                known = {c.id: list(fresh.get(c.id, ())) for c in found}
                self.store.save_catalog(_TEACHERS, time.time(), known)
        return [replace(c, teachers=tuple(known.get(c.id, ()))) for c in found], read_at

    def with_teachers(self, shown: Sequence[TeamsClass]) -> list[TeamsClass]:
        """``shown`` with their teachers, reading (in one batch) those not read yet."""
        with self._lock:
            at, known = self._teachers()
            missing = [c.id for c in shown if c.id not in known]
            if missing:
                fresh = self.fetch_teachers(missing)
                for cid in missing:
                    known[cid] = list(fresh.get(cid, ()))
                self.store.save_catalog(_TEACHERS, at or time.time(), known)
        return [replace(c, teachers=tuple(known.get(c.id, ()))) for c in shown]


def option(c: TeamsClass, why: str = "") -> Option:
    detail = " · ".join(x for x in (c.external_id, ", ".join(c.teachers), c.term) if x)
    return Option(c.id, c.display_name, detail, why)


def chooser(
    field_name: str,
    value: str,
    rows: int,
    *,
    tenant: Sequence[TeamsClass],
    class_by: str,
    file_name: str,
    chosen: str = "",
    query: str = "",
) -> tuple[Chooser, list[TeamsClass]]:
    """The chooser of one class value, and the classes it shows (to read their teachers)."""
    folded = fold(value)
    found_class = next((c for c in tenant if value and fold(c.key(class_by)) == folded), None)
    suggestions = [] if found_class else suggest_classes(value, tenant, file_name=file_name)
    exact = [s for s in suggestions if s.exact]
    preselect = found_class.id if found_class else (exact[0].teams_class.id if len(exact) == 1 else "")
    selected = chosen or preselect
    if chosen and chosen != preselect:
        state = "chosen"
    elif found_class:
        state = "found"
    elif selected:
        state = "suggested"
    else:
        state = "choose"
    groups: list[tuple[str, list[TeamsClass], dict[str, str]]] = []
    if found_class:
        groups.append(("In Teams", [found_class], {found_class.id: "the file's class"}))
    if suggestions:
        groups.append(("Suggested", [s.teams_class for s in suggestions],
                       {s.teams_class.id: s.why for s in suggestions}))  # fmt: skip
    results = search_classes(query, tenant, limit=SEARCH_RESULTS) if query.strip() else []
    if query.strip():
        groups.append((f"Search: {query.strip()}", results, {}))
    if chosen and not any(chosen == c.id for _, members, _ in groups for c in members):
        kept = next((c for c in tenant if c.id == chosen), None)
        if kept is not None:
            groups.append(("Chosen", [kept], {}))
    if len(tenant) <= LIST_ALL_UP_TO:
        groups.append(("Every class", list(tenant), {}))
    listed: set[str] = set()  # each class once, in the first group that has it
    kept_groups = []
    for title, members, why in groups:
        fresh = [c for c in members if c.id not in listed]
        listed.update(c.id for c in fresh)
        if fresh or title.startswith("Search"):
            kept_groups.append((title, fresh, why))
    shown = [c for _, members, _ in kept_groups for c in members]
    view = Chooser(field_name, value, rows, found_class is not None, selected, state, query=query.strip(),
                   searched=bool(query.strip()))  # fmt: skip
    view.groups = [
        (title, [option(c, why.get(c.id, "")) for c in members]) for title, members, why in kept_groups
    ]
    view.results = len(results)
    return view, shown


def with_names(view: Chooser, tenant_by_id: dict[str, TeamsClass]) -> Chooser:
    """The chooser's options again with the teachers now known."""
    view.groups = [
        (title, [option(tenant_by_id.get(o.id) or TeamsClass(o.id, o.label), o.why) for o in options])
        for title, options in view.groups
    ]
    return view
