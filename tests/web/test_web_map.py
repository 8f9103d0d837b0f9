"""The Map page shows read's Inspection (the detected preset, "did you mean" against Teams) and the
registrar's choices reach the plan as read's Mapping (starlette's TestClient, the emulator over HTTP)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from gradesync.web.app import create_app
from tests.web.conftest import web_config
from tests.web.test_web_safety import _csrf

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "gradebook_wide.csv"
CANVAS = REPO / "sample_data" / "exports" / "canvas_gradebook.csv"


def _upload(c: TestClient, name: str, body: bytes, class_key: str = "") -> tuple[str, str]:
    csrf = _csrf(c.get("/").text)
    r = c.post(
        "/upload",
        data={"csrf": csrf, "class_key": class_key},
        files=[("files", (name, body, "text/csv"))],
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf, r.headers["location"]


def _changed(page: str) -> int:
    return int(re.search(r'id="changed-count">([^<]+)<', page).group(1).replace(",", ""))


def test_a_misnamed_column_is_retargeted_to_the_teams_assignment(emulator, token, tmp_path):
    c = TestClient(create_app(web_config(emulator, token, tmp_path / "state")))
    _, plain_map = _upload(c, "plain.csv", SAMPLE.read_bytes())
    plain = _changed(c.get(plain_map.replace("/map", "/preview")).text)

    renamed = SAMPLE.read_text(encoding="utf-8").replace("Essay 1", "Essay One", 1).encode()
    csrf, map_url = _upload(c, "renamed.csv", renamed)
    page = c.get(map_url).text
    row = re.search(r"<tr><td class=\"num\">\d+</td><td>Essay One</td>.*?</tr>", page, re.S).group(0)
    assert "(not in Teams)" in row and '<span class="dym">Essay 1</span>' in row  # did you mean, from Teams
    # as read, the column names no Teams assignment: its cells are rejected, fewer changes
    before = c.get(map_url.replace("/map", "/preview")).text
    assert _changed(before) < plain
    r = c.post(map_url, data={"csrf": csrf, "map:Essay One": "Essay 1"}, follow_redirects=False)
    assert r.status_code == 303
    after = c.get(r.headers["location"]).text
    assert _changed(after) == plain  # retargeted through a Mapping: the same changes as the right name


def test_the_map_page_names_the_detected_preset(emulator, token, tmp_path):
    c = TestClient(create_app(web_config(emulator, token, tmp_path / "state")))
    _, map_url = _upload(c, "canvas.csv", CANVAS.read_bytes(), class_key="SEC-1001")
    page = c.get(map_url).text
    assert "(preset <code>canvas</code>)" in page
    assert "rows ignored</summary>" in page  # read's ignored rows (Points Possible, Test Student)
    assert "columns that are not grades were ignored" in page  # the reader's warning
    assert str(tmp_path) not in page  # no server path in warnings or diagnoses
