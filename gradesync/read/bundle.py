"""A OneRoster bulk zip opened safely: its table of contents checked before anything is inflated,
each role read from exactly one member, every member a typed ``ZipMember``.

A bundle holds ``manifest.csv``, ``results.csv`` (the grades) and ``lineItems.csv`` (the
assignments) at its root, among the other OneRoster files (users, classes, …), which are not read.
What is refused, with exit 2 and the file named:

- an archive that promises too much (``limits.check_archive``: more than ``[input] max_file_mb``
  uncompressed in all, more than 100× expansion above 16 MB, more than 10,000 members): a zip bomb;
- two members for one role (``results.csv`` and ``RESULTS.csv``: names that differ only by case).
  Which one a tool reads depends on the tool, so the bundle is refused rather than one guessed;
- a member that cannot be inflated as declared (a CRC that does not match, a truncated member, an
  unknown compression, a password): a damaged or forged bundle.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass

from gradesync.errors import InputError
from gradesync.read._source import RawTable, table_from_bytes
from gradesync.read.limits import ReadLimits, check_archive
from gradesync.read.member import ZipMember

__all__ = ["ROLE_FILES", "Bundle", "is_bundle", "read_bundle"]

#: The members gradesync reads, by the lower-cased name they have at the zip's root.
ROLE_FILES = ("manifest.csv", "results.csv", "lineitems.csv")
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OSError,
)


@dataclass(slots=True)
class Bundle:
    """The OneRoster tables of one zip, each a table whose ``member`` names it."""

    path: str
    tables: dict[str, RawTable]  # role file (``ROLE_FILES``) → table
    version: str = ""


def is_bundle(data: bytes) -> bool:
    """A zip of OneRoster CSVs (manifest.csv or results.csv at its root), not an Excel workbook."""
    if not data.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = {n.lower() for n in archive.namelist()}
    except _ZIP_ERRORS:
        return False
    return "xl/workbook.xml" not in names and bool({"manifest.csv", "results.csv"} & names)


def read_bundle(path: str, data: bytes, limits: ReadLimits | None = None) -> Bundle:
    """The role files of the bundle ``data`` (the zip at ``path``), checked as the module says."""
    limits = limits or ReadLimits()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as e:
        raise _damaged(path, f"damaged zip: {e}") from None
    with archive:
        infos = archive.infolist()
        check_archive(
            path,
            infos,
            what="OneRoster zip",
            max_total=limits.max_file_bytes,
            code="input-suspicious-zip",
            hint="a real OneRoster export is far smaller; if this one is genuine, give its results.csv "
            "and lineItems.csv as files (they are read with the text limits), or raise [input] max_file_mb",
        )
        tables = {
            role: _read_member(archive, info, path, limits)
            for role, info in _role_members(path, infos).items()
        }
    version = _apply_manifest(tables)
    if "results.csv" not in tables:
        raise InputError(
            "is a OneRoster zip without results.csv (the grades)",
            file=path,
            code="input-missing-file",
            hint="export the gradebook (results and lineItems) from the SIS, not only the roster",
        )
    return Bundle(path=path, tables=tables, version=version)


def _role_members(path: str, infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """Rule: each role file is one member at the zip's root; two whose names differ only by case are
    refused, naming both (a folder's copy, such as macOS's ``__MACOSX/._results.csv``, is not read)."""
    found: dict[str, list[zipfile.ZipInfo]] = {}
    for info in infos:
        if not info.is_dir() and info.filename.lower() in ROLE_FILES:
            found.setdefault(info.filename.lower(), []).append(info)
    for role, members in found.items():
        if len(members) > 1:
            names = " and ".join(f'"{m.filename}"' for m in members)
            raise InputError(
                f"holds {len(members)} files for {role}: {names}; their names differ only by case, and "
                "which one a program reads depends on the program, so none is read",
                file=path,
                code="input-ambiguous-bundle",
                hint=f"remove all but one {role} from the zip (or export the bundle again) and run again",
            )
    return {role: members[0] for role, members in found.items()}


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, limits: ReadLimits) -> RawTable:
    """Rule: a member is inflated only up to its declared size, and must match its CRC."""
    member = ZipMember(path, info.filename)
    try:
        with archive.open(info) as stream:
            data = stream.read()
    except _ZIP_ERRORS as e:
        raise _damaged(str(member), f"the member cannot be read as its zip declares it ({e})") from None
    return table_from_bytes(str(member), data, limits=limits, member=member)


def _damaged(name: str, what: str) -> InputError:
    return InputError(
        f"is not a readable OneRoster zip: {what}",
        file=name,
        code="input-corrupt-zip",
        hint="the zip is damaged (or was altered after it was made); download or export it again",
    )


def _apply_manifest(tables: dict[str, RawTable]) -> str:
    """Rule: the manifest's ``oneroster.version`` is reported, and a role it says is ``absent`` is not
    read. Returns the version ("" without a manifest)."""
    manifest = tables.get("manifest.csv")
    if manifest is None or len(manifest.cells) < 2:
        return ""
    props = dict(
        zip(
            (str(v).strip() for v in manifest.cells[0]),
            (str(v).strip() for v in manifest.cells[1]),
            strict=True,
        )
    )
    for name in ("results", "lineItems"):
        if props.get(f"file.{name}", "").lower() == "absent":
            tables.pop(f"{name.lower()}.csv", None)
    return props.get("oneroster.version", "")
