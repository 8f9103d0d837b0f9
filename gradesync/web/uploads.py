"""Uploads: received as they stream in, checked by content, kept with the registrar's choices.

**Receiving.** :func:`receive_form` parses ``multipart/form-data`` as it arrives (python-multipart's
streaming parser) and writes each file part straight into a private folder: no upload is held in
memory, and a file is refused (:class:`UploadTooLarge`) the moment it passes the per-file limit, not
after the whole body has been read. The CSRF token is checked before this is called (it travels in
the form's URL), so a forged request never gets its body parsed.

**Checking.** :func:`classify` says what a stored file is by its content, never its name: an Excel
workbook (a zip holding ``[Content_Types].xml`` and ``xl/``; its sheet names are read from
``xl/workbook.xml``), a OneRoster bundle (a zip with ``manifest.csv`` or ``results.csv`` at its root,
as ``gradesync plan`` reads it), a mapping (``NAME.mapping.toml`` beside an upload named ``NAME.…``:
what the CLI reads beside a file), or separated text (CSV/TSV). Anything else is refused, saying why.

**Keeping.** An :class:`Upload` is one JSON record (``state.webstore``): its files (the name the
registrar gave each, the name stored on disk), the sheet, and the Map page's choices per file: the
Teams class of each class value, and each assignment column's target. The choices become each file's
mapping, written beside it as ``STORED-STEM.mapping.toml`` — exactly how ``gradesync plan`` finds a
mapping beside an export — so the preview and the apply read the files as the registrar chose.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from defusedxml import ElementTree
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

__all__ = [
    "MAPPING_SUFFIX",
    "Received",
    "StoredFile",
    "Upload",
    "UploadRefused",
    "UploadTooLarge",
    "classify",
    "display_name",
    "receive_form",
    "stored_name",
]

MAPPING_SUFFIX = ".mapping.toml"
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 50
MAX_WORKBOOK_XML = 4 * 1024 * 1024  # xl/workbook.xml lists the sheets: a few KB in any real workbook
_UNSAFE = re.compile(r"[^\w.() -]+", re.UNICODE)
_TEXT_HEAD = 65536
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


class UploadRefused(Exception):
    """A file the app will not read, with what to do in words (naming the file as uploaded)."""


class UploadTooLarge(Exception):
    def __init__(self, name: str, limit: int) -> None:
        super().__init__(f"{name}: larger than the upload limit of {limit // (1024 * 1024)} MiB")
        self.name, self.limit = name, limit


def display_name(filename: str | None) -> str:
    """The name a page shows: the browser's file name without any folder, at most 200 characters."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:200] or "upload"


def stored_name(filename: str, taken: set[str]) -> str:
    """A safe name on disk for an uploaded file (letters of any script, digits, ``._-()`` and spaces),
    unique in its folder by stem (each file may get a mapping beside it, named after its stem)."""
    name = _UNSAFE.sub("_", display_name(filename)).strip(" .") or "upload"
    name = name[:120]
    stems = {_stem(t) for t in taken}
    candidate, n = name, 1
    while candidate in taken or _stem(candidate) in stems:
        n += 1
        candidate = f"{n}-{name}"
    return candidate


def _stem(name: str) -> str:
    if name.lower().endswith(MAPPING_SUFFIX):
        return name[: -len(MAPPING_SUFFIX)].lower()
    return Path(name).stem.lower()


# --- receiving ------------------------------------------------------------------------------------
@dataclass(slots=True)
class ReceivedFile:
    filename: str  # as the browser sent it
    path: Path  # where it was written (private, 0600)
    size: int


@dataclass(slots=True)
class Received:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)


class _Form:
    """python-multipart callbacks: fields kept small in memory, files written to ``folder``."""

    def __init__(self, folder: Path, max_file_bytes: int, max_files: int) -> None:
        self.folder, self.limit, self.max_files = folder, max_file_bytes, max_files
        self.received = Received()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._name = ""
        self._filename: str | None = None
        self._value = bytearray()
        self._out: io.BufferedWriter | None = None
        self._size = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._name, self._filename, self._size = {}, "", None, 0
        self._value = bytearray()

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field, self._header_value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._filename = None if filename is None else filename.decode("utf-8", "replace")
        if self._filename:
            if len(self.received.files) >= self.max_files:
                raise UploadRefused(f"at most {self.max_files} files at once")
            path = self.folder / f"part-{len(self.received.files)}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._out = os.fdopen(fd, "wb")
            self.received.files.append(ReceivedFile(self._filename, path, 0))

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        if self._out is not None:
            if self._size > self.limit:
                raise UploadTooLarge(display_name(self._filename), self.limit)
            self._out.write(data[start:end])
        elif self._filename is None:
            if self._size > MAX_FIELD_BYTES:
                raise UploadRefused(f"the form field {self._name!r} is too long")
            self._value.extend(data[start:end])

    def _end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            self.received.files[-1].size = self._size
        elif self._filename is None and self._name:
            if len(self.received.fields) >= MAX_FIELDS:
                raise UploadRefused("the form has too many fields")
            self.received.fields[self._name] = self._value.decode("utf-8", "replace")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


async def receive_form(request: Request, folder: Path, *, max_file_bytes: int, max_files: int) -> Received:
    """Parse a ``multipart/form-data`` body as it streams in, writing file parts into ``folder``.

    Raises :class:`UploadTooLarge` as soon as a file passes ``max_file_bytes`` and
    :class:`UploadRefused` for a body that is not a well-formed upload form; the caller deletes
    ``folder`` then."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadRefused("the upload was not sent as a file form; use the page's Upload button")
    form = _Form(folder, max_file_bytes, max_files)
    parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except (UploadRefused, UploadTooLarge):
        raise
    except Exception as e:  # python-multipart's parse errors: a broken or truncated body
        raise UploadRefused(f"the upload could not be read ({type(e).__name__}); try again") from None
    finally:
        form.close()
    return form.received


# --- checking -------------------------------------------------------------------------------------
def _sheet_names(archive: zipfile.ZipFile) -> list[str]:
    try:
        info = archive.getinfo("xl/workbook.xml")
    except KeyError:
        return []
    if info.file_size > MAX_WORKBOOK_XML:
        return []
    root = ElementTree.fromstring(archive.read(info))
    return [str(e.get("name")) for e in root.iter(f"{_NS_MAIN}sheet") if e.get("name")]


def _zip_kind(path: Path, name: str) -> tuple[str, list[str]]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            lower = {n.lower() for n in names}
            if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
                try:
                    return "xlsx", _sheet_names(archive)
                except Exception:  # a damaged workbook.xml: read says what is wrong when it reads the file
                    return "xlsx", []
            if {"manifest.csv", "results.csv"} & lower:
                return "bundle", []
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UploadRefused(f"{name}: looks like a zip file but cannot be opened") from None
    raise UploadRefused(
        f"{name}: a zip file that is neither an Excel workbook (.xlsx) nor a OneRoster bundle "
        "(manifest.csv or results.csv at its root)"
    )


def classify(path: Path, name: str) -> tuple[str, list[str]]:
    """``(kind, sheets)`` of a stored upload by its content: ``"xlsx"`` (with its sheet names),
    ``"bundle"``, ``"mapping"`` or ``"text"``. Raises :class:`UploadRefused` saying why not."""
    with path.open("rb") as f:
        head = f.read(_TEXT_HEAD)
    if not head:
        raise UploadRefused(f"{name}: the file is empty")
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(path, name)
    lowered = name.lower()
    if lowered.endswith((".xlsx", ".xlsm")):
        raise UploadRefused(f"{name}: named .xlsx but is not an Excel workbook; save it again from Excel")
    if head[:8] == _XLS_MAGIC:
        raise UploadRefused(f"{name}: an old .xls (or an encrypted) workbook; save it as .xlsx or CSV")
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UploadRefused(
            f"{name}: not a text file (it holds binary data); upload CSV, TSV, XLSX or a OneRoster zip"
        )
    text = _decode(head, name)
    if lowered.endswith(MAPPING_SUFFIX):
        return "mapping", []
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.lstrip().lower().startswith(("<!doctype", "<html")):
        raise UploadRefused(f"{name}: a web page, not an export; download the export again")
    if not any(sep in first for sep in ",\t;|"):
        raise UploadRefused(f"{name}: no separated header row (CSV or TSV) in its first line")
    return "text", []


def _decode(head: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        if encoding == "utf-16" and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue
        try:
            return head.decode(encoding)
        except UnicodeDecodeError:
            # the first 64 KB may end inside a character
            try:
                return head[:-4].decode(encoding)
            except UnicodeDecodeError:
                continue
    try:
        return head.decode("cp1252")
    except UnicodeDecodeError:
        raise UploadRefused(f"{name}: neither UTF-8 nor Windows-1252 text") from None


# --- the record -------------------------------------------------------------------------------------
@dataclass(slots=True)
class StoredFile:
    name: str  # as the registrar's browser named it: what every page and report calls it
    stored: str  # the file's name in the upload folder
    kind: str  # "text" | "xlsx" | "bundle" | "mapping"
    size: int
    sheets: list[str] = field(default_factory=list)  # a workbook's sheets


@dataclass(slots=True)
class Upload:
    """One upload: its files and the choices made for them (durable, see ``state.webstore``)."""

    id: str
    owner: str  # the browser session that uploaded it
    created: float
    files: list[StoredFile]
    sheet: str = ""  # the workbooks' sheet ("": the first)
    # per data file (stored name): the mapping the file is read with before any choice (TOML): the
    # preset's, what the generic reading understood, or one uploaded beside it
    base: dict[str, str] = field(default_factory=dict)
    # per data file: the Teams class (its Graph id) chosen for each class value ("" value: every row)
    classes: dict[str, dict[str, str]] = field(default_factory=dict)
    # per data file: assignment column header → Teams assignment name, or "" to ignore the column
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    # per data file: the column that holds class names when the rows carry no class key
    class_columns: dict[str, str] = field(default_factory=dict)
    # per data file, learnt from its first reading (before any choice): its class values with their
    # number of grade cells, whether its rows carry no class at all, and its assignment columns
    # (header, the assignment it is read as)
    values: dict[str, list[list[Any]]] = field(default_factory=dict)
    no_class: dict[str, bool] = field(default_factory=dict)
    assignment_columns: dict[str, list[list[str]]] = field(default_factory=dict)
    queries: dict[str, str] = field(default_factory=dict)  # a chooser's search (by form field)
    user_mappings: list[str] = field(default_factory=list)  # data files with a mapping uploaded beside
    strict: bool = False
    allow_clear: bool = False
    mapped: bool = False  # the Map page was confirmed
    digest: str = ""  # the last preview's digest (full hex)
    undo_of: str = ""  # an undo's preview: the run (its id) it puts back; no files

    @classmethod
    def new(cls, owner: str, files: list[StoredFile]) -> Upload:
        return cls(secrets.token_urlsafe(12), owner, time.time(), files)

    @property
    def data_files(self) -> list[StoredFile]:
        return [f for f in self.files if f.kind != "mapping"]

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Upload:
        data = dict(record)
        data["files"] = [StoredFile(**f) for f in data.get("files", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})
