"""gradesync under Airflow: a BashOperator after the SIS export task. Exit code 0 succeeds; 6 (rows
carried over by a deadline or the quota: nothing failed, the next run finishes them) succeeds too;
5 (another run holds the lock) is mapped to 99, which Airflow treats as "skipped"; 7 (Graph
unreachable, nothing written) is worth Airflow's one retry; any other code fails the task and needs a
person (1 rows need attention, 2 configuration/input, 3 sign-in, 4 a guard or the plan digest refused,
8 storage failure) — retrying those changes nothing (a refused run is refused again, harmlessly)."""

from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("gradesync_nightly", schedule="15 2 * * *", start_date=datetime(2025, 1, 1), catchup=False) as dag:
    sync = BashOperator(
        task_id="gradesync_sync",
        bash_command=(
            "/opt/gradesync/.venv/bin/gradesync sync {{ params.export }} "
            "--config /opt/gradesync/config/gradesync.toml "
            "--state-dir /var/lib/gradesync/state --runs-dir /var/lib/gradesync/runs "
            "--log-format json --log-file - --quiet; "
            "rc=$?; [ $rc -eq 5 ] && exit 99; [ $rc -eq 6 ] && exit 0; exit $rc"
        ),
        params={"export": "/srv/sis/export/grades.csv"},
        env={
            "GRADESYNC_TENANT_ID": "{{ var.value.gradesync_tenant }}",
            "GRADESYNC_CLIENT_ID": "{{ var.value.gradesync_client }}",
            "GRADESYNC_AUTH_MODE": "client_credentials",
            "GRADESYNC_CLIENT_SECRET": "{{ conn.gradesync.password }}",
        },
        append_env=True,
        skip_on_exit_code=99,
        retries=1,  # for exit 7 (Graph unreachable)
    )
