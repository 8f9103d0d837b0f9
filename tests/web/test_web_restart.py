"""``gradesync serve`` killed (SIGKILL) in the middle of an apply, then started again on the same state
directory: the upload, the job and its progress are still there, the job says it was interrupted, and
Resume finishes it — every planned grade written once, no outcome created twice (the journal says what
was sent). The server runs as a real process; the kill is synchronised on the job's own progress events
(the first write answered), and the emulator's throttle holds the rest of the writes back meanwhile."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from gradesync.cli.common import graph_client
from gradesync.pipeline import Pipeline
from graph_emulator import ThrottleConfig
from tests.web.conftest import web_config

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "gradebook_wide.csv"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(emulator: Any, token: str, state: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = _port()
    env = {**os.environ, "GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}
    config = state.parent / "gradesync.toml"
    # one envelope in flight: a write wave is 80 grades, so the sample's 87 take two waves
    config.write_text("[apply]\nmax_in_flight = 1\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradesync", "serve", "--port", str(port), "--state-dir", str(state),
         "--config", str(config), "--max-changes", "100%", "--max-decreases", "100%"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert "gradesync web app on" in proc.stdout.readline()  # printed just before it listens
        for _ in range(2000):  # until the port accepts (uvicorn has started), as LiveServer waits
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except OSError:
                try:
                    proc.wait(timeout=0.05)  # returns only if the server died
                except subprocess.TimeoutExpired:
                    continue
                raise AssertionError(proc.stdout.read()) from None
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def _token(page: str) -> str:
    return re.search(r"\?csrf=([^\"&]+)\"", page).group(1)  # type: ignore[union-attr]


def _selects(page: str) -> dict[str, str]:
    out = {}
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        out[name] = chosen.group(1) if chosen else ""
    return out


def _events_until(http: httpx.Client, job: str, stop: Any) -> dict[str, Any]:
    with http.stream("GET", job + "/events", timeout=300) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if stop(event):
                    return event
    raise AssertionError("the event stream ended")


def _points_outcomes(emulator: Any) -> list[int]:
    return [
        sum(1 for o in s.get("outcomes") or [] if o.get("type") == "points")
        for c in emulator.state()["classes"]
        for a in c["assignments"]
        for s in a.get("submissions") or []
    ]


def test_an_apply_cut_off_by_a_restart_is_resumed_without_duplicates(emulator, token, tmp_path):
    state = tmp_path / "state"
    config = web_config(emulator, token, state)
    with graph_client(config.settings, token=token) as client:
        planned = Pipeline(config.settings, client).plan([SAMPLE])
    writes = int(planned.plan.rows["action"].isin(["update", "create"]).sum())
    assert writes > 80  # more than one write wave: the throttle below holds the second back
    with _serve(emulator, token, state) as (proc, url), httpx.Client(base_url=url, timeout=120) as http:
        key = _token(http.get("/").text)
        r = http.post(f"/upload?csrf={key}", files=[("files", (SAMPLE.name, SAMPLE.read_bytes()))])
        map_url = r.headers["location"]
        page = http.get(map_url).text
        r = http.post(f"{map_url}?csrf={key}", data={**_selects(page), "action": "preview"})
        preview_url = r.headers["location"]
        preview = http.get(preview_url).text
        digest = re.search(r'name="digest" value="([^"]+)"', preview).group(1)  # type: ignore[union-attr]
        # the first wave goes through; after it Graph lets one request through per 10 s
        emulator.configure(throttle=ThrottleConfig(change_after_requests=80, then_per_10s=1))
        base = preview_url.rsplit("/", 1)[0]
        r = http.post(f"{base}/approve?csrf={key}", data={"digest": digest, "confirm": "yes"})
        job = r.headers["location"]
        first = _events_until(
            http, job, lambda e: e["stage"] == "execute" and e["kind"] == "progress" and e["done"]
        )
        assert first["done"] < first["total"]
        proc.send_signal(signal.SIGKILL)  # the server dies mid-apply, holding the lock
        proc.wait(30)
    emulator.configure(throttle=ThrottleConfig.off())
    with _serve(emulator, token, state) as (_, url), httpx.Client(base_url=url, timeout=120) as http:
        # the same browser (its session cookie) comes back to the same job page
        http.cookies.update({"gradesync_session": r.cookies.get("gradesync_session") or ""})
        page = http.get(job).text
        assert 'id="interrupted"' in page and 'id="resume-button"' in page
        runs = http.get("/runs").text
        assert "interrupted" in runs
        key = _token(page)
        r = http.post(f"{job}/resume?csrf={key}")
        resumed = r.headers["location"]
        end = _events_until(http, resumed, lambda e: e["kind"] == "end")
        assert end["stage"] == "done" and end["exit_code"] in (0, 1), end
        result = http.get(f"/runs/{end['run']}").text
        assert 'id="resume-button"' not in result  # nothing left to send
    assert max(_points_outcomes(emulator)) == 1  # no submission got a second points outcome
    with graph_client(config.settings, token=token) as client:
        again = Pipeline(config.settings.override("apply", state_dir=""), client).plan([SAMPLE])
    assert int(again.plan.rows["action"].isin(["update", "create"]).sum()) == 0  # every grade is written
