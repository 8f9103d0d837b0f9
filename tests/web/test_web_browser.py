"""The whole registrar's flow in a real browser (headless chromium via chromedriver) against the emulator:
upload the sample wide export, ignore one column on the Map page, see the expected number of changed
cells, approve, watch the progress finish, open the result and download reconciliation.csv."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from gradesync.report.grid import class_grids
from gradesync.web import runner
from tests.web.conftest import needs_browser

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "gradebook_wide.csv"
IGNORED = "Essay 1"
KEEP_SHOTS = REPO / "docs" / "screenshots"  # refreshed by GRADESYNC_SCREENSHOTS=1 (README pictures)


def _expected_changes(web) -> tuple[int, int]:
    """What the preview must show, from the pipeline itself (a plan made directly, nothing written)."""
    config = web.app.state.web.config
    with config.client_factory() as client:
        plain = runner.plan([SAMPLE], config.settings, client)
        inspection = runner.inspect([SAMPLE], config.settings, client)
        mapping = runner.mapping_from(inspection, {IGNORED: runner.IGNORE})
        assert mapping is not None and IGNORED in mapping.columns.ignore  # read's Mapping (contract 11)
        mapped = runner.plan([SAMPLE], config.settings, client, mapping=mapping)
    count = lambda r: sum(g.changed_cells for g in class_grids(r.plan.rows))  # noqa: E731
    return count(plain), count(mapped)


def _shot(driver, shots: Path, name: str) -> None:
    driver.save_screenshot(str(shots / f"{name}.png"))


@needs_browser
def test_registrar_flow_in_chromium(web, browser, shots, emulator):
    before_all, expected = _expected_changes(web)
    assert 0 < expected < before_all, "ignoring a column must change fewer cells"
    wait = WebDriverWait(browser, 120)

    browser.get(web.url + "/")
    assert browser.execute_script("return document.documentElement.dataset.js") == "ready"
    browser.find_element(By.ID, "files").send_keys(str(SAMPLE))
    _shot(browser, shots, "1-upload")
    browser.find_element(By.ID, "upload-button").click()

    select = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f'select[data-column="{IGNORED}"]')))
    assert Select(select).first_selected_option.get_attribute("value") == IGNORED
    Select(select).select_by_value(runner.IGNORE)
    _shot(browser, shots, "2-map")
    browser.find_element(By.ID, "preview-button").click()

    count = wait.until(ec.presence_of_element_located((By.ID, "changed-count")))
    assert int(count.text.replace(",", "")) == expected
    assert browser.find_element(By.ID, "rejects").is_displayed()  # rejected rows come first
    assert "Students in Teams with no row" in browser.page_source
    digest = browser.find_element(By.CSS_SELECTOR, "#verdict code.digest").text
    assert len(digest) == 12
    _shot(browser, shots, "3-preview")

    browser.find_element(By.ID, "confirm").click()
    _shot(browser, shots, "4-approve")
    browser.find_element(By.ID, "approve-button").click()
    link = wait.until(ec.presence_of_element_located((By.ID, "result-link")))
    assert browser.find_element(By.ID, "progress").get_attribute("data-state") == "done"
    _shot(browser, shots, "5-applied")
    browser.refresh()  # progress lives in the server: a reload shows the same finished run
    link = wait.until(ec.presence_of_element_located((By.ID, "result-link")))
    link.click()

    updated = wait.until(ec.presence_of_element_located((By.ID, "status-updated")))
    created = browser.find_element(By.ID, "status-created")
    assert int(updated.text) + int(created.text) == expected
    assert digest in browser.page_source and "local user" in browser.page_source
    _shot(browser, shots, "6-result")
    href = browser.find_element(By.ID, "file-reconciliation-csv").get_attribute("href")
    response = httpx.get(href, timeout=30)
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert sum(r["status"] in ("updated", "created") for r in rows) == expected

    browser.get(web.url + "/runs")
    assert "web-apply" in browser.find_element(By.ID, "runs").text
    _shot(browser, shots, "7-history")
    if KEEP_SHOTS.parent.is_dir() and __import__("os").environ.get("GRADESYNC_SCREENSHOTS") == "1":
        KEEP_SHOTS.mkdir(exist_ok=True)
        for png in shots.glob("*.png"):
            shutil.copyfile(png, KEEP_SHOTS / png.name)
