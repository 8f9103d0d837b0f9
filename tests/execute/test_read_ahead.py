"""The read ahead's pages are reads as they come: an envelope whose submissions a first page has
shown leaves without waiting for the listings' later pages — over real HTTP, ordered by events."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from execute_helpers import assert_converged, build_plan, client_for, status_counts

from gradesync.execute.apply import ApplyOptions, apply_plan
from gradesync.state.journal import Journal

__all__: list[str] = []

HANG_GUARD = 30.0  # seconds: only reached when the behaviour is gone (then the test fails)


def test_writes_leave_on_the_first_pages_while_the_later_pages_are_still_held(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    """A reviewed plan (its reads are old: every assignment is read before its writes) of 40
    updates. Graph holds every second page of a listing back until gradesync has sent a write: the
    first envelopes are written on what the first pages showed, and every later page is still read
    before the writes that need it. Every grade lands once, nothing is a conflict."""
    plan = build_plan(emulator.state(), updates=40, creates=0, noops=0, rejects=0)
    wrote = threading.Event()
    held: list[bool] = []  # per later page: whether a write had left when it was asked for
    with client_for(emulator, token, max_in_flight=2) as client, Journal.in_dir(tmp_path) as journal:
        real = client._http_send

        def send(method: str, url: str, *args: Any, **kw: Any) -> Any:
            body = args[3] if len(args) > 3 else kw.get("body")
            subs = body.get("requests", []) if isinstance(body, dict) else []
            if any(r["method"] == "PATCH" for r in subs):
                wrote.set()
            elif any("$skiptoken" in r["url"] for r in subs):
                held.append(wrote.wait(HANG_GUARD))
                wrote.set()  # after a timeout (the behaviour is gone): hold nothing more, fail below
            return real(method, url, *args, **kw)

        client._http_send = send  # type: ignore[method-assign]
        result = apply_plan(plan, client, journal=journal, options=ApplyOptions())
    assert held and all(held)  # later pages were asked for, and each only after a write had left
    assert status_counts(result) == {"updated": 40}
    assert_converged(emulator, plan)
