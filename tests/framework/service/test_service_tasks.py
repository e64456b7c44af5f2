"""The assignments of other tasks and data through `grader serve`: a4's autoencoder, uploaded and graded on the real
data, is shown by its mean squared error (its unit, lower is better) on the pages and in the API, never as an
accuracy, and its leaderboard puts the lowest error first; a5's 10-class CNN earns full marks with its accuracy over
ten classes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import psutil
import pytest
from service_harness import ServiceProcess, csrf_of, make_course_dir
from test_service_durability import end_leftovers

from bench.common import reference_copy
from grader.config import load_assignment
from grader.reports import read_report_json
from grader.reports.files import REPORT_JSON
from grader.service.storage import report_dir
from grader.tasks import Reconstruction

pytestmark = [pytest.mark.service, pytest.mark.real_data, pytest.mark.slow]
A4, A5 = "a4_autoencoder", "a5_cifar10"
GRADING_SECONDS = 1200  # Ray's start, two a4 gradings and an a5 one (60 CPU s budgets) on a loaded 2-core machine
ONE_EPOCH = 1  # s2 hands in the reference stopped after one epoch: a higher error than the whole reference's


def api(server: ServiceProcess, token: str, path: str) -> httpx2.Response:
    return httpx2.get(f"{server.url}/api{path}", headers={"Authorization": f"Bearer {token}"}, timeout=60)


def hand_in(server: ServiceProcess, token: str, source: Path, pseudonym: str, assignment_id: str = A4) -> int:
    """Choose a pseudonym and upload the module; the submission's id."""
    bearer = {"Authorization": f"Bearer {token}"}
    chosen = httpx2.put(f"{server.url}/api/me/pseudonym", headers=bearer, json={"pseudonym": pseudonym}, timeout=60)
    assert chosen.status_code == 200, chosen.text
    uploaded = httpx2.post(f"{server.url}/api/assignments/{assignment_id}/submissions", headers=bearer, timeout=60,
                           files={"file": (source.name, source.read_bytes())})
    assert uploaded.status_code == 201, uploaded.text
    return uploaded.json()["id"]


def graded(server: ServiceProcess, token: str, submission_id: int, deadline: float) -> dict:
    """The submission's JSON once its grading is done."""
    while time.monotonic() < deadline:
        view = api(server, token, f"/submissions/{submission_id}").json()
        if view["state"] == "done":
            return view
        time.sleep(1)
    raise AssertionError(f"submission {submission_id} was not graded in time:\n{server.log.read_text()[-4000:]}")


def page(server: ServiceProcess, token: str, path: str) -> str:
    """A page as a logged-in person's browser gets it."""
    with httpx2.Client(base_url=server.url, timeout=60, follow_redirects=True) as browser:
        login = browser.post("/login", data={"token": token, "csrf": csrf_of(browser.get("/login").text)})
        assert login.status_code == 200, login.text
        shown = browser.get(path)
        assert shown.status_code == 200, shown.text
        return shown.text


def test_an_autoencoder_and_a_ten_class_cnn_are_graded_and_shown_by_their_metric(tmp_path: Path,
                                                                                  data_root: Path) -> None:
    course_dir = tmp_path / "course"
    settings, tokens = make_course_dir(course_dir, None, {A4: {"leaderboard": True}, A5: {}})
    assignment = load_assignment(A4)
    module = f"{assignment.submission.module}.py"
    weaker = reference_copy(assignment, tmp_path / "one-epoch", ONE_EPOCH) / module
    server = ServiceProcess(course_dir, cluster="local", extra_env={"GRADER_DATA_DIR": str(data_root)})
    server.start()
    try:
        ids = {"s1": hand_in(server, tokens["s1"], assignment.solution_dir / module, "Low Error"),
               "s2": hand_in(server, tokens["s2"], weaker, "High Error")}
        cifar10 = load_assignment(A5)
        ten_classes = hand_in(server, tokens["s2"], cifar10.solution_dir / f"{cifar10.submission.module}.py",
                              "High Error", A5)
        deadline = time.monotonic() + GRADING_SECONDS
        views = {login: graded(server, tokens[login], number, deadline) for login, number in ids.items()}
        a5_view = graded(server, tokens["s2"], ten_classes, deadline)
        metrics = {a["id"]: a["metric"] for a in api(server, tokens["s1"], "/assignments").json()}
        board = api(server, tokens["s1"], f"/assignments/{A4}/leaderboard").json()
        leaderboard_page = page(server, tokens["s1"], f"/assignments/{A4}/leaderboard")
        own_page = page(server, tokens["s1"], f"/assignments/{A4}")
    finally:
        started = psutil.Process(server.process.pid).children(recursive=True) if server.process else []
        server.stop()
        end_leftovers(started)
    reference = read_report_json(report_dir(settings.reports_dir, views["s1"]["graded_by"]) / REPORT_JSON)
    assert reference.failures == [] and views["s1"]["total"] == views["s1"]["max_total"] == 100
    assert views["s1"]["metric_value"] == reference.metrics.value < views["s2"]["metric_value"]
    assert metrics[A4] == {"name": "mean squared error", "unit": Reconstruction.unit, "higher_is_better": False}
    assert [(e["rank"], e["pseudonym"]) for e in board] == [(1, "Low Error"), (2, "High Error")], board
    assert [e["metric_value"] for e in board] == [views["s1"]["metric_value"], views["s2"]["metric_value"]]
    for html in (leaderboard_page, own_page):
        assert "Mean squared error" in html and "ccuracy" not in html
        assert f"{reference.metrics.value:.4f}" in html
    assert leaderboard_page.index("Low Error") < leaderboard_page.index("High Error")
    assert f"({Reconstruction.unit})" in leaderboard_page and "lower is better" in leaderboard_page
    a5_report = read_report_json(report_dir(settings.reports_dir, a5_view["graded_by"]) / REPORT_JSON)
    assert a5_report.failures == [] and a5_view["total"] == a5_view["max_total"] == 100
    assert len(a5_report.metrics.per_class_accuracy) == len(cifar10.data.classes) == 10
    assert len(a5_report.metrics.confusion) == 10
    assert a5_view["metric_value"] == a5_report.metrics.value
    assert metrics[A5] == {"name": "accuracy", "unit": "", "higher_is_better": True}
