"""What a Windows run handles differently, checked on any machine: Windows paths in tenant files
(``PureWindowsPath``), the hook's summary argument quoted for cmd.exe, and a timed-out hook stopped
with every process it started (psutil, the same call on Windows)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import psutil
import pytest

from gradesync.errors import ConfigError
from gradesync.state import runs
from gradesync.state.runs import shell_quote
from gradesync.tenants import parse_tenant

WINDOWS_TENANT = r"""
tenant_id = "contoso.onmicrosoft.com"
client_id = "11111111-2222-3333-4444-555555555555"
inputs = ['D:\SIS\export\contoso\grades.csv', '..\exports\contoso-extra.csv']
state_dir = 'C:\ProgramData\gradesync\contoso\state'
config = '..\config\gradesync.toml'
window = "01:00-05:00"

[credentials]
certificate_path = 'certs\contoso.pem'
"""


def test_a_tenant_file_with_windows_paths() -> None:
    tenant = parse_tenant(WINDOWS_TENANT, PureWindowsPath(r"C:\gradesync\tenants\contoso.toml"))
    assert tenant.name == "contoso"
    assert tenant.inputs == (
        PureWindowsPath(r"D:\SIS\export\contoso\grades.csv"),
        PureWindowsPath(r"C:\gradesync\exports\contoso-extra.csv"),  # relative to the tenant file
    )
    assert tenant.state_dir == PureWindowsPath(r"C:\ProgramData\gradesync\contoso\state")
    assert tenant.runs_dir == PureWindowsPath(r"C:\ProgramData\gradesync\contoso\runs")
    assert tenant.config == PureWindowsPath(r"C:\gradesync\config\gradesync.toml")
    assert tenant.credential_path == PureWindowsPath(r"C:\gradesync\tenants\certs\contoso.pem")
    assert tenant.window == ("01:00", "05:00")


def test_the_same_file_on_linux_keeps_backslashes_as_characters() -> None:
    """A POSIX path may hold a backslash: only Windows reads it as a separator."""
    tenant = parse_tenant(WINDOWS_TENANT, PurePosixPath("/srv/gradesync/tenants/contoso.toml"))
    odd = "C:\\ProgramData\\gradesync\\contoso\\state"  # one file name, backslashes and all
    assert tenant.state_dir == PurePosixPath("/srv/gradesync/tenants") / odd


def test_a_windows_path_in_double_quotes_is_refused_with_the_way_out() -> None:
    text = WINDOWS_TENANT.replace("'C:\\ProgramData\\gradesync\\contoso\\state'", '"C:\\ProgramData\\state"')
    with pytest.raises(ConfigError) as e:
        parse_tenant(text, PureWindowsPath(r"C:\gradesync\tenants\contoso.toml"))
    assert e.value.code == "config-syntax" and "single quotes" in (e.value.hint or "")


@pytest.mark.parametrize(
    ("path", "windows", "quoted"),
    [
        (r"C:\ProgramData\gradesync\runs\20250131T020000000Z-3f9a1c\summary.json", True,
         r"C:\ProgramData\gradesync\runs\20250131T020000000Z-3f9a1c\summary.json"),
        (r"C:\Program Files\gradesync\summary.json", True, r'"C:\Program Files\gradesync\summary.json"'),
        ("", True, '""'),
        ("/var/lib/gradesync/run dir/summary.json", False, "'/var/lib/gradesync/run dir/summary.json'"),
    ],
)  # fmt: skip
def test_the_summary_argument_is_quoted_for_the_shell_that_runs_the_hook(
    path: str, windows: bool, quoted: str
) -> None:
    """cmd.exe splits at spaces outside double quotes and keeps single quotes as characters
    (Microsoft's "Parsing C command-line arguments"); POSIX sh takes single quotes."""
    assert shell_quote(path, windows=windows) == quoted


def test_a_timed_out_hook_is_stopped_with_the_processes_it_started(tmp_path: Path) -> None:
    # The hook's shell starts a grandchild that announces itself on stdout, then waits for it: the
    # tree exists before the kill (an event, not a sleep).
    grandchild = f'{sys.executable} -c "import os, time; print(os.getpid(), flush=True); time.sleep(120)"'
    proc = subprocess.Popen(f"{grandchild}; echo unreachable", shell=True, stdout=subprocess.PIPE,  # noqa: S602
                            start_new_session=True)  # fmt: skip
    assert proc.stdout is not None
    pid = int(proc.stdout.readline())
    victim = psutil.Process(pid)
    runs._kill_group(proc)
    proc.wait(timeout=30)
    victim.wait(timeout=30)  # raises TimeoutExpired if the grandchild were left running
    assert not psutil.pid_exists(pid) or victim.status() == psutil.STATUS_ZOMBIE
    proc.stdout.close()
