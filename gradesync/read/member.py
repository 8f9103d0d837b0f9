"""Where a table came from when it is not a file of its own: a member of a zip bundle."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ZipMember"]


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One file inside a zip (a OneRoster bundle's ``results.csv``): the archive as it was given, and
    the member's name inside it.

    Reports, errors and a plan's ``inputs`` show it as text, ``bundle.zip!results.csv`` (the
    notation Java uses for a file inside a jar); that text is for people only: code that needs the
    archive or the member asks this value, never the text.
    """

    archive: str
    name: str

    def __str__(self) -> str:
        return f"{self.archive}!{self.name}"
