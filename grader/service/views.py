"""What the pages and the API show: typed views of submissions, gradings and grades, with the course's rules applied.

A submission's result is its newest finished grading; its status is its newest grading (a regrade in progress).
Lateness, late days and the penalty are applied when shown, from course.toml as it is now and the student's
extensions (grader.service.policy).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.course import Course, OfferedAssignment
from grader.models import Report, ScoreItem
from grader.reports.templating import percent
from grader.service.policy import Policy, class_policies, course_policies, policies_for, result_grading
from grader.service.tables import Grading, GradingState, Person, Role, Submission

HIDDEN_REASON = "Hidden."  # as the student HTML view shows a hidden item


class SubmissionView(BaseModel):
    """One submission with its grading status and, once graded, its score before and after the late penalty."""

    id: int
    assignment_id: str
    filename: str
    submitted_at: datetime
    due: datetime  # the student's own (an extension's, when they have one)
    days_late: int
    late_days: int  # of days_late, those the student's late days cover
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
    released: bool = True  # False: the scores are withheld from the student until released (grader.service.release)


def lateness(view: SubmissionView) -> str:
    """How late a submission was and what it cost, as every page says it."""
    if not view.days_late:
        return "on time"
    used = f" ({view.late_days} late day(s) used)" if view.late_days else ""
    return f"{view.days_late} day(s) late{used}, -{percent(view.penalty)}"


class GradeRow(BaseModel):
    """One student's grade for an assignment: their counting submission, or none."""

    login: str
    name: str
    email: str
    submissions: int
    counting: SubmissionView | None


class LeaderboardEntry(BaseModel):
    rank: int  # ties share a rank (1, 1, 3)
    pseudonym: str
    accuracy: float


def queue_positions(db: Session) -> dict[int, int]:
    """Place in the queue of every queued grading, from 1."""
    queued = db.scalars(select(Grading.id).where(Grading.state == GradingState.QUEUED).order_by(Grading.id))
    return {grading_id: place for place, grading_id in enumerate(queued, start=1)}


def submission_view(submission: Submission, policy: Policy, positions: dict[int, int],
                    counting: Submission | None) -> SubmissionView:
    latest = submission.gradings[-1]
    result = result_grading(submission)
    at = submission.submitted_at
    return SubmissionView(
        id=submission.id, assignment_id=submission.assignment_id, filename=submission.filename,
        submitted_at=at, due=policy.due, days_late=policy.days_late(at), late_days=policy.late_days_used(at),
        state=latest.state, stage=latest.stage, queue_position=positions.get(latest.id),
        total=result.total if result else None, max_total=result.max_total if result else None,
        penalty=policy.penalty(at), final=policy.final(submission),
        accuracy=result.accuracy if result else None, counts=submission is counting,
        graded_by=result.id if result else None,
    )


def submission_views(db: Session, policy: Policy, submissions: Sequence[Submission]) -> list[SubmissionView]:
    """Views of one student's submissions to one assignment (in any order), newest first."""
    ordered = sorted(submissions, key=lambda s: s.id)
    counting, positions = policy.counting(ordered), queue_positions(db)
    return [submission_view(s, policy, positions, counting) for s in reversed(ordered)]


def submissions_of(db: Session, course: Course, person: Person, offered: OfferedAssignment) -> list[SubmissionView]:
    """A person's submissions to one assignment, newest first."""
    submissions = db.scalars(select(Submission).where(
        Submission.person_id == person.id, Submission.assignment_id == offered.id)).all()
    return submission_views(db, policies_for(db, course, person.id)[offered.id], submissions)


def grade_rows(db: Session, course: Course, offered: OfferedAssignment) -> list[GradeRow]:
    """Every student on the roster with their counting submission of one assignment, by login."""
    students = db.scalars(select(Person).where(Person.role == Role.STUDENT).order_by(Person.login)).all()
    by_person: dict[int, list[Submission]] = {}
    for submission in db.scalars(select(Submission).where(Submission.assignment_id == offered.id)
                                 .order_by(Submission.id)):
        by_person.setdefault(submission.person_id, []).append(submission)
    positions = queue_positions(db)
    policies, default = class_policies(db, course), course_policies(course)
    rows = []
    for student in students:
        submissions = by_person.get(student.id, [])
        policy = policies.get(student.id, default)[offered.id]
        counting = policy.counting(submissions)
        view = submission_view(counting, policy, positions, counting) if counting else None
        rows.append(GradeRow(login=student.login, name=student.name, email=student.email,
                             submissions=len(submissions), counting=view))
    return rows


def leaderboard(db: Session, offered: OfferedAssignment) -> list[LeaderboardEntry]:
    """The best accuracy on the hidden test images of every student who chose a pseudonym, best first."""
    best: dict[str, float] = {}
    submissions = db.scalars(select(Submission).join(Person).where(
        Submission.assignment_id == offered.id, Person.pseudonym.is_not(None)))
    for submission in submissions:
        result = result_grading(submission)
        if result is not None and result.accuracy is not None and submission.person.pseudonym:
            pseudonym = submission.person.pseudonym
            best[pseudonym] = max(result.accuracy, best.get(pseudonym, 0.0))
    return ranked(best)


def ranked(best: dict[str, float]) -> list[LeaderboardEntry]:
    """Best first (ties by pseudonym); equal accuracies share the rank of the first of them."""
    entries: list[LeaderboardEntry] = []
    for place, (pseudonym, accuracy) in enumerate(sorted(best.items(), key=lambda kv: (-kv[1], kv[0])), start=1):
        tied = entries and entries[-1].accuracy == accuracy
        entries.append(LeaderboardEntry(rank=entries[-1].rank if tied else place, pseudonym=pseudonym,
                                        accuracy=accuracy))
    return entries


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
