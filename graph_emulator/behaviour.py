"""How the emulator behaves where Graph v1.0 has several documented (or observed) behaviours.

Every default is what Graph v1.0 does; each has an opt-out, so an older test can keep its meaning
and a test can break one of Graph's promises on purpose (``broken``) to see who notices.

=====================  ========  =================================================================
knob                   default   what it models (sources: docs/GRAPH.md)
=====================  ========  =================================================================
``enum_evolution``     v1.0      without ``Prefer: include-unknown-enum-members`` an excused or
                                 reassigned submission reads ``returned`` and an inactive
                                 assignment ``unknownFutureValue``; ``off``: the stored value
``action_lag``         1         ``excuse`` and ``return`` are asynchronous ("Async / Poll"): the
                                 next N reads of that submission still show its old status (a
                                 count of reads, not time, so tests stay deterministic; 0: at once)
``publish_lag``        1         a ``published`` assignment is still creating its submissions: it
                                 shows ``published`` and no submissions for its next N reads,
                                 then ``assigned`` with them
``assignment_states``  True      only an ``assigned`` assignment's submissions take writes (400
                                 otherwise); ``published`` hides its submissions (above)
``excuse_clears``      True      ``excuse`` deletes the feedback and the rubric outcome
                                 ("Grading rubrics and feedback are deleted")
``single_points``      True      points and ``maxPoints`` are kept as ``Single`` (a 32-bit float):
                                 87.3 reads back as 87.30000305175781
``broken``             (none)    Graph promises to break on purpose (:data:`BREAKABLE`)
=====================  ========  =================================================================

``BREAKABLE`` — each names one assumption gradesync (and ``gradesync doctor``) makes:

- ``prefer``: the ``Prefer`` header is ignored: evolved enum members stay hidden;
- ``expand``: ``$expand=outcomes`` is ignored (listings carry no outcomes);
- ``nextlink``: a listing ends after its first page with no ``@odata.nextLink``;
- ``batch-headers``: a ``$batch`` sub-request's own ``headers`` are ignored (``Prefer`` included);
- ``writes``: every write is refused 403 (a token without write permission).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "BREAKABLE",
    "DEFAULT_ACTION_LAG",
    "DEFAULT_ENUM_EVOLUTION",
    "DEFAULT_PUBLISH_LAG",
    "ENUM_MODES",
    "Knobs",
    "as_single",
    "parse_broken",
]

ENUM_MODES = ("v1.0", "off")
DEFAULT_ENUM_EVOLUTION = "v1.0"
DEFAULT_ACTION_LAG = 1
DEFAULT_PUBLISH_LAG = 1
BREAKABLE = ("prefer", "expand", "nextlink", "batch-headers", "writes")


def as_single(value: float) -> float:
    """``value`` as Graph keeps a ``Single``: rounded to the nearest 32-bit float (87.3 →
    87.30000305175781); values beyond Single's range are the caller's to refuse."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def parse_broken(value: Any) -> frozenset[str]:
    """``"prefer,expand"``, a list of names, or None → the set of broken promises (ValueError for others)."""
    if value is None or value == "":
        return frozenset()
    names = value.split(",") if isinstance(value, str) else list(value)
    found = frozenset(str(n).strip() for n in names if str(n).strip())
    unknown = sorted(found - set(BREAKABLE))
    if unknown:
        raise ValueError(f"unknown broken promise(s) {unknown}; known: {', '.join(BREAKABLE)}")
    return found


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or int(value) < 0:
        raise ValueError(f"{name} must be a whole number of reads, 0 or more")
    return int(value)


@dataclass
class Knobs:
    """Behaviour settings the handlers read (changed at runtime through ``/_emulator/config``)."""

    page_size: int = 25
    enum_evolution: str = DEFAULT_ENUM_EVOLUTION
    action_lag: int = DEFAULT_ACTION_LAG
    publish_lag: int = DEFAULT_PUBLISH_LAG
    assignment_states: bool = True
    excuse_clears: bool = True
    single_points: bool = True
    broken: frozenset[str] = field(default_factory=frozenset)

    # the knobs a run can set (``Emulator(..., **knobs)``, ``/_emulator/config``) and reset restores
    NAMES: ClassVar[tuple[str, ...]] = (
        "enum_evolution",
        "action_lag",
        "publish_lag",
        "assignment_states",
        "excuse_clears",
        "single_points",
        "broken",
    )

    def set(self, **values: Any) -> None:
        """Change the knobs given (None: unchanged); ValueError names a bad one."""
        for name, value in values.items():
            if value is None:
                continue
            if name == "page_size":
                if int(value) < 1:
                    raise ValueError("page_size must be at least 1")
                self.page_size = int(value)
            elif name == "enum_evolution":
                if value not in ENUM_MODES:
                    raise ValueError(f"enum_evolution must be one of {ENUM_MODES}, not {value!r}")
                self.enum_evolution = value
            elif name in ("action_lag", "publish_lag"):
                setattr(self, name, _count(name, value))
            elif name in ("assignment_states", "excuse_clears", "single_points"):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false, not {value!r}")
                setattr(self, name, value)
            elif name == "broken":
                self.broken = parse_broken(value)
            else:
                raise ValueError(f"unknown emulator setting {name!r}")

    def current(self) -> dict[str, Any]:
        """The settable knobs as JSON values (the stats' ``config``)."""
        out = {name: getattr(self, name) for name in self.NAMES}
        out["broken"] = sorted(self.broken)
        return out

    def points(self, value: float | None) -> float | None:
        """A stored points value: Single unless ``single_points`` is off."""
        return value if value is None or not self.single_points else as_single(value)
