"""The web app with a large upload: time from upload to a usable preview, and the preview page's size.

The emulator runs in its own process (``gradesync emulator --generate …``, throttling off); the web app
runs in this one on a real port, driven over HTTP as a browser would (upload → map → preview). The
preview is paginated (one class, 50 students per page), so its size does not grow with the upload.
Aim: a 50,000-row upload previews within ``AIM_SECONDS`` and the page stays under ``AIM_PAGE_KB``.
"""

from __future__ import annotations

import csv
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

AIM_SECONDS = 60.0
AIM_PAGE_KB = 500.0
TOKEN = "bench-token"  # noqa: S105 — the emulator's throwaway token


def _shape(scale: float) -> tuple[int, int, int]:
    classes = max(1, round(50 * scale))
    return classes, 50, 20  # 50 classes × 50 students × 20 assignments ≈ 50,000 grade cells at scale 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _export(tenant: dict[str, Any], path: Path) -> int:
    users = {u["id"]: u for u in tenant["users"]}
    n = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["section_id", "assignment", "student_id", "points"])
        for c in tenant["classes"]:
            for a in c["assignments"]:
                top = (a.get("grading") or {}).get("maxPoints")
                if not top or a.get("status") == "draft":
                    continue
                for i, uid in enumerate(c["members"]):
                    sis = ((users[uid].get("student") or {}).get("externalId")) or ""
                    if not sis:
                        continue
                    out.writerow([c["externalId"], a["displayName"], sis, (i * 7) % (int(top) + 1)])
                    n += 1
    return n


def measure(scale: float = 1.0) -> dict[str, Any]:
    from gradesync.web.app import WebConfig
    from graph_emulator import generate_tenant
    from tests.web.conftest import LIFTED, LiveServer

    classes, students, assignments = _shape(scale)
    spec = f"classes={classes},students={students},assignments={assignments},seed=5"
    port = _free_port()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "gradesync", "emulator", "--generate", spec, "--port", str(port),
         "--throttle", "off", "--token", TOKEN, "--page-size", "999"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert emulator.stdout is not None
        emulator.stdout.readline()  # it prints its address once it serves
        base = f"http://127.0.0.1:{port}/v1.0"
        tenant = generate_tenant(
            classes=classes, students=students, assignments=assignments, seed=5, lazy=False
        )
        with tempfile.TemporaryDirectory() as tmp:
            export = Path(tmp) / "grades.csv"
            rows = _export(tenant, export)
            from gradesync.cli.common import graph_client
            from gradesync.config import load_settings

            settings = load_settings(None).override("apply", **LIFTED)
            settings = settings.model_copy(
                update={"graph": settings.graph.model_copy(update={"base_url": base})}
            )
            config = WebConfig(
                settings=settings,
                client_factory=lambda: graph_client(settings, token=TOKEN),
                state_dir=Path(tmp) / "state",
            )
            with (
                LiveServer(config) as live,
                httpx.Client(base_url=live.url, timeout=600, follow_redirects=True) as http,
            ):
                page = http.get("/").text
                csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
                started = time.perf_counter()
                r = http.post(
                    "/upload", data={"csrf": csrf}, files=[("files", ("grades.csv", export.read_bytes()))]
                )
                mapped = time.perf_counter()
                preview = http.get(str(r.url).replace("/map", "/preview"))
                done = time.perf_counter()
                render = _browser_render(live.url, str(preview.url), http.cookies.get("gradesync_session"))
        assert r.status_code == 200 and "How the file is understood" in r.text, r.text[:500]
        assert preview.status_code == 200, preview.text[:500]
        changed = re.search(r'id="changed-count">([^<]+)<', preview.text)
        return {
            "rows": rows,
            "upload_to_map_s": mapped - started,
            "upload_to_preview_s": done - started,
            "page_kb": len(preview.content) / 1024,
            "changed": changed.group(1) if changed else "?",
            "browser_ms": render,
        }
    finally:
        emulator.terminate()
        emulator.wait(30)
        if emulator.stdout is not None:
            emulator.stdout.close()


def _browser_render(origin: str, url: str, cookie: str | None) -> float | None:
    """Milliseconds headless chromium takes from navigation start to the load event of the preview
    (the plan is cached by then: this is the page itself); None without chromium/chromedriver."""
    import shutil

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path and cookie):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     f"--user-data-dir={profile}"):  # fmt: skip
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            driver.get(origin + "/static/app.css")  # same origin, so the session cookie can be set
            driver.add_cookie({"name": "gradesync_session", "value": cookie, "path": "/"})
            driver.get(url)
            timing = driver.execute_script(
                "const t = performance.getEntriesByType('navigation')[0];return t.loadEventEnd - t.startTime;"
            )
            return float(timing)
        finally:
            driver.quit()


def table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title=f"web preview of a {result['rows']:,}-row upload ({result['changed']} changed cells)")
    for col in ("measure", "value", "aim", "ratio"):
        t.add_column(col, justify="left" if col == "measure" else "right")
    t.add_row("upload → map page", f"{result['upload_to_map_s']:.2f} s", "", "")
    secs = result["upload_to_preview_s"]
    t.add_row("upload → usable preview", f"{secs:.2f} s", f"{AIM_SECONDS:g} s", f"{secs / AIM_SECONDS:.2f}")
    if result.get("browser_ms") is not None:
        t.add_row("chromium: preview navigation → load", f"{result['browser_ms']:.0f} ms", "", "")
    kb = result["page_kb"]
    t.add_row("preview page size", f"{kb:.0f} KB", f"{AIM_PAGE_KB:g} KB", f"{kb / AIM_PAGE_KB:.2f}")
    return t


def main(scale: float = 1.0) -> dict[str, Any]:
    from rich.console import Console

    result = measure(scale)
    Console().print(table(result))
    return result


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
