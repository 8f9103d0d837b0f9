"""Control endpoints, the tenant generator, tenant loading and the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from emulator_testkit import client

from gradesync.cli.emulator import emulator_command
from graph_emulator import (
    EmulatorServer,
    generate_tenant,
    load_tenant,
    materialize_tenant,
    points_outcome,
)
from graph_emulator.cli import main as emulator_main

ROOT = Path(__file__).resolve().parents[2]


def test_control_endpoints_over_http(emulator, sample_tenant):
    with client(emulator) as http:
        http.get("/education/classes").raise_for_status()
    assert httpx.get(emulator.url + "/_emulator/state").json() == sample_tenant
    stats = httpx.get(emulator.url + "/_emulator/stats").json()
    assert stats["http_requests"] == 1 and stats["by_route"] == {"GET /education/classes": 1}
    zero = httpx.post(emulator.url + "/_emulator/stats/reset").json()
    assert zero["http_requests"] == 0 and zero["graph_requests"] == 0
    cfg = httpx.post(
        emulator.url + "/_emulator/config",
        json={"page_size": 2, "faults": "seed=1,503=0.5", "throttle": "graph"},
    ).json()
    assert cfg["page_size"] == 2 and cfg["faults"]["rate_503"] == 0.5 and cfg["throttle"]["per_10s"] == 350
    assert httpx.post(emulator.url + "/_emulator/config", json={"faults": "bogus=1"}).status_code == 400
    small = generate_tenant(classes=1, students=3, assignments=2, seed=9)
    assert httpx.post(emulator.url + "/_emulator/reset", json=small).status_code == 200
    assert emulator.state() == small
    assert httpx.post(emulator.url + "/_emulator/reset", json={"nope": 1}).status_code == 400
    assert httpx.get(emulator.url + "/_emulator/nothing").status_code == 404


def test_generator_has_the_variety_real_schools_have():
    t = generate_tenant(classes=4, students=30, assignments=5, seed=1)
    users = {u["id"]: u for u in t["users"]}
    students = [u for u in t["users"] if u["primaryRole"] == "student"]
    assert any(u["student"]["externalId"] is None for u in students)
    sis = [u["student"]["externalId"] for u in students if u["student"]["externalId"]]
    assert all(len(x) == 6 and x.startswith("000") for x in sis)
    assert any(u["student"]["studentNumber"] is None for u in students)
    assert any(u["mail"] and u["mail"] != u["userPrincipalName"] for u in students)
    assert {u["primaryRole"] for u in users.values()} == {"student", "teacher"}
    membership = [m for c in t["classes"] for m in c["members"] if users[m]["primaryRole"] == "student"]
    assert len(membership) > len(set(membership))  # some students are in two classes
    asgs = [a for c in t["classes"] for a in c["assignments"]]
    assert all(c["assignments"][0]["displayName"] == "Unit 1 Quiz" for c in t["classes"])
    assert {a["grading"]["maxPoints"] for a in asgs if a["grading"]} == {10, 20, 50, 100}
    assert any(a["grading"] is None for a in asgs)
    assert any(a["status"] == "draft" and a["submissions"] == [] for a in asgs)
    subs = [s for a in asgs if a["grading"] for s in a["submissions"]]
    assert {s["status"] for s in subs} >= {"working", "submitted", "returned", "excused"}
    assert any("groupId" in s["recipient"] for s in subs)
    assert all(points_outcome(s) is not None for s in subs)  # v1.0: every graded submission has one
    pts = [points_outcome(s) for s in subs if points_outcome(s)]
    assert any(o["points"] is None for o in pts)
    assert any(o["publishedPoints"] is not None and o["publishedPoints"] != o["points"] for o in pts)
    ids = [s["id"] for s in subs] + [o["id"] for s in subs for o in s["outcomes"]]
    assert len(ids) == len(set(ids))


def test_generator_points_outcomes_some_is_the_same_tenant_minus_the_ungraded_outcomes():
    always = generate_tenant(classes=2, students=10, assignments=4, seed=3)
    some = generate_tenant(classes=2, students=10, assignments=4, seed=3, points_outcomes="some")
    pairs = [
        (sa, ss)
        for ca, cs in zip(always["classes"], some["classes"], strict=True)
        for aa, as_ in zip(ca["assignments"], cs["assignments"], strict=True)
        for sa, ss in zip(aa["submissions"], as_["submissions"], strict=True)
    ]
    missing = [sa for sa, ss in pairs if points_outcome(ss) is None and points_outcome(sa) is not None]
    assert missing, "the older shape has graded submissions without a points outcome"
    assert all(points_outcome(sa)["points"] is None for sa in missing)
    assert all(
        [o for o in sa["outcomes"] if o is not points_outcome(sa) or points_outcome(ss)] == ss["outcomes"]
        for sa, ss in pairs
    )
    with pytest.raises(ValueError, match="points_outcomes"):
        generate_tenant(classes=1, students=1, assignments=1, points_outcomes="never")


def test_generator_is_deterministic_and_lazy_equals_eager():
    a = generate_tenant(classes=3, students=8, assignments=4, seed=5)
    assert a == generate_tenant(classes=3, students=8, assignments=4, seed=5)
    assert a != generate_tenant(classes=3, students=8, assignments=4, seed=6)
    lazy = generate_tenant(classes=3, students=8, assignments=4, seed=5, lazy=True)
    assert all(
        "submissions" not in x for c in lazy["classes"] for x in c["assignments"] if x["status"] != "draft"
    )
    assert materialize_tenant(lazy) == a


def test_lazy_tenant_served_consistently():
    big = generate_tenant(classes=200, students=30, assignments=20, seed=3)  # lazy by default (120k)
    assert "generated" in big["classes"][150]["assignments"][3]
    cls = big["classes"][150]
    asg = cls["assignments"][3]
    with EmulatorServer(big, token="t") as srv, client(srv, token="t") as http:
        url = f"/education/classes/{cls['id']}/assignments/{asg['id']}/submissions?$expand=outcomes"
        first = http.get(url).json()
        again = http.get(url).json()
        found = http.get("/education/classes", params={"$filter": "externalId eq 'SEC-1151'"}).json()
    assert first == again and len(first["value"]) == 25 and "@odata.nextLink" in first
    assert [c["id"] for c in found["value"]] == [cls["id"]]


def test_load_tenant_validates(tmp_path):
    assert load_tenant(ROOT / "sample_data" / "tenant.json")["classes"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"users": []}))
    with pytest.raises(ValueError, match="classes"):
        load_tenant(bad)


def test_cli_rejects_bad_options():
    runner = CliRunner()
    r = runner.invoke(emulator_command, ["--generate", "classes=x"])
    assert r.exit_code == 2
    r = runner.invoke(emulator_command, ["--faults", "nope=1"])
    assert r.exit_code == 2 and "unknown fault setting" in r.output
    r = runner.invoke(
        emulator_command, ["--tenant", str(ROOT / "sample_data" / "tenant.json"), "--generate", "classes=1"]
    )
    assert r.exit_code == 2
    r = runner.invoke(emulator_command, ["--throttle", "per_10s=0"])
    assert r.exit_code == 2 and "at least 1" in r.output
    r = runner.invoke(emulator_command, ["--enum-evolution", "v2"])
    assert r.exit_code == 2
    r = runner.invoke(
        emulator_command, ["--generate", "classes=1,students=2,assignments=1,points_outcomes=x"]
    )
    assert r.exit_code == 2 and "points_outcomes" in r.output


def test_python_dash_m_rejects_bad_options(capsys):
    with pytest.raises(SystemExit) as exc:
        emulator_main(["--throttle", "nonsense=1"])
    assert exc.value.code == 2 and "nonsense" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("entry", [["gradesync", "emulator"], ["graph_emulator"]])
def test_cli_serves_a_paged_list(entry):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            *entry,
            "--port",
            str(port),
            "--tenant",
            str(ROOT / "sample_data" / "tenant.json"),
            "--token",
            "dev",
            "--page-size",
            "3",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        r = None
        while time.monotonic() < deadline:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/v1.0/education/classes", headers={"Authorization": "Bearer dev"}
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r is not None and r.status_code == 200
        assert len(r.json()["value"]) == 3 and r.json()["@odata.nextLink"].startswith(
            f"http://127.0.0.1:{port}/"
        )
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/v1.0" in out and "Bearer token: dev" in out
    assert "enum evolution" in out and "action lag" in out and "publish lag" in out
