"""The Map page: read's inspection of each uploaded file, the Teams class chosen by name (never a key to
know), assignment columns sent elsewhere, and the choices reaching the plan as each file's mapping
(starlette's TestClient, the emulator over real HTTP)."""

from __future__ import annotations

import html
import re
import tomllib
from pathlib import Path

from gradesync.cli.common import graph_client
from gradesync.pipeline import Pipeline
from gradesync.state.mappings import list_mappings
from graph_emulator import generate_tenant
from tests.web.client import (
    changed,
    class_named,
    client,
    options,
    post_map,
    selects,
    to_preview,
    upload,
    upload_paths,
)
from tests.web.conftest import web_config

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "gradebook_wide.csv"
EXPORTS = REPO / "sample_data" / "exports"
CANVAS = EXPORTS / "canvas_gradebook.csv"


def test_a_canvas_export_is_read_with_the_class_chosen_by_its_section_name(emulator, token, tmp_path):
    """Canvas's Section column holds the section's name ("Algebra I - P1"), which is the Teams class's
    display name: the class is suggested and preselected, the registrar confirms, the plan writes."""
    config = web_config(emulator, token, tmp_path / "state")
    c = client(config)
    key, map_url = upload_paths(c, CANVAS)
    page = c.get(map_url).text
    row = re.search(r'<tr id="class-0-0">.*?</tr>', page, re.S).group(0)
    assert "Algebra I - P1" in row and "suggested — confirm" in row  # the Section value, by name
    chosen = selects(page)["class:0:0"]
    algebra = class_named(page, "class:0:0", "Algebra I - P1")
    assert chosen == algebra  # preselected: the one class whose name the value is
    assert "SEC-1001" in next(t for t in options(page, "class:0:0") if t.startswith("Algebra I - P1"))
    assert "Tara Rossi" in page  # the teacher beside the class, read from Graph
    outside_toml = re.sub(r"<pre.*?</pre>", "", page, flags=re.S)  # the mapping file's own comments aside
    assert "--class" not in outside_toml and str(tmp_path) not in page  # no CLI flag, no server path
    r = post_map(c, map_url, key, page)
    assert r.headers["location"].endswith("/preview")
    preview = c.get(r.headers["location"]).text
    # what the CLI plans for the same file with the class given as a key
    with graph_client(config.settings, token=token) as graph:
        direct = Pipeline(config.settings, graph).plan([CANVAS], class_key="SEC-1001")
    writes = int(direct.plan.rows["action"].isin(["update", "create", "excuse"]).sum())
    assert changed(preview) == writes > 0
    shown = re.search(r'<pre class="toml">(.*?)</pre>', c.get(map_url).text, re.S).group(1)
    mapping = tomllib.loads(html.unescape(shown))
    assert mapping["class"] == {"column": "Section", "values": {"Algebra I - P1": "SEC-1001"}}


def test_a_file_without_a_class_must_have_one_chosen(emulator, token, tmp_path):
    c = client(web_config(emulator, token, tmp_path / "state"))
    key, map_url = upload_paths(c, EXPORTS / "skyward_gradebook.csv")
    page = c.get(map_url).text
    assert "every row of this file" in page and "choose one" in page
    assert selects(page)["class:0:0"] == ""  # nothing is guessed
    r = post_map(c, map_url, key, page)
    assert r.headers["location"].endswith("?problem=class")
    again = c.get(r.headers["location"]).text
    assert "Choose the Teams class of every file" in again and "class chooser" in again
    biology = class_named(page, "class:0:0", "Biology - P2")
    r = post_map(c, map_url, key, page, **{"class:0:0": biology})
    assert r.headers["location"].endswith("/preview")
    assert "Biology - P2" in c.get(r.headers["location"]).text  # the grid is that class's


def test_a_tenant_of_many_classes_is_searched_by_teacher_name_or_term(emulator_factory, token, tmp_path):
    tenant = generate_tenant(classes=260, students=3, assignments=2, seed=11, lazy=False)
    for i, klass in enumerate(tenant["classes"]):
        klass["term"] = {"displayName": "Fall 2024" if i % 2 else "Spring 2025", "externalId": f"T{i % 2}"}
    server = emulator_factory(tenant=tenant)
    target = tenant["classes"][201]
    teacher = next(u for u in tenant["users"] if u["id"] == target["teachers"][0])
    c = client(web_config(server, token, tmp_path / "state"))
    key, map_url = upload(c, ("grades.csv", b"Student ID,Quiz\n" + target["externalId"].encode() + b"x,5\n"))
    page = c.get(map_url).text
    assert "Teams has 260 classes" in page
    assert "Every class" not in page  # 260 classes are searched, not listed on every chooser
    r = post_map(c, map_url, key, page, action="search:0:0", **{"q:0:0": teacher["displayName"]})
    page = c.get(r.headers["location"].split("#")[0]).text
    found = options(page, "class:0:0")
    assert any(
        text.startswith(target["displayName"] + " —") and teacher["displayName"] in text for text in found
    )
    assert all(teacher["displayName"] in t for t in found if t != "— choose the class —")
    r = post_map(c, map_url, key, page, action="search:0:0", **{"q:0:0": f"{target['displayName']} fall"})
    assert "found" in c.get(map_url).text


def test_a_misnamed_column_is_sent_to_the_teams_assignment(emulator, token, tmp_path):
    c = client(web_config(emulator, token, tmp_path / "state"))
    _, _, plain = to_preview(c, SAMPLE)
    renamed = SAMPLE.read_text(encoding="utf-8").replace("Essay 1", "Essay One", 1).encode()
    key, map_url = upload(c, ("renamed.csv", renamed))
    page = c.get(map_url).text
    row = re.search(r"<tr><td>Essay One</td>.*?</tr>", page, re.S).group(0)
    assert "(not in Teams)" in row and "not found" in row
    field = re.search(r'<select name="(col:0:\d+)" data-column="Essay One"', page).group(1)
    assert options(page, field) == {
        "Essay One (not in Teams)": "Essay One",
        "Essay 1 (did you mean)": "Essay 1",
        "— ignore this column —": "",
    }
    r = post_map(c, map_url, key, page)
    as_read = c.get(r.headers["location"]).text
    assert changed(as_read) < changed(plain)  # as read, the column's cells name no Teams assignment
    r = post_map(c, map_url, key, c.get(map_url).text, **{field: "Essay 1"})
    assert changed(c.get(r.headers["location"]).text) == changed(plain)


def test_one_list_of_assignments_serves_every_column(emulator, token, tmp_path):
    """The page holds the Teams assignments once ("send a column to another assignment"), and each
    column's own list only its few candidates: its size grows with columns plus assignments."""
    c = client(web_config(emulator, token, tmp_path / "state"))
    key, map_url = upload_paths(c, SAMPLE)
    page = c.get(map_url).text
    assert len(re.findall(r"<option value=\"Unit 1 Test\"", page)) <= 3  # its column, and the one list
    target = options(page, "retarget_to")
    assert {"Essay 1", "Unit 1 Quiz", "Unit 1 Test"} <= set(target)
    column = next(v for t, v in options(page, "retarget").items() if t.endswith(": Unit 1 Quiz"))
    r = post_map(c, map_url, key, page, action="retarget", retarget=column, retarget_to="Unit 1 Test")
    page = c.get(r.headers["location"]).text
    field = re.search(r'<select name="(col:0:\d+)" data-column="Unit 1 Quiz"', page).group(1)
    assert selects(page)[field] == "Unit 1 Test"


def test_a_workbook_sheet_is_chosen_on_the_page(emulator, token, tmp_path):
    from openpyxl import Workbook, load_workbook

    book = load_workbook(REPO / "sample_data" / "gradebook.xlsx")
    grades = book["Grades"]
    two = Workbook()
    notes = two.active
    notes.title = "Notes"
    notes.append(["Read me", "this sheet has no grades"])
    copy = two.create_sheet("Grades")
    for row in grades.iter_rows(values_only=True):
        copy.append(list(row))
    path = tmp_path / "two-sheets.xlsx"
    two.save(path)
    c = client(web_config(emulator, token, tmp_path / "state"))
    key, map_url = upload_paths(c, path)
    page = c.get(map_url).text
    assert options(page, "sheet") == {"Notes": "Notes", "Grades": "Grades"}
    r = post_map(c, map_url, key, page, action="sheet", sheet="Grades")
    page = c.get(r.headers["location"]).text
    assert "sheet Grades" in page and selects(page)["sheet"] == "Grades"
    _, _, direct = to_preview(
        client(web_config(emulator, token, tmp_path / "other")), REPO / "sample_data" / "gradebook.xlsx"
    )
    r = post_map(c, map_url, key, page)
    assert changed(c.get(r.headers["location"]).text) == changed(direct)


def test_the_mapping_is_saved_for_the_nightly_run(emulator, token, tmp_path):
    from click.testing import CliRunner

    from gradesync.cli import cli

    config = web_config(emulator, token, tmp_path / "state")
    c = client(config)
    key, preview_url, _ = to_preview(c, CANVAS)
    base = preview_url.rsplit("/", 1)[0]
    r = c.post(
        f"{base}/mapping?csrf={key}", data={"file": "0", "name": "canvas-algebra"}, follow_redirects=False
    )
    assert r.status_code == 303
    assert "Saved as mapping <b>canvas-algebra</b>" in c.get(r.headers["location"]).text
    listed = c.get("/mappings").text
    assert "canvas-algebra" in listed and "canvas_gradebook.csv" in listed and "local user" in listed
    (saved,) = list_mappings(config.state_dir)
    assert 'column = "Section"' in saved.toml and '"Algebra I - P1" = "SEC-1001"' in saved.toml
    r = c.post(f"{base}/mapping?csrf={key}", data={"file": "0", "name": "../escape"}, follow_redirects=False)
    assert r.status_code == 400
    # the nightly run reads the same export with it, by name, from the same state directory
    env = {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}
    result = CliRunner(env=env).invoke(
        cli,
        ["sync", str(CANVAS), "--mapping", "canvas-algebra", "--state-dir", str(config.state_dir),
         "--max-changes", "100%", "--max-decreases", "100%", "--dry-run"],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    assert "input-no-class" not in result.output and "unknown_class" not in result.output
