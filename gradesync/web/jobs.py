"""Applies (and resumes, and undos) started from the web, and their progress, kept by job id.

A page reload (or a second tab) reconnects to ``/jobs/{id}/events`` and gets every event again from
the start (or from ``Last-Event-ID``). The run itself is an ordinary thread calling the pipeline — the
same lock, journal and guards as a nightly run; a refusal or failure is the result's ``error`` (the
pipeline never raises one from apply).

Durable: each job's record (who approved which plan, its state, exit code, error and run directory)
and its events other than the per-envelope progress ticks are in the web app's database
(``state.webstore``), so the job page survives a restart of ``gradesync serve``. A job the database
says is running when the server starts, while nobody holds the state directory's lock, was cut off by
the restart: it is *interrupted*, and its page offers Resume (``apply --resume``: the journal says what
was sent, nothing is sent twice).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradesync.errors import GradesyncError
from gradesync.pipeline import Event, RunResult
from gradesync.state.webstore import WebStore

__all__ = ["Job", "Jobs"]

RUNNING, DONE, FAILED, INTERRUPTED = "running", "done", "failed", "interrupted"


@dataclass
class Job:
    id: str
    upload_id: str
    kind: str  # "apply" | "resume" | "undo"
    approved_by: str
    digest: str  # the approved digest (12 hex digits)
    plan_file: str  # the reviewed plan file the job applies (server side; never shown)
    created: float = field(default_factory=time.time)
    publish: bool = False
    state: str = RUNNING  # running | done | failed | interrupted
    error: str = ""
    error_code: str = ""
    exit_code: int | None = None
    run_name: str = ""  # the run directory's name (the run's id)
    carried_over: int = 0
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)
    changed: threading.Condition = field(default_factory=threading.Condition, repr=False)
    store: WebStore | None = field(default=None, repr=False)

    _RECORD = ("id", "upload_id", "kind", "approved_by", "digest", "plan_file", "created", "publish", "state",
               "error", "error_code", "exit_code", "run_name", "carried_over")  # fmt: skip

    def record(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._RECORD}

    def save(self) -> None:
        if self.store is not None:
            self.store.save_job(self.id, self.created, self.record())

    def add(self, event: Event) -> None:
        item = {
            "kind": event.kind,
            "stage": event.stage,
            "done": event.done,
            "total": event.total,
            "message": event.message,
        }
        with self.changed:
            seq = len(self.events)
            self.events.append(item)
            self.changed.notify_all()
        if event.kind != "progress" and self.store is not None:
            self.store.add_event(self.id, seq, item)

    def finish(self, state: str) -> None:
        with self.changed:
            self.state = state
            item = {"kind": "end", "stage": state, "done": 0, "total": 0, "message": self.error}
            self.events.append(item)
            seq = len(self.events) - 1
            self.changed.notify_all()
        self.save()
        if self.store is not None:
            self.store.add_event(self.id, seq, item)

    def wait(self, after: int, timeout: float) -> list[dict[str, Any]]:
        """Events after index ``after`` (blocks up to ``timeout`` seconds for a new one)."""
        with self.changed:
            if len(self.events) <= after and self.state == RUNNING:
                self.changed.wait(timeout)
            return self.events[after:]

    @property
    def plan_path(self) -> Path:
        return Path(self.plan_file)


class Jobs:
    def __init__(self, store: WebStore, *, lock_free: Callable[[], bool]) -> None:
        self.store = store
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._lock_free = lock_free
        self._recover(lock_free)

    def _job(self, job_id: str, created: float, record: dict[str, Any]) -> Job:
        known = {k: v for k, v in record.items() if k in Job._RECORD}
        known["created"] = created
        job = Job(**known)
        job.store = self.store
        job.events = self.store.events(job_id)
        return job

    def _recover(self, lock_free: Callable[[], bool]) -> None:
        """Jobs the database says are running, started by a server that is gone: interrupted."""
        running = [(i, c, r) for i, c, r in self.store.jobs() if r.get("state") == RUNNING]
        if not running or not lock_free():
            return
        for job_id, created, record in running:
            self._interrupted(self._job(job_id, created, record))

    @staticmethod
    def _interrupted(job: Job) -> Job:
        job.error = "the server stopped while this run was being applied"
        job.error_code = "interrupted"
        job.finish(INTERRUPTED)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            return job
        kept = self.store.job(job_id)
        if kept is None:
            return None
        job = self._job(job_id, *kept)
        # running in the database but not started by this server: interrupted once nobody holds the
        # lock (a nightly run held it when this server started)
        if job.state == RUNNING and self._lock_free():
            self._interrupted(job)
        with self._lock:
            return self._jobs.setdefault(job_id, job)

    def for_run(self, run_name: str) -> Job | None:
        """The newest job whose run directory is ``run_name``."""
        found = [r for _, _, r in self.store.jobs() if r.get("run_name") == run_name]
        return self.get(found[-1]["id"]) if found else None

    def start(
        self,
        *,
        upload_id: str,
        kind: str,
        approved_by: str,
        digest: str,
        plan_file: Path,
        publish: bool,
        work: Callable[[Job], RunResult],
    ) -> Job:
        job = Job(
            secrets.token_urlsafe(12), upload_id, kind, approved_by, digest, str(plan_file), publish=publish
        )
        job.store = self.store
        job.save()
        with self._lock:
            self._jobs[job.id] = job

        def run() -> None:
            try:
                result = work(job)
                job.exit_code = int(result.exit_code)
                job.run_name = result.run_dir.name if result.run_dir else ""
                counts = result.status_counts or {}
                job.carried_over = int(counts.get("carried_over", 0))
                if result.error is not None:
                    job.error, job.error_code = result.error.message, result.error.code
                    job.finish(FAILED)
                else:
                    job.finish(DONE)
            except GradesyncError as e:
                job.error, job.error_code, job.exit_code = e.message, e.code, int(e.exit_code)
                job.finish(FAILED)
            except Exception as e:  # a bug: say so on the page, keep the server up
                job.error, job.error_code, job.exit_code = (
                    f"internal error: {type(e).__name__}",
                    "internal",
                    70,
                )
                job.finish(FAILED)

        threading.Thread(target=run, name=f"web-{kind}-{job.id}", daemon=True).start()
        return job
