"""What the pages and the API show: typed views of submissions, gradings and grades, with the course's rules applied.

A submission's result is its newest finished grading; its status is its newest grading (a regrade in progress).
The late penalty is applied when shown, from course.toml as it is now.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.config import load_assignment
from grader.course import OfferedAssignment
from grader.models import Report, ScoreItem
from grader.service.tables import Grading, GradingState, Person, Role, Submission
from grader.tasks import TASK_TYPES

HIDDEN_REASON = "Hidden."  # as the student HTML view shows a hidden item


class SubmissionView(BaseModel):
    """One submission with its grading status and, once graded, its score before and after the late penalty."""

    id: int
    assignment_id: str
    filename: str
    submitted_at: datetime
    days_late: int
    state: GradingState
    stage: str
    queue_position: int | None
    total: float | None
    max_total: float | None
    penalty: float
    final: float | None
    accuracy: float | None
    counts: bool
    graded_by: int | None  # the grading whose report is shown


class GradeRow(BaseModel):
    """One student's grade for an assignment: their counting submission, or none."""

    login: str
    name: str
    email: str
    submissions: int
    counting: SubmissionView | None


class LeaderboardEntry(BaseModel):
    pseudonym: str
    accuracy: float


def result_grading(submission: Submission) -> Grading | None:
    """The newest finished grading of a submission."""
    return next((g for g in reversed(submission.gradings) if g.state is GradingState.DONE), None)


def final_score(submission: Submission, offered: OfferedAssignment) -> float | None:
    result = result_grading(submission)
    if result is None or result.total is None:
        return None
    return result.total * (1 - offered.penalty(submission.days_late))


def counting_submission(submissions: Sequence[Submission], offered: OfferedAssignment) -> Submission | None:
    """The graded submission that is the grade: the latest, or the best after the late penalty (latest on ties)."""
    graded = sorted((s for s in submissions if result_grading(s) is not None), key=lambda s: (s.submitted_at, s.id))
    if not graded:
        return None
    if offered.counts == "latest":
        return graded[-1]
    return max(reversed(graded), key=lambda s: final_score(s, offered) or 0.0)


def queue_positions(db: Session) -> dict[int, int]:
    """Place in the queue of every queued grading, from 1."""
    queued = db.scalars(select(Grading.id).where(Grading.state == GradingState.QUEUED).order_by(Grading.id))
    return {grading_id: place for place, grading_id in enumerate(queued, start=1)}


def submission_view(submission: Submission, offered: OfferedAssignment, positions: dict[int, int],
                    counting: Submission | None) -> SubmissionView:
    latest = submission.gradings[-1]
    result = result_grading(submission)
    return SubmissionView(
        id=submission.id, assignment_id=submission.assignment_id, filename=submission.filename,
        submitted_at=submission.submitted_at, days_late=submission.days_late, state=latest.state,
        stage=latest.stage, queue_position=positions.get(latest.id),
        total=result.total if result else None, max_total=result.max_total if result else None,
        penalty=offered.penalty(submission.days_late), final=final_score(submission, offered),
        accuracy=result.accuracy if result else None, counts=submission is counting,
        graded_by=result.id if result else None,
    )


def submissions_of(db: Session, person: Person, offered: OfferedAssignment) -> list[SubmissionView]:
    """A person's submissions to one assignment, newest first."""
    submissions = db.scalars(select(Submission).where(
        Submission.person_id == person.id, Submission.assignment_id == offered.id).order_by(Submission.id)).all()
    counting = counting_submission(submissions, offered)
    positions = queue_positions(db)
    return [submission_view(s, offered, positions, counting) for s in reversed(submissions)]


def grade_rows(db: Session, offered: OfferedAssignment) -> list[GradeRow]:
    """Every student on the roster with their counting submission of one assignment, by login."""
    students = db.scalars(select(Person).where(Person.role == Role.STUDENT).order_by(Person.login)).all()
    by_person: dict[int, list[Submission]] = {}
    for submission in db.scalars(select(Submission).where(Submission.assignment_id == offered.id)
                                 .order_by(Submission.id)):
        by_person.setdefault(submission.person_id, []).append(submission)
    positions = queue_positions(db)
    rows = []
    for student in students:
        submissions = by_person.get(student.id, [])
        counting = counting_submission(submissions, offered)
        view = submission_view(counting, offered, positions, counting) if counting else None
        rows.append(GradeRow(login=student.login, name=student.name, email=student.email,
                             submissions=len(submissions), counting=view))
    return rows


def leaderboard(db: Session, offered: OfferedAssignment) -> list[LeaderboardEntry]:
    """The best credited metric on the hidden test images (the `accuracy` column: an accuracy, or for a
    reconstruction an error, lowest best) of every student who chose a pseudonym, best first."""
    metric = load_assignment(offered.id).metric
    sign = -1.0 if metric is not None and not TASK_TYPES[metric.task].higher_is_better else 1.0
    best: dict[str, float] = {}
    submissions = db.scalars(select(Submission).join(Person).where(
        Submission.assignment_id == offered.id, Person.pseudonym.is_not(None)))
    for submission in submissions:
        result = result_grading(submission)
        if result is not None and result.accuracy is not None and submission.person.pseudonym:
            pseudonym = submission.person.pseudonym
            best[pseudonym] = max(sign * result.accuracy, best.get(pseudonym, -math.inf))
    return [LeaderboardEntry(pseudonym=p, accuracy=sign * a) for p, a in sorted(best.items(), key=lambda kv: -kv[1])]


class StudentReport(BaseModel):
    """What a student may read of a report: the score items (hidden ones without their reason), the sentences of
    what went wrong, and intake's notes; never hidden-check names, messages or details."""

    submission: SubmissionView
    summary: str
    items: list[ScoreItem]
    failures: list[str]
    notes: list[str]


def student_report(report: Report, submission: SubmissionView) -> StudentReport:
    items = [item if item.visibility == "visible" else item.model_copy(update={"reason": HIDDEN_REASON})
             for item in report.score.items]
    return StudentReport(submission=submission, summary=report.score.summary, items=items,
                         failures=[failure.message for failure in report.failures], notes=report.notes)
