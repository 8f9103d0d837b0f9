"""Graph answers that lie (``graph_emulator/lies.py``), through the real pipeline over real HTTP.

Every test runs read → resolve → plan → apply (in process, or ``gradesync sync`` through click) against
an emulator telling one lie, then checks that the run failed clearly (a named error code, the
documented exit code) or carried on correctly — and in every case that no wrong grade was written:
each points outcome afterwards holds its old value or the desired value of a valid row, and no
submission has two points outcomes.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from benchmarks.robustness import check_grades, expected_grades
from gradesync.cli import cli
from gradesync.config import Settings
from gradesync.errors import ExitCode, GraphError
from gradesync.execute.apply import ApplyOptions, apply_plan
from gradesync.graph import GraphClient, RateLimit, RetryPolicy
from gradesync.pipeline import make_plan
from gradesync.state.journal import Journal
from graph_emulator import LieConfig

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
INPUTS = [SAMPLES / "sis_long.csv", SAMPLES / "gradebook_wide.csv"]
FAST = RetryPolicy(max_attempts=6, base_delay=0.001, max_delay=0.01, max_total_seconds=10.0)
LOOSE = ApplyOptions()
LOOSE_CLI = ["--max-changes", "100%", "--max-decreases", "100%", "--min-coverage", "off"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A foreign host: records every request (and whether it carried a token), answers an empty page."""

    seen: list[dict[str, str]]

    def _any(self) -> None:
        self.seen.append({"path": self.path, "authorization": self.headers.get("Authorization") or ""})
        body = b'{"value": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _any

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def foreign() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """(origin, requests seen) of a second HTTP listener on 127.0.0.1 (another port = another origin)."""
    seen: list[dict[str, str]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()
    srv.server_close()


def _client(server: Any, token: str) -> GraphClient:
    return GraphClient(
        server.base_url,
        lambda: token,
        policy=FAST,
        rate_limit=RateLimit.off(),
        timeout=10,
        sleep=lambda s: None,
        max_in_flight=1,  # one envelope at a time: the lies' seeded draws come in a fixed order
    )


def _settings(server: Any) -> Settings:
    return Settings.model_validate({"graph": {"base_url": server.base_url}})


@pytest.fixture(scope="module")
def reference() -> Any:
    """The honest plan of the inputs against the sample tenant: what a valid row wants."""
    from graph_emulator import EmulatorServer, ThrottleConfig, load_tenant

    with EmulatorServer(
        load_tenant(SAMPLES / "tenant.json"), token="t", throttle=ThrottleConfig.off()
    ) as srv:
        client = _client(srv, "t")
        with client:
            return make_plan(INPUTS, _settings(srv), client).rows


def _sync(server: Any, token: str, tmp: Path, options: ApplyOptions = LOOSE) -> Any:
    """make_plan + apply in process; returns the ApplyResult (or raises what the pipeline raised)."""
    with _client(server, token) as client:
        plan = make_plan(INPUTS, _settings(server), client)
        with Journal.in_dir(tmp / "state") as journal:
            return apply_plan(plan, client, journal=journal, options=options)


def _assert_no_wrong_grade(server: Any, before: dict, reference: Any, *, converged: bool) -> None:
    problems = check_grades(before, server.state(), expected_grades(reference), converged=converged)
    assert not problems, problems[:5]


def _assert_done(result: Any, reference: Any) -> None:
    """Every input row reported, valid ones done, rejected ones rejected, as the honest plan says."""
    assert len(result.rows) == len(reference)
    want = reference["action"].eq("reject")
    assert result.rows["status"].eq("rejected").tolist() == want.tolist()
    assert result.rows.loc[~want, "status"].isin(["updated", "created", "unchanged"]).all()


# ---------------------------------------------------------------- fails clearly, token stays home
@pytest.mark.parametrize("route", ["list_submissions", "list_members", None])
def test_foreign_nextlink_fails_clearly_and_no_token_leaves(
    emulator: Any, token: str, tmp_path: Path, reference: Any, foreign: Any, route: str | None
) -> None:
    origin, seen = foreign
    emulator.configure(lies=LieConfig.always("foreign_nextlink", route, foreign_host=origin))
    before = emulator.state()
    with pytest.raises(GraphError) as info:
        _sync(emulator, token, tmp_path)
    assert info.value.code == "graph-foreign-nextlink"
    assert info.value.exit_code == ExitCode.ROWS_NOT_DONE
    assert emulator.stats()["lies"]["foreign_nextlink"] >= 1
    assert seen == []  # not a single request reached the other host, with or without a token
    assert emulator.state() == before  # nothing was written


def test_foreign_nextlink_through_the_cli_exit_code_and_message(
    emulator: Any, token: str, tmp_path: Path, foreign: Any
) -> None:
    origin, seen = foreign
    emulator.configure(lies=LieConfig.always("foreign_nextlink", "list_submissions", foreign_host=origin))
    before = emulator.state()
    env = {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}
    argv = ["sync", *map(str, INPUTS), "--report-dir", str(tmp_path / "rep")]
    argv += ["--state-dir", str(tmp_path / "state"), "--quiet", *LOOSE_CLI]
    result = CliRunner().invoke(cli, argv, env=env)
    assert result.exit_code == ExitCode.ROWS_NOT_DONE, result.output
    assert "error [graph-foreign-nextlink]" in result.output
    assert token not in result.output
    assert seen == []
    assert emulator.state() == before


def test_foreign_nextlink_on_evil_example_is_refused_before_any_connection(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    emulator.configure(lies="foreign_nextlink@list_submissions=1")  # default host https://evil.example
    with pytest.raises(GraphError) as info:
        _sync(emulator, token, tmp_path)
    assert info.value.code == "graph-foreign-nextlink" and "evil.example" in info.value.message


@pytest.mark.parametrize("route", ["list_submissions", "list_assignments", None])
def test_endless_nextlink_loop_is_detected(
    emulator: Any, token: str, tmp_path: Path, reference: Any, route: str | None
) -> None:
    emulator.configure(lies=LieConfig.always("nextlink_loop", route))
    before = emulator.state()
    with pytest.raises(GraphError) as info:
        _sync(emulator, token, tmp_path)
    assert info.value.code == "graph-nextlink-loop"
    assert emulator.stats()["graph_requests"] < 100  # detected at once, not after thousands of pages
    assert emulator.state() == before


def test_malformed_json_always_fails_clearly_after_retries(emulator: Any, token: str, tmp_path: Path) -> None:
    emulator.configure(lies="malformed_json=1")
    before = emulator.state()
    with pytest.raises(GraphError) as info:
        _sync(emulator, token, tmp_path)
    assert info.value.code == "graph-malformed-response"
    assert emulator.state() == before


def test_batch_missing_id_always_while_reading_fails_clearly(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    emulator.configure(lies="batch_missing_id=1")
    before = emulator.state()
    with pytest.raises(GraphError) as info:
        _sync(emulator, token, tmp_path)
    assert info.value.code == "graph-batch-missing-response"
    assert emulator.state() == before


# ---------------------------------------------------------------- carries on correctly
@pytest.mark.parametrize(
    "lie",
    [
        "unknown_outcome_type=1",
        "bare_points=1",
        "unknown_outcome_type=1,bare_points=1",
        "huge_page@list_submissions=1,huge_page@list_members=1,huge_items=4000",
        "seed=1,malformed_json=0.3",
        "seed=2,batch_missing_id=0.4",
        "seed=3,batch_duplicate_id=0.3",
    ],
)
def test_the_pipeline_carries_on_correctly(
    emulator: Any, token: str, tmp_path: Path, reference: Any, lie: str
) -> None:
    emulator.configure(lies=lie)
    before = emulator.state()
    result = _sync(emulator, token, tmp_path)
    assert sum(emulator.stats()["lies"].values()) > 0  # the lie was really told
    _assert_done(result, reference)
    _assert_no_wrong_grade(emulator, before, reference, converged=True)


def test_unknown_outcome_types_and_bare_points_plan_exactly_like_the_truth(
    emulator: Any, token: str, reference: Any
) -> None:
    emulator.configure(lies="unknown_outcome_type=1,bare_points=1")
    with _client(emulator, token) as client:
        plan = make_plan(INPUTS, _settings(emulator), client)
    cols = ["action", "reason", "submission_id", "outcome_id", "before_points", "desired_points"]
    assert plan.rows[cols].equals(reference[cols])


@pytest.mark.parametrize("lie", ["malformed_json@batch=1", "batch_missing_id=1", "batch_duplicate_id=1"])
def test_lies_on_every_write_batch_never_duplicate_or_misplace_a_grade(
    emulator: Any, token: str, tmp_path: Path, reference: Any, lie: str
) -> None:
    """The writes really happen, but every $batch answer about them is broken: PATCHes are retried,
    POSTs are never re-sent blindly — a re-read decides. The grades end right, once each."""
    with _client(emulator, token) as client:
        plan = make_plan(INPUTS, _settings(emulator), client)
        before = emulator.state()
        emulator.configure(lies=lie)
        with Journal.in_dir(tmp_path / "state") as journal:
            result = apply_plan(plan, client, journal=journal, options=LOOSE)
    assert sum(emulator.stats()["lies"].values()) > 0
    _assert_no_wrong_grade(emulator, before, reference, converged=False)
    # the re-reads ride $batch too, so some rows may stay unconfirmed: reported, never lost
    assert len(result.rows) == len(reference)
    # unconfirmed rows are carried over (a transient reason), never final `failed`
    assert result.rows["status"].isin(["updated", "created", "unchanged", "rejected", "carried_over"]).all()
    # once Graph tells the truth again, --resume confirms every row
    emulator.configure(lies=None)
    with _client(emulator, token) as client, Journal.in_dir(tmp_path / "state") as journal:
        resumed = apply_plan(plan, client, journal=journal, options=ApplyOptions(resume=True))
    _assert_no_wrong_grade(emulator, before, reference, converged=False)
    assert len(resumed.rows) == len(reference)


def test_huge_page_with_default_guards_is_refused_or_correct(
    emulator: Any, token: str, tmp_path: Path, reference: Any
) -> None:
    """5,000 invented submissions make the input cover a tiny share of the roster: the coverage guard
    may refuse (exit 4) — either way nothing wrong is written. A nightly sync, default guards."""
    from gradesync.pipeline import Pipeline

    emulator.configure(lies="huge_page@list_submissions=1,huge_items=5000")
    before = emulator.state()
    settings = _settings(emulator).override("apply", state_dir=str(tmp_path / "state"))
    settings = settings.override("run", runs_dir=str(tmp_path / "runs"))
    with _client(emulator, token) as client:
        result = Pipeline(settings, client, argv=["test"]).sync(INPUTS, report_dir=tmp_path / "reports")
    if result.exit_code is ExitCode.GUARD:
        assert emulator.state() == before
    else:
        _assert_done(result, reference)
        _assert_no_wrong_grade(emulator, before, reference, converged=True)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_every_lie_at_once_fails_clearly_or_converges(
    emulator: Any, token: str, tmp_path: Path, reference: Any, seed: int
) -> None:
    spec = (
        f"seed={seed},malformed_json=0.1,batch_missing_id=0.1,batch_duplicate_id=0.1,"
        "unknown_outcome_type=0.5,bare_points=0.5,nextlink_loop=0.02,foreign_nextlink=0.02,"
        "huge_page=0.2,huge_items=500"
    )
    emulator.configure(lies=spec)
    before = emulator.state()
    known = {
        "graph-foreign-nextlink",
        "graph-nextlink-loop",
        "graph-malformed-response",
        "graph-batch-missing-response",
    }
    try:
        result = _sync(emulator, token, tmp_path)
    except GraphError as exc:
        assert exc.code in known, exc
    else:
        assert len(result.rows) == len(reference)
    _assert_no_wrong_grade(emulator, before, reference, converged=False)
