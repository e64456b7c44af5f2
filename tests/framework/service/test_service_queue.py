"""The fair queue on the service: each queued submission shows its place, what supersedes it and an estimate from
the assignment's measured grading times; TAs see when each phase of a grading happened."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from service_harness import A1, Served, csrf_of, finish
from sqlalchemy import select, update

from grader.service.dispatch import mark_dispatched, record_stage, recover
from grader.service.tables import Grading, GradingState

pytestmark = pytest.mark.service
MEASURED = timedelta(minutes=4)


def grading_of(served: Served, submission_id: int) -> Grading:
    with served.context.sessions() as db:
        return db.scalars(select(Grading).where(Grading.submission_id == submission_id)
                          .order_by(Grading.id.desc())).first()


def grade_as_a_worker_does(served: Served, submission_id: int, graded: Path) -> int:
    """Dispatch a submission's grading, report its stages as the cluster does (its first: "started") and finish
    it; returns its id."""
    grading_id = grading_of(served, submission_id).id
    with served.context.sessions() as db:
        mark_dispatched(db, grading_id)
        for stage in ("started", "checks", "training epoch 1/10"):
            record_stage(db, grading_id, stage)
    finish(served, submission_id, graded)
    return grading_id


def took(served: Served, grading_id: int, duration: timedelta) -> None:
    """Make a finished grading one that took `duration` from its first stage to its report."""
    with served.context.sessions() as db:
        db.execute(update(Grading).where(Grading.id == grading_id)
                   .values(started_at=db.get_one(Grading, grading_id).finished_at - duration))
        db.commit()


def statuses(served: Served, login: str) -> list[str]:
    rows = served.browser(login).get(f"/assignments/{A1}/rows").text
    return re.findall(r'<td class="status">(.*?)</td>', rows)


def test_a_queued_submission_shows_its_place_what_supersedes_it_and_an_estimate(
        serve, graded_a1: dict[str, Path]) -> None:
    served = serve(submissions_per_day=10)
    first = served.hand_in("s1")["id"]
    assert statuses(served, "s1") == ["queued: place 1 in line, no estimate yet"]
    took(served, grade_as_a_worker_does(served, first, graded_a1["full"]), MEASURED)
    other = served.hand_in("s2")["id"]
    older, newer = served.hand_in("s1")["id"], served.hand_in("s1")["id"]
    assert statuses(served, "s2") == ["queued: place 1 in line, about 4 min"]
    assert statuses(served, "s1") == [  # newest first; the older upload is graded after everything else
        "queued: place 2 in line, about 8 min",
        f"queued: superseded by #{newer}; place 3 in line, graded after everything else", "graded"]
    api = served.client.get(f"/api/submissions/{older}", headers=served.bearer("s1")).json()
    assert (api["queue_position"], api["superseded_by"]) == (3, newer)
    assert served.client.get(f"/api/submissions/{other}", headers=served.bearer("s2")).json()["wait_estimate"] \
        == "PT4M"


def test_a_regrade_of_all_waits_behind_new_uploads(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    graded = served.hand_in("s1")["id"]
    assert 'http-equiv="refresh"' in served.browser("ta1").get("/ta").text  # the class page, while one is queued
    finish(served, graded, graded_a1["full"])
    assert 'http-equiv="refresh"' not in served.browser("ta1").get("/ta").text
    assert served.client.post(f"/api/ta/assignments/{A1}/regrade", headers=served.bearer("ta1")).json() \
        == {"queued": 1}
    served.hand_in("s2")
    assert statuses(served, "s2") == ["queued: place 1 in line, no estimate yet"]
    assert statuses(served, "s1") == ["queued: place 2 in line, no estimate yet"]


def test_the_ta_page_shows_each_phase_of_a_grading(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    submission = served.hand_in("s1")["id"]
    grade_as_a_worker_does(served, submission, graded_a1["full"])
    with served.context.sessions() as db:
        grading = db.get_one(Grading, grading_of(served, submission).id)
        assert grading.dispatched_at is not None and grading.started_at is not None
        assert [stage.stage for stage in grading.stages] == ["started", "checks", "training epoch 1/10"]
    ta = served.browser("ta1")
    page = ta.get(f"/ta/assignments/{A1}/students/s1")
    ta.post(f"/ta/submissions/{submission}/regrade", data={"csrf": csrf_of(page.text)})
    timeline = re.search(r'<table id="timeline">(.*?)</table>', ta.get(f"/ta/assignments/{A1}/students/s1").text,
                         re.S).group(1)
    names = re.findall(r"(?:<td>|; )([a-z][a-z0-9/ ]*?) \d\d-\d\d \d\d:\d\d:\d\d", timeline)
    assert names == ["regrade requested", "uploaded", "dispatched", "started", "checks", "training epoch 1/10",
                     "finished"]  # "started" once: the worker's own first stage is the grading's start


def test_a_restart_puts_a_dispatched_grading_back_in_the_queue(serve) -> None:
    served = serve()
    submission = served.hand_in("s1")["id"]
    grading_id = grading_of(served, submission).id
    with served.context.sessions() as db:
        mark_dispatched(db, grading_id)
        record_stage(db, grading_id, "checks")
    assert statuses(served, "s1") == ["grading: checks"]
    recover(served.context.settings, served.context.course, served.context.sessions)
    again = grading_of(served, submission)
    assert (again.state, again.dispatched_at, again.started_at) == (GradingState.QUEUED, None, None)
    assert statuses(served, "s1") == ["queued: place 1 in line, no estimate yet"]



def class_rows(served: Served) -> list[tuple[str, str]]:
    """The TA class table's rows as (whether the row refreshes, its status cell or "no graded submission" cell)."""
    rows = served.browser("ta1").get(f"/ta/assignments/{A1}/rows").text
    cell = r'<tr( data-pending)?>.*?<td class="num">\d+</td>\s*(?:<td>#\d+</td>)?<td[^>]*>(.*?)</td>'
    return [(pending, text.strip()) for pending, text in re.findall(cell, rows, re.S)]


def test_the_class_table_shows_uploads_waiting_behind_a_grade_and_refreshes_until_they_are_graded(
        serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    first = served.hand_in("s1")["id"]
    assert class_rows(served) == [(" data-pending", f"no graded submission; #{first} queued: place 1 in line, "
                                   "no estimate yet"), ("", "no graded submission")]
    finish(served, first, graded_a1["full"])
    newer = served.hand_in("s1")["id"]
    assert class_rows(served)[0] == (" data-pending", f"graded; #{newer} queued: place 1 in line, no estimate yet")
    finish(served, newer, graded_a1["weak"])
    assert class_rows(served)[0] == ("", "graded")


def test_the_queue_page_lists_every_grading_in_dispatch_order(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    graded = served.hand_in("s2")["id"]
    finish(served, graded, graded_a1["full"])
    older, newer = served.hand_in("s1")["id"], served.hand_in("s1")["id"]
    with served.context.sessions() as db:
        mark_dispatched(db, grading_of(served, newer).id)
        record_stage(db, grading_of(served, newer).id, "checks")
    other = served.hand_in("s2")["id"]
    ta = served.browser("ta1")
    ta.post(f"/ta/assignments/{A1}/regrade", data={"csrf": csrf_of(ta.get("/ta").text), "confirm": "yes"})
    assert '<a href="/ta/queue">grading queue</a>: 3 queued, 1 under way.' in ta.get("/ta").text
    page = ta.get("/ta/queue").text
    rows = re.findall(r"<tr><td>(.*?)</td>\s*<td>#(\d+) .*?\((s\d)\)</a></td>.*?<td>([a-z ]+)</td>", page, re.S)
    assert rows == [("grading: checks", str(newer), "s1", "upload"),
                    ("queued: place 1 in line, no estimate yet", str(other), "s2", "upload"),
                    ("queued: place 2 in line, no estimate yet", str(graded), "s2", "regrade all"),
                    (f"queued: superseded by #{newer}; place 3 in line, graded after everything else", str(older),
                     "s1", "upload")]
    assert served.browser("s1").get("/ta/queue").status_code == 403
    assert "student uploads round robin" in page
    course_toml = served.context.settings.course_dir / "course.toml"  # the service rereads it when it changes
    course_toml.write_text(course_toml.read_text() + '\n[queue]\norder = "first_come"\n')
    first_come = ta.get("/ta/queue").text
    assert "first come, first served" in first_come and "superseded" not in first_come

