"""A fleet of tenants under Apache Airflow 3: one mapped task per tenant file, a pool for concurrency.

Every night the DAG lists ``GRADESYNC_TENANTS_DIR/*.toml`` (``gradesync config check --tenants DIR``
validates them) and maps one ``sync_tenant`` task over the names (dynamic task mapping: the UI shows
one task instance per tenant, named after it). Each runs ``gradesync tenant sync DIR/NAME.toml`` in
gradesync's own virtual environment (``GRADESYNC_BIN``), never in Airflow's: the two have their own
dependencies. A tenant is its own Graph quota, state directory and sign-in, so tenants run side by
side; the pool ``gradesync`` caps how many at once (create it first: ``airflow pools set gradesync 4
"gradesync tenants at once"``). A tenant that fails never stops the others.

Exit codes become task states as the README's exit-code table says:

====  ===========================================================  ==============================
code  meaning                                                       task state
====  ===========================================================  ==============================
0     every row in its desired state                                success
6     rows carried over (deadline or quota); the next run finishes  success (logged as a warning)
5     another run of this tenant holds its lock                     skipped
7     Graph unreachable (nothing is the data's fault)               up for retry (one retry)
1     rows need attention (see the run's report)                    failed, no retry
2-4   configuration or input, sign-in, a guard refused              failed, no retry
8     storage (disk full, read-only, journal corrupt)               failed, no retry
70    a bug in gradesync                                            failed, no retry
====  ===========================================================  ==============================

The tenant's credential is named in its file (``client_secret_env``, ``client_secret_file`` or
``certificate_path``); the worker's environment (or files mounted on it) must provide it.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

TENANTS_DIR = Path(os.environ.get("GRADESYNC_TENANTS_DIR", "/etc/gradesync/tenants"))
GRADESYNC = os.environ.get("GRADESYNC_BIN", "/opt/gradesync/bin/gradesync")
RETRY_DELAY = timedelta(seconds=float(os.environ.get("GRADESYNC_RETRY_DELAY_SECONDS", "600")))

SUCCESS = {0: "every row is in its desired state", 6: "rows carried over; the next run finishes them"}
SKIPPED = {5: "another run of this tenant holds its lock; that run does the work"}
RETRY = {7: "Graph unreachable; retrying later is safe"}
FAILED = {
    1: "rows need attention: read the run's report",
    2: "configuration or input error: fix it, do not retry",
    3: "sign-in or permission failure: fix the credential, do not retry",
    4: "a safety guard refused the plan: a person must look",
    8: "storage failure: fix the disk first",
    70: "a bug in gradesync: report it",
}


@task
def tenants() -> list[str]:
    """The fleet: one name per tenant file."""
    names = sorted(p.stem for p in TENANTS_DIR.glob("*.toml"))
    if not names:
        raise AirflowFailException(f"no tenant files in {TENANTS_DIR}")
    return names


@task(pool="gradesync", retries=1, retry_delay=RETRY_DELAY, map_index_template="{{ tenant }}")
def sync_tenant(tenant: str) -> int:
    """One tenant's nightly sync; its exit code decides the task's state (the table above)."""
    argv = [GRADESYNC, "tenant", "sync", str(TENANTS_DIR / f"{tenant}.toml"), "--quiet"]
    code = subprocess.run(argv, check=False).returncode
    if code in SUCCESS:
        print(f"gradesync {tenant}: exit {code}, {SUCCESS[code]}")
        return code
    if code in SKIPPED:
        raise AirflowSkipException(f"gradesync {tenant}: exit {code}, {SKIPPED[code]}")
    if code in RETRY:
        raise AirflowException(f"gradesync {tenant}: exit {code}, {RETRY[code]}")
    raise AirflowFailException(f"gradesync {tenant}: exit {code}, {FAILED.get(code, 'unknown exit code')}")


with DAG(
    "gradesync_fleet",
    schedule="15 1 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gradesync"],
) as dag:
    sync_tenant.expand(tenant=tenants())
