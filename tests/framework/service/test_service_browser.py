"""A real browser (Playwright driving Debian's chromium) against a real `grader serve` that grades with Ray:
a student logs in with a token, hands in, watches the status change without reloading and opens the report;
a TA looks at the class and exports the gradebooks; a TA grants one student an extension and sees the grade follow.
Every page is saved as a screenshot (the test's artifacts;
set GRADER_SCREENSHOTS=DIR to also copy them there, as for the screenshots in docs/service/)."""

from __future__ import annotations

import csv
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from service_harness import A1, EXAMPLES, EXAMPLES_DIR, ServiceProcess, finish_grading, make_course_dir

from grader.course import load_course
from grader.service.context import ServiceContext
from grader.service.db import open_database

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser
GRADING_SECONDS = 600  # Ray's start and one a1 grading on a loaded 2-core machine, with room to spare
SOURCE = EXAMPLES_DIR / A1 / EXAMPLES["full"] / "cifar_dataset.py"


class Screenshots:
    """Full-page screenshots into the test's folder, and into $GRADER_SCREENSHOTS when set."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.extra = Path(os.environ["GRADER_SCREENSHOTS"]) if os.environ.get("GRADER_SCREENSHOTS") else None

    def take(self, page, name: str) -> None:  # a Playwright page
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.extra / path.name)


def log_in(browser, url: str, token: str):  # Playwright objects
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=token]", token)
    page.click("button:text-is('Log in')")
    return page


def test_a_student_hands_in_and_reads_the_report_and_a_ta_exports(chromium, tmp_path: Path,
                                                                  synthetic_cifar: Path) -> None:
    course_dir = tmp_path / "course"
    _, tokens = make_course_dir(course_dir, None, {A1: {}})
    server = ServiceProcess(course_dir, cluster="local", extra_env={"GRADER_DATA_DIR": str(synthetic_cifar)})
    shots = Screenshots(tmp_path / "screenshots")
    server.start()
    try:
        student = log_in(chromium, server.url, tokens["s1"])
        assert "Assignments" in student.inner_text("h1")
        shots.take(student, "student-assignments")
        student.click(f"a[href='/assignments/{A1}']")
        student.set_input_files("input[type=file]", str(SOURCE))
        student.click("button:text-is('Upload')")
        student.wait_for_selector("text=queued for grading")
        shots.take(student, "student-queued")
        student.evaluate("window.notReloaded = true")
        seen = [student.inner_text("td.status")]
        for _ in range(GRADING_SECONDS * 4):
            status = student.inner_text("td.status")
            if status != seen[-1]:
                seen.append(status)
                if status.startswith("grading"):
                    shots.take(student, "student-grading")
            if status == "graded":
                break
            student.wait_for_timeout(250)
        assert seen[0].startswith("queued") and seen[-1] == "graded", (seen, server.log.read_text()[-3000:])
        assert student.evaluate("window.notReloaded === true")  # the table changed under the page's own script
        shots.take(student, "student-graded")
        student.click("a:text-is('report')")
        assert "Grade: 100 / 100 (score 100 / 100; handed in on time)" in student.inner_text("body")
        assert "Hidden checks" not in student.inner_text("body")
        shots.take(student, "student-report")

        ta = log_in(chromium, server.url, tokens["ta1"])
        assert "Class" in ta.inner_text("h1")
        shots.take(ta, "ta-class")
        ta.click(f"a[href='/ta/assignments/{A1}']")
        assert "Ann One" in ta.inner_text("table:last-of-type")
        shots.take(ta, "ta-assignment")
        with ta.expect_download() as canvas:
            ta.click("text=Canvas gradebook CSV")
        rows = list(csv.reader(canvas.value.path().open()))
        assert rows[0][:3] == ["Student", "ID", "SIS User ID"]
        assert rows[2][:3] == ["Ann One", "", "s1"] and rows[2][5] == "100"
        with ta.expect_download() as grades:
            ta.click("text=grades.csv")
        assert "s1" in grades.value.path().read_text()
        ta.click("a:text-is('TA view')")
        assert "Hidden checks" in ta.inner_text("body")
        shots.take(ta, "ta-report")
        regrade_all_and_read_the_timeline(ta, server.url)
    finally:
        server.stop()
    assert {p.name for p in (tmp_path / "screenshots").glob("*.png")} >= {
        "student-assignments.png", "student-queued.png", "student-graded.png", "student-report.png",
        "ta-class.png", "ta-assignment.png", "ta-report.png"}


def regrade_all_and_read_the_timeline(ta: Page, url: str) -> None:
    """Regrade every submission (asked to confirm), watch the class table refresh itself until graded, and read the
    grading's phases on the student's page."""
    ta.goto(f"{url}/ta/assignments/{A1}")
    ta.click("button:has-text('Regrade every submission')")
    assert "This queues 1 submission(s)" in ta.inner_text("body")
    ta.click("button:has-text('Yes, regrade all 1')")
    ta.wait_for_selector("text=Queued 1 submission(s) for regrading")
    ta.evaluate("window.notReloaded = true")
    ta.wait_for_selector("#grades [data-pending]", state="detached", timeout=GRADING_SECONDS * 1000)
    assert ta.evaluate("window.notReloaded === true") and "graded" in ta.inner_text("#grades")
    ta.click("a:text-is('s1')")
    timeline = ta.inner_text("#timeline")
    for phase in ("regrade all requested", "uploaded", "dispatched", "started", "checks", "finished"):
        assert phase in timeline, timeline


def test_a_ta_gives_one_student_a_two_day_extension_and_sees_the_grade_change(
        chromium, tmp_path: Path, graded_a1: dict[str, Path]) -> None:
    now = datetime.now(UTC)
    course_dir = tmp_path / "course"
    settings, tokens = make_course_dir(course_dir, None, {A1: {"due": now - timedelta(days=1, hours=2),
                                                               "hard_deadline": now + timedelta(days=2)}})
    server = ServiceProcess(course_dir)  # grading held back: the test finishes the grading as a worker would
    shots = Screenshots(tmp_path / "screenshots")
    server.start()
    try:
        student = log_in(chromium, server.url, tokens["s1"])
        student.click(f"a[href='/assignments/{A1}']")
        student.set_input_files("input[type=file]", str(SOURCE))
        student.click("button:text-is('Upload')")
        student.wait_for_selector("text=queued for grading")
        ta = log_in(chromium, server.url, tokens["ta1"])
        ta.click("a:text-is('grading queue')")
        assert "queued: place 1 in line, no estimate yet" in ta.inner_text("#queue") and "s1" in ta.inner_text("#queue")
        shots.take(ta, "ta-queue")
        ta.goto(f"{server.url}/ta/assignments/{A1}")
        assert "no graded submission; #1 queued: place 1 in line" in ta.inner_text("#grades")
        ta.evaluate("window.notReloaded = true")
        context = ServiceContext(settings, load_course(course_dir), open_database(settings.database), jobs=None)
        finish_grading(context, 1, graded_a1["full"])
        ta.wait_for_selector("#grades [data-pending]", state="detached")  # the class table refreshed itself
        assert "-20.0%" in ta.inner_text("#grades") and ta.evaluate("window.notReloaded === true")
        student.reload()
        assert "2 day(s) late, -20.0%" in student.inner_text("#submissions")

        ta.goto(f"{server.url}/ta/assignments/{A1}/students/s1")
        due = datetime.strptime(ta.input_value("input[name=due]"), "%Y-%m-%dT%H:%M")  # the form starts at it
        assert due == context.course.assignments[0].due.replace(tzinfo=None, second=0, microsecond=0)
        ta.fill("input[name=due]", (due + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
        ta.fill("input[name=reason]", "two-day extension")
        ta.click("button:text-is('Grant extension')")
        assert "s1 is now due" in ta.inner_text("body")
        assert "two-day extension" in ta.inner_text("#extensions") and "ta1, " in ta.inner_text("#extensions")
        shots.take(ta, "ta-extension")
        ta.goto(f"{server.url}/ta/assignments/{A1}")
        assert "100" in ta.inner_text("table:last-of-type") and "-20.0%" not in ta.inner_text("table:last-of-type")
        with ta.expect_download() as canvas:
            ta.click("text=Canvas gradebook CSV")
        rows = list(csv.reader(canvas.value.path().open()))
        assert rows[2][2] == "s1" and rows[2][5] == "100"
        student.reload()
        assert "Your extension" in student.inner_text("#deadline") and "on time" in student.inner_text("#submissions")
        shots.take(student, "student-extension")
    finally:
        server.stop()


def test_a_ta_publishes_scores_and_answers_a_regrade_request(chromium, tmp_path: Path,
                                                             graded_a1: dict[str, Path]) -> None:
    course_dir = tmp_path / "course"
    settings, tokens = make_course_dir(course_dir, None, {A1: {"release": "when_published"}})
    server = ServiceProcess(course_dir)  # grading held back: the test finishes the grading as a worker would
    shots = Screenshots(tmp_path / "screenshots")
    server.start()
    try:
        student = log_in(chromium, server.url, tokens["s1"])
        student.goto(f"{server.url}/assignments/{A1}")
        student.set_input_files("input[type=file]", str(SOURCE))
        student.click("button:text-is('Upload')")
        student.wait_for_selector("text=queued for grading")
        context = ServiceContext(settings, load_course(course_dir), open_database(settings.database), jobs=None)
        finish_grading(context, 1, graded_a1["full"])
        student.reload()
        assert "once the TAs publish them" in student.inner_text("#release")
        assert "100 / 100" not in student.inner_text("#submissions") and "report" not in student.inner_text(
            "#submissions")
        shots.take(student, "student-unpublished")

        ta = log_in(chromium, server.url, tokens["ta1"])
        ta.goto(f"{server.url}/ta/assignments/{A1}")
        ta.click("button:text-is('Publish scores and reports')")
        assert "Published by ta1" in ta.inner_text("#release")
        student.reload()
        assert "100 / 100" in student.inner_text("#submissions") and student.locator("#release").count() == 0

        student.fill("textarea[name=reason]", "Please check the augmentation item.")
        student.click("button:text-is('Request a regrade')")
        assert "Please check the augmentation item." in student.inner_text("#thread")
        ta.goto(f"{server.url}/ta/regrade-requests")
        ta.click("#regrade-requests a")
        ta.fill("textarea[name=answer]", "Checked: the score stands.")
        ta.click("button:text-is('Resolve')")
        shots.take(ta, "ta-regrade-request")
        student.reload()
        assert "Checked: the score stands." in student.inner_text("#thread")
        assert "Resolved by ta1" in student.inner_text("#request-state")
    finally:
        server.stop()
