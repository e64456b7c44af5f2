"""The fair queue as the database holds it: the queued rows for grader.service.ordering, each queued grading's
place, what supersedes it, and an estimate from the measured grading times of its assignment."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader.course import QueueOrder
from grader.service.ordering import QueuedGrading, Reason, dispatch_order, estimate, superseded_by
from grader.service.tables import Grading, GradingState, Submission

MEASURED_GRADINGS = 20  # the estimate is the median of this many latest finished gradings of the assignment


class QueuePlace(BaseModel):
    """Where a queued grading stands: its place from 1, the submission that supersedes it, the estimated wait."""

    place: int
    superseded_by: int | None
    estimate: timedelta | None


def queued_gradings(db: Session) -> list[QueuedGrading]:
    """Every queued grading not yet handed to the cluster, with what the ordering needs of it."""
    newest = (select(Submission.person_id, Submission.assignment_id, func.max(Submission.id).label("newest"))
              .group_by(Submission.person_id, Submission.assignment_id).subquery())
    rows = db.execute(
        select(Grading.id, Grading.reason, Submission.id, Submission.person_id, Submission.assignment_id,
               newest.c.newest)
        .join(Submission, Grading.submission_id == Submission.id)
        .join(newest, (newest.c.person_id == Submission.person_id)
              & (newest.c.assignment_id == Submission.assignment_id))
        .where(Grading.state == GradingState.QUEUED, Grading.dispatched_at.is_(None)))
    return [QueuedGrading(grading_id=grading_id, reason=Reason(reason), submission_id=submission_id,
                          person_id=person_id, assignment_id=assignment_id, newest_submission_id=newest_id)
            for grading_id, reason, submission_id, person_id, assignment_id, newest_id in rows]


def durations(db: Session, assignment_id: str) -> list[timedelta]:
    """How long the latest finished gradings of an assignment took, from their first stage to their report."""
    rows = db.execute(select(Grading.started_at, Grading.finished_at).join(Submission)
                      .where(Submission.assignment_id == assignment_id, Grading.started_at.is_not(None),
                             Grading.finished_at.is_not(None))
                      .order_by(Grading.finished_at.desc()).limit(MEASURED_GRADINGS))
    return [finished - started for started, finished in rows if started and finished]


def under_way(db: Session) -> int:
    """Gradings handed to the cluster and not finished: while anything waits, the cluster's workers are all busy."""
    return db.scalar(select(func.count()).select_from(Grading).where(
        Grading.dispatched_at.is_not(None), Grading.state != GradingState.DONE)) or 0


def queue_places(db: Session, order: QueueOrder) -> dict[int, QueuePlace]:
    """Every queued grading's place in the course's dispatch order, by grading id."""
    dispatched = dispatch_order(queued_gradings(db), order)
    workers = max(1, under_way(db))
    measured = {assignment_id: durations(db, assignment_id) for assignment_id in {r.assignment_id for r in dispatched}}
    return {row.grading_id: QueuePlace(place=place, superseded_by=superseded_by(row, order),
                                       estimate=estimate(measured[row.assignment_id], place, workers))
            for place, row in enumerate(dispatched, start=1)}
