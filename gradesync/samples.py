"""Where the sample tenant and exports are (``gradesync demo``, ``gradesync serve --demo``).

An installed wheel carries them inside the package (``gradesync/sample_data/``, put there at build
time from the checkout's ``sample_data/``); a checkout or an editable install has them in
``sample_data/`` beside the package.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLE_TENANT", "sample_dir"]

SAMPLE_TENANT = "tenant.json"
_PACKAGE = Path(__file__).resolve().parent


def sample_dir() -> Path:
    """The folder holding ``tenant.json`` and the sample exports: the package's own copy when it
    has one (an installed wheel), else the checkout's ``sample_data/``."""
    packaged = _PACKAGE / "sample_data"
    if (packaged / SAMPLE_TENANT).is_file():
        return packaged
    return _PACKAGE.parent / "sample_data"
