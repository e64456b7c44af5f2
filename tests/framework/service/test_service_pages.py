"""The service's pages: login by token, CSRF on every form, headers, uploads from a form, live rows, TA pages."""

from __future__ import annotations

import re
import stat
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_harness import A1, EXAMPLES, EXAMPLES_DIR, Served, csrf_of, finish, make_course_dir
from sqlalchemy import update

from grader.service.app import create_app
from grader.service.db import open_database
from grader.service.people import reissue_token
from grader.service.tables import Grading
from grader.service.views import ranked

pytestmark = pytest.mark.service
FULL = EXAMPLES_DIR / A1 / EXAMPLES["full"] / "cifar_dataset.py"


def upload_form(browser, data: bytes, name: str = "cifar_dataset.py", csrf: str | None = None):
    page = browser.get(f"/assignments/{A1}")
    return browser.post(f"/assignments/{A1}/submissions", data={"csrf": csrf_of(page.text) if csrf is None else csrf},
                        files={"file": (name, data)})


def test_pages_need_a_login_and_a_valid_token(serve) -> None:
    served = serve()
    anonymous = served.browser()
    for path in ("/", "/assignments", f"/assignments/{A1}", "/ta"):
        response = anonymous.get(path)
        assert response.url.path == "/login" and "Paste the login token" in response.text
    page = anonymous.get("/login")
    refused = anonymous.post("/login", data={"token": served.tokens["s1"] + "x", "csrf": csrf_of(page.text)})
    assert refused.status_code == 401 and "That token is not valid" in refused.text
    assert served.browser("s1").get("/").url.path == "/assignments"
    assert served.browser("ta1").get("/").url.path == "/ta"


def test_every_form_needs_the_sessions_csrf_token(serve) -> None:
    served = serve()
    anonymous = served.browser()
    anonymous.get("/login")
    forged = anonymous.post("/login", data={"token": served.tokens["s1"], "csrf": "forged"})
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    student = served.browser("s1")
    for csrf in ("", "forged"):
        response = upload_form(student, FULL.read_bytes(), csrf=csrf)
        assert response.status_code == 403
    ta = served.browser("ta1")
    assert ta.post(f"/ta/assignments/{A1}/regrade", data={"csrf": "forged"}).status_code == 403
    assert ta.post("/logout", data={}).status_code in (403, 422)
    assert student.get(f"/api/assignments/{A1}/submissions").status_code == 401  # cookies do not open the API
    assert "No submissions yet" in student.get(f"/assignments/{A1}").text


def test_security_headers_and_locked_down_reports(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    student = served.browser("s1")
    page = student.get(f"/assignments/{A1}")
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    cookie = served.browser().get("/login").headers["set-cookie"].lower()
    assert "grader_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    submission = served.hand_in("s1")["id"]
    finish(served, submission, graded_a1["full"])
    report = student.get(f"/submissions/{submission}/report")
    assert report.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_student_hands_in_from_the_form_and_the_rows_show_progress(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    student = served.browser("s1")
    response = upload_form(student, FULL.read_bytes(), name="C:\\Users\\ann\\cifar_dataset.py")
    assert response.status_code == 200 and "queued for grading" in response.text
    assert "cifar_dataset.py" in response.text and "Users" not in response.text
    rows = student.get(f"/assignments/{A1}/rows").text
    assert "queued: place 1 in line, no estimate yet" in rows and "data-pending" in rows
    submission = served.client.get(f"/api/assignments/{A1}/submissions", headers=served.bearer("s1")).json()[0]
    finish(served, submission["id"], graded_a1["full"])
    rows = student.get(f"/assignments/{A1}/rows").text
    assert "graded" in rows and "data-pending" not in rows and "100 / 100" in rows
    assignments = student.get("/assignments").text
    assert "100 / 100" in assignments  # the grade on the assignments page
    assert "10.0% per started day" in assignments  # as the assignment's page and the TA pages say it


def test_refused_uploads_say_why_on_the_page(serve) -> None:
    served = serve(submissions_per_day=1)
    student = served.browser("s1")
    response = upload_form(student, b"PK\x03\x04not really", name="hw.tar.gz")
    assert response.status_code == 400 and "not a .tar.gz archive" in response.text
    assert upload_form(student, FULL.read_bytes()).status_code == 200
    response = upload_form(student, FULL.read_bytes())
    assert response.status_code == 429 and "the course's limit" in unescape(response.text)
    closed = serve(due=datetime.now(UTC) - timedelta(days=2), hard_deadline=datetime.now(UTC) - timedelta(hours=1))
    page = closed.browser("s1").get(f"/assignments/{A1}").text
    assert "Uploads are closed" in page and 'type="file"' not in page


def test_unknown_things_are_one_sentence_pages(serve) -> None:
    served = serve()
    student = served.browser("s1")
    response = student.get("/assignments/a9_nothing")
    assert response.status_code == 404
    body = unescape(response.text.split("<body>")[1])
    assert body.count("The course offers no assignment called 'a9_nothing'.") == 1  # said once, not twice
    assert "Traceback" not in response.text
    response = student.get("/submissions/12345/report")
    assert response.status_code == 404 and "There is no such submission of yours." in response.text
    response = student.post(f"/assignments/{A1}/submissions", data={"csrf": csrf_of(student.get("/login").text)})
    assert response.status_code == 422 and "The form was incomplete" in response.text


def test_a_reissued_token_ends_the_old_sessions(serve) -> None:
    served = serve()
    student = served.browser("s1")
    assert student.get("/assignments").url.path == "/assignments"
    with open_database(served.context.settings.database)() as db:
        new = reissue_token(db, "s1")
    assert student.get("/assignments").url.path == "/login"
    assert served.client.get("/api/me", headers=served.bearer("s1")).status_code == 401
    assert served.client.get("/api/me", headers={"Authorization": f"Bearer {new.token}"}).status_code == 200


def test_logging_out_ends_the_session_on_the_server(serve) -> None:
    served = serve()
    student = served.browser("s1")
    page = student.get("/assignments")
    saved = dict(student.cookies)
    copy = served.browser()
    copy.cookies.update(saved)
    assert copy.get("/assignments").url.path == "/assignments"  # a copy of the cookie works while logged in
    assert student.post("/logout", data={"csrf": csrf_of(page.text)}).url.path == "/login"
    replayed = served.browser()
    replayed.cookies.update(saved)
    assert replayed.get("/assignments").url.path == "/login"
    assert copy.get("/assignments").url.path == "/login"
    assert served.browser("s1").get("/assignments").url.path == "/assignments"  # logging in again works


def test_pseudonyms_are_unique_in_any_case(serve) -> None:
    served = serve()
    mine = served.client.put("/api/me/pseudonym", headers=served.bearer("s1"), json={"pseudonym": "Night Owl"})
    assert mine.status_code == 200
    for taken in ("night owl", "NIGHT OWL"):
        response = served.client.put("/api/me/pseudonym", headers=served.bearer("s2"), json={"pseudonym": taken})
        assert response.status_code == 409 and "is taken" in response.json()["detail"]
    own = served.client.put("/api/me/pseudonym", headers=served.bearer("s1"), json={"pseudonym": "night owl"})
    assert own.status_code == 200 and own.json()["pseudonym"] == "night owl"  # one's own, in other capitals


def test_the_leaderboard_marks_you_and_ties_share_a_rank(serve, graded_a1: dict[str, Path]) -> None:
    served = serve(leaderboard=True)
    for login, pseudonym in (("s1", "Night Owl"), ("s2", "Early Bird")):
        finish(served, served.hand_in(login)["id"], graded_a1["full"])
        served.client.put("/api/me/pseudonym", headers=served.bearer(login), json={"pseudonym": pseudonym})
    with served.context.sessions() as db:  # a1 credits no accuracy: give both gradings the same one
        db.execute(update(Grading).values(metric_value=0.5))
        db.commit()
    page = unescape(served.browser("s1").get(f"/assignments/{A1}/leaderboard").text)
    rows = re.findall(r'<tr( class="you")?><td class="num">(\d+)</td><td>(.*?)</td>', page)
    assert rows == [("", "1", "Early Bird"), (' class="you"', "1", "<strong>Night Owl (you)</strong>")]
    assert "(you)" not in served.browser("ta1").get(f"/assignments/{A1}/leaderboard").text
    assert [e.rank for e in ranked({"a": 0.9, "b": 0.8, "c": 0.9, "d": 0.7})] == [1, 1, 3, 4]


def test_ta_pages_show_the_class_and_regrade(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    finish(served, served.hand_in("s1")["id"], graded_a1["full"])
    finish(served, served.hand_in("s2", "broken")["id"], graded_a1["broken"])
    ta = served.browser("ta1")
    assert "2 students on the roster" in ta.get("/ta").text and f"<td><code>{A1}</code></td>" in ta.get("/ta").text
    page = ta.get(f"/ta/assignments/{A1}")  # the id `grader extension` and course.toml take is on the page
    assert f"Assignment <code>{A1}</code>" in page.text
    assert "Ann One" in page.text and "Bob Two" in page.text and "syntax_error: 1" in page.text
    student_page = ta.get(f"/ta/assignments/{A1}/students/s2")
    assert "Regrade" in student_page.text and "TA view</a> <a" in student_page.text  # not "TA viewfile"
    submission = served.client.get(f"/api/assignments/{A1}/submissions", headers=served.bearer("s2")).json()[0]
    response = ta.post(f"/ta/submissions/{submission['id']}/regrade", data={"csrf": csrf_of(student_page.text)})
    assert "Queued submission" in response.text
    csrf = csrf_of(response.text)
    response = ta.post(f"/ta/assignments/{A1}/regrade", data={"csrf": csrf})
    assert "Regrade every submission of" in response.text and "This queues 2 submission(s)" in response.text
    assert "Queued" not in response.text and "1 queued, 0 under way" in ta.get("/ta").text  # nothing queued yet
    response = ta.post(f"/ta/assignments/{A1}/regrade", data={"csrf": csrf, "confirm": "yes"})
    assert "Queued 1 submission(s) for regrading, after every student upload." in response.text
    rows = ta.get(f"/ta/assignments/{A1}/rows").text  # the single regrade first, the regrade of all after it
    assert "queued: place 1 in line, no estimate yet" in rows and "queued: place 2 in line" in rows
    assert "grades.csv" in response.text and ta.get(f"/ta/assignments/{A1}/canvas.csv").status_code == 200


def test_the_api_is_documented_on_fastapis_openapi_page(serve) -> None:
    served = serve()
    schema = served.client.get("/openapi.json").json()
    assert schema["paths"] and all(path.startswith("/api/") for path in schema["paths"])
    assert "/api/assignments/{assignment_id}/submissions" in schema["paths"]
    docs = served.client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text  # offline: test_service_contract.py


def test_the_course_folder_is_private(tmp_path: Path, database_url: str | None, graded_a1: dict[str, Path]) -> None:
    folder = tmp_path / "course"
    settings, tokens = make_course_dir(folder, database_url, {A1: {}})
    old = folder / "reports" / "7"  # as an older version left it
    old.mkdir(parents=True)
    (old / "report.html").write_text("old")
    old.chmod(0o755)
    (old / "report.html").chmod(0o644)
    with TestClient(create_app(settings)) as client:
        served = Served(client, tokens)
        submission = served.hand_in("s1")["id"]
        finish(served, submission, graded_a1["full"])
        assert client.get(f"/api/ta/assignments/{A1}/grades.csv", headers=served.bearer("ta1")).status_code == 200
    private = {folder / name for name in ("uploads", "reports", "exports")}
    if database_url is None:
        private |= {p for p in folder.glob("service.db*")}
    paths = [p for root in private for p in (root, *root.rglob("*"))]
    modes = {p.relative_to(folder).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in paths}
    assert {path for path, mode in modes.items() if mode != (0o700 if (folder / path).is_dir() else 0o600)} == set()
    assert any(path.startswith("uploads/") and path.endswith(".py") for path in modes)  # the upload was checked
    assert any(path.startswith("reports/1/") for path in modes) and "exports/a1_dataset/grades.csv" in modes
