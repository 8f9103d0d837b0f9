"""The web app driven as a browser without JavaScript would drive it (starlette's TestClient): read the
page, fill its forms (CSRF token in the form's URL, as the page writes it), follow the redirects."""

from __future__ import annotations

import html as htmllib
import re
import warnings
from pathlib import Path
from typing import Any

from gradesync.web.app import WebConfig, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

__all__ = ["TestClient"]


def client(config: WebConfig) -> TestClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TestClient(create_app(config))


def csrf(page: str) -> str:
    """The session's CSRF token, as the page writes it into its forms' URLs."""
    return re.search(r"\?csrf=([^\"&]+)\"", page).group(1)  # type: ignore[union-attr]


def upload(c: TestClient, *files: tuple[str, bytes]) -> tuple[str, str]:
    """Upload ``(name, bytes)`` files; returns the CSRF token and the Map page's URL."""
    token = csrf(c.get("/").text)
    r = c.post(
        f"/upload?csrf={token}",
        files=[("files", (name, body, "application/octet-stream")) for name, body in files],
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return token, r.headers["location"]


def upload_paths(c: TestClient, *paths: Path) -> tuple[str, str]:
    return upload(c, *((p.name, p.read_bytes()) for p in paths))


def selects(page: str) -> dict[str, str]:
    """Every ``<select>`` of the Map form with its selected value ("" when none)."""
    out = {}
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        out[htmllib.unescape(name)] = htmllib.unescape(chosen.group(1)) if chosen else ""
    return out


def options(page: str, name: str) -> dict[str, str]:
    """A select's options: visible text → value."""
    body = re.search(rf'<select name="{re.escape(name)}"[^>]*>(.*?)</select>', page, re.S).group(1)  # type: ignore[union-attr]
    return {
        htmllib.unescape(re.sub(r"<[^>]+>", "", text)).strip(): htmllib.unescape(value)
        for value, text in re.findall(r'<option value="([^"]*)"[^>]*>(.*?)</option>', body, re.S)
    }


def class_named(page: str, field: str, name: str) -> str:
    """The option of a class chooser whose text begins with a class's display name (its value)."""
    found = [v for text, v in options(page, field).items() if text == name or text.startswith(name + " —")]
    assert found, f"no class named {name!r} in {field}: {list(options(page, field))}"
    return found[0]


def post_map(
    c: TestClient, map_url: str, token: str, page: str, action: str = "preview", **changes: str
) -> Any:
    """Submit the Map form as shown (every select as selected), with ``changes``."""
    data: dict[str, str] = {**selects(page), **changes, "action": action}
    for flag in ("strict", "allow_clear"):
        if re.search(rf'name="{flag}" value="yes"[^>]*checked', page) and flag not in changes:
            data[flag] = "yes"
    return c.post(f"{map_url}?csrf={token}", data=data, follow_redirects=False)


def changed(page: str) -> int:
    return int(re.search(r'id="changed-count">([^<]+)<', page).group(1).replace(",", ""))  # type: ignore[union-attr]


def digest(page: str) -> str:
    return re.search(r'name="digest" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def approve(c: TestClient, preview_url: str, token: str, page: str, **extra: str) -> Any:
    base = preview_url.split("?", maxsplit=1)[0].rsplit("/", 1)[0]
    data = {"digest": digest(page), "confirm": "yes", **extra}
    return c.post(f"{base}/approve?csrf={token}", data=data, follow_redirects=False)


def events(c: TestClient, job: str) -> list[str]:
    lines = []
    with c.stream("GET", job + "/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                lines.append(line)
                if '"kind": "end"' in line:
                    break
    return lines


def outcomes(emulator: Any) -> dict[str, object]:
    return {
        s["id"]: [o.get("points") for o in s.get("outcomes") or []]
        for cl in emulator.state()["classes"]
        for a in cl["assignments"]
        for s in a.get("submissions") or []
    }


def to_preview(c: TestClient, *paths: Path, classes: dict[str, str] | None = None) -> tuple[str, str, str]:
    """Upload ``paths``, choose each class chooser's class by name (``field → display name``; the
    preselection otherwise), and open the preview: returns (token, preview URL, page)."""
    token, map_url = upload_paths(c, *paths)
    page = c.get(map_url).text
    chosen = {field: class_named(page, field, name) for field, name in (classes or {}).items()}
    r = post_map(c, map_url, token, page, **chosen)
    assert r.status_code == 303 and r.headers["location"].endswith("/preview"), r.headers.get("location")
    preview_url = r.headers["location"]
    return token, preview_url, c.get(preview_url).text
