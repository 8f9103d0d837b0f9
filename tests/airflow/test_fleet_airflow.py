"""docs/scheduling/airflow_dag.py under Apache Airflow itself (``airflow dags test``), against a fleet
of emulators: one per tenant, each with its own throttling (its own quota), one tenant whose
credential is refused.

Airflow lives in its own virtual environment (``make airflow`` makes ``.airflow/venv`` and runs this
file with ``GRADESYNC_TEST_AIRFLOW`` naming its ``airflow``); under ``make test`` the test is skipped
with that reason. It checks: every good tenant's grades converge, the failing tenant fails alone
(its task failed, the others succeeded, its grades untouched), and no tenant's requests ran past
its quota (no request sent inside a Retry-After). It prints tenants × changes, the DAG's wall time
against one tenant's sync alone, and the requests each tenant used.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from graph_emulator import EmulatorServer, ThrottleConfig, load_tenant

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data" / "sis_long.csv"
AIRFLOW = os.environ.get("GRADESYNC_TEST_AIRFLOW", "")
GRADESYNC = str(Path(sys.executable).parent / "gradesync")
pytestmark = pytest.mark.skipif(
    not AIRFLOW or not Path(AIRFLOW).is_file(),
    reason="needs Apache Airflow in its own venv: run `make airflow` (CI's .ci/run does)",
)

# name → the tenant's own limits (Graph's, then tighter ones over short windows so they bite)
FLEET: dict[str, ThrottleConfig] = {
    "north": ThrottleConfig.graph(),
    "south": ThrottleConfig(per_10s=40, short_window=2.0),
    "east": ThrottleConfig(per_10s=25, short_window=1.0, change_after_requests=80, then_per_10s=15),
}
REFUSED = "west"  # its emulator accepts another token than the one its file names
SHARED_CONFIG = """\
# what every tenant shares: the sample is a first load that changes most grades on purpose
[apply]
max_changes = "100%"
max_decreases = "100%"
min_coverage = "off"
"""


def _clean_export(path: Path) -> int:
    """The sample export without its deliberately bad rows (so each tenant can converge): rows whose
    plan against a scratch emulator is not a reject. Returns the number of rows kept."""
    from gradesync.cli.common import graph_client
    from gradesync.config import Settings
    from gradesync.pipeline import make_plan

    tenant = load_tenant(REPO / "sample_data" / "tenant.json")
    with EmulatorServer(tenant, token="t", throttle=ThrottleConfig.off()) as srv:
        settings = Settings.model_validate({"graph": {"base_url": srv.base_url}})
        with graph_client(settings, token="t") as client:
            rows = make_plan([SAMPLE], settings, client).rows
    good = {int(r.source_row) for r in rows.itertuples(index=False) if r.action != "reject"}
    with SAMPLE.open(newline="", encoding="utf-8-sig") as fh:
        header, *body = list(csv.reader(fh))
    keep = [row for n, row in enumerate(body, start=2) if n in good]
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *keep])
    return len(keep)


def _tenant_file(tenants: Path, name: str, server: EmulatorServer, export: Path) -> None:
    (tenants / f"{name}.toml").write_text(
        f'tenant_id = "{name}.example.edu"\n'
        f'inputs = ["../exports/{export.name}"]\n'
        f'state_dir = "../data/{name}/state"\n'
        f'config = "../gradesync.toml"\n'
        f'graph_url = "{server.base_url}"\n'
        f'[credentials]\naccess_token_env = "TOKEN_{name.upper()}"\n',
        encoding="utf-8",
    )


def _points(server: EmulatorServer) -> dict[str, Any]:
    return {
        sub["id"]: next(
            (o.get("points") for o in sub.get("outcomes") or [] if o.get("type") == "points"), None
        )
        for cls in server.state()["classes"]
        for a in cls["assignments"]
        for sub in a.get("submissions") or []
    }


def _print_figures(
    rows: int,
    stats: dict[str, Any],
    states: dict[str, str],
    outcome: dict[str, str | None],
    changes: dict[str, int],
    alone: dict[str, float],
    dag: float,
    log: str,
    side: float,
) -> None:
    print("\nfleet under `airflow dags test` (it runs mapped tasks one after another; the pool gradesync")
    print(f"has 2 slots for a real executor); each tenant's export has {rows} rows")
    head = ("tenant", "limits", "task", "exit", "changes", "requests", "throttled", "early", "alone")
    print("{:8} {:20} {:8} {:>4} {:>7} {:>8} {:>9} {:>5} {:>7}".format(*head))
    for name, st in stats.items():
        lim = FLEET.get(name, ThrottleConfig.graph())
        label = f"{lim.per_10s}/{lim.short_window:g}s" + (
            f" then {lim.then_per_10s}" if lim.then_per_10s else ""
        )
        cells: list[Any] = [name, label, states.get(name, "?"), outcome[name] or "?", changes[name]]
        cells += [st["graph_requests"], st["throttled"], st["early_retries"]]
        cells.append(f"{alone[name]:.1f} s" if name in alone else "-")
        print("{:8} {:20} {:8} {:>4} {:>7} {:>8} {:>9} {:>5} {:>7}".format(*cells))
    good = len(FLEET)
    print(f"tenants x changes: {good} x {changes['north']} = {sum(changes[n] for n in FLEET)} (+1 refused)")
    run = re.search(r"run_duration=([0-9.]+)", log)
    slowest, total = max(alone.values()), sum(alone.values())
    dag_run = float(run[1]) if run else float("nan")
    print(f"wall time: the slowest good tenant alone {slowest:.1f} s; all {good} alone in turn {total:.1f} s")
    print(f"  airflow dags test, {len(stats)} tenants in turn: {dag:.1f} s ({dag / slowest:.1f}x)", end="")
    print(f", of which the DAG run {dag_run:.1f} s")
    print(f"  the {good} good tenants side by side (a pool slot each): {side:.1f} s ({side / slowest:.1f}x)")


def _fresh(server: EmulatorServer, tenant: Any, data: Path) -> None:
    """A tenant as before its first sync: its emulator's grades and counts, and its state."""
    server.reset(tenant)
    server.reset_stats()
    shutil.rmtree(data, ignore_errors=True)


def _side_by_side(
    servers: dict[str, EmulatorServer], tenants: Path, env: dict[str, str]
) -> tuple[float, dict[str, int], dict[str, Any]]:
    """The good tenants all at once, as a pool with a slot each runs them: (wall time, exit codes,
    grades after)."""
    started = time.monotonic()
    null = subprocess.DEVNULL
    argv = {name: [GRADESYNC, "tenant", "sync", str(tenants / f"{name}.toml"), "--quiet"] for name in FLEET}
    procs = {name: subprocess.Popen(argv[name], env=env, stdout=null, stderr=null) for name in FLEET}
    codes = {name: proc.wait(timeout=280) for name, proc in procs.items()}
    return time.monotonic() - started, codes, {name: _points(servers[name]) for name in FLEET}


def _task_states(log: str, names: list[str]) -> dict[str, str]:
    """Each mapped task's final state from ``airflow dags test``'s log: tasks by ``ti_id``, the map
    index (the position in the sorted tenant list) from the line that starts each one."""
    index = {
        ti: int(i)
        for i, ti in re.findall(
            r"running task <TaskInstance: gradesync_fleet\.sync_tenant \S+ map_index=(\d+) "
            r"\[\S+\] ti_id=([0-9a-f-]+)>",
            log,
        )
    }
    states: dict[str, str] = {}
    for state, ti in re.findall(r"new_state=(\w+) rows_affected=\d+ ti_id=([0-9a-f-]+)", log):
        if ti in index:
            states[names[index[ti]]] = state
    return states


def _airflow(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_fleet_dag_under_airflow(tmp_path: Path) -> None:
    tenant = load_tenant(REPO / "sample_data" / "tenant.json")
    (tmp_path / "exports").mkdir()
    export = tmp_path / "exports" / "grades.csv"
    rows = _clean_export(export)
    (tmp_path / "gradesync.toml").write_text(SHARED_CONFIG, encoding="utf-8")
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    servers = {
        name: EmulatorServer(tenant, token=f"tok-{name}", throttle=limits) for name, limits in FLEET.items()
    }
    servers[REFUSED] = EmulatorServer(tenant, token="the-real-token", throttle=ThrottleConfig.graph())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADESYNC_", "PYTEST_"))}
    env.update({f"TOKEN_{name.upper()}": f"tok-{name}" for name in servers})
    airflow_home = tmp_path / "airflow"
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "docs" / "scheduling"),  # the example as written
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        GRADESYNC_TENANTS_DIR=str(tenants),
        GRADESYNC_BIN=GRADESYNC,
    )
    try:
        for srv in servers.values():
            srv.start()
        for name, srv in servers.items():
            _tenant_file(tenants, name, srv, export)
        check = subprocess.run([GRADESYNC, "config", "check", "--tenants", str(tenants)], env=env,
                               capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr

        # Each good tenant alone, outside Airflow: the yardstick for the fleet's wall time.
        alone: dict[str, float] = {}
        for name in FLEET:
            started = time.monotonic()
            argv = [GRADESYNC, "tenant", "sync", str(tenants / f"{name}.toml"), "--quiet"]
            one = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=280, check=False)
            alone[name] = time.monotonic() - started
            assert one.returncode == 0, one.stdout + one.stderr
            _fresh(servers[name], tenant, tmp_path / "data" / name)

        before = {name: _points(srv) for name, srv in servers.items()}
        for srv in servers.values():
            srv.reset_stats()
        migrate = _airflow(env, "db", "migrate")
        assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
        pool = _airflow(env, "pools", "set", "gradesync", "2", "gradesync tenants at once")
        assert pool.returncode == 0, pool.stderr[-2000:]
        started = time.monotonic()
        run = _airflow(env, "dags", "test", "gradesync_fleet")
        dag_seconds = time.monotonic() - started
        log = run.stdout + run.stderr
        (tmp_path / "dags-test.log").write_text(log, encoding="utf-8")
        states = _task_states(log, sorted(servers))
        outcome = {
            name: (re.search(rf"gradesync {name}: exit (\d+)", log) or [None, None])[1] for name in servers
        }
        stats = {name: srv.stats() for name, srv in servers.items()}
        after = {name: _points(srv) for name, srv in servers.items()}
        for name in FLEET:
            _fresh(servers[name], tenant, tmp_path / "data" / name)
        side_by_side, side_codes, side_after = _side_by_side(servers, tenants, env)
    finally:
        for srv in servers.values():
            srv.stop()

    changes = {
        name: sum(1 for sid, p in after[name].items() if before[name].get(sid) != p) for name in servers
    }
    _print_figures(rows, stats, states, outcome, changes, alone, dag_seconds, log, side_by_side)

    assert run.returncode == 1, log[-3000:]  # the run as a whole failed: one tenant did
    assert outcome == {"north": "0", "south": "0", "east": "0", REFUSED: "3"}, (outcome, log[-3000:])
    assert states.get(REFUSED) == "failed" and all(states.get(n) == "success" for n in FLEET), states
    expected = after["north"]
    for name in FLEET:
        assert after[name] == expected, f"{name} did not converge to the same grades as north"
        assert changes[name] > 0
        assert stats[name]["early_retries"] == 0, f"{name} sent requests inside a Retry-After"
    assert changes[REFUSED] == 0 and after[REFUSED] == before[REFUSED]  # refused: nothing written
    assert side_codes == dict.fromkeys(FLEET, 0) and all(side_after[n] == expected for n in FLEET)
