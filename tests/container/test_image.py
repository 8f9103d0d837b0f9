"""The container image (Containerfile) as ``make image`` builds it here, run with podman: ``gradesync
demo`` inside it as its non-root user, on a volume, with JSON logs on stdout; the health check's
logic; the Kubernetes examples against the Kubernetes API's schema, naming this image.

The image tests run under ``make image`` (after the build); under ``make test`` they are skipped,
saying so, and so they are wherever podman cannot run a container (the reason is printed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import gradesync

REPO = Path(__file__).resolve().parents[2]
IMAGE = f"localhost/gradesync:{gradesync.__version__}"
STORE = ["--root", str(REPO / ".image" / "storage"), "--runroot", str(REPO / ".image" / "run"),
         "--storage-driver", "vfs"]  # fmt: skip


# How this machine runs a container: runc (crun refuses a host with hybrid cgroups) and resource
# limits no higher than the host's own (podman's defaults ask for more than a sandbox may grant).
RUN = [*(["--runtime", "runc"] if shutil.which("runc") else []),
       "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]  # fmt: skip


def _podman(*args: str, timeout: float = 280) -> subprocess.CompletedProcess[str]:
    if args[0] == "run":
        args = ("run", *RUN, *args[1:])
    argv = ["podman", *STORE, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def image() -> str:
    if not os.environ.get("GRADESYNC_TEST_IMAGE"):
        pytest.skip("the image is built and run by `make image` (mmdebstrap + buildah; CI's .ci/run runs it)")
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: this machine cannot run the image")
    found = _podman("image", "exists", IMAGE)
    if found.returncode != 0:
        pytest.skip(f"{IMAGE} is not in .image/storage: `make image` did not build it")
    probe = _podman(
        "run", "--rm", "--network", "none", "--no-healthcheck", "--entrypoint", "/bin/true", IMAGE
    )
    if probe.returncode != 0:
        pytest.skip(f"this machine cannot run containers: {probe.stderr.strip()[-500:]}")
    return IMAGE


def test_the_image_is_configured_as_documented(image: str) -> None:
    out = _podman("image", "inspect", image)
    (info,) = json.loads(out.stdout)
    config = info["Config"]
    assert config["Entrypoint"] == ["gradesync"] and config["User"] == "10001:10001"
    assert "/data" in config["Volumes"] and config["WorkingDir"] == "/data"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["GRADESYNC_RUN_LOG_FORMAT"] == "json" and env["GRADESYNC_RUN_LOG_FILE"] == "/dev/stdout"
    assert env["GRADESYNC_APPLY_STATE_DIR"] == "/data/state"
    assert info["Healthcheck"]["Test"][0] == "CMD"  # podman puts it beside Config
    version = _podman("run", "--rm", image, "--version")
    assert version.stdout.strip() == f"gradesync, version {gradesync.__version__}"


def test_demo_runs_in_the_image_as_its_user_on_a_volume(image: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 10001, 10001)  # the image's user owns its volume, as fsGroup does in Kubernetes
    run = _podman("run", "--rm", "--network", "none", "-v", f"{data}:/data", image, "demo")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "points outcomes changed or created" in run.stdout
    assert (data / "demo-output" / "reports" / "report.html").is_file()
    owners = {p.stat().st_uid for p in (data / "demo-output").rglob("*")}
    assert owners == {10001}  # written as the non-root user


def test_sync_in_the_image_logs_json_lines_on_stdout(image: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 10001, 10001)
    # The sample tenant's emulator runs in the container too (no network needed), then a sync
    # against it with the image's own log settings.
    script = (
        "import subprocess, sys\n"
        "from graph_emulator import EmulatorServer, ThrottleConfig, load_tenant\n"
        "from gradesync.samples import sample_dir\n"
        "tenant = load_tenant(sample_dir() / 'tenant.json')\n"
        "with EmulatorServer(tenant, token='t', throttle=ThrottleConfig.off()) as s:\n"
        "    sys.exit(subprocess.run(['gradesync', 'sync', str(sample_dir() / 'sis_long.csv'), '--quiet',\n"
        "        '--max-changes', '100%', '--max-decreases', '100%'],\n"
        "        env={'PATH': '/opt/gradesync/bin:/usr/bin:/bin', 'HOME': '/data',\n"
        "             'GRADESYNC_RUN_LOG_FORMAT': 'json', 'GRADESYNC_RUN_LOG_FILE': '/dev/stdout',\n"
        "             'GRADESYNC_APPLY_STATE_DIR': '/data/state',\n"
        "             'GRADESYNC_GRAPH_URL': s.base_url, 'GRADESYNC_ACCESS_TOKEN': 't'}).returncode)\n"
    )
    run = _podman("run", "--rm", "--network", "none", "-v", f"{data}:/data", "--entrypoint",
                  "/opt/gradesync/bin/python", image, "-c", script)  # fmt: skip
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]  # the sample's rejected rows
    records = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(records) > 10 and all(r["run_id"] and r["level"] for r in records)
    assert any("finished: exit code 1" in r["message"] for r in records)
    assert (data / "state" / "journal.sqlite").is_file() and any((data / "runs").iterdir())


def test_serve_in_the_image_becomes_healthy(image: str) -> None:
    started = _podman("run", "-d", "--network", "none", image, "serve", "--demo")
    assert started.returncode == 0, started.stderr[-2000:]
    container = started.stdout.strip().splitlines()[-1]
    try:
        deadline = time.monotonic() + 120  # the image's start period is 30 s; a loaded machine is slower
        while (check := _podman("healthcheck", "run", container)).returncode != 0:
            assert time.monotonic() < deadline, check.stdout + check.stderr
            assert _podman("container", "exists", container).returncode == 0, "the serve container ended"
            time.sleep(1)
    finally:
        logs = _podman("logs", container)
        _podman("rm", "-f", container)
    assert "gradesync web app on http://127.0.0.1:8765/" in logs.stdout + logs.stderr


# ------------------------------------------------------------------ runs without containers


def _healthcheck() -> Any:
    spec = importlib.util.spec_from_file_location("healthcheck", REPO / "container" / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "port"),
    [
        (["gradesync", "serve", "--host", "0.0.0.0"], 8765),  # noqa: S104 - a command line, not a bind
        (["gradesync", "serve", "--port", "9000"], 9000),
        (["gradesync", "serve", "--port=9001"], 9001),
        (["gradesync", "sync", "/sis/grades.csv"], None),
        (["gradesync", "demo"], None),
    ],
)
def test_the_health_check_only_asks_serve(argv: list[str], port: int | None) -> None:
    assert _healthcheck().serve_port(argv) == port


def test_the_health_check_against_a_live_and_a_dead_port(emulator: Any, tmp_path: Path) -> None:
    """A server that answers is healthy (the emulator's 401 is an answer); a closed port is not."""
    cmdline = tmp_path / "cmdline"
    script = str(REPO / "container" / "healthcheck.py")
    results = {}
    for port in (emulator.port, _closed_port()):
        argv = [b"/opt/gradesync/bin/gradesync", b"serve", b"--port", str(port).encode()]
        cmdline.write_bytes(b"\0".join(argv))
        env = {**os.environ, "HEALTHCHECK_CMDLINE": str(cmdline)}
        results[port] = subprocess.run([sys.executable, script], env=env, timeout=60, check=False).returncode
    assert list(results.values()) == [0, 1]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
