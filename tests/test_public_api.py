"""The declared public API (``gradesync.__all__``), checked the way httpx checks its own: every name
exported is importable and is the object its defining module holds; nothing public is missing;
importing the package loads none of it (``gradesync --help`` stays quick)."""

from __future__ import annotations

import subprocess
import sys

import gradesync

PROMISED = {  # what the README's "library" use and the architecture document promise
    "Pipeline",
    "PlanResult",
    "RunResult",
    "Settings",
    "load_settings",
    "make_client",
    "Verdict",
    "RunSummary",
    "ExitCode",
    "GradesyncError",
    "UsageError",
    "InputError",
    "AuthError",
    "GuardError",
    "LockError",
    "NetworkError",
    "StorageError",
    "GraphError",
}


def test_all_is_sorted_and_holds_what_is_promised() -> None:
    assert gradesync.__all__ == sorted(gradesync.__all__)
    assert set(gradesync.__all__) == {*gradesync._EXPORTS, "__version__"}  # declared = loadable
    assert set(gradesync.__all__) >= PROMISED


def test_every_exported_name_resolves_to_its_defining_object() -> None:
    from gradesync import errors

    for name in gradesync.__all__:
        value = getattr(gradesync, name)
        assert value is not None, name
        if name != "__version__":
            home = sys.modules[value.__module__]
            assert getattr(home, name) is value, name
    # every error type of the error tree is public
    public_errors = {
        n
        for n, v in vars(errors).items()
        if isinstance(v, type) and issubclass(v, Exception) and not n.startswith("_")
    }
    assert public_errors - {"GraphAuthError", "GraphUnreachableError"} <= set(gradesync.__all__)


def test_importing_the_package_loads_no_stage() -> None:
    heavy = "('pandas', 'gradesync.pipeline')"
    code = f"import sys, gradesync; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        gradesync.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as e:
        assert "NoSuchThing" in str(e)
    else:
        raise AssertionError("gradesync.NoSuchThing resolved")
