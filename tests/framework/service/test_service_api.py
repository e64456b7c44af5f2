"""The service's rules through its HTTP API: uploads and their limits, deadlines, the late penalty, which
submission counts, who may see what, tokens, regrades, exports and the leaderboard."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient
from service_harness import A1, A2, A2_FULL, EXAMPLES, EXAMPLES_DIR, Served, csrf_of, finish
from sqlalchemy import func, select

from grader.reports.files import REPORT_JSON
from grader.service.storage import report_dir, upload_path
from grader.service.tables import Grading, GradingState, Person, Submission

pytestmark = pytest.mark.service
FULL_SOURCE = (EXAMPLES_DIR / A1 / EXAMPLES["full"] / "cifar_dataset.py").read_bytes()


def post_file(served: Served, login: str, name: str, data: bytes, assignment: str = A1):
    return served.client.post(f"/api/assignments/{assignment}/submissions", headers=served.bearer(login),
                              files={"file": (name, data)})


def count_rows(served: Served, table: type) -> int:
    with served.context.sessions() as db:
        return db.scalar(select(func.count()).select_from(table))


def test_an_upload_is_stored_by_its_hash_and_queued(serve) -> None:
    served = serve()
    submission = served.hand_in("s1")
    assert (submission["state"], submission["queue_position"], submission["days_late"]) == ("queued", 1, 0)
    sha = hashlib.sha256(FULL_SOURCE).hexdigest()
    stored = upload_path(served.context.settings.uploads_dir, sha, "cifar_dataset.py")
    assert stored.read_bytes() == FULL_SOURCE
    second = served.hand_in("s2", "weak")
    assert second["queue_position"] == 2
    listed = served.client.get(f"/api/assignments/{A1}/submissions", headers=served.bearer("s1")).json()
    assert [s["id"] for s in listed] == [submission["id"]]


@pytest.mark.parametrize("name", ["hw.ipynb", "hw.zip", "hw.tar.gz", "hw.tgz"])
def test_notebooks_and_archives_are_accepted(serve, name: str) -> None:
    served = serve()
    if name.endswith(".ipynb"):
        data = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    elif name.endswith(".zip"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("hw/cifar_dataset.py", FULL_SOURCE)
        data = buffer.getvalue()
    else:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo("cifar_dataset.py")
            info.size = len(FULL_SOURCE)
            archive.addfile(info, io.BytesIO(FULL_SOURCE))
        data = buffer.getvalue()
    response = post_file(served, "s1", name, data)
    assert response.status_code == 201, response.text
    # a notebook is stored under the required module's name, so its report reads "Graded hw.ipynb as cifar_dataset.py"
    stored = {"hw.ipynb": "cifar_dataset.ipynb", "hw.zip": "submission.zip"}.get(name, "submission.tar.gz")
    assert upload_path(served.context.settings.uploads_dir, hashlib.sha256(data).hexdigest(), stored).is_file()


@pytest.mark.parametrize(("name", "data", "status", "words"), [
    ("hw.exe", b"MZ\x90\x00", 415, "Upload a .py file"),
    (".py", b"x = 1\n", 415, "Upload a .py file"),
    ("hw.zip", b"this is not a zip archive", 400, "not a .zip archive"),
    ("hw.tar.gz", b"PK\x03\x04 a zip named .tar.gz", 400, "not a .tar.gz archive"),
    ("hw.ipynb", b"print('a script, not a notebook')", 400, "not a Jupyter notebook"),
    ("hw.ipynb", b'{"cells": "not a list"}', 400, "not a Jupyter notebook"),
    ("hw.ipynb", b"[" * 200_000, 400, "not a Jupyter notebook"),  # deeper than Python's recursion limit
    ("hw.ipynb", b'{"cells": [}', 400, "not a Jupyter notebook"),
    ("hw.ipynb", b'\xff\xfe{"cells": []}', 400, "not a Jupyter notebook"),
    ("hw.py", b"\x7fELF\x02\x01\x01\x00\x00\x00", 400, "not Python source"),
    ("hw.py", b"", 400, "empty"),
])
def test_malformed_uploads_are_refused_with_a_sentence_and_leave_nothing(serve, name: str, data: bytes,
                                                                          status: int, words: str) -> None:
    served = serve()
    response = post_file(served, "s1", name, data)
    assert response.status_code == status
    assert words in response.json()["detail"]
    assert count_rows(served, Submission) == 0
    uploads = served.context.settings.uploads_dir
    assert [p for p in uploads.rglob("*") if p.is_file()] == []


def test_oversized_uploads_are_refused_before_intake(serve) -> None:
    served = serve(max_upload_mb=0.01)  # 10 KiB
    too_big = b"# padding\n" * 2048  # 20 KiB: past the course's cap, within the request's form overhead
    response = post_file(served, "s1", "big.py", too_big)
    assert response.status_code == 413
    assert "larger than the course's limit of 0.01 MB" in response.json()["detail"]
    far_too_big = b"#" * (2 * 2**20)  # past the request limit itself: refused by its Content-Length
    response = post_file(served, "s1", "huge.py", far_too_big)
    assert response.status_code == 413
    assert response.json()["detail"] == "The upload is larger than the course's limit of 0.01 MB."
    student = served.browser("s1")
    form = student.get(f"/assignments/{A1}").text
    page = student.post(f"/assignments/{A1}/submissions", data={"csrf": csrf_of(form)},
                        files={"file": ("huge.py", far_too_big)})
    assert page.status_code == 413 and "up to 0.01 MB" in form  # the form's own number, on the site's layout
    assert "<header>" in page.text and 'role="alert">The upload is larger than the course&#39;s limit of 0.01 MB.' \
        in page.text
    assert count_rows(served, Submission) == 0
    assert [p for p in served.context.settings.uploads_dir.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("name", ["../../../../escaped.py", "/tmp/escaped.py", "..\\..\\escaped.py",
                                  "sub/../../escaped.py", "escaped.py\n.py", "\u202eyp.escaped.py"])
def test_path_tricks_in_names_never_become_paths(serve, tmp_path: Path, name: str) -> None:
    served = serve()
    response = post_file(served, "s1", name, FULL_SOURCE)
    assert response.status_code == 201, response.text
    shown = response.json()["filename"]
    assert "/" not in shown and "\\" not in shown and "\n" not in shown
    escaped = [p for p in Path("/tmp").glob("escaped*")] + [p for p in tmp_path.rglob("escaped*")]
    assert escaped == []
    sha = hashlib.sha256(FULL_SOURCE).hexdigest()
    assert upload_path(served.context.settings.uploads_dir, sha, "cifar_dataset.py").is_file()


def test_daily_limit_per_student_and_assignment(serve) -> None:
    served = serve(submissions_per_day=2)
    served.hand_in("s1")
    served.hand_in("s1", "weak")
    response = post_file(served, "s1", "third.py", FULL_SOURCE)
    assert response.status_code == 429
    assert "2 submissions of a1_dataset in the last 24 hours" in response.json()["detail"]
    assert "you can hand in again after" in response.json()["detail"]
    served.hand_in("s2")  # another student's quota is their own
    assert count_rows(served, Submission) == 3


def test_concurrent_uploads_of_one_student_cannot_pass_the_limit(serve) -> None:
    served = serve(submissions_per_day=3)

    def upload(n: int) -> int:
        with TestClient(served.client.app) as client:
            return client.post(f"/api/assignments/{A1}/submissions", headers=served.bearer("s1"),
                               files={"file": (f"try{n}.py", FULL_SOURCE + f"# {n}\n".encode())}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(upload, range(8)))
    assert sorted(statuses) == [201] * 3 + [429] * 5
    assert count_rows(served, Submission) == count_rows(served, Grading) == 3


def test_uploads_after_the_hard_deadline_are_refused(serve) -> None:
    now = datetime.now(UTC)
    served = serve(due=now - timedelta(days=3), hard_deadline=now - timedelta(minutes=1))
    response = post_file(served, "s1", "late.py", FULL_SOURCE)
    assert response.status_code == 403
    assert "uploads are closed" in response.json()["detail"]
    info = served.client.get("/api/assignments", headers=served.bearer("s1")).json()
    assert info[0]["open"] is False
    assert count_rows(served, Submission) == 0


def test_each_assignment_names_the_metric_its_grades_carry(serve) -> None:
    """a1 trains no model; a2's grades carry an accuracy (a4's error: test_service_tasks.py)."""
    served = serve(a2={})
    infos = served.client.get("/api/assignments", headers=served.bearer("s1")).json()
    assert {info["id"]: info["metric"] for info in infos} == {
        A1: None, A2: {"name": "accuracy", "unit": "", "higher_is_better": True}}


def test_late_penalty_per_started_day_is_applied_and_shown(serve, graded_a1: dict[str, Path]) -> None:
    now = datetime.now(UTC)
    served = serve(due=now - timedelta(days=1, hours=2), hard_deadline=now + timedelta(days=2),
                   late_penalty_per_day=0.15)
    submission = served.hand_in("s1")
    assert submission["days_late"] == 2 and submission["penalty"] == pytest.approx(0.3)
    finish(served, submission["id"], graded_a1["full"])
    graded = served.client.get(f"/api/submissions/{submission['id']}", headers=served.bearer("s1")).json()
    assert (graded["state"], graded["total"], graded["final"]) == ("done", 100.0, pytest.approx(70.0))
    page = served.browser("s1").get(f"/assignments/{A1}").text
    assert "2 day(s) late, -30.0%" in page and ">70<" in page


@pytest.mark.parametrize(("counts", "expected"), [("best", "full"), ("latest", "weak")])
def test_which_submission_counts(serve, graded_a1: dict[str, Path], counts: str, expected: str) -> None:
    served = serve(counts=counts)
    ids = {}
    for example in ("full", "weak"):
        ids[example] = served.hand_in("s1", example)["id"]
        finish(served, ids[example], graded_a1[example])
    rows = served.client.get(f"/api/ta/assignments/{A1}/grades", headers=served.bearer("ta1")).json()
    row = next(r for r in rows if r["login"] == "s1")
    assert row["counting"]["id"] == ids[expected]
    assert row["submissions"] == 2
    assert next(r for r in rows if r["login"] == "s2")["counting"] is None
    mine = served.client.get(f"/api/assignments/{A1}/submissions", headers=served.bearer("s1")).json()
    assert [s["id"] for s in mine if s["counts"]] == [ids[expected]]


def test_a_student_sees_only_their_own_work(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    theirs = served.hand_in("s1")["id"]
    finish(served, theirs, graded_a1["full"])
    for path in (f"/api/submissions/{theirs}", f"/api/submissions/{theirs}/report"):
        assert served.client.get(path, headers=served.bearer("s1")).status_code == 200
        assert served.client.get(path, headers=served.bearer("s2")).status_code == 404
    assert served.client.get(f"/api/assignments/{A1}/submissions", headers=served.bearer("s2")).json() == []
    other = served.browser("s2")
    for path in (f"/submissions/{theirs}/report", f"/submissions/{theirs}/download"):
        response = other.get(path)
        assert response.status_code == 404 and FULL_SOURCE.decode()[:40] not in response.text
    owner = served.browser("s1")
    assert owner.get(f"/submissions/{theirs}/download").content == FULL_SOURCE
    for path in (f"/api/ta/assignments/{A1}/grades", f"/api/ta/submissions/{theirs}/report"):
        assert served.client.get(path, headers=served.bearer("s1")).status_code == 403
    assert other.get(f"/ta/submissions/{theirs}/report").status_code == 403


def test_hidden_check_details_only_in_ta_views(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    submission = served.hand_in("s1", "weak")["id"]
    finish(served, submission, graded_a1["weak"])
    full = served.client.get(f"/api/ta/submissions/{submission}/report", headers=served.bearer("ta1")).json()
    failed = [c for c in full["checks"] if c["outcome"] != "passed"]
    assert failed, "the weak example fails some hidden checks"
    secret = failed[0]["nodeid"].split("::")[-1]
    student_json = served.client.get(f"/api/submissions/{submission}/report", headers=served.bearer("s1")).text
    student_page = served.browser("s1").get(f"/submissions/{submission}/report").text
    ta_page = served.browser("ta1").get(f"/ta/submissions/{submission}/report").text
    assert secret in ta_page and "Hidden checks" in ta_page
    assert secret not in student_json and secret not in student_page and "Hidden checks" not in student_page


def test_tokens_are_stored_hashed_and_bad_ones_refused(serve) -> None:
    served = serve()
    token = served.tokens["s1"]
    token_id, secret = token.split(".")
    with served.context.sessions() as db:
        person = db.scalar(select(Person).where(Person.login == "s1"))
        assert person.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    database_file = served.context.settings.course_dir / "service.db"
    if database_file.exists():
        assert secret.encode() not in database_file.read_bytes()
    for bad in (f"{token_id}.{secret[:-1]}x", f"{'0' * 16}.{secret}", secret, "", "."):
        response = served.client.get("/api/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code in (401, 403)
    assert served.client.get("/api/me").status_code == 401
    assert served.client.get("/api/me", headers=served.bearer("s1")).json()["login"] == "s1"


def test_regrade_one_and_all(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    first = served.hand_in("s1")["id"]
    second = served.hand_in("s2", "weak")["id"]
    finish(served, first, graded_a1["full"])
    response = served.client.post(f"/api/ta/submissions/{first}/regrade", headers=served.bearer("ta1"))
    assert response.json() == {"queued": 1}
    view = served.client.get(f"/api/submissions/{first}", headers=served.bearer("s1")).json()
    assert (view["state"], view["total"]) == ("queued", 100.0)  # the old result stays until the new one is in
    response = served.client.post(f"/api/ta/assignments/{A1}/regrade", headers=served.bearer("ta1"))
    assert response.json() == {"queued": 0}  # both are waiting already
    finish(served, first, graded_a1["weak"])
    finish(served, second, graded_a1["weak"])
    assert served.client.post(f"/api/ta/assignments/{A1}/regrade", headers=served.bearer("ta1")).json() == {"queued": 2}
    with served.context.sessions() as db:
        assert db.scalar(select(func.count()).where(Grading.state == GradingState.QUEUED)) == 2
    assert served.client.post(f"/api/ta/submissions/{first}/regrade", headers=served.bearer("s1")).status_code == 403


def test_exports_gradebook_and_canvas(serve, graded_a1: dict[str, Path]) -> None:
    now = datetime.now(UTC)
    served = serve(due=now - timedelta(hours=5), late_penalty_per_day=0.25)
    finish(served, served.hand_in("s1")["id"], graded_a1["full"])
    finish(served, served.hand_in("s2", "broken")["id"], graded_a1["broken"])
    grades = served.client.get(f"/api/ta/assignments/{A1}/grades.csv", headers=served.bearer("ta1"))
    rows = {row["student_id"]: row for row in csv.DictReader(io.StringIO(grades.text))}
    assert rows["s1"]["total"] == "100.0" and rows["s2"]["failure_kinds"] == "syntax_error"
    canvas = served.client.get(f"/api/ta/assignments/{A1}/canvas.csv", headers=served.bearer("ta1"))
    lines = list(csv.reader(io.StringIO(canvas.text)))
    assert lines[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert lines[1][0] == "Points Possible" and lines[1][5] == "100"
    by_id = {line[2]: line for line in lines[2:]}
    assert by_id["s1"][0] == "Ann One" and by_id["s1"][5] == "75"  # one started day late at 25%
    assert by_id["s2"][5] == "0"
    ta = served.browser("ta1")
    summary = ta.get(f"/ta/assignments/{A1}/summary")
    assert summary.status_code == 200 and "syntax_error" in summary.text
    links = [urljoin(str(summary.url), href) for href in re.findall(r'<a href="([^"]+)"', summary.text)
             if "_similarity/" not in href]  # similar-code views: test_service_similarity.py
    assert len(links) == 2
    assert all(ta.get(link).status_code == 200 and "(TA view)" in ta.get(link).text for link in links)
    assert all(served.browser("s1").get(link, follow_redirects=False).status_code in (303, 403) for link in links)
    assert served.client.get(f"/api/ta/assignments/{A1}/canvas.csv", headers=served.bearer("s1")).status_code == 403


@pytest.mark.slow  # trains an a2 model once
def test_leaderboard_under_pseudonyms_and_in_gradescope_results(serve, graded_a2: Path) -> None:
    served = serve(a2={"leaderboard": True})
    submission = served.hand_in("s1", assignment=A2, name="ffn.ipynb", source=A2_FULL)["id"]
    finish(served, submission, graded_a2)
    board = served.client.get(f"/api/assignments/{A2}/leaderboard", headers=served.bearer("s2")).json()
    assert board == []  # nobody chose a pseudonym yet
    response = served.client.put("/api/me/pseudonym", headers=served.bearer("s1"), json={"pseudonym": "<b>x</b>"})
    assert response.status_code == 422
    served.client.put("/api/me/pseudonym", headers=served.bearer("s1"), json={"pseudonym": "Night Owl"})
    board = served.client.get(f"/api/assignments/{A2}/leaderboard", headers=served.bearer("s2")).json()
    accuracy = json.loads((graded_a2 / REPORT_JSON).read_text())["metrics"]["value"]
    assert board == [{"rank": 1, "pseudonym": "Night Owl", "metric_value": accuracy}]
    taken = served.client.put("/api/me/pseudonym", headers=served.bearer("s2"), json={"pseudonym": "Night Owl"})
    assert taken.status_code == 409 and "taken" in taken.json()["detail"]
    assert served.client.get(f"/api/assignments/{A1}/leaderboard", headers=served.bearer("s1")).status_code == 404
    with served.context.sessions() as db:
        grading = db.scalar(select(Grading).where(Grading.submission_id == submission))
    results = json.loads((report_dir(served.context.settings.reports_dir, grading.id) / "results.json").read_text())
    assert results["leaderboard"] == [{"name": "Test accuracy", "value": round(accuracy, 4)}]
