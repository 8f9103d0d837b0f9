"""The web app on a real port (uvicorn in a thread) against the emulator, and a headless chromium.

Chromium is Debian's (/usr/bin/chromium with /usr/bin/chromedriver); the browser tests skip loudly
without it, as tests/report does. Screenshots of each step go to the test's tmp dir (``shots``).
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from gradesync.cli.common import graph_client
from gradesync.config import load_settings
from gradesync.web.app import WebConfig, create_app

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium/chromedriver are not installed (apt-get install chromium chromium-driver)",
)
# the sample is a first load that changes most grades (as gradesync demo lifts them): [apply] settings
LIFTED = {"max_changes": "100%", "max_decreases": "100%"}


def web_config(emulator: Any, token: str, state_dir: Path, limits: dict[str, str] = LIFTED) -> WebConfig:
    settings = load_settings(None).override("apply", **limits)
    settings = settings.model_copy(
        update={"graph": settings.graph.model_copy(update={"base_url": emulator.base_url})}
    )
    return WebConfig(
        settings=settings,
        client_factory=lambda: graph_client(settings, token=token),
        state_dir=state_dir,
    )


class LiveServer:
    def __init__(self, config: WebConfig) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.app = create_app(config)
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        ready = threading.Event()
        for _ in range(2000):  # wait for uvicorn's own "started" flag, not a fixed sleep
            if self.server.started:
                ready.set()
                break
            ready.wait(0.01)
        assert ready.is_set(), "uvicorn did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def web(emulator: Any, token: str, tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(web_config(emulator, token, tmp_path / "state")) as live:
        yield live


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium/chromedriver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    path = tmp_path / "screenshots"
    path.mkdir()
    return path
