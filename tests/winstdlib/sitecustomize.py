"""Windows' standard library, simulated for gradesync's own code on a Linux machine.

Python imports ``sitecustomize`` at start-up from the first folder on its path that has one: a
process started with this folder on ``PYTHONPATH`` and ``SIMULATE_WINDOWS_STDLIB=1`` set sees, in
every module of ``gradesync`` and ``graph_emulator`` (and only there — pytest, uvicorn and the rest
keep the real modules):

- the modules Windows' Python does not have (``fcntl``, ``pwd``, ``resource``, …) as missing:
  ``import fcntl`` raises ``ModuleNotFoundError``, as on Windows;
- ``os``, ``signal`` and ``select`` without the names the Python documentation marks "Availability:
  Unix" (``os.killpg``, ``os.fork``, ``os.pread``, ``signal.SIGKILL``, ``signal.alarm``, …):
  using one raises ``AttributeError``, as on Windows.

Every such attempt is also appended to the file ``SIMULATE_WINDOWS_STDLIB_LOG`` names (one line:
pid, module, name), so a test sees an attempt even where the code caught the error. Child processes
inherit the simulation: a ``subprocess`` started with an explicit ``env`` gets the two variables too.

What it cannot simulate: ``os.name``/``sys.platform`` stay Linux's (libraries branch on them), so
the Windows branches of gradesync's own code (``sys.platform == "win32"``) are not run here; nor
are Windows' file locking, cmd.exe or its path rules (the path tests use ``PureWindowsPath``).
"""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

__all__: list[str] = []

FLAG = "SIMULATE_WINDOWS_STDLIB"
LOG = "SIMULATE_WINDOWS_STDLIB_LOG"
HERE = str(Path(__file__).resolve().parent)
OURS = ("gradesync", "graph_emulator")

# Modules of CPython's POSIX build that its Windows build does not have.
MISSING_MODULES = frozenset(
    {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "syslog", "crypt", "spwd", "nis",
     "posix", "_posixsubprocess", "_posixshmem", "readline", "curses"}
)  # fmt: skip
# Names the Python 3.11 documentation marks "Availability: Unix" (not on Windows).
HIDDEN = {
    "os": frozenset(
        {"fork", "forkpty", "killpg", "getpgid", "setpgid", "setpgrp", "getpgrp", "setsid", "getsid",
         "getuid", "geteuid", "getgid", "getegid", "getgroups", "setuid", "seteuid", "setgid", "setegid",
         "setgroups", "setreuid", "setregid", "getresuid", "getresgid", "setresuid", "setresgid",
         "initgroups", "getgrouplist", "chown", "fchown", "lchown", "chroot", "fchdir", "mkfifo", "mknod",
         "major", "minor", "makedev", "pread", "pwrite", "preadv", "pwritev", "readv", "writev", "sendfile",
         "fdatasync", "sync", "statvfs", "fstatvfs", "sysconf", "sysconf_names", "confstr", "confstr_names",
         "pathconf", "fpathconf", "pathconf_names", "uname", "wait", "wait3", "wait4", "waitid", "WNOHANG",
         "getloadavg", "nice", "getpriority", "setpriority", "openpty", "pipe2", "posix_fadvise",
         "posix_fallocate", "lockf", "register_at_fork", "ttyname", "ctermid", "tcgetpgrp", "tcsetpgrp",
         "sched_yield", "sched_getaffinity", "sched_setaffinity", "O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC",
         "O_DIRECTORY", "O_SYNC", "O_DSYNC", "O_NDELAY", "O_NOCTTY", "O_ASYNC", "O_NOATIME", "O_PATH",
         "O_TMPFILE", "memfd_create", "eventfd", "pidfd_open", "splice", "copy_file_range", "posix_spawn",
         "posix_spawnp", "get_blocking", "set_blocking", "getxattr", "setxattr", "listxattr",
         "removexattr", "WIFEXITED", "WEXITSTATUS", "WIFSIGNALED", "WTERMSIG", "WIFSTOPPED"}
    ),
    "signal": frozenset(
        {"SIGKILL", "SIGHUP", "SIGQUIT", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGCHLD", "SIGPIPE", "SIGCONT",
         "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGWINCH", "SIGXCPU", "SIGXFSZ", "SIGVTALRM",
         "SIGPROF", "SIGIO", "SIGPOLL", "SIGSYS", "SIGTRAP", "SIGURG", "SIGBUS", "SIGPWR", "SIGRTMIN",
         "SIGRTMAX", "alarm", "setitimer", "getitimer", "pause", "pthread_kill", "pthread_sigmask",
         "sigwait", "sigwaitinfo", "sigtimedwait", "siginterrupt", "sigpending", "ITIMER_REAL",
         "ITIMER_VIRTUAL", "ITIMER_PROF", "SIG_BLOCK", "SIG_UNBLOCK", "SIG_SETMASK"}
    ),
    "select": frozenset({"poll", "epoll", "devpoll", "kqueue", "kevent", "POLLIN", "POLLOUT", "EPOLLIN"}),
}  # fmt: skip


def _record(module: str, name: str) -> None:
    path = os.environ.get(LOG)
    if path:
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {module} {name}\n")


class _WindowsView(types.ModuleType):
    """A module as Windows' Python has it: the real one minus the POSIX-only names."""

    def __init__(self, real: types.ModuleType, hidden: frozenset[str]) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__["_real"] = real
        self.__dict__["_hidden"] = hidden

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            _record(self.__name__, name)
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r} (simulated Windows)")
        return getattr(self._real, name)


def _ours(importer: str) -> bool:
    return any(importer == top or importer.startswith(top + ".") for top in OURS)


def install() -> None:
    real_import = builtins.__import__
    views: dict[str, _WindowsView] = {}

    def windows_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Any:
        importer = (globals or {}).get("__name__") or ""
        if level or not _ours(importer):
            return real_import(name, globals, locals, fromlist, level)
        top = name.partition(".")[0]
        if top in MISSING_MODULES:
            _record(name, "import")
            raise ModuleNotFoundError(f"No module named {name!r} (simulated Windows)", name=name)
        module = real_import(name, globals, locals, fromlist, level)
        if top in HIDDEN and module.__name__ == top:
            if top not in views:
                views[top] = _WindowsView(module, HIDDEN[top])
            return views[top]
        return module

    builtins.__import__ = windows_import

    real_init = subprocess.Popen.__init__

    def popen_init(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        env = kwargs.get("env")
        if env is not None:
            env = dict(env)
            env[FLAG] = "1"
            if HERE not in env.get("PYTHONPATH", "").split(os.pathsep):
                env["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, env.get("PYTHONPATH")) if p)
            if os.environ.get(LOG):
                env.setdefault(LOG, os.environ[LOG])
            kwargs["env"] = env
        real_init(self, *args, **kwargs)

    subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]


if os.environ.get(FLAG) == "1":
    install()
    _record("simulation", f"active {Path(sys.argv[0]).name if sys.argv and sys.argv[0] else '?'}")
