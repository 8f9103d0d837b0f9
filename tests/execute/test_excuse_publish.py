"""Excused marks and ``--return`` publishing against the emulator, through ``gradesync sync``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_threeway import pick, recon, summary, sync, write_csv

from graph_emulator import FaultConfig
from graph_emulator.state import iter_submissions, points_outcome


def submission(server: Any, sid: str) -> dict[str, Any]:
    return next(sub for _, _, sub in iter_submissions(server.state()) if sub["id"] == sid)


def published(server: Any, sid: str) -> tuple[str, Any, Any]:
    """(status, points, publishedPoints) of a submission in the emulator."""
    sub = submission(server, sid)
    po = points_outcome(sub) or {}
    return sub["status"], po.get("points"), po.get("publishedPoints")


EXCUSE = '[policy]\nexcused_marks = ["EX"]\n'


def test_excused_mark_excuses_and_is_then_a_noop(emulator: Any, token: str, tmp_path: Path) -> None:
    a, b = pick(emulator.state(), 2, quiet=True)
    inputs = write_csv(tmp_path / "g.csv", [(a, "ex"), (b, f"{b['max'] - 1:g}")])
    first = sync(tmp_path, emulator, token, inputs, config=EXCUSE)
    assert first.exit_code == 0, first.output
    rows = recon(tmp_path)
    assert [(r["action"], r["status"], r["excuse"]) for r in rows] == [
        ("excuse", "excused", "yes"),
        ("update", "updated", "no"),
    ]
    assert submission(emulator, a["submission_id"])["status"] == "excused"
    second = sync(tmp_path, emulator, token, inputs, config=EXCUSE)
    assert second.exit_code == 0, second.output
    first_row = recon(tmp_path)[0]
    assert (first_row["action"], first_row["reason"], first_row["status"]) == (
        "noop",
        "already_excused",
        "unchanged",
    )


def test_excused_mark_without_configuration_is_rejected(emulator: Any, token: str, tmp_path: Path) -> None:
    (a,) = pick(emulator.state())
    result = sync(tmp_path, emulator, token, write_csv(tmp_path / "g.csv", [(a, "EX")]))
    assert result.exit_code == 1, result.output
    assert recon(tmp_path)[0]["reason"] == "invalid_points"
    assert submission(emulator, a["submission_id"])["status"] != "excused"


def test_excuse_and_return_converge_when_answers_are_lost(emulator: Any, token: str, tmp_path: Path) -> None:
    """Writes applied but answered 5xx/429 (fate unknown): re-read, never duplicated, all converge."""
    targets = pick(emulator.state(), 4, status="submitted", quiet=True)
    rows = [(t, "EX") for t in targets[:2]] + [(t, f"{t['max'] - 1:g}") for t in targets[2:]]
    inputs = write_csv(tmp_path / "g.csv", rows)
    emulator.configure(faults=FaultConfig(seed=3, rate_applied_error=0.4, scope="sub"))
    config = EXCUSE + '[publish]\nassignments = ["*"]\n'
    result = sync(tmp_path, emulator, token, inputs, "--return", config=config)
    emulator.configure(faults=None)
    assert result.exit_code == 0, result.output
    for t in targets[:2]:
        assert submission(emulator, t["submission_id"])["status"] == "excused"
    for t in targets[2:]:
        assert published(emulator, t["submission_id"]) == ("returned", t["max"] - 1, t["max"] - 1)
        assert (
            len([o for o in submission(emulator, t["submission_id"])["outcomes"] if o["type"] == "points"])
            == 1
        )
    assert [r["returned"] for r in recon(tmp_path)] == ["no", "no", "yes", "yes"]
    assert summary(tmp_path)["graph_requests"]["fate_unknown"] > 0  # the faults did hit the POSTs


def test_return_publishes_only_allowed_assignments(emulator: Any, token: str, tmp_path: Path) -> None:
    a, b, c = pick(emulator.state(), 3, status="submitted")
    before_b = published(emulator, b["submission_id"])
    inputs = write_csv(
        tmp_path / "g.csv", [(a, f"{a['max'] - 1:g}"), (b, f"{b['max'] - 2:g}"), (c, f"{c['max']:g}")]
    )
    config = f'[publish]\nassignments = ["{a["assignment"].upper()}", "{c["assignment_id"]}"]\n'
    result = sync(tmp_path, emulator, token, inputs, "--return", config=config)
    assert result.exit_code == 0, result.output
    assert published(emulator, a["submission_id"]) == ("returned", a["max"] - 1, a["max"] - 1)
    assert published(emulator, c["submission_id"]) == ("returned", c["max"], c["max"])
    status_b, points_b, published_b = published(emulator, b["submission_id"])
    assert (status_b, points_b, published_b) == (
        before_b[0],
        b["max"] - 2,
        before_b[2],
    )  # written, not published
    assert [r["returned"] for r in recon(tmp_path)] == ["yes", "no", "yes"]
    assert summary(tmp_path)["returned"] == 2


def test_without_return_nothing_is_published(emulator: Any, token: str, tmp_path: Path) -> None:
    a, b = pick(emulator.state(), 2)
    before = [published(emulator, t["submission_id"]) for t in (a, b)]
    inputs = write_csv(tmp_path / "g.csv", [(a, f"{a['max'] - 1:g}"), (b, f"{b['max'] - 1:g}")])
    result = sync(tmp_path, emulator, token, inputs, config='[publish]\nassignments = ["*"]\n')
    assert result.exit_code == 0, result.output
    after = [published(emulator, t["submission_id"]) for t in (a, b)]
    assert [(s, p) for s, _, p in after] == [(s, p) for s, _, p in before]
    assert [r["returned"] for r in recon(tmp_path)] == ["no", "no"]
    assert summary(tmp_path)["returned"] == 0


def test_return_with_an_empty_allow_list_returns_nothing(emulator: Any, token: str, tmp_path: Path) -> None:
    (a,) = pick(emulator.state())
    before = published(emulator, a["submission_id"])
    inputs = write_csv(tmp_path / "g.csv", [(a, f"{a['max'] - 1:g}")])
    result = sync(tmp_path, emulator, token, inputs, "--return")
    assert result.exit_code == 0, result.output
    assert "[publish] assignments is empty" in result.output
    assert published(emulator, a["submission_id"])[2] == before[2]
