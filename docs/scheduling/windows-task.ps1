# Windows Task Scheduler: a nightly gradesync run as a service account (run once in an elevated PowerShell).
# The client secret is not stored in the task: use a certificate ([auth] certificate_path) or a
# client_secret_file readable only by the service account. Exit codes as on Linux (0 ok, 1 rows need
# attention, 2 configuration/input, 3 sign-in, 4 a guard or the plan digest refused, 5 another run holds
# the lock, 6 rows carried over to the next run, 7 Graph unreachable, 8 storage failure); Task Scheduler
# shows it as "Last Run Result" (0x1 ... 0x8). 0, 5 and 6 need nobody; 7 can simply run again later.
$gradesync = 'C:\gradesync\.venv\Scripts\gradesync.exe'
$arguments = 'sync D:\SIS\export\grades.csv --config C:\gradesync\config\gradesync.toml ' +
             '--state-dir C:\ProgramData\gradesync\state --runs-dir C:\ProgramData\gradesync\runs ' +
             '--log-format json --quiet'
$action  = New-ScheduledTaskAction -Execute $gradesync -Argument $arguments -WorkingDirectory 'C:\gradesync'
$trigger = New-ScheduledTaskTrigger -Daily -At 2:15am
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit (New-TimeSpan -Hours 2) -MultipleInstances IgnoreNew -StartWhenAvailable
Register-ScheduledTask -TaskName 'gradesync nightly' -Action $action -Trigger $trigger -Settings $settings `
    -User 'SCHOOL\svc-gradesync' -Password (Read-Host 'service account password') -RunLevel Limited

# The same with schtasks (cmd.exe):
# schtasks /Create /TN "gradesync nightly" /SC DAILY /ST 02:15 /RU SCHOOL\svc-gradesync /RP * /TR "C:\gradesync\.venv\Scripts\gradesync.exe sync D:\SIS\export\grades.csv --config C:\gradesync\config\gradesync.toml --state-dir C:\ProgramData\gradesync\state --runs-dir C:\ProgramData\gradesync\runs --log-format json --quiet"
