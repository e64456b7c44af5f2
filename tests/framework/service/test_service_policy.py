"""Grades follow the policy as it is now: a TA's extension for one student, course.toml's due date moved after the
uploads, and late days used before the penalty, on the pages, through the API, in the Canvas CSV and the CLI."""

from __future__ import annotations

import csv
import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_harness import A1, Served, course_toml, csrf_of, finish

from grader import cli

pytestmark = pytest.mark.service
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # what a datetime-local field sends


def canvas_grades(served: Served) -> dict[str, str]:
    text = served.client.get(f"/api/ta/assignments/{A1}/canvas.csv", headers=served.bearer("ta1")).text
    return {line[2]: line[5] for line in list(csv.reader(io.StringIO(text)))[2:]}


def student_page(served: Served, login: str = "s1") -> str:
    return served.browser(login).get(f"/assignments/{A1}").text


def ta_form(ta: TestClient, login: str, action: str, **fields: str) -> str:
    """Submit a form of the TA's page of a student; returns the page it lands on."""
    page = ta.get(f"/ta/assignments/{A1}/students/{login}")
    response = ta.post(f"/ta/assignments/{A1}/students/{login}/{action}", data={"csrf": csrf_of(page.text), **fields})
    assert response.status_code == 200, response.text
    return response.text


def test_a_two_day_extension_changes_the_grade_on_the_pages_and_in_the_canvas_csv(
        serve, graded_a1: dict[str, Path]) -> None:
    now = datetime.now(UTC)
    served = serve(due=now - timedelta(days=1, hours=2), hard_deadline=now + timedelta(days=2))
    finish(served, served.hand_in("s1")["id"], graded_a1["full"])
    finish(served, served.hand_in("s2")["id"], graded_a1["full"])
    assert "2 day(s) late, -20.0%" in student_page(served) and canvas_grades(served) == {"s1": "80", "s2": "80"}

    ta = served.browser("ta1")
    new_due = (served.context.course.assignments[0].due + timedelta(days=2)).strftime(LOCAL_MINUTE)
    landed = ta_form(ta, "s1", "extension", due=new_due, reason="hospital note")
    assert "s1 is now due" in landed and "Extended: due" in landed
    assert "hospital note" in landed and "ta1, " in landed  # listed with who and when
    page = student_page(served)
    assert "Your extension: due" in page and "on time" in page and ">100<" in page
    assert canvas_grades(served) == {"s1": "100", "s2": "80"}  # only s1's grade changed
    rows = served.client.get(f"/api/ta/assignments/{A1}/grades", headers=served.bearer("ta1")).json()
    assert {r["login"]: r["counting"]["final"] for r in rows} == {"s1": 100.0, "s2": 80.0}
    mine = served.client.get("/api/assignments", headers=served.bearer("s1")).json()[0]
    assert mine["extended"] is True and mine["due"].startswith(new_due)
    assert "hospital note" in ta.get("/ta/extensions").text

    revoked = ta_form(ta, "s1", "extension/revoke")
    assert "Revoked s1" in revoked
    assert canvas_grades(served)["s1"] == "80" and "2 day(s) late, -20.0%" in student_page(served)
    assert ta.get("/ta/extensions").text.split("hospital note")[1].count("ta1, ") == 2  # revoked: by, when


def test_the_extension_form_starts_at_the_students_due_date(serve) -> None:
    due = datetime(2026, 12, 24, 22, 59, tzinfo=UTC)
    served = serve(due=due, hard_deadline=due + timedelta(days=3), course={"timezone": "Europe/Berlin"})
    page = served.browser("ta1").get(f"/ta/assignments/{A1}/students/s1").text
    assert 'name="due" required value="2026-12-24T23:59"' in page  # the course's zone, as the form reads it


def test_an_extension_moves_the_hard_deadline_and_bad_dates_are_one_sentence(serve) -> None:
    now = datetime.now(UTC)
    served = serve(due=now - timedelta(days=3), hard_deadline=now - timedelta(minutes=1))
    assert served.client.post(f"/api/assignments/{A1}/submissions", headers=served.bearer("s1"),
                              files={"file": ("x.py", b"x = 1\n")}).status_code == 403
    ta = served.browser("ta1")
    assert "is not a date and time" in ta_form(ta, "s1", "extension", due="next tuesday")
    later = (now + timedelta(days=1)).strftime(LOCAL_MINUTE)
    assert "is before the due date" in ta_form(ta, "s1", "extension", due=later,
                                               hard_deadline=now.strftime(LOCAL_MINUTE))
    ta_form(ta, "s1", "extension", due=later)  # the course's gap of 3 days, less a minute, after the new due date
    assert served.hand_in("s1")["days_late"] == 0
    assert served.client.post(f"/api/assignments/{A1}/submissions", headers=served.bearer("s2"),
                              files={"file": ("x.py", b"x = 1\n")}).status_code == 403


def test_moving_due_in_course_toml_changes_the_lateness_without_a_restart(
        serve, graded_a1: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    rules = {"due": now - timedelta(days=1, hours=2), "hard_deadline": now + timedelta(days=2)}
    served = serve(**rules)
    finish(served, served.hand_in("s1")["id"], graded_a1["full"])
    assert "2 day(s) late, -20.0%" in student_page(served) and canvas_grades(served)["s1"] == "80"
    path = served.context.settings.course_dir / "course.toml"
    path.write_text(course_toml({A1: {**rules, "due": now - timedelta(hours=2)}}))
    assert "1 day(s) late, -10.0%" in student_page(served) and canvas_grades(served)["s1"] == "90"
    assert served.client.get("/api/assignments", headers=served.bearer("s1")).json()[0]["due"].startswith(
        (now - timedelta(hours=2)).strftime(LOCAL_MINUTE))

    path.write_text(path.read_text().replace("late_penalty_per_day = 0.1", "late_penalty_per_day = lots"))
    problem = "The edited course.toml was not taken, so the service keeps its last valid version:"
    assert canvas_grades(served)["s1"] == "90"  # the last valid course.toml
    ta_page = served.browser("ta1").get("/ta").text
    assert problem in ta_page and "is not valid TOML" in ta_page
    assert problem not in student_page(served) and "1 day(s) late, -10.0%" in student_page(served)
    logged = capsys.readouterr().err
    assert logged.count(problem) == 1 and "Traceback" not in logged  # once per edit, not once per request

    path.write_text(course_toml({A1: {**rules, "due": now + timedelta(days=1)}}))
    assert "on time" in student_page(served) and canvas_grades(served)["s1"] == "100"
    assert problem not in served.browser("ta1").get("/ta").text


def test_late_days_are_used_before_the_penalty_and_shown(serve, graded_a1: dict[str, Path]) -> None:
    now = datetime.now(UTC)
    served = serve(due=now - timedelta(days=2, hours=2), hard_deadline=now + timedelta(days=2),
                   course={"late_days": 2})
    assert "2 of 2 left" in served.browser("s1").get("/assignments").text
    finish(served, served.hand_in("s1")["id"], graded_a1["full"])
    page = student_page(served)
    assert "3 day(s) late (2 late day(s) used), -10.0%" in page and ">90<" in page
    assert "0 of 2 left" in page and "this assignment uses 2" in page
    assert canvas_grades(served)["s1"] == "90"
    assert served.client.get("/api/assignments", headers=served.bearer("s1")).json()[0]["late_days_used"] == 2
    assert "2 of 2 left" in served.browser("s2").get("/assignments").text  # per student


@pytest.fixture
def grader(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # a runner
    """`grader ARGS` in this process (GraderError: exit 2); returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["grader", *args])
        try:
            cli.main()
            code = 0
        except SystemExit as exited:
            code = exited.code or 0
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_extensions_from_the_command_line(serve, grader, graded_a1: dict[str, Path]) -> None:
    now = datetime.now(UTC)
    served = serve(due=now - timedelta(days=1, hours=2), hard_deadline=now + timedelta(days=2))
    finish(served, served.hand_in("s1")["id"], graded_a1["full"])
    where = ["--course-dir", str(served.context.settings.course_dir)]
    if served.context.settings.database_url:
        where += ["--database", served.context.settings.database_url]
    due = (now + timedelta(days=1)).strftime(LOCAL_MINUTE)
    code, out, err = grader("extension", "s1", A1, "--due", due, "--reason", "flu", *where)
    assert code == 0, err
    assert "s1 is now due" in out and canvas_grades(served)["s1"] == "100"
    code, out, _ = grader("extensions", *where)
    assert code == 0 and "flu" in out and "(command line)" in out
    code, out, _ = grader("extension", "s1", A1, "--revoke", *where)
    assert code == 0 and "Revoked" in out and canvas_grades(served)["s1"] == "80"
    for args, words in ((["nobody", A1, "--due", due], "No student with the id 'nobody'"),
                        (["s1", "a9", "--due", due], "no assignment called 'a9'"),
                        (["s1", A1, "--due", "soon"], "is not a date and time"),
                        (["s1", A1], "--due")):
        code, _, err = grader("extension", *args, *where)
        assert code == 2 and words in err and "Traceback" not in err


def test_the_report_shows_the_grade_after_the_penalty_the_course_zone_and_the_uploaded_name(
        serve, graded_a1: dict[str, Path]) -> None:
    now = datetime.now(UTC)
    served = serve(due=now - timedelta(days=1, hours=2), hard_deadline=now + timedelta(days=2),
                   course={"timezone": "Europe/Berlin"})
    submission = served.hand_in("s1", name="birds_e3.py")["id"]
    finish(served, submission, graded_a1["full"])
    response = served.browser("s1").get(f"/submissions/{submission}/report")
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    report = response.text
    assert "Grade: 80 / 100</strong> (score 100 / 100; handed in 2 day(s) late, -20.0%)" in report
    assert "Handed in as birds_e3.py at" in report and "cifar_dataset.py" in report  # and graded as
    assert " CET" in report and "UTC" not in report
    ta = served.browser("ta1")
    assert "Grade: 80 / 100" in ta.get(f"/ta/submissions/{submission}/report").text
    ta_form(ta, "s1", "extension", due=(now + timedelta(days=1)).strftime(LOCAL_MINUTE))
    assert "Grade: 100 / 100" in served.browser("s1").get(f"/submissions/{submission}/report").text


def test_extensions_through_the_api(serve, graded_a1: dict[str, Path]) -> None:
    now = datetime.now(UTC)
    served = serve(due=now - timedelta(days=1, hours=2), hard_deadline=now + timedelta(days=2))
    finish(served, served.hand_in("s1")["id"], graded_a1["full"])
    ta, path = served.bearer("ta1"), f"/api/ta/extensions/{A1}/s1"
    due = (now + timedelta(days=1)).replace(microsecond=0)
    granted = served.client.put(path, headers=ta, json={"due": due.isoformat(), "reason": "flu"})
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert (body["login"], body["granted_by"], body["reason"], body["revoked_at"]) == ("s1", "ta1", "flu", None)
    assert datetime.fromisoformat(body["hard_deadline"]) == due + timedelta(days=3, hours=2)  # the course's gap
    assert canvas_grades(served)["s1"] == "100"
    assert [e["login"] for e in served.client.get("/api/ta/extensions", headers=ta).json()] == ["s1"]
    assert served.client.put(path, headers=served.bearer("s1"), json={"due": due.isoformat()}).status_code == 403
    refused = served.client.put(f"/api/ta/extensions/{A1}/nobody", headers=ta, json={"due": due.isoformat()})
    assert refused.status_code == 404 and "No student with the id 'nobody'" in refused.json()["detail"]
    assert served.client.delete(path, headers=ta).json() == {"revoked": 1}
    assert canvas_grades(served)["s1"] == "80"
    assert served.client.delete(path, headers=ta).json() == {"revoked": 0}
