"""The wheel a user installs: ``python -m build`` makes an sdist and, from it, a wheel; the wheel goes
into a fresh virtual environment (nothing of the checkout on its path, run from an empty folder) and
``gradesync --version``, ``gradesync demo`` and ``gradesync serve --demo`` must work from there.

It needs PyPI (the build backend and gradesync's dependencies), as a user's ``pip install`` does;
pip's cache makes the second run quicker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import httpx
import pytest

import gradesync

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _clean_env(**extra: str) -> dict[str, str]:
    """The user's environment: no PYTHONPATH into the checkout, no gradesync settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADESYNC_", "PYTEST_", "SIMULATE_"))}
    env.pop("PYTHONPATH", None)
    return {**env, **extra}


def test_the_wheel_works_from_a_fresh_venv(tmp_path: Path) -> None:
    """One test, its steps in order (so pytest-xdist builds and installs the wheel once)."""
    exe, wheel, sdist = _build_and_install(tmp_path / "wheel")
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    _one_version_everywhere(exe, wheel, sdist, run_dir)
    _the_packages_carry_the_samples(wheel, sdist)
    _demo_runs_from_the_installed_wheel(exe, run_dir)
    _serve_demo_answers_a_page_from_the_installed_wheel(exe, run_dir)


def _build_and_install(work: Path) -> tuple[Path, Path, Path]:
    """(the venv's gradesync, the wheel, the sdist)."""
    work.mkdir()
    dist = work / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=280,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("gradesync-*.whl")
    (sdist,) = dist.glob("gradesync-*.tar.gz")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=280,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    return venv / "bin" / "gradesync", wheel, sdist


def _one_version_everywhere(exe: Path, wheel: Path, sdist: Path, tmp_path: Path) -> None:
    version = gradesync.__version__
    assert (
        wheel.name == f"gradesync-{version}-py3-none-any.whl" and sdist.name == f"gradesync-{version}.tar.gz"
    )
    out = subprocess.run(
        [str(exe), "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_clean_env(),
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == f"gradesync, version {version}"


def _the_packages_carry_the_samples(wheel: Path, sdist: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for sample in ("tenant.json", "sis_long.csv", "gradebook_wide.csv", "gradebook.xlsx"):
        assert f"gradesync/sample_data/{sample}" in names
    assert {"gradesync/report/templates/report.html", "gradesync/web/templates/base.html"} <= names
    assert any(n.startswith("graph_emulator/") for n in names)
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"sample_data/tenant.json", "pyproject.toml", "README.md", "Containerfile"} <= members


def _demo_runs_from_the_installed_wheel(exe: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(exe), "demo", "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_clean_env(),
        timeout=280,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "points outcomes changed or created" in out.stdout
    assert (tmp_path / "demo" / "reports" / "report.html").is_file()
    assert str(REPO) not in out.stdout  # the samples came from the package, not the checkout


def _serve_demo_answers_a_page_from_the_installed_wheel(exe: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a free port for the server (it binds it itself a moment later)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(exe), "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]  # the emulator's line, then the app's
        assert any(f"http://127.0.0.1:{port}/" in line for line in lines), lines
        page = _first_page(f"http://127.0.0.1:{port}/", proc)
        assert page.status_code == 200 and "gradesync" in page.text and "<form" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()


def _first_page(url: str, proc: subprocess.Popen[str]) -> httpx.Response:
    """The app prints its address just before uvicorn binds it: wait until the port accepts (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url, timeout=10)
        except httpx.ConnectError:
            assert proc.poll() is None, "gradesync serve exited"
            assert time.monotonic() < deadline, "gradesync serve never accepted a connection"
            time.sleep(0.1)
