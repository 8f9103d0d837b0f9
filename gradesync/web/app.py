"""The registrars' web app (starlette): Upload → Map → Preview → Approve → Apply (live) → Result,
History, Mappings; Resume and Undo of a run.

Every pipeline call goes through ``gradesync.web.runner``. Pages are Jinja2 templates with autoescape
on, shared with ``report.html`` (``gradesync/report/templates``). See ``security.py`` for the CSP and
CSRF, ``uploads.py`` for how files are received and checked, ``classes.py`` and ``mapview.py`` for the
Map page's choices, ``jobs.py`` for applies, ``auth.py`` for sign-in.

State survives a restart: uploads (their files under ``STATE_DIR/web/uploads/<id>/``, 0700/0600,
deleted after the retention period) with their choices and previews, jobs with their progress, and
the tenant's class list are in ``STATE_DIR/web/web.sqlite`` (``state.webstore``); past runs are the
run directories (``STATE_DIR/../runs``) that nightly runs write too, read through their typed
``rows.json``. Nothing about the server leaves it: pages and downloads name files by the names they
were uploaded with (``Pipeline(names=...)``), runs by their ids, and never show a path, a pid or a host.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from gradesync.config import Settings
from gradesync.errors import AuthError, ConfigError, GradesyncError, LockError
from gradesync.models import TeamsClass
from gradesync.read.inspect import Inspection
from gradesync.read.mapping import load_mapping
from gradesync.report import htmlreport
from gradesync.report.grid import PAGE_SIZE, class_grids, not_placed
from gradesync.report.public import input_dirs, public_record, public_summary, strip_dirs
from gradesync.report.rowsfile import ROWS_NAME, RowsFileError, read_rows
from gradesync.report.summary import format_number
from gradesync.state.lock import RunLock
from gradesync.state.mappings import list_mappings, mapping_name_ok, save_mapping
from gradesync.state.runs import default_runs_dir, list_runs
from gradesync.state.webstore import WEB_DB_NAME, WebStore
from gradesync.web import mapview, runner
from gradesync.web.auth import Authenticator, SignIn
from gradesync.web.classes import ClassCatalog, with_names
from gradesync.web.jobs import Job, Jobs
from gradesync.web.security import (
    CSRF_FIELD,
    BodyLimit,
    SecurityHeaders,
    csrf_ok,
    csrf_token,
    private_dir,
    prune_uploads,
)
from gradesync.web.uploads import (
    MAPPING_SUFFIX,
    StoredFile,
    Upload,
    UploadRefused,
    UploadTooLarge,
    classify,
    display_name,
    receive_form,
    stored_name,
)

__all__ = ["WebApp", "WebConfig", "create_app"]

HERE = Path(__file__).resolve().parent
REPORT_TEMPLATES = HERE.parent / "report" / "templates"
RUN_FILES = ("report.html", "reconciliation.csv", "summary.json", "plan.csv", "run.json")
DEFAULT_MAX_UPLOAD = 25 * 1024 * 1024  # a 50,000-row export is about 2 MB
DEFAULT_RETENTION_SECONDS = 24 * 3600
MAX_FILES = 10
MAX_FORM_FIELDS = 4 * mapview.MAX_MAP_COLUMNS + 200  # the Map form: a field per column and per class
WRITTEN = ("updated", "created", "excused")
CSRF_REFUSED = "The form expired (CSRF check failed); go back, reload the page and try again."
UPLOAD_GONE = "No such upload (it may have expired)."
# what to do, in the page's terms, for errors whose hints speak of command-line options
PAGE_HINTS = {
    "input-no-class": "Choose the file's class with the class chooser on the Map page.",
    "input-missing-sheet": "Choose the sheet on the Map page.",
    "mapping-invalid": "Fix the mapping file uploaded with the export (or upload the export alone).",
    "mapping-syntax": "Fix the mapping file uploaded with the export (or upload the export alone).",
    "mapping-unreadable": "Upload the mapping file again, as UTF-8 text.",
    "locked": "A nightly run (or another approval) is writing grades right now. Nothing was written by "
    "this approval: wait for the other run to finish, then approve again.",
    "plan-digest-mismatch": "Nothing was written. Go back to the upload, preview it again and review "
    "the new preview.",
}
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
MAP_CHOICES = "(the Map page's choices)"  # how a mapping the app wrote beside an upload is named


@dataclass
class WebConfig:
    settings: Settings
    client_factory: Callable[[], AbstractContextManager[Any]]  # a Graph client with the app's credentials
    state_dir: Path  # also ``[apply] state_dir`` of ``settings`` (set here): one lock, journal, history
    # signs the session cookie; "" = the key kept in STATE_DIR/web/session.key (made at first start),
    # so sessions — and the uploads they own — survive a restart
    secret_key: str = ""
    signin: SignIn | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    https: bool = False  # Secure cookies (set when served over https)
    title: str = "gradesync"
    authenticator: Authenticator | None = None
    class_list_max_age: float = 3600.0  # the tenant's class list is read again after this long

    def __post_init__(self) -> None:
        self.settings = runner.settings_for(self.settings, self.state_dir)

    @property
    def runs_dir(self) -> Path:
        runs = self.settings.run.runs_dir
        return Path(runs) if runs else default_runs_dir(self.state_dir)


@dataclass
class _Seen:
    """What the server keeps in memory for an upload (rebuilt from disk after a restart)."""

    inspection: Inspection | None = None
    preview: runner.PlanResult | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(HERE / "templates"), jinja2.FileSystemLoader(REPORT_TEMPLATES)]
        ),
        autoescape=True,  # every value escaped, in every template
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["n"] = lambda v: f"{int(v):,}"
    env.filters["num"] = format_number
    return Jinja2Templates(env=env)


def _age(seconds: float) -> str:
    minutes = int(max(0.0, seconds) // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{minutes // 60} hours"


class WebApp:
    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.templates = _templates()
        web_dir = private_dir(Path(config.state_dir) / "web")
        if not config.secret_key:
            config.secret_key = _session_key(web_dir / "session.key")
        self.upload_root = private_dir(web_dir / "uploads")
        self.store = WebStore(web_dir / WEB_DB_NAME)
        self.jobs = Jobs(self.store, lock_free=self._lock_free)
        self.catalog = ClassCatalog(
            self.store, self._read_classes, self._read_teachers, max_age=config.class_list_max_age
        )
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()
        if config.signin is not None and config.authenticator is None:
            config.authenticator = Authenticator(config.signin)
        self.prune()

    # --- helpers ---------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.config.settings

    def _client(self) -> AbstractContextManager[Any]:
        return self.config.client_factory()

    def _read_classes(self) -> list[TeamsClass]:
        with self._client() as client:
            return runner.classes(self.settings, client)

    def _read_teachers(self, class_ids: Any) -> dict[str, tuple[str, ...]]:
        with self._client() as client:
            return runner.teachers(self.settings, client, list(class_ids))

    def _lock_free(self) -> bool:
        try:
            RunLock(self.config.state_dir).acquire().release()
        except LockError:
            return False
        return True

    def user(self, request: Request) -> dict[str, Any] | None:
        if self.config.authenticator is None:
            return {"name": "local user", "username": "", "oid": "", "approver": True, "local": True}
        user = request.session.get("user")
        return user if isinstance(user, dict) else None

    def who(self, request: Request) -> str:
        user = self.user(request) or {}
        return str(user.get("username") or user.get("name") or "local user")

    def approver(self, request: Request) -> bool:
        return bool((self.user(request) or {}).get("approver"))

    def sid(self, request: Request) -> str:
        sid = request.session.get("sid")
        if not sid:
            sid = request.session["sid"] = secrets.token_urlsafe(16)
        return str(sid)

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        context.update(
            request=request,
            nonce=request.scope["state"]["nonce"],
            csrf=csrf_token(request.session),
            csrf_field=CSRF_FIELD,
            user=self.user(request),
            title=self.config.title,
            signin=self.config.authenticator is not None,
        )
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def error(
        self, request: Request, message: str, status: int = 400, hint: str = "", back: str = ""
    ) -> Response:
        return self.render(
            request,
            "error.html",
            status=status,
            message=self.public(message),
            hint=self.public(hint),
            back=back,
        )

    def failure(self, request: Request, e: GradesyncError, back: str = "", status: int = 400) -> Response:
        """A pipeline error on a page: the file named as uploaded, what to do in the page's terms."""
        return self.error(request, e.message, status, hint=page_hint(e), back=back)

    def public(self, text: str, upload: Upload | None = None) -> str:
        """``text`` as a page may show it: no server path (an upload's files by their names)."""
        if upload is not None:
            for path, name in self.names(upload).items():
                text = text.replace(path, name)
        hidden = [
            str(self.upload_root) + "/",
            str(self.config.state_dir) + "/",
            str(self.config.runs_dir) + "/",
        ]
        return strip_dirs(text, hidden)

    def warnings(self, texts: list[str], upload: Upload) -> list[str]:
        """The reader's warnings as a page shows them: without "read with the mapping" for the
        mapping the app itself wrote from the Map page's choices (the page is where they were made)."""
        shown = [self.public(t, upload) for t in texts]
        return [t for t in shown if f"read with the mapping {MAP_CHOICES}" not in t]

    def csrf(self, request: Request) -> bool:
        """The CSRF token of a POST, checked before its body is read: it travels in the form's URL
        (``?csrf=…``) or an ``X-CSRF-Token`` header, never only in the body."""
        token = request.query_params.get(CSRF_FIELD) or request.headers.get("x-csrf-token")
        return csrf_ok(request.session, token)

    async def form(self, request: Request) -> Any | None:
        if not self.csrf(request):
            return None
        return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)

    def prune(self) -> None:
        """Uploads past the retention period go: their files, their records, their jobs' records."""
        cutoff = time.time() - self.config.retention_seconds
        for upload_id in self.store.uploads_before(cutoff):
            shutil.rmtree(self.upload_root / upload_id, ignore_errors=True)
            self.store.delete_upload(upload_id)
            with self._lock:
                self._seen.pop(upload_id, None)
        prune_uploads(self.upload_root, self.config.retention_seconds)
        self.store.delete_jobs_before(cutoff - 30 * 24 * 3600)

    def seen(self, upload_id: str) -> _Seen:
        with self._lock:
            return self._seen.setdefault(upload_id, _Seen())

    def upload_of(self, request: Request) -> Upload | None:
        kept = self.store.upload(request.path_params["upload_id"])
        if kept is None or kept[0] != self.sid(request):
            return None
        return Upload.from_record(kept[2])

    def save(self, upload: Upload) -> None:
        self.store.save_upload(upload.id, upload.owner, upload.created, upload.record())

    def folder(self, upload: Upload) -> Path:
        return self.upload_root / upload.id

    def paths(self, upload: Upload) -> list[Path]:
        return [self.folder(upload) / f.stored for f in upload.data_files]

    def names(self, upload: Upload) -> dict[str, str]:
        """Server path → what pages, reports and errors call it."""
        folder = self.folder(upload)
        names = {str(folder / f.stored): f.name for f in upload.files}
        for f in upload.data_files:
            if f.stored not in upload.user_mappings:
                names[str(mapview.mapping_path(folder, f.stored))] = MAP_CHOICES
        names[str(folder) + "/"] = ""
        return names

    # --- upload ----------------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return self.render(request, "upload.html", max_mb=self.config.max_upload_bytes // (1024 * 1024))

    async def upload(self, request: Request) -> Response:
        if not self.csrf(request):  # before a byte of the body is read
            return self.error(request, CSRF_REFUSED, 403)
        await asyncio.to_thread(self.prune)
        upload_id = secrets.token_urlsafe(12)
        folder = private_dir(self.upload_root / upload_id)
        try:
            received = await receive_form(
                request, folder, max_file_bytes=self.config.max_upload_bytes, max_files=MAX_FILES
            )
            upload = await asyncio.to_thread(self._keep, upload_id, folder, received.files, self.sid(request))
        except UploadTooLarge as e:
            shutil.rmtree(folder, ignore_errors=True)
            return self.error(
                request, str(e), 413, hint="Split the export, or ask IT to raise --max-upload-mb."
            )
        except UploadRefused as e:
            shutil.rmtree(folder, ignore_errors=True)
            return self.error(request, str(e), 415)
        except ConfigError as e:
            shutil.rmtree(folder, ignore_errors=True)
            return self.error(request, e.message.replace(str(folder) + "/", ""), 400, hint=page_hint(e))
        return RedirectResponse(f"/u/{upload.id}/map", status_code=303)

    def _keep(self, upload_id: str, folder: Path, received: list[Any], owner: str) -> Upload:
        """Check each received file by content and give it its stored name; mapping files go beside
        the upload they are named after. Raises UploadRefused (nothing is kept then)."""
        given = [r for r in received if r.filename]
        if not given:
            raise UploadRefused("Choose at least one file: CSV, TSV, Excel (.xlsx) or a OneRoster zip")
        shown: set[str] = set()
        taken: set[str] = set()
        files: list[StoredFile] = []
        mappings: list[tuple[Any, str]] = []
        for item in given:
            name = display_name(item.filename)
            n = 1
            while name in shown:
                n += 1
                name = f"{display_name(item.filename)} ({n})"
            shown.add(name)
            kind, sheets = classify(item.path, name)
            if kind == "mapping":
                mappings.append((item, name))
                continue
            stored = stored_name(name, taken)
            taken.add(stored)
            item.path.rename(folder / stored)
            files.append(StoredFile(name, stored, kind, item.size, sheets))
        if not files:
            raise UploadRefused("A mapping file needs its export: upload them together")
        upload = Upload(upload_id, owner, time.time(), files)
        for item, name in mappings:
            stem = name[: -len(MAPPING_SUFFIX)].casefold()
            target = next((f for f in files if Path(f.name).stem.casefold() == stem), None)
            if target is None:
                raise UploadRefused(f"{name}: no uploaded export is named {name[: -len(MAPPING_SUFFIX)]}.*")
            beside = mapview.mapping_path(folder, target.stored)
            item.path.rename(beside)
            load_mapping(beside)  # a wrong mapping is refused now, naming the key
            upload.files.append(StoredFile(name, beside.name, "mapping", item.size))
            upload.user_mappings.append(target.stored)
        for leftover in folder.glob("part-*"):
            leftover.unlink()
        for path in folder.iterdir():
            path.chmod(0o600)
        self.save(upload)
        return upload

    # --- map -------------------------------------------------------------------------------------
    def _inspect(self, upload: Upload, tenant: list[TeamsClass]) -> Inspection:
        with self._client() as client:
            return runner.inspect(
                self.paths(upload), self.settings, client, names=self.names(upload),
                sheet=upload.sheet or None, tenant=tenant,
            )  # fmt: skip

    def _write_mappings(self, upload: Upload, tenant: list[TeamsClass], *, with_classes: bool) -> None:
        folder = self.folder(upload)
        chosen = mapview.mappings(upload, tenant, self.settings.match.class_by, with_classes=with_classes)
        for stored, mapping in chosen.items():
            path = mapview.mapping_path(folder, stored)
            if mapping is None:
                if stored not in upload.user_mappings:
                    path.unlink(missing_ok=True)
                continue
            path.write_text(mapping.to_toml(), encoding="utf-8")
            path.chmod(0o600)

    def _learn(self, upload: Upload, tenant: list[TeamsClass]) -> Inspection | None:
        """The first reading of the files, before any choice: what each holds (and, for a file whose
        rows name no class but have a column of class names, a second reading of that column).
        Returns that reading when the classes preselected change nothing in it (it is the page's)."""
        self._write_mappings(upload, tenant, with_classes=False)
        inspection = self._inspect(upload, tenant)
        if mapview.learn(upload, inspection, hints=True):
            self._write_mappings(upload, tenant, with_classes=False)
            inspection = self._inspect(upload, tenant)
            mapview.learn(upload, inspection, hints=False)
        mapview.choose_classes(upload, tenant, self.settings.match.class_by)
        self.save(upload)
        class_by = self.settings.match.class_by
        same = mapview.mappings(upload, tenant, class_by, with_classes=True) == mapview.mappings(
            upload, tenant, class_by, with_classes=False
        )
        return inspection if same else None

    def _map(self, upload: Upload, *, refresh: bool = False) -> dict[str, Any]:
        """Everything the Map page shows (blocking: reads files and Graph)."""
        seen = self.seen(upload.id)
        with seen.lock:
            tenant, read_at = self.catalog.classes(refresh=refresh)
            if not upload.values and not upload.no_class:
                seen.inspection = self._learn(upload, tenant)
            if seen.inspection is None or refresh:
                self._write_mappings(upload, tenant, with_classes=True)
                seen.inspection = self._inspect(upload, tenant)
            inspection = seen.inspection
        class_by = self.settings.match.class_by
        views, shown = mapview.file_views(upload, inspection, tenant, class_by)
        named = {c.id: c for c in self.catalog.with_teachers(shown)}
        chosen = mapview.mappings(upload, tenant, class_by, with_classes=True)
        for view in views:
            for one in view.choosers:
                with_names(one, named)
            mapping = chosen.get(view.file.stored)
            view.toml = mapping.to_toml() if mapping is not None else upload.base.get(view.file.stored, "")
        return {
            "files": views,
            "inspection": inspection,
            "warnings": self.warnings(inspection.warnings, upload),
            "diagnoses": [self.public(d, upload) for d in inspection.diagnoses if not _about_class_flag(d)],
            "class_count": len(tenant),
            "class_list_age": _age(time.time() - read_at),
            "assignments": inspection.assignments,
            "sheets": next((f.sheets for f in upload.data_files if len(f.sheets) > 1), []),
        }

    async def map_page(self, request: Request) -> Response:
        upload = self.upload_of(request)
        if upload is None:
            return self.error(request, UPLOAD_GONE, 404, back="/")
        if request.method == "POST":
            return await self._map_post(request, upload)
        sheets = next((f.sheets for f in upload.data_files if len(f.sheets) > 1), [])
        try:
            context = await asyncio.to_thread(self._map, upload)
        except GradesyncError as e:
            if not sheets:
                return self.failure(request, e, back="/")
            # a workbook whose first sheet is not the grades: the page still offers its sheets
            context = {"files": [], "warnings": [], "diagnoses": [], "class_count": 0, "class_list_age": "",
                       "assignments": [], "sheets": sheets, "inspection": None,
                       "failure": self.public(e.message), "failure_hint": page_hint(e)}  # fmt: skip
        context.setdefault("failure", "")
        context.setdefault("failure_hint", "")
        return self.render(
            request, "map.html", upload=upload, ignore=runner.IGNORE,
            problem=request.query_params.get("problem", ""), **context,
        )  # fmt: skip

    async def _map_post(self, request: Request, upload: Upload) -> Response:
        form = await self.form(request)
        if form is None:
            return self.error(request, CSRF_REFUSED, 403)
        action = str(form.get("action") or "preview")
        data = {k: str(v) for k, v in form.multi_items()}
        try:
            tenant, _ = await asyncio.to_thread(self.catalog.classes, refresh=action == "refresh")
        except GradesyncError as e:
            return self.failure(request, e, back=f"/u/{upload.id}/map")
        mapview.form_choices(upload, data, tenant)
        base = f"/u/{upload.id}/map"
        if action == "sheet" and data.get("sheet", "") != upload.sheet:
            self._forget_choices(upload)
            upload.sheet = data.get("sheet", "")
        self.seen(upload.id).inspection = None
        self.seen(upload.id).preview = None
        upload.digest = ""
        if action != "preview":
            upload.mapped = False
            self.save(upload)
            anchor = "#" + action.split(":", 1)[1].replace(":", "-") if action.startswith("search:") else ""
            return RedirectResponse(base + anchor, status_code=303)
        missing = [f.name for f in upload.data_files
                   if upload.no_class.get(f.stored) and not upload.class_columns.get(f.stored)
                   and not upload.classes.get(f.stored, {}).get("")]  # fmt: skip
        if missing:
            self.save(upload)
            return RedirectResponse(base + "?problem=class", status_code=303)
        upload.mapped = True
        self.save(upload)
        return RedirectResponse(f"/u/{upload.id}/preview", status_code=303)

    def _forget_choices(self, upload: Upload) -> None:
        for name in (
            "base",
            "classes",
            "columns",
            "class_columns",
            "values",
            "no_class",
            "assignment_columns",
        ):
            getattr(upload, name).clear()
        upload.queries.clear()
        for f in upload.data_files:
            if f.stored not in upload.user_mappings:
                mapview.mapping_path(self.folder(upload), f.stored).unlink(missing_ok=True)

    async def save_mapping_page(self, request: Request) -> Response:
        upload = self.upload_of(request)
        if upload is None:
            return self.error(request, UPLOAD_GONE, 404, back="/")
        form = await self.form(request)
        if form is None:
            return self.error(request, CSRF_REFUSED, 403)
        name = str(form.get("name") or "").strip()
        index = str(form.get("file") or "0")
        files = upload.data_files
        if not mapping_name_ok(name):
            return self.error(request, "A mapping's name is letters, digits, '-', '_' and '.' (at most 64), "
                              "for example canvas-biology.", back=f"/u/{upload.id}/map")  # fmt: skip
        if not index.isdigit() or int(index) >= len(files):
            return self.error(request, "No such file in this upload.", back=f"/u/{upload.id}/map")
        f = files[int(index)]
        tenant, _ = await asyncio.to_thread(self.catalog.classes)
        chosen = mapview.mappings(upload, tenant, self.settings.match.class_by, with_classes=True).get(
            f.stored
        )
        toml = chosen.to_toml() if chosen is not None else upload.base.get(f.stored, "")
        if not toml:
            return self.error(request, "Open the Map page first.", 409, back=f"/u/{upload.id}/map")
        await asyncio.to_thread(
            save_mapping, self.config.state_dir, name, toml, saved_by=self.who(request), source=f.name
        )
        return RedirectResponse(f"/u/{upload.id}/preview?saved={name}#save-mapping", status_code=303)

    # --- preview and approve -----------------------------------------------------------------------
    def _options(self, upload: Upload) -> Settings:
        return runner.with_options(self.settings, strict=upload.strict, allow_clear=upload.allow_clear)

    def _preview(self, upload: Upload) -> runner.PlanResult:
        """The upload's preview: kept in memory, else the plan file made earlier (after a restart),
        else a fresh plan (blocking: reads files and Graph)."""
        seen = self.seen(upload.id)
        with seen.lock:
            if seen.preview is not None:
                return seen.preview
            plan_path = self.folder(upload) / "plan.json"
            with self._client() as client:
                if upload.digest and plan_path.is_file():
                    result = runner.preview_of(runner.load_plan(plan_path), self._options(upload), client)
                    if result.digest == upload.digest:
                        seen.preview = result
                        return result
                if upload.undo_of:
                    raise GradesyncError("the undo preview is gone; open the run and press Undo again",
                                         code="web-undo-expired")  # fmt: skip
                tenant, _ = self.catalog.classes()
                self._write_mappings(upload, tenant, with_classes=True)
                result = runner.plan(
                    self.paths(upload), self._options(upload), client, names=self.names(upload),
                    sheet=upload.sheet or None,
                )  # fmt: skip
            runner.save_plan(result, plan_path)
            plan_path.chmod(0o600)
            upload.digest = result.digest
            self.save(upload)
            seen.preview = result
            return result

    async def preview(self, request: Request) -> Response:
        upload = self.upload_of(request)
        if upload is None:
            return self.error(request, UPLOAD_GONE, 404, back="/")
        if not upload.mapped:
            return RedirectResponse(f"/u/{upload.id}/map", status_code=303)
        try:
            result = await asyncio.to_thread(self._preview, upload)
        except GradesyncError as e:
            return self.failure(request, e, back=f"/u/{upload.id}/map")
        show_all = request.query_params.get("all") == "1"
        grids = class_grids(result.plan.rows, changed_only=not show_all)
        summary = result.summary
        return self.render(
            request,
            "preview.html",
            upload=upload,
            result=result,
            digest=runner.short_digest(result.digest),
            summary=summary,
            show_all=show_all,
            **_grid_context(request, grids),
            rejects=_rejects(result.plan.rows, lambda t: self.public(t, upload)),
            unplaced=len(not_placed(result.plan.rows)),
            gaps=result.plan.roster_gaps,
            warnings=self.warnings(result.warnings, upload),
            verdict=[self.public(v, upload) for v in result.guard_verdict],
            may_approve=self.approver(request),
            publish=list(self.settings.publish.assignments),
            strict_refused=result.refused,
            saved=request.query_params.get("saved", ""),
        )

    async def options(self, request: Request) -> Response:
        """The preview's own switch for clearing grades (an undo's preview has no Map page)."""
        upload = self.upload_of(request)
        if upload is None:
            return self.error(request, UPLOAD_GONE, 404, back="/")
        form = await self.form(request)
        if form is None:
            return self.error(request, CSRF_REFUSED, 403)
        upload.allow_clear = form.get("allow_clear") == "yes"
        self.seen(upload.id).preview = None  # the verdict changes; the plan file stays the same
        self.save(upload)
        return RedirectResponse(f"/u/{upload.id}/preview", status_code=303)

    async def approve(self, request: Request) -> Response:
        upload = self.upload_of(request)
        if upload is None or not upload.digest:
            return self.error(request, "Nothing to approve: preview the upload first.", 404, back="/")
        form = await self.form(request)
        if form is None:
            return self.error(request, CSRF_REFUSED, 403)
        back = f"/u/{upload.id}/preview"
        if not self.approver(request):
            return self.error(
                request, "You may preview, but approving needs the approvers' group.", 403, back=back
            )
        try:
            result = await asyncio.to_thread(self._preview, upload)
        except GradesyncError as e:
            return self.failure(request, e, back=back)
        digest = str(form.get("digest") or "")
        if form.get("confirm") != "yes":
            return self.error(request, "Tick the box that confirms you reviewed this plan.", 400, back=back)
        if digest != runner.short_digest(result.digest):
            return self.error(request, "The approval is for another plan; preview again.", 409, back=back)
        clears = int(result.summary.clears or 0)
        if clears and form.get("confirm_clear") != str(clears):
            return self.error(
                request,
                f"This plan clears {clears:,} grades: tick the second box that confirms it.",
                400,
                back=back,
            )
        publish = form.get("publish") == "yes" and bool(self.settings.publish.assignments)
        plan_path = self.folder(upload) / "plan.json"
        kind = "undo" if upload.undo_of else "apply"
        job = self._start(upload.id, kind, self.who(request), digest, plan_path, self._options(upload),
                          publish=publish)  # fmt: skip
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    def _start(self, upload_id: str, kind: str, who: str, digest: str, plan_path: Path, settings: Settings,
               *, publish: bool = False, resume: bool = False) -> Job:  # fmt: skip
        def work(job: Job) -> runner.RunResult:
            plan = runner.load_plan(plan_path)  # what apply sends is the reviewed file, re-checked
            with self._client() as client:
                return runner.apply(
                    plan, settings, client, approved_digest=digest, approved_by=who, plan_file=plan_path,
                    listener=job.add, resume=resume, publish=publish,
                )  # fmt: skip

        return self.jobs.start(upload_id=upload_id, kind=kind, approved_by=who, digest=digest,
                               plan_file=plan_path, publish=publish, work=work)  # fmt: skip

    # --- jobs --------------------------------------------------------------------------------------
    async def job_page(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            return self.error(request, "No such run.", 404, back="/runs")
        return self.render(
            request, "progress.html", job=job, failure=self.public(job.error),
            hint=PAGE_HINTS.get(job.error_code, ""), may_resume=self.approver(request) and _resumable(job),
        )  # fmt: skip

    async def job_resume(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            return self.error(request, "No such run.", 404, back="/runs")
        if not self.csrf(request):
            return self.error(request, CSRF_REFUSED, 403)
        if not self.approver(request):
            return self.error(request, "Resuming needs the approvers' group.", 403, back=f"/jobs/{job.id}")
        plan_path = self._plan_of(job)
        if plan_path is None:
            return self.error(request, "This run's plan is no longer kept; upload the export again.", 410)
        again = self._start(job.upload_id, "resume", self.who(request), job.digest, plan_path, self.settings,
                            publish=job.publish, resume=True)  # fmt: skip
        return RedirectResponse(f"/jobs/{again.id}", status_code=303)

    def _plan_of(self, job: Job) -> Path | None:
        """The plan a job applied: its run directory's copy, else the reviewed file it started from."""
        if job.run_name:
            run = self._run_dir(job.run_name)
            if run is not None and (run / "plan.json").is_file():
                return run / "plan.json"
        return job.plan_path if job.plan_path.is_file() else None

    async def job_events(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            return PlainTextResponse("no such run", status_code=404)
        start = request.headers.get("last-event-id", "")
        after = int(start) + 1 if start.isdigit() else 0

        async def stream() -> Any:
            nonlocal after
            while True:
                events = await asyncio.to_thread(job.wait, after, 10.0)
                if not events:
                    yield ": keep-alive\n\n"
                    continue
                for item in events:
                    event = {**item, "message": self.public(str(item.get("message", "")))}
                    if event["kind"] == "end":
                        event.update(run=job.run_name, exit_code=job.exit_code, error_code=job.error_code)
                    yield f"id: {after}\ndata: {json.dumps(event)}\n\n"
                    after += 1
                    if event["kind"] == "end":
                        return

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    # --- runs ------------------------------------------------------------------------------------
    def _run_dir(self, name: str) -> Path | None:
        for path in list_runs(self.config.runs_dir):
            if path.name == name:
                return path
        return None

    def _run_state(self, record: dict[str, Any]) -> str:
        if record.get("status") == "running" and record.get("exit_code") is None:
            return "interrupted" if self._lock_free() else "running"
        return str(record.get("status") or "")

    async def history(self, request: Request) -> Response:
        runs = []
        for path in reversed(list_runs(self.config.runs_dir)):
            record = _json(path / "run.json")
            summary = _json(path / "summary.json")
            web = "serve" in (record.get("argv") or [])
            runs.append({"name": path.name, "record": public_record(record), "summary": summary,
                         "state": self._run_state(record), "web": web})  # fmt: skip
        return self.render(request, "history.html", runs=runs)

    async def run_page(self, request: Request) -> Response:
        path = self._run_dir(request.path_params["name"])
        if path is None:
            return self.error(request, "No such run.", 404, back="/runs")
        raw = _json(path / "run.json")
        summary = _json(path / "summary.json")
        dirs = input_dirs(summary)
        record = public_record(raw, dirs)
        state = self._run_state(raw)
        rows = _rows(path, dirs)
        show_all = request.query_params.get("all") == "1"
        grids = class_grids(rows, changed_only=not show_all) if rows is not None else []
        counts = record.get("status_counts") or {}
        written = sum(int(counts.get(s, 0)) for s in WRITTEN)
        approver = self.approver(request)
        return self.render(
            request,
            "result.html",
            name=path.name,
            record=record,
            summary=public_summary(summary) if summary else {},
            state=state,
            files=[name for name in RUN_FILES if (path / name).is_file()],
            show_all=show_all,
            rows_kept=rows is not None,
            gaps=_gaps(path),
            may_resume=approver
            and (path / "plan.json").is_file()
            and (int(counts.get("carried_over", 0)) > 0 or state == "interrupted"),
            may_undo=approver
            and runner.can_undo()
            and written > 0
            and record.get("command") in ("apply", "sync"),
            written=written,
            **_grid_context(request, grids),
        )

    async def run_file(self, request: Request) -> Response:
        path = self._run_dir(request.path_params["name"])
        name = request.path_params["file"]
        if path is None or name not in RUN_FILES or not (path / name).is_file():
            return PlainTextResponse("not found", status_code=404)
        summary = _json(path / "summary.json")
        dirs = input_dirs(summary)
        if name == "run.json":
            body = json.dumps(public_record(_json(path / name), dirs), indent=2) + "\n"
            return Response(body, media_type="application/json")
        if name == "summary.json":
            return Response(
                json.dumps(public_summary(summary), indent=2) + "\n", media_type="application/json"
            )
        text = await asyncio.to_thread((path / name).read_text, encoding="utf-8")
        text = self.public(strip_dirs(text, dirs))
        if name == "report.html":  # the report's own hash-based policy, not the app's nonce policy
            style, script = htmlreport.page_assets()
            headers = {
                "Content-Security-Policy": htmlreport.content_security_policy(style, script),
                "x-own-csp": "1",
            }
            return Response(text, media_type="text/html; charset=utf-8", headers=headers)
        return Response(
            text.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    async def run_resume(self, request: Request) -> Response:
        path = self._run_dir(request.path_params["name"])
        if path is None or not (path / "plan.json").is_file():
            return self.error(request, "No such run, or it kept no plan.", 404, back="/runs")
        if not self.csrf(request):
            return self.error(request, CSRF_REFUSED, 403)
        if not self.approver(request):
            return self.error(request, "Resuming needs the approvers' group.", 403, back=f"/runs/{path.name}")
        try:
            plan = await asyncio.to_thread(runner.load_plan, path / "plan.json")
        except GradesyncError as e:
            return self.failure(request, e, back=f"/runs/{path.name}")
        digest = runner.short_digest(plan.digest)
        job = self._start("", "resume", self.who(request), digest, path / "plan.json", self.settings,
                          resume=True)  # fmt: skip
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    async def run_undo(self, request: Request) -> Response:
        path = self._run_dir(request.path_params["name"])
        if path is None or not runner.can_undo():
            return self.error(request, "No such run, or this gradesync cannot undo one.", 404, back="/runs")
        if not self.csrf(request):
            return self.error(request, CSRF_REFUSED, 403)
        if not self.approver(request):
            return self.error(
                request, "Undoing a run needs the approvers' group.", 403, back=f"/runs/{path.name}"
            )
        upload = Upload(
            secrets.token_urlsafe(12), self.sid(request), time.time(), [], mapped=True, undo_of=path.name
        )
        folder = private_dir(self.folder(upload))

        def make() -> runner.PlanResult:
            with self._client() as client:
                result = runner.undo(path, self.settings, client)
            runner.save_plan(result, folder / "plan.json")
            (folder / "plan.json").chmod(0o600)
            upload.digest = result.digest
            self.save(upload)
            self.seen(upload.id).preview = result
            return result

        try:
            await asyncio.to_thread(make)
        except GradesyncError as e:
            shutil.rmtree(folder, ignore_errors=True)
            return self.failure(request, e, back=f"/runs/{path.name}")
        return RedirectResponse(f"/u/{upload.id}/preview", status_code=303)

    # --- saved mappings ----------------------------------------------------------------------------
    async def mappings_page(self, request: Request) -> Response:
        saved = await asyncio.to_thread(list_mappings, self.config.state_dir)
        return self.render(request, "mappings.html", mappings=saved)

    # --- sign-in ---------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        auth = self.config.authenticator
        if auth is None:
            return RedirectResponse("/", status_code=303)
        key, url = await asyncio.to_thread(auth.begin)
        request.session["flow"] = key
        return RedirectResponse(url, status_code=303)

    async def callback(self, request: Request) -> Response:
        """The authority POSTs the code here (form_post; no session cookie on that cross-site POST)."""
        auth = self.config.authenticator
        if auth is None:
            return RedirectResponse("/", status_code=303)
        form = await request.form(max_files=0, max_fields=20)
        await asyncio.to_thread(auth.redeem, {k: str(v) for k, v in form.items()})
        return RedirectResponse("/auth/finish", status_code=303)

    async def finish(self, request: Request) -> Response:
        auth = self.config.authenticator
        if auth is None:
            return RedirectResponse("/", status_code=303)
        try:
            user = auth.finish(request.session.pop("flow", None))
        except AuthError as e:
            return self.error(request, e.message, 403, hint=e.hint or "")
        request.session.clear()
        request.session["user"] = user
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request) -> Response:
        if not self.csrf(request):
            return self.error(request, "The form expired (CSRF check failed).", 403)
        request.session.clear()
        return RedirectResponse("/", status_code=303)


def _session_key(path: Path) -> str:
    """The session cookie's signing key, kept in the state directory (0600), made at first use."""
    try:
        return path.read_text(encoding="utf-8").strip() or _new_key(path)
    except FileNotFoundError:
        return _new_key(path)


def _new_key(path: Path) -> str:
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return key


def page_hint(e: GradesyncError) -> str:
    """What to do, in the page's terms: the CLI's hints name command-line options a registrar
    cannot give; those hints are replaced (or left out)."""
    if e.code in PAGE_HINTS:
        return PAGE_HINTS[e.code]
    hint = e.hint or ""
    return "" if _FLAG.search(hint) else hint


def _about_class_flag(text: str) -> bool:
    """A reader diagnosis that tells a command-line user to give the class: the class chooser says it."""
    return "--class" in text


def _resumable(job: Job) -> bool:
    return job.state == "interrupted" or (job.state == "done" and job.carried_over > 0)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _rows(run_dir: Path, dirs: list[str]) -> pd.DataFrame | None:
    """A run's rows from its ``rows.json`` (None when the run kept none), input folders left out."""
    try:
        rows = read_rows(run_dir / ROWS_NAME)
    except RowsFileError:
        return None
    for name in ("source_file", "message", "note"):
        if dirs and name in rows.columns:
            codes, uniques = pd.factorize(rows[name], use_na_sentinel=False)
            rows[name] = pd.Series([strip_dirs(str(u), dirs) for u in uniques], dtype=object).to_numpy()[
                codes
            ]
    return rows


def _gaps(run_dir: Path) -> list[dict[str, Any]]:
    """The students with no row of the run's plan (its roster gaps), when the run kept its plan."""
    plan = run_dir / "plan.json"
    if not plan.is_file():
        return []
    try:
        return list(runner.load_plan(plan).roster_gaps)
    except GradesyncError:
        return []


def _rejects(rows: pd.DataFrame, public: Callable[[str], str]) -> list[dict[str, Any]]:
    """The rejected rows a page lists (at most 500); a file named with its folders (an undo of a
    nightly run names what cron was given) is named by its file name."""
    rejected = rows[rows["action"] == "reject"].head(500)
    keep = ["source_file", "source_row", "source_column", "class_key", "assignment_key", "student_key"]
    keep += ["points_raw", "reason", "message"]
    out = rejected.reindex(columns=keep).fillna("").to_dict("records")
    dirs = input_dirs({"inputs": [{"path": str(p)} for p in pd.unique(rejected["source_file"].astype(str))]})
    for item in out:
        item["source_file"] = public(strip_dirs(str(item["source_file"]), dirs))
        item["message"] = public(strip_dirs(str(item["message"]), dirs))
    return out


def _grid_context(request: Request, grids: list[Any]) -> dict[str, Any]:
    try:
        index = max(0, min(int(request.query_params.get("class", "0")), len(grids) - 1))
        page = max(0, int(request.query_params.get("page", "0")))
    except ValueError:
        index, page = 0, 0
    grid = grids[index] if grids else None
    pages = grid.page_count() if grid else 1
    page = min(page, pages - 1)
    return {
        "grids": grids,
        "grid": grid,
        "grid_index": index,
        "page": page,
        "pages": pages,
        "students": grid.page(page) if grid else [],
        "page_size": PAGE_SIZE,
        "changed_cells": sum(g.changed_cells for g in grids),
    }


class SignInRequired:
    """ASGI middleware: with sign-in configured, every page but /auth/* and /static/* needs a user."""

    def __init__(self, app: Any, web: WebApp) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and self.web.config.authenticator is not None
            and not scope["path"].startswith(("/auth/", "/static/"))
            and not (scope.get("session") or {}).get("user")
        ):
            response = RedirectResponse("/auth/login", status_code=303)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_app(config: WebConfig) -> Starlette:
    web = WebApp(config)
    routes = [
        Route("/", web.index),
        Route("/upload", web.upload, methods=["POST"]),
        Route("/u/{upload_id}/map", web.map_page, methods=["GET", "POST"]),
        Route("/u/{upload_id}/mapping", web.save_mapping_page, methods=["POST"]),
        Route("/u/{upload_id}/preview", web.preview),
        Route("/u/{upload_id}/approve", web.approve, methods=["POST"]),
        Route("/u/{upload_id}/options", web.options, methods=["POST"]),
        Route("/jobs/{job_id}", web.job_page),
        Route("/jobs/{job_id}/events", web.job_events),
        Route("/jobs/{job_id}/resume", web.job_resume, methods=["POST"]),
        Route("/runs", web.history),
        Route("/runs/{name}", web.run_page),
        Route("/runs/{name}/files/{file}", web.run_file),
        Route("/runs/{name}/resume", web.run_resume, methods=["POST"]),
        Route("/runs/{name}/undo", web.run_undo, methods=["POST"]),
        Route("/mappings", web.mappings_page),
        Route("/auth/login", web.login),
        Route("/auth/callback", web.callback, methods=["POST"]),
        Route("/auth/finish", web.finish),
        Route("/auth/logout", web.logout, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(BodyLimit, limit=config.max_upload_bytes * MAX_FILES + 1024 * 1024),
        Middleware(
            SessionMiddleware,
            secret_key=config.secret_key,
            session_cookie="gradesync_session",
            same_site="lax",
            https_only=config.https,
            max_age=8 * 3600,
        ),
        Middleware(SignInRequired, web=web),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.web = web
    app.state.started = time.time()
    return app
