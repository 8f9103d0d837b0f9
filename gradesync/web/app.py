"""The registrars' web app (starlette): Upload → Map → Preview → Approve → Apply (live) → Result, History.

Every pipeline call goes through ``gradesync.web.runner``. Pages are Jinja2 templates with autoescape
on, shared with ``report.html`` (``gradesync/report/templates``). See ``security.py`` for the CSP,
CSRF and upload rules and ``auth.py`` for sign-in.

State: an upload (its files, the mapping, the latest plan) lives in memory under a random id bound to
the browser's session, its files under ``STATE_DIR/web/uploads/<id>/`` (0700/0600, deleted after the
retention period); apply runs live in :class:`~gradesync.web.jobs.Jobs`; past runs are the run
directories (``STATE_DIR/../runs``) that nightly runs write too.
"""

from __future__ import annotations

import asyncio
import json
import secrets
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
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from gradesync.config import Settings
from gradesync.errors import AuthError, GradesyncError
from gradesync.read.mapping import Mapping
from gradesync.report import htmlreport
from gradesync.report.grid import PAGE_SIZE, class_grids, not_placed
from gradesync.report.summary import format_number
from gradesync.state.runs import default_runs_dir, list_runs
from gradesync.web import runner
from gradesync.web.auth import Authenticator, SignIn
from gradesync.web.jobs import Jobs
from gradesync.web.security import (
    CSRF_FIELD,
    BodyLimit,
    SecurityHeaders,
    UploadRefused,
    csrf_ok,
    csrf_token,
    private_dir,
    prune_uploads,
    safe_name,
    sniff,
    write_private,
)

HERE = Path(__file__).resolve().parent
REPORT_TEMPLATES = HERE.parent / "report" / "templates"
RUN_FILES = ("report.html", "reconciliation.csv", "summary.json", "plan.csv", "run.json")
DEFAULT_MAX_UPLOAD = 25 * 1024 * 1024  # a 50,000-row export is about 2 MB
DEFAULT_RETENTION_SECONDS = 24 * 3600
MAX_FILES = 10


@dataclass
class WebConfig:
    settings: Settings
    client_factory: Callable[[], AbstractContextManager[Any]]  # a Graph client with the app's credentials
    state_dir: Path  # also ``[apply] state_dir`` of ``settings`` (set here): one lock, journal, history
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    signin: SignIn | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    https: bool = False  # Secure cookies (set when served over https)
    title: str = "gradesync"
    authenticator: Authenticator | None = None

    def __post_init__(self) -> None:
        self.settings = runner.settings_for(self.settings, self.state_dir)

    @property
    def runs_dir(self) -> Path:
        runs = self.settings.run.runs_dir
        return Path(runs) if runs else default_runs_dir(self.state_dir)


@dataclass
class Upload:
    id: str
    owner: str  # the session id that uploaded it
    dir: Path
    paths: list[Path]
    names: list[str]
    class_key: str | None = None
    choices: dict[str, str] = field(default_factory=dict)  # column header → assignment, "" ignore
    mapping: Mapping | None = None  # the choices as read's Mapping (None: read as detected)
    inspection: runner.Inspection | None = None
    result: runner.PlanResult | None = None
    grids: list[Any] = field(default_factory=list)
    plan_path: Path | None = None
    error: str = ""


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


class WebApp:
    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.templates = _templates()
        self.uploads: dict[str, Upload] = {}
        self.jobs = Jobs()
        self._lock = threading.Lock()
        self.upload_root = private_dir(Path(config.state_dir) / "web" / "uploads")
        if config.signin is not None and config.authenticator is None:
            config.authenticator = Authenticator(config.signin)

    # --- helpers ---------------------------------------------------------------------------------
    def user(self, request: Request) -> dict[str, Any] | None:
        if self.config.authenticator is None:
            return {"name": "local user", "username": "", "oid": "", "approver": True, "local": True}
        user = request.session.get("user")
        return user if isinstance(user, dict) else None

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

    def error(self, request: Request, message: str, status: int = 400, hint: str = "") -> Response:
        return self.render(request, "error.html", status=status, message=message, hint=hint)

    def upload_of(self, request: Request) -> Upload | None:
        upload = self.uploads.get(request.path_params["upload_id"])
        if upload is None or upload.owner != self.sid(request):
            return None
        return upload

    async def form(self, request: Request) -> Any | None:
        form = await request.form(max_files=MAX_FILES, max_fields=2000)
        if not csrf_ok(request.session, form.get(CSRF_FIELD)):
            return None
        return form

    # --- pages -----------------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return self.render(request, "upload.html", max_mb=self.config.max_upload_bytes // (1024 * 1024))

    async def upload(self, request: Request) -> Response:
        form = await request.form(max_files=MAX_FILES, max_fields=20)
        try:
            if not csrf_ok(request.session, form.get(CSRF_FIELD)):
                return self.error(
                    request, "The form expired (CSRF check failed); go back and try again.", 403
                )
            return await self._store(request, form)
        finally:
            await form.close()  # the spooled upload files

    async def _store(self, request: Request, form: Any) -> Response:
        files = [f for f in form.getlist("files") if hasattr(f, "read") and f.filename]
        if not files:
            return self.error(request, "Choose at least one CSV, TSV or XLSX file.")
        prune_uploads(self.upload_root, self.config.retention_seconds)
        checked: list[tuple[str, bytes]] = []  # every file is checked before anything is stored
        for item in files:
            data = await item.read()
            if len(data) > self.config.max_upload_bytes:
                return self.error(request, f"{item.filename}: larger than the upload limit.", 413)
            try:
                sniff(item.filename, data)
            except UploadRefused as e:
                return self.error(request, str(e), 415)
            name = safe_name(item.filename)
            while name in [n for n, _ in checked]:
                name = "copy-" + name
            checked.append((name, data))
        upload_id = secrets.token_urlsafe(12)
        folder = private_dir(self.upload_root / upload_id)
        paths, names = [], []
        for name, data in checked:
            path = folder / name
            write_private(path, data)
            paths.append(path)
            names.append(name)
        class_key = str(form.get("class_key") or "").strip() or None
        upload = Upload(upload_id, self.sid(request), folder, paths, names, class_key=class_key)
        with self._lock:
            self.uploads[upload_id] = upload
        return RedirectResponse(f"/u/{upload_id}/map", status_code=303)

    def _client(self) -> AbstractContextManager[Any]:
        return self.config.client_factory()

    def _inspect(self, upload: Upload) -> runner.Inspection:
        with self._client() as client:
            return runner.inspect(upload.paths, self.config.settings, client, class_key=upload.class_key)

    def _plan(self, upload: Upload) -> runner.PlanResult:
        with self._client() as client:
            result = runner.plan(
                upload.paths,
                self.config.settings,
                client,
                class_key=upload.class_key,
                mapping=upload.mapping,
            )
        path = upload.dir / "plan.json"
        runner.save_plan(result, path)
        path.chmod(0o600)
        upload.plan_path = path
        upload.result = result
        upload.grids = []
        return result

    async def map_page(self, request: Request) -> Response:
        upload = self.upload_of(request)
        if upload is None:
            return self.error(request, "No such upload (it may have expired).", 404)
        if request.method == "POST":
            form = await self.form(request)
            if form is None:
                return self.error(
                    request, "The form expired (CSRF check failed); go back and try again.", 403
                )
            if upload.inspection is None:
                return self.error(request, "Open the Map page first.", 409)
            choices = {k[4:]: str(v) for k, v in form.multi_items() if k.startswith("map:")}
            try:
                upload.mapping = runner.mapping_from(upload.inspection, choices)
            except GradesyncError as e:
                return self.error(request, e.message, 400, hint=e.hint or "")
            upload.choices = choices
            upload.result = None
            return RedirectResponse(f"/u/{upload.id}/preview", status_code=303)
        try:
            if upload.inspection is None:
                upload.inspection = await asyncio.to_thread(self._inspect, upload)
        except GradesyncError as e:
            return self.error(request, e.message, 400, hint=e.hint or "")
        return self.render(
            request,
            "map.html",
            upload=upload,
            inspection=upload.inspection,
            files=_map_view(upload.inspection, upload.choices),
            warnings=_hidden(upload.inspection.warnings, upload.dir),
            diagnoses=_hidden(upload.inspection.diagnoses, upload.dir),
            mappable=runner.mappable(upload.inspection),
            ignore=runner.IGNORE,
        )

    async def preview(self, request: Request) -> Response:
        upload = self.upload_of(request)
        if upload is None:
            return self.error(request, "No such upload (it may have expired).", 404)
        try:
            if upload.result is None:
                await asyncio.to_thread(self._plan, upload)
        except GradesyncError as e:
            return self.error(request, e.message, 400, hint=e.hint or "")
        result = upload.result
        assert result is not None
        show_all = request.query_params.get("all") == "1"
        grids = class_grids(result.plan.rows, changed_only=not show_all)
        return self.render(
            request,
            "preview.html",
            upload=upload,
            result=result,
            digest=runner.short_digest(result.digest),
            summary=result.summary,
            show_all=show_all,
            **_grid_context(request, grids),
            rejects=_rejects(result.plan.rows, upload.dir),
            unplaced=len(not_placed(result.plan.rows)),
            gaps=result.plan.roster_gaps,
            may_approve=bool((self.user(request) or {}).get("approver")),
        )

    async def approve(self, request: Request) -> Response:
        upload = self.upload_of(request)
        if upload is None or upload.result is None or upload.plan_path is None:
            return self.error(request, "Nothing to approve: preview the upload first.", 404)
        form = await self.form(request)
        if form is None:
            return self.error(request, "The form expired (CSRF check failed); go back and try again.", 403)
        user = self.user(request) or {}
        if not user.get("approver"):
            return self.error(request, "You may preview, but approving needs the approvers' group.", 403)
        digest = str(form.get("digest") or "")
        if form.get("confirm") != "yes":
            return self.error(request, "Tick the box that confirms you reviewed this plan.", 400)
        if digest != runner.short_digest(upload.result.digest):
            return self.error(request, "The approval is for another plan; preview again.", 409)
        who = user.get("username") or user.get("name") or "local user"
        plan_path = upload.plan_path

        def work(job: Any) -> runner.RunResult:
            plan = runner.load_plan(plan_path)  # what apply sends is the reviewed file, re-checked
            with self._client() as client:
                return runner.apply(
                    plan,
                    self.config.settings,
                    client,
                    approved_digest=digest,
                    approved_by=str(who),
                    plan_file=plan_path,
                    listener=job.add,
                )

        job = self.jobs.start(upload.id, str(who), digest, work)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    async def job_page(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            return self.error(request, "No such run.", 404)
        return self.render(request, "progress.html", job=job)

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
                    event = item
                    if event["kind"] == "end":
                        event = {
                            **event,
                            "run": job.run_dir.name if job.run_dir else "",
                            "exit_code": job.exit_code,
                            "error_code": job.error_code,
                        }
                    yield f"id: {after}\ndata: {json.dumps(event)}\n\n"
                    after += 1
                    if event["kind"] == "end":
                        return

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    def _run_dir(self, name: str) -> Path | None:
        for path in list_runs(self.config.runs_dir):
            if path.name == name:
                return path
        return None

    async def history(self, request: Request) -> Response:
        runs = []
        for path in reversed(list_runs(self.config.runs_dir)):
            record = _json(path / "run.json")
            summary = _json(path / "summary.json")
            runs.append({"name": path.name, "record": record, "summary": summary})
        return self.render(request, "history.html", runs=runs)

    async def run_page(self, request: Request) -> Response:
        path = self._run_dir(request.path_params["name"])
        if path is None:
            return self.error(request, "No such run directory.", 404)
        record, summary = _json(path / "run.json"), _json(path / "summary.json")
        rows = _reconciliation(path / "reconciliation.csv")
        grids = (
            class_grids(rows, changed_only=request.query_params.get("all") != "1") if rows is not None else []
        )
        files = [name for name in RUN_FILES if (path / name).is_file()]
        return self.render(
            request,
            "result.html",
            name=path.name,
            record=record,
            summary=summary,
            files=files,
            show_all=request.query_params.get("all") == "1",
            **_grid_context(request, grids),
        )

    async def run_file(self, request: Request) -> Response:
        path = self._run_dir(request.path_params["name"])
        name = request.path_params["file"]
        if path is None or name not in RUN_FILES or not (path / name).is_file():
            return PlainTextResponse("not found", status_code=404)
        target = path / name
        if name == "report.html":  # the report's own hash-based policy, not the app's nonce policy
            style, script = htmlreport.page_assets()
            headers = {
                "Content-Security-Policy": htmlreport.content_security_policy(style, script),
                "x-own-csp": "1",
            }
            return FileResponse(target, media_type="text/html; charset=utf-8", headers=headers)
        media = "text/csv; charset=utf-8" if name.endswith(".csv") else "application/json"
        return FileResponse(target, media_type=media, filename=name if name.endswith(".csv") else None)

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
        form = await self.form(request)
        if form is None:
            return self.error(request, "The form expired (CSRF check failed).", 403)
        request.session.clear()
        return RedirectResponse("/", status_code=303)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_CSV_NAMES = {"class": "class_key", "assignment": "assignment_key", "student": "student_key"}


def _reconciliation(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame = frame.rename(columns=_CSV_NAMES)
    for name in ("before_points", "desired_points", "after_points", "max_points"):
        if name in frame.columns:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    for name in ("clear", "decrease", "excuse"):
        if name in frame.columns:
            frame[name] = frame[name].str.lower().isin(["true", "1", "yes"])
    return frame


def _hidden(texts: list[str], folder: Path) -> list[str]:
    """Reader warnings and diagnoses without the server's upload folder in them."""
    return [str(t).replace(f"{folder}/", "") for t in texts]


def _map_view(inspection: runner.Inspection, choices: dict[str, str]) -> list[dict[str, Any]]:
    """read's FileInspection per file, with each assignment column's options for the Map page."""
    out = []
    for f in inspection.files:
        named = [c.assignment for c in f.columns if c.role == "assignment" and c.assignment]
        columns = []
        for c in f.columns:
            options: list[str] = []
            if c.role == "assignment":
                options = list(dict.fromkeys([c.assignment, *c.did_you_mean, *named]))
            chosen = choices.get(c.header, c.assignment)
            columns.append({"info": c, "options": options, "chosen": chosen})
        out.append({"name": Path(f.path).name, "file": f, "columns": columns})
    return out


def _rejects(rows: pd.DataFrame, folder: Path) -> list[dict[str, Any]]:
    rejected = rows[rows["action"] == "reject"].head(500)
    keep = ["source_file", "source_row", "source_column", "class_key", "assignment_key", "student_key"]
    keep += ["points_raw", "reason", "message"]
    out = rejected.reindex(columns=keep).fillna("").to_dict("records")
    prefix = f"{folder}/"  # the server's upload folder is nobody's business on the page
    for item in out:
        item["source_file"] = Path(str(item["source_file"])).name
        item["message"] = str(item["message"]).replace(prefix, "")
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
        Route("/u/{upload_id}/preview", web.preview),
        Route("/u/{upload_id}/approve", web.approve, methods=["POST"]),
        Route("/jobs/{job_id}", web.job_page),
        Route("/jobs/{job_id}/events", web.job_events),
        Route("/runs", web.history),
        Route("/runs/{name}", web.run_page),
        Route("/runs/{name}/files/{file}", web.run_file),
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
