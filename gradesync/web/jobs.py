"""Apply runs started from the web, and their progress, kept server-side by run id.

A page reload (or a second tab) reconnects to ``/jobs/{id}/events`` and gets every event again from
the start (or from ``Last-Event-ID``), so progress survives a reload. The run itself is an ordinary
thread calling ``runner.apply`` (``Pipeline.apply``) — the same lock, journal and guards as a nightly
run. A refusal or failure is the result's ``error`` (the pipeline never raises one from apply).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradesync.errors import GradesyncError
from gradesync.pipeline import Event, RunResult


@dataclass
class Job:
    id: str
    upload_id: str
    approved_by: str
    digest: str
    events: list[dict[str, Any]] = field(default_factory=list)
    state: str = "running"  # running | done | failed
    result: RunResult | None = None
    error: str = ""
    error_code: str = ""
    exit_code: int | None = None
    run_dir: Path | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, event: Event) -> None:
        with self.changed:
            self.events.append(
                {
                    "kind": event.kind,
                    "stage": event.stage,
                    "done": event.done,
                    "total": event.total,
                    "message": event.message,
                }
            )
            self.changed.notify_all()

    def finish(self, state: str) -> None:
        with self.changed:
            self.state = state
            self.events.append({"kind": "end", "stage": state, "done": 0, "total": 0, "message": self.error})
            self.changed.notify_all()

    def wait(self, after: int, timeout: float) -> list[dict[str, Any]]:
        """Events after index ``after`` (blocks up to ``timeout`` seconds for a new one)."""
        with self.changed:
            if len(self.events) <= after and self.state == "running":
                self.changed.wait(timeout)
            return self.events[after:]


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def start(self, upload_id: str, approved_by: str, digest: str, work: Callable[[Job], RunResult]) -> Job:
        job = Job(secrets.token_urlsafe(12), upload_id, approved_by, digest)
        with self._lock:
            self._jobs[job.id] = job

        def run() -> None:
            try:
                result = job.result = work(job)
                job.exit_code = int(result.exit_code)
                job.run_dir = result.run_dir
                if result.error is not None:
                    job.error, job.error_code = result.error.message, result.error.code
                    job.finish("failed")
                else:
                    job.finish("done")
            except GradesyncError as e:
                job.error, job.error_code, job.exit_code = e.message, e.code, int(e.exit_code)
                job.finish("failed")
            except Exception as e:  # a bug: say so on the page, keep the server up
                job.error, job.error_code, job.exit_code = (
                    f"internal error: {type(e).__name__}",
                    "internal",
                    70,
                )
                job.finish("failed")

        threading.Thread(target=run, name=f"web-apply-{job.id}", daemon=True).start()
        return job
