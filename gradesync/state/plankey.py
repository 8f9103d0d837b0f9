"""The plan key: the secret that signs plan digests (``plan/digest.py``), kept in the state directory.

``<state dir>/plan.key`` unless ``[apply] plan_key_file`` names another file. It is made at first use
(32 random bytes, written as 64 hex digits) with mode 0600, published with a hard link so two
processes starting at once end up with the same key, never two. A plan made with one key is refused
by an ``apply`` that holds another: to make plans on one machine and apply them on another, give
both the same key file (copy it, keeping it private, or point ``plan_key_file`` at one place).

On POSIX systems the mode keeps other accounts from reading it; a key file others can read is
reported (anyone who can read it can sign a plan). On Windows file modes do not apply: the key is as
private as the folder it is in (its access control list), so keep the state directory (or the
``plan_key_file``) in a folder only the account that runs gradesync can read, such as one under
``%LOCALAPPDATA%``.

The key never reaches a log, a report, an error message or a plan file (which holds only its id).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path

from gradesync.errors import StorageError, storage_error

__all__ = ["KEY_BYTES", "KEY_NAME", "load_plan_key", "plan_key_path"]

log = logging.getLogger(__name__)

KEY_NAME = "plan.key"
KEY_BYTES = 32
FILE_MODE = 0o600
_DAMAGED_HINT = (
    "restore the key file from a backup; or delete it, and a new key is made at the next run "
    "(plans signed with the old key are then refused: make them again)"
)


def plan_key_path(state_dir: str | os.PathLike[str], key_file: str | None = None) -> Path:
    """Where the plan key is: ``key_file`` when set, else ``plan.key`` in the state directory."""
    return Path(key_file).expanduser() if key_file else Path(state_dir) / KEY_NAME


def _parse(text: str, path: Path) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise StorageError(
            f"the plan key {path} is damaged (it should hold {2 * KEY_BYTES} hex digits)",
            code="plan-key-damaged",
            hint=_DAMAGED_HINT,
        )
    return key


def _read(path: Path) -> bytes:
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        log.warning(
            "the plan key %s can be read by other accounts (mode %o): anyone who can read it can sign "
            "a plan; chmod 600 it",
            path,
            stat.S_IMODE(path.stat().st_mode),
        )
    return _parse(path.read_text(encoding="ascii", errors="replace"), path)


def _create(path: Path) -> None:
    """Write a new key next to ``path`` and link it into place; if another process made one first,
    theirs stays (the link fails) and this one is dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(KEY_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)  # noqa: PTH101 (explicit, whatever mkstemp's platform default)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # noqa: PTH108


def load_plan_key(path: Path) -> bytes:
    """The plan key at ``path``, made there first if there is none yet. StorageError (exit 8) when it
    cannot be read or made, or is damaged."""
    try:
        if not path.exists():
            _create(path)
            log.info("made a new plan key %s", path)
        return _read(path)
    except StorageError:
        raise
    except OSError as e:
        raise storage_error(e, "plan key", path) from None
