"""Mappings saved for the nightly run: ``STATE_DIR/mappings/NAME.toml``.

The web app's Map page turns a registrar's choices (the class of each class value, an assignment
column sent elsewhere or ignored) into a mapping (``gradesync.read.mapping``); "Save the mapping"
keeps it here under a name, and ``gradesync sync --mapping NAME`` (or ``[input] mapping = "NAME"``)
reads the nightly export with it. The state directory is the one the web app and the nightly run
share (one lock, one journal), so the name means the same file to both. Beside each mapping,
``NAME.json`` records who saved it, when, and from which uploaded file (its name only).

A name is letters, digits, ``-``, ``_`` and ``.`` (at most 64), so it is never a path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gradesync.files import atomic_write

__all__ = [
    "MAPPINGS_DIR",
    "SavedMapping",
    "list_mappings",
    "mapping_name_ok",
    "mappings_dir",
    "save_mapping",
    "saved_mapping_path",
]

MAPPINGS_DIR = "mappings"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class SavedMapping:
    name: str
    path: Path
    saved_at: str
    saved_by: str
    source: str  # the uploaded file it was made for (its name, not a path)
    toml: str


def mappings_dir(state_dir: str | Path) -> Path:
    return Path(state_dir) / MAPPINGS_DIR


def mapping_name_ok(name: str) -> bool:
    return bool(_NAME.match(name)) and not name.endswith(".")


def saved_mapping_path(value: str, state_dir: str | Path | None) -> Path:
    """``--mapping VALUE``: the file VALUE when it exists (or names a path), else the mapping saved as
    VALUE in the state directory when there is one, else VALUE (whose reading says it is missing)."""
    given = Path(value)
    if given.exists() or not mapping_name_ok(value) or state_dir is None:
        return given
    saved = mappings_dir(state_dir) / f"{value}.toml"
    return saved if saved.is_file() else given


def save_mapping(state_dir: str | Path, name: str, toml: str, *, saved_by: str, source: str) -> SavedMapping:
    """Write (or replace) the mapping ``name``; raises ValueError for a name that is not allowed."""
    if not mapping_name_ok(name):
        raise ValueError("a mapping's name is letters, digits, '-', '_' and '.' (at most 64)")
    folder = mappings_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    saved_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    path = folder / f"{name}.toml"
    atomic_write(path, toml, mode=0o640)
    meta = {"name": name, "saved_at": saved_at, "saved_by": saved_by, "source": source}
    atomic_write(folder / f"{name}.json", json.dumps(meta, indent=2) + "\n", mode=0o640)
    return SavedMapping(name, path, saved_at, saved_by, source, toml)


def _meta(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def list_mappings(state_dir: str | Path) -> list[SavedMapping]:
    """Every saved mapping, by name."""
    folder = mappings_dir(state_dir)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.toml")):
        if not mapping_name_ok(path.stem) or path.is_symlink():
            continue
        meta = _meta(path.with_suffix(".json"))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        out.append(
            SavedMapping(
                path.stem,
                path,
                str(meta.get("saved_at", "")),
                str(meta.get("saved_by", "")),
                str(meta.get("source", "")),
                text,
            )
        )
    return out
