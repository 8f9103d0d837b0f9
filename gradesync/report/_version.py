"""gradesync's version for the reports.

``gradesync.__version__`` when the package imports normally; the installed distribution's version
when gradesync is picked up as a namespace package (a stale editable install made before
``gradesync/__init__.py`` existed does that).
"""

from __future__ import annotations

from importlib import metadata

try:
    from gradesync import __version__
except ImportError:  # pragma: no cover - depends on how the package was installed
    try:
        __version__ = metadata.version("gradesync")
    except metadata.PackageNotFoundError:
        __version__ = "unknown"

__all__ = ["__version__"]
