"""Writing a file so that nobody ever reads half of it: a temporary file in the same folder, then a
rename over the target (atomic on every operating system gradesync runs on)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(
    path: Path, data: bytes | str | Iterable[bytes], *, mode: int | None = None, sync: bool = False
) -> Path:
    """Write ``data`` (bytes, UTF-8 text, or bytes in pieces) to ``path`` atomically.

    ``mode``: the file's permissions, set before it takes the target's name (0600 for a secret, so
    it is never readable by others for an instant); ``sync``: flush it to the disk before the rename
    (a token cache or a key must survive a power cut). The temporary file is removed on any failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, str):
                f.write(data.encode("utf-8"))
            elif isinstance(data, bytes | bytearray | memoryview):
                f.write(data)
            else:
                for piece in data:
                    f.write(piece)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
