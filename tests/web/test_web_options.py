"""The rest of the CLI on the web: --allow-clear (a second confirmation naming how many grades are
cleared), --strict, --return (publishing, only on the assignments [publish] allows), resume of a run
that carried rows over, and the students with no row listed with their SIS ids."""

from __future__ import annotations

import re
from typing import Any

from gradesync.state.runs import list_runs
from tests.web.client import approve, changed, client, events, post_map, upload
from tests.web.conftest import web_config


def _graded(tenant: dict[str, Any], external_id: str, assignment: str) -> list[tuple[str, float, str]]:
    """(SIS id, points, submission id) of the students of a class with a grade on an assignment."""
    users = {u["id"]: u for u in tenant["users"]}
    klass = next(c for c in tenant["classes"] if c["externalId"] == external_id)
    task = next(a for a in klass["assignments"] if a["displayName"] == assignment)
    out = []
    for s in task["submissions"]:
        points = next((o.get("points") for o in s.get("outcomes") or [] if o.get("type") == "points"), None)
        sis = ((users.get((s.get("recipient") or {}).get("userId"), {}).get("student")) or {}).get(
            "externalId"
        )
        if points is not None and sis and s.get("status") != "excused":
            out.append((sis, float(points), s["id"]))
    return out


def _points(emulator: Any, submission_id: str) -> Any:
    for c in emulator.state()["classes"]:
        for a in c["assignments"]:
            for s in a.get("submissions") or []:
                if s["id"] == submission_id:
                    return [o.get("points") for o in s.get("outcomes") or [] if o.get("type") == "points"]
    return None


def _to_preview(c: Any, name: str, body: bytes, **changes: str) -> tuple[str, str, str]:
    key, map_url = upload(c, (name, body))
    r = post_map(c, map_url, key, c.get(map_url).text, **changes)
    return key, r.headers["location"], c.get(r.headers["location"]).text


def test_clearing_needs_allowing_and_a_second_confirmation_naming_the_count(
    emulator, token, tmp_path, sample_tenant
):
    (a, _, sub_a), (b, points_b, sub_b), *_ = _graded(sample_tenant, "SEC-1003", "Unit 1 Quiz")
    body = f"Section ID,Student ID,Unit 1 Quiz\nSEC-1003,{a},CLEAR\nSEC-1003,{b},{points_b + 1}\n".encode()
    c = client(web_config(emulator, token, tmp_path / "state"))
    key, preview_url, page = _to_preview(c, "corrections.csv", body)
    assert re.search(r'id="clear-count">1<', page) and "Apply would be refused" in page
    assert 'id="approve-form"' not in page  # refused by the guards: nothing to approve
    base = preview_url.rsplit("/", 1)[0]
    r = c.post(f"{base}/options?csrf={key}", data={"allow_clear": "yes"}, follow_redirects=False)
    page = c.get(r.headers["location"]).text
    assert "The guards would let this plan be applied" in page
    assert "I confirm that <b>1</b> grades will be <b>cleared</b>" in page
    r = approve(c, preview_url, key, page)  # the first box ticked, not the second
    assert r.status_code == 400 and "clears 1 grades" in r.text
    assert _points(emulator, sub_a) != [None]
    r = approve(c, preview_url, key, page, confirm_clear="1")
    assert '"stage": "done"' in events(c, r.headers["location"])[-1]
    assert _points(emulator, sub_a) in ([None], [])  # cleared
    assert _points(emulator, sub_b) == [points_b + 1]


def test_strict_refuses_the_whole_plan_when_a_row_is_rejected(emulator, token, tmp_path, sample_tenant):
    (a, points_a, _), *_ = _graded(sample_tenant, "SEC-1003", "Unit 1 Quiz")
    body = f"Section ID,Student ID,Unit 1 Quiz\nSEC-1003,{a},{points_a + 1}\nSEC-1003,999999,5\n".encode()
    c = client(web_config(emulator, token, tmp_path / "state"))
    _, _, page = _to_preview(c, "strict.csv", body, strict="yes")
    assert 'id="strict-refused"' in page and 'id="approve-form"' not in page
    _, _, page = _to_preview(c, "tolerant.csv", body)
    assert 'id="strict-refused"' not in page and 'id="approve-form"' in page


def _submission(emulator: Any, submission_id: str) -> dict[str, Any]:
    return next(
        s
        for cl in emulator.state()["classes"]
        for t in cl["assignments"]
        for s in t.get("submissions") or []
        if s["id"] == submission_id
    )


def _published(emulator: Any, submission_id: str) -> float | None:
    """The points the students see (the points outcome's ``publishedPoints``)."""
    outcomes = _submission(emulator, submission_id).get("outcomes") or []
    points = next(o for o in outcomes if "points" in str(o.get("@odata.type", o.get("type", ""))).lower())
    published = points.get("publishedPoints")
    return published.get("points") if isinstance(published, dict) else published


def test_return_publishes_the_grades_written_only_on_the_assignments_allowed(
    emulator, token, tmp_path, sample_tenant
):
    quiz = {sis: (p, sub) for sis, p, sub in _graded(sample_tenant, "SEC-1003", "Unit 1 Quiz")}
    essay = {sis: (p, sub) for sis, p, sub in _graded(sample_tenant, "SEC-1003", "Essay 1")}
    # a quiz a student turned in (what a teacher returns after grading: the default [publish] statuses)
    sis = next(s for s in quiz if s in essay and _submission(emulator, quiz[s][1])["status"] == "submitted")
    config = web_config(emulator, token, tmp_path / "state")
    config.settings = config.settings.override("publish", assignments=["Unit 1 Quiz"])  # IT allows the quiz
    c = client(config)
    body = (
        f"Section ID,Student ID,Unit 1 Quiz,Essay 1\nSEC-1003,{sis},{quiz[sis][0] + 1},{essay[sis][0] + 1}\n"
    )
    key, preview_url, page = _to_preview(c, "publish.csv", body.encode())
    assert 'id="publish"' in page and "Unit 1 Quiz" in page.split('id="publish"')[1][:300]
    r = approve(c, preview_url, key, page, publish="yes")
    assert '"stage": "done"' in events(c, r.headers["location"])[-1]
    assert _submission(emulator, quiz[sis][1])["status"] == "returned"
    assert _published(emulator, quiz[sis][1]) == quiz[sis][0] + 1  # the students see the new grade
    assert _published(emulator, essay[sis][1]) != essay[sis][0] + 1  # written, not published
    run = list_runs(config.runs_dir)[-1]
    assert "--return" in (run / "run.json").read_text()


def test_a_run_that_carried_rows_over_is_resumed_from_its_page(emulator, token, tmp_path, sample_tenant):
    graded = _graded(sample_tenant, "SEC-1003", "Unit 1 Quiz")[:3]
    body = "Section ID,Student ID,Unit 1 Quiz\n" + "".join(f"SEC-1003,{s},{p + 1}\n" for s, p, _ in graded)
    state = tmp_path / "state"
    hurried = web_config(emulator, token, state)
    hurried.settings = hurried.settings.override("apply", max_duration="1s")  # stops before any write
    c = client(hurried)
    key, preview_url, page = _to_preview(c, "late.csv", body.encode())
    r = approve(c, preview_url, key, page)
    end = events(c, r.headers["location"])[-1]
    assert '"exit_code": 6' in end, end
    job_page = c.get(r.headers["location"]).text
    assert 'id="carried"' in job_page and 'id="resume-button"' in job_page
    run = re.search(r'"run": "([^"]+)"', end).group(1)
    again = client(web_config(emulator, token, state))  # the server restarted without the deadline
    again.cookies = c.cookies
    page = again.get(f"/runs/{run}").text
    assert 'id="resume-button"' in page and 'id="status-carried_over">3<' in page
    r = again.post(f"/runs/{run}/resume?csrf={key}", follow_redirects=False)
    end = events(again, r.headers["location"])[-1]
    assert '"stage": "done"' in end and '"exit_code": 0' in end, end
    assert all(_points_of(emulator, sub) == [p + 1] for _, p, sub in graded)


def _points_of(emulator: Any, submission_id: str) -> list[Any]:
    sub = _submission(emulator, submission_id)
    return [o.get("points") for o in sub.get("outcomes") or [] if o.get("type") == "points"]


def test_the_students_with_no_row_carry_their_sis_ids(emulator, token, tmp_path, sample_tenant):
    (a, points_a, _), (b, _, _), *_ = _graded(sample_tenant, "SEC-1003", "Unit 1 Quiz")
    body = f"Section ID,Student ID,Unit 1 Quiz\nSEC-1003,{a},{points_a + 1}\n".encode()
    c = client(web_config(emulator, token, tmp_path / "state"))
    _, _, page = _to_preview(c, "one.csv", body)
    gaps = page.split('id="roster-gaps"')[1]
    assert f'<td class="sis">{b}</td>' in gaps
    assert changed(page) == 1
