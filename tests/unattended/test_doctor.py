"""``gradesync doctor`` against the emulator: every check passes on Graph as documented, and each fails
when the emulator breaks the one promise it checks (``graph_emulator.behaviour.BREAKABLE``); ``sync``
refuses to start after a critical failure until a passing run (or ``--ignore-doctor``)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gradesync.cli import cli
from gradesync.doctor import token_claims
from gradesync.state.doctor import DOCTOR_NAME


def doctor(server: Any, token: str, state: Path, *args: str) -> Any:
    env = {"GRADESYNC_GRAPH_URL": server.base_url, "GRADESYNC_ACCESS_TOKEN": token, "COLUMNS": "200"}
    return CliRunner().invoke(cli, ["doctor", "--state-dir", str(state), "--json", *args], env=env)


def results(out: str) -> dict[str, tuple[str, str]]:
    report = json.loads(out[: out.rindex("}") + 1])
    return {c["name"]: (c["result"], c["evidence"]) for c in report["checks"]}


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT with ``claims`` (the doctor reads claims without verifying them)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def one_grade(tenant: dict[str, Any]) -> str:
    """A CSV row changing one grade of a submitted submission of an assigned assignment."""
    users = {u["id"]: u for u in tenant["users"]}
    for cls in tenant["classes"]:
        for asg in cls["assignments"]:
            if asg.get("status") != "assigned" or not asg.get("grading"):
                continue
            for sub in asg["submissions"]:
                uid = sub["recipient"].get("userId")
                if sub["status"] == "submitted" and uid:
                    upn, points = users[uid]["userPrincipalName"], asg["grading"]["maxPoints"] - 1
                    return f"{cls['externalId']},{asg['displayName']},{upn},{points:g}"
    raise AssertionError("no submitted submission")


def test_every_check_passes_on_graph_as_documented(emulator: Any, token: str, tmp_path: Path) -> None:
    result = doctor(emulator, token, tmp_path, "--write-check", "SEC-1001", "Unit 1 Quiz")
    assert result.exit_code == 0, result.output
    got = results(result.output)
    for name in ("graph-read", "write-access", "expand-outcomes", "paging", "prefer-header", "batch-headers"):
        assert got[name][0] == "pass", (name, got[name])
    assert got["token-permissions"][0] == "warn"  # the emulator's token is no JWT: unknown, said so
    assert "'excused' with the header, 'returned' without it" in got["prefer-header"][1]
    assert "assigned" in got["assignment-states"][1] and "draft 1" in got["assignment-states"][1]
    record = json.loads((tmp_path / DOCTOR_NAME).read_text(encoding="utf-8"))
    assert record["critical_failed"] == [] and record["graph_base_url"] == emulator.base_url


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        ("prefer", "prefer-header"),
        ("expand", "expand-outcomes"),
        ("nextlink", "paging"),
        ("batch-headers", "batch-headers"),
        ("writes", "write-access"),
    ],
)
def test_each_broken_promise_fails_its_check(
    emulator: Any, token: str, tmp_path: Path, broken: str, check: str
) -> None:
    emulator.configure(broken=[broken])
    result = doctor(emulator, token, tmp_path, "--write-check", "SEC-1001", "Unit 1 Quiz")
    assert result.exit_code == 1, result.output
    got = results(result.output)
    assert got[check][0] == "fail", got[check]
    assert [n for n, (r, _) in got.items() if r == "fail"] == [check]  # only that one
    record = json.loads((tmp_path / DOCTOR_NAME).read_text(encoding="utf-8"))
    assert record["critical_failed"] == [check]


def test_inactive_assignments_read_without_the_header_are_a_warning(
    emulator: Any, token: str, tmp_path: Path, sample_tenant: dict[str, Any]
) -> None:
    sample_tenant["classes"][0]["assignments"][0]["status"] = "inactive"
    emulator.reset(sample_tenant)
    emulator.configure(broken=["prefer"])
    got = results(doctor(emulator, token, tmp_path).output)
    assert got["assignment-states"][0] == "warn" and "unknownFutureValue 1" in got["assignment-states"][1]


@pytest.mark.parametrize(
    ("claims", "result", "said"),
    [
        (
            {"roles": ["EduAssignments.ReadWrite.All", "EduRoster.Read.All"], "appid": "x"},
            "pass",
            "application token (roles): EduAssignments.ReadWrite.All, EduRoster.Read.All; Graph's v1.0",
        ),
        (
            {"scp": "EduAssignments.ReadWrite EduRoster.ReadBasic openid", "upn": "t@contoso.edu"},
            "pass",
            "delegated token of t@contoso.edu (scp): EduAssignments.ReadWrite, EduRoster.ReadBasic (+1 "
            "other); a delegated token writes only to the classes its user teaches",
        ),
        ({"roles": ["EduAssignments.Read.All"]}, "fail", "nothing here writes grades"),
        ({"roles": ["EduAssignments.ReadWriteBasic.All"]}, "fail", "the ...Basic permissions leave out"),
    ],
)
def test_the_token_s_permissions_are_read_from_its_claims_and_never_shown(
    emulator_factory: Any, tmp_path: Path, claims: dict[str, Any], result: str, said: str
) -> None:
    token = jwt(claims)
    srv = emulator_factory(token=token)
    out = doctor(srv, token, tmp_path)
    got = results(out.output)
    assert got["token-permissions"][0] == result and said in got["token-permissions"][1]
    assert token not in out.output and token not in (tmp_path / DOCTOR_NAME).read_text(encoding="utf-8")
    assert out.exit_code == (0 if result == "pass" else 1)


def test_token_claims_of_what_is_not_a_jwt() -> None:
    assert token_claims("dev") is None and token_claims("a.!!!.c") is None
    assert token_claims(jwt({"roles": ["x"]})) == {"roles": ["x"]}


def test_sync_refuses_to_start_after_a_critical_failure_until_doctor_passes(
    emulator: Any, token: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    inputs = tmp_path / "g.csv"
    rows = "class,assignment,student,points\n" + one_grade(emulator.state()) + "\n"
    inputs.write_text(rows, encoding="utf-8")
    env = {"GRADESYNC_GRAPH_URL": emulator.base_url, "GRADESYNC_ACCESS_TOKEN": token}
    argv = ["sync", str(inputs), "--state-dir", str(state), "--report-dir", str(tmp_path / "rep")]

    emulator.configure(broken=["expand"])
    assert doctor(emulator, token, state).exit_code == 1
    emulator.configure(broken=[])
    refused = CliRunner().invoke(cli, argv, env=env)
    assert refused.exit_code == 4, refused.output
    assert "doctor-check-failed" in refused.output and "expand-outcomes" in refused.output
    assert emulator.stats()["writes_applied"] == 0
    anyway = CliRunner().invoke(cli, [*argv, "--ignore-doctor"], env=env)
    assert anyway.exit_code == 0, anyway.output
    assert doctor(emulator, token, state).exit_code == 0  # fixed: a passing run clears it
    again = CliRunner().invoke(cli, argv, env=env)
    assert again.exit_code == 0, again.output
