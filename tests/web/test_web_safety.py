"""The web app's guarantees without a browser (starlette's TestClient, the emulator over real HTTP):
a web run and a nightly run never overlap (the state directory's lock), an unapproved or edited plan
is never applied, every form needs its CSRF token, uploads are checked by content, values are escaped
under a nonce CSP, and a non-loopback bind needs sign-in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradesync.plan.planfile import read_plan, write_plan
from gradesync.state.lock import RunLock
from gradesync.web.security import UploadRefused, sniff
from tests.web.conftest import web_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "gradebook_wide.csv"


def _client(config) -> TestClient:
    from gradesync.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TestClient(create_app(config))


def _csrf(text: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', text).group(1)


def _preview(
    c: TestClient, name: str = "gradebook_wide.csv", data: bytes | None = None
) -> tuple[str, str, str]:
    csrf = _csrf(c.get("/").text)
    body = SAMPLE.read_bytes() if data is None else data
    r = c.post(
        "/upload", data={"csrf": csrf}, files=[("files", (name, body, "text/csv"))], follow_redirects=False
    )
    assert r.status_code == 303, r.text
    base = r.headers["location"].rsplit("/", 1)[0]
    page = c.get(base + "/preview").text
    digest = re.search(r'name="digest" value="([^"]+)"', page).group(1)
    return csrf, base, digest


def _events(c: TestClient, job: str) -> list[str]:
    lines = []
    with c.stream("GET", job + "/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                lines.append(line)
                if '"kind": "end"' in line:
                    break
    return lines


def _outcomes(emulator) -> dict[str, object]:
    return {
        s["id"]: [o.get("points") for o in s.get("outcomes") or []]
        for c in emulator.state()["classes"]
        for a in c["assignments"]
        for s in a.get("submissions") or []
    }


def test_a_nightly_run_holding_the_lock_refuses_the_web_apply(emulator, token, tmp_path):
    config = web_config(emulator, token, tmp_path / "state")
    c = _client(config)
    csrf, base, digest = _preview(c)
    before = _outcomes(emulator)
    with RunLock(config.state_dir):  # what a nightly `gradesync sync` holds while it runs
        r = c.post(
            base + "/approve", data={"csrf": csrf, "digest": digest, "confirm": "yes"}, follow_redirects=False
        )
        events = _events(c, r.headers["location"])
    assert '"error_code": "locked"' in events[-1] and '"exit_code": 5' in events[-1]
    page = c.get(r.headers["location"]).text
    assert "another gradesync run holds the lock" in page
    assert _outcomes(emulator) == before


def test_a_web_apply_holding_the_lock_refuses_the_nightly_run(emulator, token, tmp_path, monkeypatch):
    from gradesync.web.jobs import Job

    inside, release = threading.Event(), threading.Event()
    config = web_config(emulator, token, tmp_path / "state")
    add = Job.add

    def held(job, event):
        add(job, event)
        if event.kind == "stage" and event.stage == "execute":  # sent inside the lock, before any write
            inside.set()
            assert release.wait(120)

    monkeypatch.setattr(Job, "add", held)
    c = _client(config)
    csrf, base, digest = _preview(c)
    r = c.post(
        base + "/approve", data={"csrf": csrf, "digest": digest, "confirm": "yes"}, follow_redirects=False
    )
    assert inside.wait(120)
    try:
        env = {**os.environ, "GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}
        nightly = subprocess.run(
            [sys.executable, "-m", "gradesync", "sync", str(SAMPLE), "--state-dir", str(config.state_dir)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        release.set()
    assert nightly.returncode == 5, nightly.stderr
    assert "another gradesync run holds the lock" in nightly.stderr
    assert '"kind": "end", "stage": "done"' in _events(c, r.headers["location"])[-1]


def test_an_unapproved_or_edited_plan_is_not_applied(emulator, token, tmp_path):
    config = web_config(emulator, token, tmp_path / "state")
    c = _client(config)
    csrf, base, digest = _preview(c)
    before = _outcomes(emulator)
    r = c.post(base + "/approve", data={"csrf": csrf, "digest": digest}, follow_redirects=False)
    assert r.status_code == 400 and "confirms you reviewed" in r.text  # no confirmation ticked
    r = c.post(
        base + "/approve", data={"csrf": csrf, "digest": "0" * 12, "confirm": "yes"}, follow_redirects=False
    )
    assert r.status_code == 409  # approved something else
    r = c.post(base + "/approve", data={"digest": digest, "confirm": "yes"}, follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    # the reviewed plan is edited on disk after the preview (a grade changed after review)
    plan_path = next((config.state_dir / "web" / "uploads").glob("*/plan.json"))
    plan = read_plan(plan_path)
    writes = plan.rows.index[plan.rows["action"] == "update"]
    plan.rows.loc[writes[0], "desired_points"] = 1.0
    write_plan(plan, plan_path, digest=plan.digest, key_id=plan.key_id)  # whoever edits it has no key
    r = c.post(
        base + "/approve", data={"csrf": csrf, "digest": digest, "confirm": "yes"}, follow_redirects=False
    )
    assert r.status_code == 303
    end = _events(c, r.headers["location"])[-1]
    assert '"error_code": "plan-digest-mismatch"' in end and '"exit_code": 4' in end
    assert _outcomes(emulator) == before


def test_pages_escape_values_under_a_nonce_csp(emulator, token, tmp_path):
    c = _client(web_config(emulator, token, tmp_path / "state"))
    r = c.get("/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp and "unsafe-inline" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert all(f'nonce="{nonce}"' in tag for tag in re.findall(r"<script[^>]*>", r.text))
    hostile = SAMPLE.read_text(encoding="utf-8").replace("Unit 1 Quiz", "<script>alert(1)</script>", 1)
    _csrf_token, base, _ = _preview(c, name="<img src=x onerror=alert(1)>.csv", data=hostile.encode())
    for page in (c.get(base + "/map").text, c.get(base + "/preview").text):
        assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<img src=x" not in page


def test_uploads_are_checked_by_content_and_stored_privately(emulator, token, tmp_path):
    config = web_config(emulator, token, tmp_path / "state")
    c = _client(config)
    csrf = _csrf(c.get("/").text)
    r = c.post("/upload", data={"csrf": csrf}, files=[("files", ("grades.xlsx", b"not a zip,really", "x"))])
    assert r.status_code == 415 and "not an Excel workbook" in r.text
    r = c.post("/upload", data={"csrf": csrf}, files=[("files", ("grades.csv", b"\x00\x01\x02" * 50, "x"))])
    assert r.status_code == 415
    _preview(c)
    folder = next((config.state_dir / "web" / "uploads").iterdir())
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in folder.iterdir())


def test_sniff_kinds():
    assert sniff("a.csv", b"a,b\n1,2\n") == "text"
    assert sniff("a.tsv", b"a\tb\n") == "text"
    assert sniff("a.xlsx", (REPO / "sample_data" / "gradebook.xlsx").read_bytes()) == "xlsx"
    for name, data in (
        ("a.csv", b"just words\n"),
        ("a.csv", b"<!DOCTYPE html><p>,"),
        ("a.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
    ):
        with pytest.raises(UploadRefused):
            sniff(name, data)


def test_serve_refuses_a_public_bind_without_signin(tmp_path):
    from gradesync.cli import cli

    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--state-dir", str(tmp_path)])  # noqa: S104
    assert result.exit_code == 2
    assert "without sign-in" in result.output


def test_uploads_over_the_limit_are_refused_and_old_ones_removed(emulator, token, tmp_path):
    config = web_config(emulator, token, tmp_path / "state")
    config.max_upload_bytes = 1024 * 1024
    c = _client(config)
    csrf = _csrf(c.get("/").text)
    big = b"a,b\n" + b"1,2\n" * 300_000  # 1.2 MB
    r = c.post("/upload", data={"csrf": csrf}, files=[("files", ("big.csv", big, "text/csv"))])
    assert r.status_code == 413
    _preview(c)
    root = config.state_dir / "web" / "uploads"
    (folder,) = list(root.iterdir())
    old = time.time() - config.retention_seconds - 60
    os.utime(folder, (old, old))
    _preview(c)  # the next upload prunes what is past the retention period
    assert not folder.exists() and len(list(root.iterdir())) == 1
