"""Parsing in a cage (``[input] isolate``, ``gradesync/read/isolated.py``): a parse that aborts, runs
out of memory or of time costs only its own process; the caller, which may be holding an apply, gets
an ``InputError`` naming the file and carries on. With isolation on, the pipeline's read and inspect
give exactly what they give without it.

The crashes here are real: the child calls ``os.abort`` (what a Rust allocation failure does),
allocates past its ``RLIMIT_AS``, spins past its ``RLIMIT_CPU``, or sleeps past the wall-clock wait.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gradesync.config import InputSettings, Settings
from gradesync.errors import InputError
from gradesync.pipeline import Pipeline, make_client
from gradesync.read import read_inputs
from gradesync.read.inspect import inspect_inputs as inspect_in_process

REPO = Path(__file__).resolve().parents[2]
EXPORTS = REPO / "sample_data" / "exports"
MB = 1024 * 1024


def _cage() -> Any:
    from gradesync.read import _cage

    return _cage


def test_an_abort_in_the_parse_is_an_input_error_and_the_caller_carries_on() -> None:
    cage = _cage()
    with pytest.raises(InputError) as e:
        cage.run(os.abort, (), limits=cage.CageLimits(), files=["term1.xlsx"])
    assert e.value.code == "input-reader-failed" and e.value.file == "term1.xlsx"
    assert "SIGABRT" in e.value.message
    assert cage.run(sum, ([1, 2, 3],), limits=cage.CageLimits(), files=["x"]) == 6  # still working


def test_memory_past_the_limit_is_an_input_error() -> None:
    cage = _cage()
    with pytest.raises(InputError) as e:
        cage.run(bytearray, (2048 * MB,), limits=cage.CageLimits(memory_bytes=512 * MB), files=["big.csv"])
    assert e.value.code == "input-reader-limit" and "512 MB" in e.value.message
    assert "isolate_memory_mb" in e.value.message


def test_cpu_time_past_the_limit_is_an_input_error() -> None:
    cage = _cage()
    with pytest.raises(InputError) as e:
        cage.run(sum, (range(10**13),), limits=cage.CageLimits(cpu_seconds=1), files=["slow.csv"])
    assert e.value.code == "input-reader-limit" and "isolate_cpu_seconds" in e.value.message


def test_a_parse_that_never_ends_is_stopped() -> None:
    cage = _cage()
    started = time.monotonic()
    with pytest.raises(InputError) as e:
        cage.run(time.sleep, (3600,), limits=cage.CageLimits(wall_seconds=1.0), files=["fifo.csv"])
    assert e.value.code == "input-reader-limit" and "was stopped" in e.value.message
    assert time.monotonic() - started < 600  # it did not wait for the hour


def _settings(**input_kw: Any) -> Settings:
    return Settings(input=InputSettings(**input_kw))


SAMPLES = [
    [EXPORTS / "powerschool_scores.csv"],
    [EXPORTS / "registrar_workbook.xlsx"],
    [EXPORTS / "oneroster_gradebook.zip"],
    [REPO / "sample_data" / "sis_long.csv", REPO / "sample_data" / "gradebook_wide.csv"],
]


@pytest.mark.parametrize("paths", SAMPLES, ids=lambda p: "+".join(x.name for x in p))
def test_an_isolated_read_is_the_same_read(paths: list[Path]) -> None:
    from gradesync.read.isolated import inspect_inputs
    from gradesync.read.isolated import read_inputs as read_isolated

    here = read_inputs(paths, _settings(class_key="SEC-1001"))
    there = read_isolated(paths, _settings(class_key="SEC-1001", isolate=True))
    pd.testing.assert_frame_equal(here.frame, there.frame)
    assert (here.inputs, here.warnings, here.diagnoses) == (there.inputs, there.warnings, there.diagnoses)
    assert (
        inspect_inputs(paths, _settings(isolate=True)).asdict() == inspect_inputs(paths, _settings()).asdict()
    )


@pytest.mark.parametrize("isolate", [True, False])
def test_the_pipeline_parses_in_the_cage_when_isolate_is_on(isolate: bool) -> None:
    """The contract the web app codes against: with ``[input] isolate`` the pipeline's inspect and
    read parse in a child (``_cage.run``); without it, in this process. Same answers either way."""
    from gradesync.read import _cage

    calls: list[str] = []
    real = _cage.run

    def watched(fn: Any, *args: Any, **kw: Any) -> Any:
        calls.append(fn.__name__)
        return real(fn, *args, **kw)

    settings = _settings(isolate=isolate, class_key="SEC-1001")
    pipeline = Pipeline(settings, make_client(settings, token="t"))
    paths = [EXPORTS / "registrar_workbook.xlsx", EXPORTS / "canvas_gradebook.csv"]
    _cage.run = watched
    try:
        inspection = pipeline.inspect(paths)
        read = pipeline._read(paths, class_key="SEC-1001", sheet=None, mapping=None, format=None)
    finally:
        _cage.run = real
    assert calls == (["inspect_inputs", "read_inputs"] if isolate else [])
    assert inspection.asdict() == inspect_in_process(paths, _settings(class_key="SEC-1001")).asdict()
    assert len(read.frame) == len(read_inputs(paths, _settings(class_key="SEC-1001")).frame)


def test_an_error_raised_in_the_cage_keeps_its_details(tmp_path: Path) -> None:
    from gradesync.read.isolated import read_inputs as read_isolated

    with pytest.raises(InputError) as e:
        read_isolated([tmp_path / "missing.csv"], _settings(isolate=True))
    assert (e.value.code, e.value.file) == ("input-missing-file", str(tmp_path / "missing.csv"))
    assert e.value.hint and e.value.exit_code == 2
