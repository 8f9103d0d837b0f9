"""The registrar's flows in a real browser (headless chromium via chromedriver) against the emulator:

- a Canvas export taken to the result by choosing its class by name (the README's walk-through, whose
  screenshots this test takes);
- a OneRoster bundle (.zip), as a SIS drops it;
- every sample export of ``sample_data/exports/`` from upload to result, no identifier typed;
- an error page that names the uploaded file, never a server path or a traceback;
- a restart of the server between the Map page and the approval.

The expected figures come from the pipeline itself (a plan made directly, nothing written) or from the
sample tenant (which class holds a file's students), never from the page under test."""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from gradesync.config import Settings
from gradesync.pipeline import Pipeline
from gradesync.read import read_inputs
from gradesync.web import runner
from tests.web.conftest import LiveServer, needs_browser, web_config

REPO = Path(__file__).resolve().parents[2]
EXPORTS = REPO / "sample_data" / "exports"
CANVAS = EXPORTS / "canvas_gradebook.csv"
ONEROSTER = EXPORTS / "oneroster_gradebook.zip"
KEEP_SHOTS = REPO / "docs" / "screenshots"  # refreshed by GRADESYNC_SCREENSHOTS=1 (README pictures)
WRITES = ("update", "create", "excuse")


def _shot(driver: Any, shots: Path, name: str) -> None:
    driver.save_screenshot(str(shots / f"{name}.png"))


def _keep_shots(shots: Path) -> None:
    if os.environ.get("GRADESYNC_SCREENSHOTS") == "1" and KEEP_SHOTS.parent.is_dir():
        KEEP_SHOTS.mkdir(exist_ok=True)
        for png in shots.glob("*.png"):
            shutil.copyfile(png, KEEP_SHOTS / png.name)


def _planned_writes(web: LiveServer, paths: list[Path], class_key: str | None = None) -> int:
    """How many grades the pipeline would write for ``paths`` (read as the CLI reads them)."""
    config = web.app.state.web.config
    with config.client_factory() as client:
        result = Pipeline(config.settings, client).plan(paths, class_key=class_key)
    return int(result.plan.rows["action"].isin(WRITES).sum())


def _choose(driver: Any, select: Any, name: str) -> None:
    """Choose the option whose text is the class's name (what a registrar reads), never a key."""
    for option in Select(select).options:
        if option.text == name or option.text.startswith(name + " —"):
            Select(select).select_by_visible_text(option.text)
            return
    raise AssertionError(f"no class named {name!r} among {[o.text for o in Select(select).options]}")


def _upload(driver: Any, url: str, *paths: Path) -> None:
    driver.get(url + "/")
    assert driver.execute_script("return document.documentElement.dataset.js") == "ready"
    driver.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in paths))


def _approve_and_finish(driver: Any, wait: WebDriverWait, shots: Path | None = None) -> None:
    driver.find_element(By.ID, "confirm").click()
    if shots is not None:
        _shot(driver, shots, "4-approve")
    driver.find_element(By.ID, "approve-button").click()
    wait.until(ec.presence_of_element_located((By.ID, "result-link")))
    assert driver.find_element(By.ID, "progress").get_attribute("data-state") == "done"


def _no_server_detail(page: str, *secrets_: Path) -> None:
    for hidden in secrets_:
        assert str(hidden) not in page
    assert "Traceback" not in page and "pid=" not in page


@needs_browser
def test_a_canvas_export_taken_to_the_result_by_choosing_its_class_by_name(web, browser, shots, tmp_path):
    expected = _planned_writes(web, [CANVAS], class_key="SEC-1001")
    assert expected > 0
    wait = WebDriverWait(browser, 120)

    _upload(browser, web.url, CANVAS)
    _shot(browser, shots, "1-upload")
    browser.find_element(By.ID, "upload-button").click()

    chooser = wait.until(ec.presence_of_element_located((By.NAME, "class:0:0")))
    row = browser.find_element(By.ID, "class-0-0").text
    assert "Algebra I - P1" in row and "suggested — confirm" in row  # Canvas's Section value, by name
    chosen = Select(chooser).first_selected_option.text
    assert chosen.startswith("Algebra I - P1 —") and "SEC-1001" in chosen and "Tara Rossi" in chosen
    _no_server_detail(browser.page_source, tmp_path)
    _shot(browser, shots, "2-map")
    browser.find_element(By.ID, "preview-button").click()

    count = wait.until(ec.presence_of_element_located((By.ID, "changed-count")))
    assert int(count.text.replace(",", "")) == expected
    digest = browser.find_element(By.CSS_SELECTOR, "#verdict code.digest").text
    assert len(digest) == 12
    _shot(browser, shots, "3-preview")
    _approve_and_finish(browser, wait, shots)
    _shot(browser, shots, "5-applied")
    browser.refresh()  # progress lives in the server: a reload shows the same finished run
    wait.until(ec.presence_of_element_located((By.ID, "result-link"))).click()

    written = wait.until(ec.presence_of_element_located((By.ID, "status-updated")))
    done = int(written.text) + sum(
        int(browser.find_element(By.ID, f"status-{s}").text)
        for s in ("created", "excused")
        if browser.find_elements(By.ID, f"status-{s}")
    )
    assert done == expected
    assert digest in browser.page_source and "local user" in browser.page_source
    _shot(browser, shots, "6-result")
    href = browser.find_element(By.ID, "file-reconciliation-csv").get_attribute("href")
    response = httpx.get(href, timeout=30, cookies={c["name"]: c["value"] for c in browser.get_cookies()})
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert {r["source_file"] for r in rows} == {"canvas_gradebook.csv"}  # the uploaded name, not a path
    assert sum(r["status"] in ("updated", "created", "excused") for r in rows) == expected
    for name in ("run.json", "summary.json", "report.html"):
        body = httpx.get(href.replace("reconciliation.csv", name), timeout=30).text
        _no_server_detail(body, tmp_path)

    browser.get(web.url + "/runs")
    assert "web-apply" in browser.find_element(By.ID, "runs").text
    _shot(browser, shots, "7-history")
    _keep_shots(shots)


@needs_browser
def test_a_oneroster_bundle_from_upload_to_result(web, browser, tmp_path):
    expected = _planned_writes(web, [ONEROSTER])
    wait = WebDriverWait(browser, 120)
    _upload(browser, web.url, ONEROSTER)
    browser.find_element(By.ID, "upload-button").click()
    wait.until(ec.presence_of_element_located((By.NAME, "class:0:0")))
    text = browser.find_element(By.ID, "file-0").text
    assert "OneRoster" in text and "found in Teams" in text
    browser.find_element(By.ID, "preview-button").click()
    count = wait.until(ec.presence_of_element_located((By.ID, "changed-count")))
    assert int(count.text) == expected > 0
    _approve_and_finish(browser, wait)
    browser.find_element(By.ID, "result-link").click()
    wait.until(ec.presence_of_element_located((By.ID, "exit-code")))
    assert "oneroster_gradebook.zip" in browser.page_source or "grid" in browser.page_source
    _no_server_detail(browser.page_source, tmp_path)


def _class_holding(path: Path, tenant: dict[str, Any]) -> str:
    """The sample tenant's class whose roster holds most of the file's students (by SIS id, e-mail or
    UPN): the class a registrar knows the file is for. An outside answer, not the page's."""
    mapping = path.with_name(path.stem + ".mapping.toml")
    read = read_inputs([path], Settings(), class_key=None if mapping.is_file() else "any")
    students = {s.casefold() for s in read.frame["student_key"].astype(str) if s}
    users = {u["id"]: u for u in tenant["users"]}

    def ids(uid: str) -> set[str]:
        u = users[uid]
        found = {(u.get("student") or {}).get("externalId"), u.get("userPrincipalName"), u.get("mail")}
        return {str(x).casefold() for x in found if x}

    best = max(tenant["classes"], key=lambda c: sum(bool(ids(m) & students) for m in c["members"]))
    return str(best["displayName"])


def _samples() -> list[Path]:
    """Every export of sample_data/exports (a mapping beside one goes with it, as the CLI reads it)."""
    return sorted(p for p in EXPORTS.iterdir() if p.is_file() and not p.name.endswith(".mapping.toml"))


@needs_browser
@pytest.mark.slow
def test_every_sample_export_from_upload_to_result_without_typing_an_identifier(
    web, browser, sample_tenant, tmp_path
):
    wait = WebDriverWait(browser, 120)
    seen = []
    for path in _samples():
        mapping = path.with_name(path.stem + ".mapping.toml")
        _upload(browser, web.url, path, *([mapping] if mapping.is_file() else []))
        browser.find_element(By.ID, "upload-button").click()
        wait.until(ec.presence_of_element_located((By.ID, "preview-button")))
        for select in browser.find_elements(By.CSS_SELECTOR, "select.class-choice"):
            if not Select(select).first_selected_option.get_attribute("value"):  # nothing found or suggested
                _choose(browser, select, _class_holding(path, sample_tenant))
        _no_server_detail(browser.page_source, tmp_path)
        browser.find_element(By.ID, "preview-button").click()
        count = int(
            wait.until(ec.presence_of_element_located((By.ID, "changed-count"))).text.replace(",", "")
        )
        _no_server_detail(browser.page_source, tmp_path)
        seen.append((path.name, count))
        if count == 0:  # an earlier sample already wrote these grades
            continue
        _approve_and_finish(browser, wait)
        browser.find_element(By.ID, "result-link").click()
        code = wait.until(ec.presence_of_element_located((By.ID, "exit-code")))
        assert code.text in ("0", "1"), (path.name, browser.page_source[:2000])
    assert len(seen) == len(_samples()) and sum(n for _, n in seen) > 0, seen


@needs_browser
def test_an_error_page_names_the_uploaded_file_and_what_to_do(web, browser, tmp_path):
    wait = WebDriverWait(browser, 60)
    broken = tmp_path / "upload" / "term 1 grades.csv"
    broken.parent.mkdir()
    broken.write_text(
        'Section ID,Student ID,Unit 1 Quiz\nSEC-1003,000161,"9\nSEC-1003,000162,8\n', encoding="utf-8"
    )
    _upload(browser, web.url, broken)
    browser.find_element(By.ID, "upload-button").click()
    error = wait.until(ec.presence_of_element_located((By.ID, "error"))).text
    assert "term 1 grades.csv" in error and "row 2" in error  # the file as uploaded, and where
    _no_server_detail(browser.page_source, tmp_path, Path(web.app.state.web.config.state_dir))
    # a file whose rows name no class: the page asks for the class in its own terms
    _upload(browser, web.url, EXPORTS / "skyward_gradebook.csv")
    browser.find_element(By.ID, "upload-button").click()
    wait.until(ec.presence_of_element_located((By.ID, "preview-button"))).click()
    problem = wait.until(ec.presence_of_element_located((By.ID, "problem"))).text
    assert "class chooser" in problem and "--class" not in browser.page_source.split("<pre")[0]


@needs_browser
def test_a_restart_between_the_map_page_and_the_approval_loses_nothing(emulator, token, browser, tmp_path):
    state = tmp_path / "state"
    wait = WebDriverWait(browser, 120)
    skyward = EXPORTS / "skyward_gradebook.csv"
    with LiveServer(web_config(emulator, token, state)) as first:
        expected = _planned_writes(first, [skyward], class_key="SEC-1001")
        _upload(browser, first.url, skyward)
        browser.find_element(By.ID, "upload-button").click()
        select = wait.until(ec.presence_of_element_located((By.NAME, "class:0:0")))
        _choose(browser, select, "Algebra I - P1")
        browser.find_element(By.ID, "preview-button").click()
        wait.until(ec.presence_of_element_located((By.ID, "changed-count")))
        preview_path = browser.current_url.replace(first.url, "")
        digest = browser.find_element(By.CSS_SELECTOR, "#verdict code.digest").text
    with LiveServer(web_config(emulator, token, state)) as second:  # a new process would do the same
        browser.get(second.url + preview_path)
        count = wait.until(ec.presence_of_element_located((By.ID, "changed-count")))
        assert int(count.text) == expected and digest in browser.page_source  # the same plan, kept
        browser.get(second.url + preview_path.replace("/preview", "/map"))
        select = wait.until(ec.presence_of_element_located((By.NAME, "class:0:0")))
        assert Select(select).first_selected_option.text.startswith("Algebra I - P1 —")  # the choice, kept
        browser.get(second.url + preview_path)
        _approve_and_finish(browser, wait)


def _grades(emulator: Any) -> dict[str, Any]:
    """Submission → (its grade: None when it has none, no points outcome or one holding null; status)."""
    return {
        s["id"]: (
            next((o.get("points") for o in s.get("outcomes") or [] if o.get("type") == "points"), None),
            s["status"],
        )
        for c in emulator.state()["classes"]
        for a in c["assignments"]
        for s in a.get("submissions") or []
    }


@needs_browser
@pytest.mark.skipif(not runner.can_undo(), reason="Pipeline.undo is not in this gradesync yet")
def test_a_run_is_undone_from_its_page(web, browser, emulator, shots, tmp_path):
    """A registrar who approved the wrong file puts back what the run changed: the preview says what
    would go back and what cannot (Canvas's EX excused a submission: Graph cannot take an excuse back)."""
    before = _grades(emulator)
    wait = WebDriverWait(browser, 120)
    _upload(browser, web.url, CANVAS)
    browser.find_element(By.ID, "upload-button").click()
    wait.until(ec.presence_of_element_located((By.ID, "preview-button"))).click()
    wait.until(ec.presence_of_element_located((By.ID, "changed-count")))
    _approve_and_finish(browser, wait)
    browser.find_element(By.ID, "result-link").click()
    wait.until(ec.presence_of_element_located((By.ID, "undo-button"))).click()
    count = wait.until(ec.presence_of_element_located((By.ID, "changed-count")))
    assert int(count.text) > 0
    cannot = browser.find_element(By.ID, "rejects").text
    assert "cannot be undone" in cannot.lower() or "excuse" in cannot.lower()
    _no_server_detail(browser.page_source, tmp_path)
    if browser.find_elements(By.ID, "allow-clear-button"):  # the run created grades where there were none
        browser.find_element(By.ID, "allow-clear-button").click()
        wait.until(ec.presence_of_element_located((By.ID, "confirm-clear"))).click()
    _shot(browser, shots, "9-undo")
    _approve_and_finish(browser, wait)
    after = _grades(emulator)
    changed = [sid for sid, (points, _) in after.items() if points != before[sid][0]]
    excused = [
        sid for sid, (_, status) in after.items() if status == "excused" and before[sid][1] != "excused"
    ]
    assert set(changed) <= set(excused)  # every grade is back, but the excuse Graph cannot take back
    _keep_shots(shots)
