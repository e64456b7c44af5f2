"""Durability: SIGKILL the service while 10 submissions are queued or running; after a restart every one is
graded and recorded exactly once, with one report each."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import psutil
import pytest
from service_harness import A1, EXAMPLES, EXAMPLES_DIR, RosterEntry, ServiceProcess, make_course_dir
from sqlalchemy import select

from grader.reports import read_report_json
from grader.reports.files import REPORT_JSON
from grader.service.db import open_database
from grader.service.storage import report_dir
from grader.service.tables import GradingState, Submission

pytestmark = [pytest.mark.service, pytest.mark.slow]
SUBMISSIONS = 10
GRADING_SECONDS = 1200  # ten a1 gradings and two Ray start-ups on a loaded 2-core machine
SOURCE = (EXAMPLES_DIR / A1 / EXAMPLES["full"] / "cifar_dataset.py").read_bytes()


def states(url: str, tokens: dict[str, str], ids: dict[str, int]) -> list[str]:
    return [httpx2.get(f"{url}/api/submissions/{ids[login]}", headers={"Authorization": f"Bearer {tokens[login]}"},
                       timeout=30).json()["state"] for login in ids]


def wait_for(condition, seconds: float, what: str, log: Path) -> None:  # a predicate
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {seconds:g} s; the service said:\n"
                                 f"{log.read_text()[-4000:]}")
        time.sleep(0.5)


def end_leftovers(processes: list[psutil.Process]) -> None:
    """End, by PID, whatever the killed service started that is still running (its embedded Ray)."""
    alive = [process for process in processes if process.is_running()]
    for process in alive:
        process.kill()
    psutil.wait_procs(alive, timeout=30)


def test_sigkill_with_10_submissions_queued_or_running(tmp_path: Path, synthetic_cifar: Path) -> None:
    students = [RosterEntry(f"d{n}", f"Durable {n}", f"d{n}@example.edu") for n in range(SUBMISSIONS)]
    course_dir = tmp_path / "course"
    settings, tokens = make_course_dir(course_dir, None, {A1: {}}, students=students)
    env = {"GRADER_DATA_DIR": str(synthetic_cifar)}
    first = ServiceProcess(course_dir, cluster="local", extra_env=env)
    first.start()
    started: list[psutil.Process] = []
    try:
        ids = {}
        for student in students:
            response = httpx2.post(f"{first.url}/api/assignments/{A1}/submissions", timeout=60,
                                   headers={"Authorization": f"Bearer {tokens[student.login]}"},
                                   files={"file": ("cifar_dataset.py", SOURCE + f"# {student.login}\n".encode())})
            assert response.status_code == 201, response.text
            ids[student.login] = response.json()["id"]
        wait_for(lambda: "running" in states(first.url, tokens, ids), GRADING_SECONDS, "a grading starting", first.log)
        before = states(first.url, tokens, ids)
        started = psutil.Process(first.process.pid).children(recursive=True)
        first.kill()
    finally:
        first.stop()
        end_leftovers(started)
    assert "done" not in before and "running" in before, before

    second = ServiceProcess(course_dir, cluster="local", extra_env=env)
    second.start()
    try:
        wait_for(lambda: set(states(second.url, tokens, ids)) == {"done"}, GRADING_SECONDS, "every grading",
                 second.log)
    finally:
        started = psutil.Process(second.process.pid).children(recursive=True) if second.process else []
        second.stop()
        end_leftovers(started)

    with open_database(settings.database)() as db:
        submissions = db.scalars(select(Submission)).all()
        assert len(submissions) == SUBMISSIONS
        for submission in submissions:
            assert [g.state for g in submission.gradings] == [GradingState.DONE]  # graded and recorded once
            folder = report_dir(settings.reports_dir, submission.gradings[0].id)
            report = read_report_json(folder / REPORT_JSON)
            assert report.submission.student_id == submission.person.login
            assert submission.gradings[0].total == report.score.total == 100
    assert len(list(settings.reports_dir.rglob(REPORT_JSON))) == SUBMISSIONS
