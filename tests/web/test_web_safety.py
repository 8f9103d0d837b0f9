"""The web app's guarantees without a browser (starlette's TestClient, the emulator over real HTTP):
a web run and a nightly run never overlap (the state directory's lock), an unapproved or edited plan
is never applied, every form needs its CSRF token, uploads are checked by content, values are escaped
under a nonce CSP, and a non-loopback bind needs sign-in."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradesync.plan.planfile import read_plan, write_plan
from gradesync.state.lock import RunLock
from gradesync.web.uploads import UploadRefused, classify
from tests.web.client import approve, client, csrf, events, outcomes, post_map, upload
from tests.web.conftest import web_config

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "gradebook_wide.csv"


def _preview(c, name: str = "gradebook_wide.csv", data: bytes | None = None) -> tuple[str, str, str]:
    """Upload one file, confirm the Map page as shown, open the preview: (token, preview URL, page)."""
    path_data = SAMPLE.read_bytes() if data is None else data
    token, map_url = upload(c, (name, path_data))
    r = post_map(c, map_url, token, c.get(map_url).text)
    assert r.status_code == 303, r.text
    return token, r.headers["location"], c.get(r.headers["location"]).text


def test_a_nightly_run_holding_the_lock_refuses_the_web_apply(emulator, token, tmp_path):
    config = web_config(emulator, token, tmp_path / "state")
    c = client(config)
    key, preview_url, page = _preview(c)
    before = outcomes(emulator)
    with RunLock(config.state_dir):  # what a nightly `gradesync sync` holds while it runs
        r = approve(c, preview_url, key, page)
        lines = events(c, r.headers["location"])
    assert '"error_code": "locked"' in lines[-1] and '"exit_code": 5' in lines[-1]
    page = c.get(r.headers["location"]).text
    assert "another gradesync run holds the lock" in page and "wait for the other run to finish" in page
    assert str(config.state_dir) not in page and "pid=" not in page  # no server path, no pid or host
    assert outcomes(emulator) == before


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
    c = client(config)
    key, preview_url, page = _preview(c)
    r = approve(c, preview_url, key, page)
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
    assert '"kind": "end", "stage": "done"' in events(c, r.headers["location"])[-1]


def test_an_unapproved_or_edited_plan_is_not_applied(emulator, token, tmp_path):
    config = web_config(emulator, token, tmp_path / "state")
    c = client(config)
    key, preview_url, page = _preview(c)
    base = preview_url.rsplit("/", 1)[0]
    before = outcomes(emulator)
    r = c.post(f"{base}/approve?csrf={key}", data={"digest": "x" * 12}, follow_redirects=False)
    assert r.status_code == 400 and "confirms you reviewed" in r.text  # no confirmation ticked
    r = approve(c, preview_url, key, page, digest="0" * 12)
    assert r.status_code == 409  # approved something else
    r = c.post(
        f"{base}/approve", data={"digest": "0" * 12, "confirm": "yes", "csrf": key}, follow_redirects=False
    )
    assert r.status_code == 403  # the token only in the body is not enough: it is checked before the body
    # the reviewed plan is edited on disk after the preview (a grade changed after review)
    plan_path = next((config.state_dir / "web" / "uploads").glob("*/plan.json"))
    plan = read_plan(plan_path)
    writes = plan.rows.index[plan.rows["action"] == "update"]
    plan.rows.loc[writes[0], "desired_points"] = 1.0
    write_plan(plan, plan_path, digest=plan.digest, key_id=plan.key_id)  # whoever edits it has no key
    r = approve(c, preview_url, key, page)
    assert r.status_code == 303
    end = events(c, r.headers["location"])[-1]
    assert '"error_code": "plan-digest-mismatch"' in end and '"exit_code": 4' in end
    assert outcomes(emulator) == before


def test_pages_escape_values_under_a_nonce_csp(emulator, token, tmp_path):
    c = client(web_config(emulator, token, tmp_path / "state"))
    r = c.get("/")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'nonce-" in csp and "unsafe-inline" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert all(f'nonce="{nonce}"' in tag for tag in re.findall(r"<script[^>]*>", r.text))
    hostile = SAMPLE.read_text(encoding="utf-8").replace("Unit 1 Quiz", "<script>alert(1)</script>", 1)
    _key, preview_url, _ = _preview(c, name="<img src=x onerror=alert(1)>.csv", data=hostile.encode())
    base = preview_url.rsplit("/", 1)[0]
    for page in (c.get(base + "/map").text, c.get(base + "/preview").text):
        assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<img src=x" not in page


def test_uploads_are_checked_by_content_and_stored_privately(emulator, token, tmp_path):
    config = web_config(emulator, token, tmp_path / "state")
    c = client(config)
    key = csrf(c.get("/").text)
    r = c.post(f"/upload?csrf={key}", files=[("files", ("grades.xlsx", b"not a zip,really", "x"))])
    assert r.status_code == 415 and "not an Excel workbook" in r.text
    r = c.post(f"/upload?csrf={key}", files=[("files", ("grades.csv", b"\x00\x01\x02" * 50, "x"))])
    assert r.status_code == 415
    _preview(c)
    folder = next((config.state_dir / "web" / "uploads").iterdir())
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in folder.iterdir())


def test_files_are_told_apart_by_content(tmp_path):
    def kind(name: str, data: bytes) -> str:
        path = tmp_path / "f"
        path.write_bytes(data)
        return classify(path, name)[0]

    assert kind("a.csv", b"a,b\n1,2\n") == "text"
    assert kind("a.tsv", b"a\tb\n") == "text"
    assert kind("grades.dat", (REPO / "sample_data" / "gradebook.xlsx").read_bytes()) == "xlsx"
    assert (
        kind("export.bin", (REPO / "sample_data" / "exports" / "oneroster_gradebook.zip").read_bytes())
        == "bundle"
    )
    assert classify(REPO / "sample_data" / "gradebook.xlsx", "g.xlsx")[1] == ["Grades"]
    for name, data in (
        ("a.csv", b"just words\n"),
        ("a.csv", b"<!DOCTYPE html><p>,"),
        ("a.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
        ("a.zip", b"PK\x03\x04 not really"),
        ("a.csv", b""),
    ):
        with pytest.raises(UploadRefused):
            kind(name, data)


def test_serve_refuses_a_public_bind_without_signin(tmp_path):
    from gradesync.cli import cli

    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--state-dir", str(tmp_path)])  # noqa: S104
    assert result.exit_code == 2
    assert "without sign-in" in result.output


def test_uploads_over_the_limit_are_refused_and_old_ones_removed(emulator, token, tmp_path):
    config = web_config(emulator, token, tmp_path / "state")
    config.max_upload_bytes = 1024 * 1024
    c = client(config)
    key = csrf(c.get("/").text)
    big = b"a,b\n" + b"1,2\n" * 300_000  # 1.2 MB
    r = c.post(f"/upload?csrf={key}", files=[("files", ("big.csv", big, "text/csv"))])
    assert r.status_code == 413 and "big.csv" in r.text
    root = config.state_dir / "web" / "uploads"
    assert list(root.iterdir()) == []  # nothing of the refused upload is kept
    _preview(c)
    (folder,) = list(root.iterdir())
    web = c.app.state.web
    upload_id = folder.name
    owner, created, record = web.store.upload(upload_id)
    web.store.save_upload(upload_id, owner, created - config.retention_seconds - 60, record)
    _preview(c)  # the next upload prunes what is past the retention period
    assert not folder.exists() and len(list(root.iterdir())) == 1
    assert web.store.upload(upload_id) is None


def test_a_nightly_runs_files_are_served_without_server_details(emulator, token, tmp_path):
    """run.json on the operator's machine records paths, the pid and the host; the web app serves
    every run's files (nightly ones too) naming files by their names and the run by its id."""
    from gradesync.cli import cli

    config = web_config(emulator, token, tmp_path / "state")
    export = tmp_path / "srv" / "sis" / "export"
    export.mkdir(parents=True)
    (export / "grades.csv").write_bytes(SAMPLE.read_bytes())
    env = {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}
    result = CliRunner(env=env).invoke(
        cli,
        ["sync", str(export / "grades.csv"), "--state-dir", str(config.state_dir), "--quiet",
         "--max-changes", "100%", "--max-decreases", "100%"],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    (run,) = [p for p in config.runs_dir.iterdir() if p.is_dir()]
    assert str(tmp_path) in (run / "run.json").read_text() and '"pid"' in (run / "run.json").read_text()
    assert str(export) in (run / "reconciliation.csv").read_text(encoding="utf-8-sig")  # as cron gave it
    c = client(config)
    page = c.get(f"/runs/{run.name}").text
    assert (
        str(tmp_path) not in page and "grades.csv" in c.get(f"/runs/{run.name}/files/reconciliation.csv").text
    )
    for name in ("run.json", "summary.json", "reconciliation.csv", "report.html"):
        body = c.get(f"/runs/{run.name}/files/{name}").text
        assert str(tmp_path) not in body, name
        assert socket.gethostname() not in body and '"pid"' not in body, name
    record = c.get(f"/runs/{run.name}/files/run.json").json()
    assert record["run_id"] == run.name and record["command"] == "sync" and "argv" not in record
    assert "summary.json" in record["reports"]
