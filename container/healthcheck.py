"""The container's health check: a ``gradesync serve`` container is healthy while its web app answers
on its port; any other gradesync container (sync, apply, demo) is healthy while it runs.

It reads the container's main process's command line (``/proc/1/cmdline``, or the file named by
``HEALTHCHECK_CMDLINE`` in tests) for ``serve`` and ``--port``; exit 0 healthy, 1 not.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["main", "serve_port"]

DEFAULT_PORT = 8765


def serve_port(argv: list[str]) -> int | None:
    """The port ``gradesync serve`` listens on, or None when the process is not ``serve``."""
    if "serve" not in argv:
        return None
    for i, arg in enumerate(argv):
        if arg == "--port" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--port="):
            return int(arg.split("=", 1)[1])
    return DEFAULT_PORT


def main() -> int:
    cmdline = Path(os.environ.get("HEALTHCHECK_CMDLINE", "/proc/1/cmdline"))
    argv = [a for a in cmdline.read_bytes().decode("utf-8", "replace").split("\0") if a]
    port = serve_port(argv)
    if port is None:
        return 0
    # A redirect to the sign-in page is an answer too: only no answer, or a 5xx, is unhealthy.
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", method="GET")  # noqa: S310 - fixed http URL
    try:
        with urllib.request.urlopen(request, timeout=4) as answer:  # noqa: S310
            return 0 if answer.status < 500 else 1
    except urllib.error.HTTPError as e:
        return 0 if e.code < 500 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
