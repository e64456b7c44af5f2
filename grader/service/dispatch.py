"""The job loop: queued gradings go to the cluster dispatcher in the course's queue order (grader.service.ordering),
no more at once than its workers take, and each finished report is recorded exactly once.

Reports are written by the workers into `reports/<grading id>/`, report.json last. On start, every grading left
queued or running by a stopped or killed service is recorded from its report when that exists, and queued again
otherwise; a grading is marked done by one conditional update, so it is never recorded twice.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from grader.config import Assignment, load_assignment
from grader.course import Course
from grader.errors import GraderError
from grader.models import Report
from grader.pipeline import grader_failure, write_failed_report
from grader.reports import read_report_json
from grader.reports.files import REPORT_JSON
from grader.reports.gradescope import write_gradescope_results
from grader.service.ordering import dispatch_order
from grader.service.settings import ServiceSettings
from grader.service.storage import make_private, report_dir, upload_path
from grader.service.tables import Grading, GradingStage, GradingState, utcnow
from grader.service.waiting import queued_gradings

if TYPE_CHECKING:
    from grader.cluster import Dispatcher

POLL_SECONDS = 5.0  # the loop also wakes at once when an upload or regrade queues a grading
STAGE_CHARS = 100


class JobLoop:
    """Feeds queued gradings to a `Dispatcher` from one background thread and records what comes back."""

    def __init__(self, settings: ServiceSettings, course: Callable[[], Course], sessions: sessionmaker[Session],
                 dispatcher: Dispatcher) -> None:
        """`course` gives the course as course.toml now says (whether a finished grading goes on a leaderboard)."""
        self.settings, self.course, self.sessions, self.dispatcher = settings, course, sessions, dispatcher
        self._in_flight: set[int] = set()
        self._refused: set[int] = set()  # gradings the cluster cannot take now, said once on stderr
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grader-jobs", daemon=True)

    def start(self) -> None:
        recover(self.settings, self.course(), self.sessions)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Stop dispatching; what is still being graded is left to the next start's recovery."""
        self._stopping.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._dispatch_queued()
            except Exception:  # noqa: BLE001 - a database hiccup must not end grading for good
                print(f"grader serve: the job loop failed and retries:\n{traceback.format_exc()}", file=sys.stderr)
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _dispatch_queued(self) -> None:
        """Hand the cluster the queued gradings in the course's queue order, as many as its workers take at once."""
        with self.sessions() as db:
            workers: dict[str, int] = {}
            # with no worker at all, submit says why
            for row in dispatch_order(queued_gradings(db), self.course().queue.order):
                assignment = load_assignment(row.assignment_id)
                if row.assignment_id not in workers:
                    workers[row.assignment_id] = self.dispatcher.workers(assignment)
                with self._lock:
                    if row.grading_id in self._in_flight:
                        continue
                    if 0 < workers[row.assignment_id] <= len(self._in_flight):
                        return  # the cluster is full; the next finished grading wakes the loop
                    self._in_flight.add(row.grading_id)
                self._submit(db, row.grading_id, assignment)

    def _submit(self, db: Session, grading_id: int, assignment: Assignment) -> None:
        submission = db.get_one(Grading, grading_id).submission
        source = upload_path(self.settings.uploads_dir, submission.sha256, submission.stored_name)
        try:
            future = self.dispatcher.submit(assignment, source, report_dir(self.settings.reports_dir, grading_id),
                                            submission.person.login, on_status=partial(self._on_status, grading_id))
        except GraderError as exc:  # no node can take it now; it stays queued until one can
            self._refuse(grading_id, exc)
            return
        mark_dispatched(db, grading_id)
        future.add_done_callback(partial(self._on_done, grading_id, submission.assignment_id,
                                         submission.person.login, source))

    def _refuse(self, grading_id: int, problem: GraderError) -> None:
        with self._lock:
            self._in_flight.discard(grading_id)
            first = grading_id not in self._refused
            self._refused.add(grading_id)
        if first:
            print(f"grader serve: grading {grading_id} stays queued: {problem}", file=sys.stderr)

    def _on_status(self, grading_id: int, stage: str) -> None:
        with self.sessions() as db:
            record_stage(db, grading_id, stage)

    def _on_done(self, grading_id: int, assignment_id: str, login: str, source: Path, future: Future[Report]) -> None:
        if self._stopping.is_set():  # the dispatcher cancels what it still holds when it closes: grade it next time
            return
        out_dir = report_dir(self.settings.reports_dir, grading_id)
        try:
            report = future.result()
        except Exception:  # noqa: BLE001 - the dispatcher promises a Report; if it breaks that, the TA still sees why
            report = write_failed_report(load_assignment(assignment_id), source, login,
                                         grader_failure(traceback.format_exc()), out_dir)
        with self.sessions() as db:
            record(db, self.course(), grading_id, report, out_dir)
        with self._lock:
            self._in_flight.discard(grading_id)
        self._wake.set()  # a worker is free for the next in line


def mark_dispatched(db: Session, grading_id: int) -> None:
    """Note that a queued grading was handed to the cluster: it leaves the fair queue."""
    db.execute(update(Grading).where(Grading.id == grading_id).values(dispatched_at=utcnow()))
    db.commit()


def record_stage(db: Session, grading_id: int, stage: str) -> None:
    """A status from the cluster: "queued" (waiting for a worker, again after a node refused it) or a stage the
    worker began, which is timed for the TA; the first stage is when grading started."""
    queued = stage == "queued"
    values: dict[str, object] = {"state": GradingState.QUEUED if queued else GradingState.RUNNING,
                                 "stage": stage[:STAGE_CHARS]}
    if not queued:
        values["started_at"] = func.coalesce(Grading.started_at, utcnow())
    changed = cast("CursorResult[Any]", db.execute(
        update(Grading).where(Grading.id == grading_id, Grading.state != GradingState.DONE).values(values)))
    if changed.rowcount and not queued:
        db.add(GradingStage(grading_id=grading_id, stage=stage[:STAGE_CHARS]))
    db.commit()


def record(db: Session, course: Course, grading_id: int, report: Report, out_dir: Path) -> bool:
    """Mark a grading done with its report's numbers, unless it already is; True when this call recorded it."""
    done = update(Grading).where(Grading.id == grading_id, Grading.state != GradingState.DONE).values(
        state=GradingState.DONE, stage="graded", finished_at=utcnow(), total=report.score.total,
        max_total=report.score.max_total, metric_value=report.credited_value)
    result = cast("CursorResult[Any]", db.execute(done))  # an UPDATE's result, typed by SQLAlchemy as any Result
    db.commit()
    offered = course.offered(report.assignment_id)
    if result.rowcount and offered is not None and offered.leaderboard:
        write_gradescope_results(report, out_dir, leaderboard=True)
    make_private(out_dir)
    return bool(result.rowcount)


def recover(settings: ServiceSettings, course: Course, sessions: sessionmaker[Session]) -> None:
    """After a restart: record every unfinished grading whose report exists, and queue the others again."""
    with sessions() as db:
        unfinished = db.scalars(select(Grading).where(Grading.state != GradingState.DONE)).all()
        for grading in unfinished:
            out_dir = report_dir(settings.reports_dir, grading.id)
            report = _existing_report(out_dir)
            if report is not None:
                record(db, course, grading.id, report, out_dir)
            else:
                grading.state, grading.stage = GradingState.QUEUED, "queued"
                grading.dispatched_at = grading.started_at = None
        db.commit()


def _existing_report(out_dir: Path) -> Report | None:
    path = out_dir / REPORT_JSON
    if not path.is_file():
        return None
    try:
        return read_report_json(path)
    except GraderError:  # a report cut short by a kill: grade again
        return None

