"""Where MSAL's token cache lives between runs, so a person signs in once and later runs are silent.

Two stores, chosen by ``[auth] cache_encryption``:

* ``auto`` — the operating system's encrypted store through msal-extensions (DPAPI on Windows, the
  Keychain on macOS, libsecret on Linux) when the package is installed and the store works; otherwise
* the file store — MSAL's JSON cache in ``[auth] cache_path``, created with mode 0600 in a directory
  created with mode 0700, replaced atomically on every change (never half written).

The cache holds refresh and access tokens: nothing here logs or prints its contents.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gradesync.files import atomic_write

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "EncryptedTokenStore",
    "FileTokenStore",
    "TokenStore",
    "log",
    "open_token_store",
    "write_private_file",
]

if TYPE_CHECKING:  # msal is imported when a cache is opened: `import gradesync.auth` stays light
    import msal

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


class TokenStore(Protocol):
    location: Path
    kind: str  # a short description for `gradesync auth status`
    cache: msal.SerializableTokenCache

    def flush(self) -> None:
        """Persist changes made by MSAL since the last flush."""

    def clear(self) -> None:
        """Forget every account and token, and remove the stored cache."""


class FileTokenStore:
    """MSAL's serialisable cache in a JSON file only its owner can read (0600)."""

    kind = "file (mode 0600)"

    def __init__(self, location: Path) -> None:
        self.location = location
        import msal

        self.cache = msal.SerializableTokenCache()
        if location.exists():
            self._load()

    def _load(self) -> None:
        st = self.location.stat()
        if not stat.S_ISREG(st.st_mode):
            log.warning("token cache %s is not a regular file; ignored", self.location)
            return
        if os.name == "posix" and st.st_mode & 0o077:
            log.warning(
                "token cache %s was readable by other accounts (mode %o); tightened to 0600",
                self.location,
                stat.S_IMODE(st.st_mode),
            )
            self.location.chmod(FILE_MODE)
        try:
            self.cache.deserialize(self.location.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            import msal

            log.warning("token cache %s is not readable JSON; starting with an empty cache", self.location)
            self.cache = msal.SerializableTokenCache()

    def flush(self) -> None:
        if not self.cache.has_state_changed:
            return
        write_private_file(self.location, self.cache.serialize())
        self.cache.has_state_changed = False

    def clear(self) -> None:
        self.location.unlink(missing_ok=True)
        import msal

        self.cache = msal.SerializableTokenCache()


class EncryptedTokenStore:
    """msal-extensions' ``PersistedTokenCache`` over the OS's encrypted persistence (it saves itself)."""

    def __init__(self, location: Path, persistence: Any) -> None:
        from msal_extensions import PersistedTokenCache

        self.location = location
        self._persistence = persistence
        self.kind = f"encrypted ({type(persistence).__name__}, msal-extensions)"
        self.cache = PersistedTokenCache(persistence)

    def flush(self) -> None:  # PersistedTokenCache writes through on every change
        return

    def clear(self) -> None:
        self._persistence.save(json.dumps({}))
        for path in (self.location, Path(str(self.location) + ".lockfile")):
            path.unlink(missing_ok=True)
        from msal_extensions import PersistedTokenCache

        self.cache = PersistedTokenCache(self._persistence)


def open_token_store(cache_path: str, encryption: str = "auto") -> TokenStore:
    """The store for ``cache_path`` (``~`` expanded): encrypted when asked and possible, else the file."""
    location = Path(cache_path).expanduser()
    if encryption == "auto":
        persistence = _encrypted_persistence(location)
        if persistence is not None:
            return EncryptedTokenStore(location, persistence)
    return FileTokenStore(location)


def _encrypted_persistence(location: Path) -> Any | None:
    try:
        from msal_extensions import build_encrypted_persistence
    except ImportError:
        return None
    created = not location.parent.exists()
    try:
        _make_private_dir(location.parent)  # before msal-extensions creates it with the default mode
        return build_encrypted_persistence(str(location))
    except Exception as e:  # no keyring on a headless server, no D-Bus, no PyGObject, …
        log.info("encrypted token cache unavailable (%s); using a 0600 file instead", type(e).__name__)
        if created:
            with contextlib.suppress(OSError):
                location.parent.rmdir()  # leave no trace of the probe
        return None


def _make_private_dir(directory: Path) -> None:
    if not directory.exists():
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 (the directory is created 0700 if missing)."""
    _make_private_dir(path.parent)
    atomic_write(path, text, mode=FILE_MODE, sync=True)
