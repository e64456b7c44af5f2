"""The job loop's bookkeeping: after a restart, unfinished gradings are recorded from their reports or queued
again, and a grading is recorded exactly once however often it is reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from service_harness import Served, finish
from sqlalchemy import select, update

from grader.reports import read_report_json
from grader.reports.files import REPORT_JSON
from grader.service.dispatch import record, recover
from grader.service.storage import report_dir
from grader.service.tables import Grading, GradingState

pytestmark = pytest.mark.service


def grading_of(served: Served, submission_id: int) -> Grading:
    with served.context.sessions() as db:
        return db.scalar(select(Grading).where(Grading.submission_id == submission_id).order_by(Grading.id.desc()))


def set_running(served: Served, grading_id: int, stage: str) -> None:
    with served.context.sessions() as db:
        db.execute(update(Grading).where(Grading.id == grading_id).values(state=GradingState.RUNNING, stage=stage))
        db.commit()


def test_recovery_records_finished_reports_and_requeues_the_rest(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    context = served.context
    finished, unfinished, cut_short = (served.hand_in(login)["id"] for login in ("s1", "s2", "s1"))
    for submission_id in (finished, unfinished, cut_short):
        set_running(served, grading_of(served, submission_id).id, "training epoch 3/10")
    folder = report_dir(context.settings.reports_dir, grading_of(served, finished).id)
    shutil.copytree(graded_a1["full"], folder)
    broken = report_dir(context.settings.reports_dir, grading_of(served, cut_short).id)
    broken.mkdir(parents=True)
    (broken / REPORT_JSON).write_text('{"schema_version": 1, "assignment_id": "a1_da')  # a write cut by a kill
    recover(context.settings, context.course, context.sessions)
    done = grading_of(served, finished)
    assert (done.state, done.stage, done.total) == (GradingState.DONE, "graded", 100.0)
    for submission_id in (unfinished, cut_short):
        again = grading_of(served, submission_id)
        assert (again.state, again.stage, again.total) == (GradingState.QUEUED, "queued", None)
    recover(context.settings, context.course, context.sessions)
    assert grading_of(served, finished).finished_at == done.finished_at  # a second start changes nothing


def test_a_grading_is_recorded_once(serve, graded_a1: dict[str, Path]) -> None:
    served = serve()
    context = served.context
    submission = served.hand_in("s1", "weak")["id"]
    finish(served, submission, graded_a1["weak"])
    grading = grading_of(served, submission)
    other = read_report_json(graded_a1["full"] / REPORT_JSON)
    with context.sessions() as db:
        assert record(db, context.course, grading.id, other, report_dir(context.settings.reports_dir, grading.id)) \
            is False
    again = grading_of(served, submission)
    assert (again.total, again.finished_at) == (grading.total, grading.finished_at) and again.total < 100
