"""``gradesync demo``: a full sync of ``sample_data/`` against the embedded Graph emulator.

It starts the emulator on a free port of 127.0.0.1 with Graph's default throttling limits, runs
``gradesync sync`` on the sample exports exactly as a nightly job would (a real subprocess, real
HTTP), then shows what changed in the emulator. The sample exports carry deliberate problems
(sample_data/README.md), so the sync's own exit status is 1: rows were rejected — as intended.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gradesync.cli.common import stdout_console
from gradesync.errors import ExitCode
from gradesync.samples import sample_dir

__all__ = [
    "SAMPLE_DIR",
    "SAMPLE_INPUTS",
    "demo_command",
    "run_demo",
]

SAMPLE_DIR = sample_dir()  # inside an installed wheel, or the checkout's sample_data/
SAMPLE_INPUTS = ("sis_long.csv", "gradebook_wide.csv", "gradebook.xlsx")


def _points_outcomes(tenant: dict) -> dict[str, float | None]:
    return {
        sub["id"]: outcome.get("points")
        for cls in tenant["classes"]
        for assignment in cls["assignments"]
        for sub in assignment.get("submissions") or []
        for outcome in sub.get("outcomes") or []
        if outcome.get("type") == "points"
    }


def run_demo(samples: Path, out: Path, *, say: Callable[[str], None], throttle: Any = None) -> int:
    """One demo run: a fresh emulator, a FRESH state dir (``out/state`` is reset: the saved memory of
    an earlier demo belongs to an emulator that is gone, and would raise false teacher_override
    alarms), one ``gradesync sync`` subprocess. Returns the sync's exit status; the same every time."""
    from graph_emulator import EmulatorServer, ThrottleConfig, load_tenant

    token = "demo-" + secrets.token_hex(8)  # a throwaway token for the emulator only
    tenant = load_tenant(samples / "tenant.json")
    state = out / "state"
    shutil.rmtree(state, ignore_errors=True)
    limits = throttle if throttle is not None else ThrottleConfig.graph()
    with EmulatorServer(tenant, token=token, throttle=limits) as server:
        before = _points_outcomes(server.state())
        classes = server.state()["classes"]
        say(
            f"Graph emulator at {server.base_url}: {len(classes)} classes, "
            f"{sum(len(c['assignments']) for c in classes)} assignments, "
            f"{sum(len(c['members']) for c in classes)} class members"
            + (" (Graph's throttling limits on)" if throttle is None else "")
        )
        inputs = [str(samples / name) for name in SAMPLE_INPUTS]
        command = [
            sys.executable, "-m", "gradesync", "sync", *inputs,
            "--report-dir", str(out / "reports"), "--state-dir", str(state),
            # The sample exports are a first load that changes most grades on purpose; a nightly
            # run keeps the default guards, which would (rightly) refuse such a plan.
            "--max-changes", "100%", "--max-decreases", "100%",
        ]  # fmt: skip
        say("$ gradesync sync " + " ".join(command[4:]))
        env = {**os.environ, "GRADESYNC_GRAPH_URL": server.base_url, "GRADESYNC_ACCESS_TOKEN": token}
        code = subprocess.run(command, env=env, check=False).returncode
        after = _points_outcomes(server.state())
        stats = server.stats()
    changed = sum(1 for sid, pts in after.items() if before.get(sid, "absent") != pts)
    say(
        f"\nIn the emulator: {changed} points outcomes changed or created; "
        f"Graph requests used: {stats['graph_requests']} in {stats['http_requests']} HTTP requests, "
        f"{stats['throttled']} throttled."
    )
    return code


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    default="demo-output",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the run's reports and state go (its state is reset each time: the emulator is new).",
)
@click.option(
    "--samples",
    "sample_dir",
    default=str(SAMPLE_DIR),
    show_default=False,
    type=click.Path(file_okay=False, exists=True),
    help="Folder with tenant.json and the exports.",
)
def demo_command(out_dir: str, sample_dir: str) -> None:
    """Sync sample_data/ into the embedded Graph emulator and show the result."""
    console = stdout_console()
    code = run_demo(Path(sample_dir), Path(out_dir), say=lambda line: console.print(line, markup=False))
    if code == ExitCode.ROWS_NOT_DONE:
        console.print(
            "The sync exited 1 because the sample exports contain deliberate problems "
            "(sample_data/README.md): those rows are rejected and listed first in the report.",
            markup=False,
        )
    elif code != ExitCode.OK:
        raise SystemExit(code)
