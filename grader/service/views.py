"""What the pages and the API show: typed views of submissions, gradings and grades, with the course's rules applied.

A submission's result is its newest finished grading; its status is its newest grading (a regrade in progress).
Lateness, late days and the penalty are applied when shown, from course.toml as it is now and the student's
extensions (grader.service.policy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from grader.config import Assignment, load_assignment
from grader.course import Course, OfferedAssignment, QueueOrder
from grader.models import Report, ScoreItem
from grader.reports.templating import percent
from grader.service.ordering import Reason
from grader.service.policy import Policy, class_policies, course_policies, policies_for, result_grading
from grader.service.tables import Grading, GradingState, Person, Role, Submission
from grader.service.waiting import QueuePlace, queue_places
from grader.tasks import TASK_TYPES, TaskType

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
    queue_position: int | None  # place in the queue's dispatch order (grader.service.ordering), from 1
    superseded_by: int | None  # a newer upload of the student's that is graded first
    wait_estimate: timedelta | None  # until graded, from measured grading times; None before any measurement
    total: float | None
    max_total: float | None
    penalty: float
    final: float | None
    metric_value: float | None  # the credited metric on the hidden test images (AssignmentInfo.metric says which)
    counts: bool
    graded_by: int | None  # the grading whose report is shown
    released: bool = True  # False: the scores are withheld from the student until released (grader.service.release)


def lateness(view: SubmissionView) -> str:
    """How late a submission was and what it cost, as every page says it."""
    if not view.days_late:
        return "on time"
    used = f" ({view.late_days} late day(s) used)" if view.late_days else ""
    return f"{view.days_late} day(s) late{used}, -{percent(view.penalty)}"


class Phase(BaseModel):
    """One moment of a grading: uploaded (or regrade requested), dispatched, started, a stage began, finished."""

    name: str
    at: datetime


class GradingTimeline(BaseModel):
    """The phases of one grading of a submission, for the TA's page."""

    submission_id: int
    grading_id: int
    phases: list[Phase]


def reason_name(reason: int) -> str:
    """Why a grading was queued, in words: "upload", "regrade" or "regrade all"."""
    return Reason(reason).name.lower().replace("_", " ")


def timeline(submission: Submission, grading: Grading) -> GradingTimeline:
    """When each phase of a grading happened, in order of time; phases not reached yet are left out."""
    first = grading is submission.gradings[0]
    begun = [Phase(name="uploaded", at=submission.submitted_at) if first
             else Phase(name=f"{reason_name(grading.reason)} requested", at=grading.requested_at)]
    marks = [("dispatched", grading.dispatched_at)]
    if not any(stage.stage == "started" for stage in grading.stages):  # a worker's own "started" stage says it
        marks.append(("started", grading.started_at))
    phases = begun + [Phase(name=name, at=at) for name, at in marks if at is not None]
    phases += [Phase(name=stage.stage, at=stage.at) for stage in grading.stages]
    if grading.finished_at is not None:
        phases.append(Phase(name="finished", at=grading.finished_at))
    # by time: after a restart, the stages of the attempt cut short come before the new dispatch
    return GradingTimeline(submission_id=submission.id, grading_id=grading.id,
                           phases=sorted(phases, key=lambda phase: phase.at))


def timelines(submissions: Sequence[Submission]) -> list[GradingTimeline]:
    """Every grading of the submissions, newest first."""
    pairs = [(s, g) for s in submissions for g in s.gradings]
    return [timeline(s, g) for s, g in sorted(pairs, key=lambda pair: pair[1].id, reverse=True)]


class GradeRow(BaseModel):
    """One student's grade for an assignment: their counting submission, or none."""

    login: str
    name: str
    email: str
    submissions: int
    counting: SubmissionView | None
    pending: SubmissionView | None  # the newest submission whose grading is queued or under way


class MetricInfo(BaseModel):
    """The metric an assignment's grades carry: its name, its unit ("" for a share such as an accuracy) and its
    direction."""

    name: str
    unit: str
    higher_is_better: bool


def metric_info(assignment: Assignment) -> MetricInfo | None:
    """The metric the assignment's task declares (grader.tasks); None for one that scores no model."""
    return task_metric(TASK_TYPES[assignment.metric.task]) if assignment.metric is not None else None


def task_metric(task: TaskType) -> MetricInfo:
    """A task's metric: its name, unit and direction."""
    return MetricInfo(name=task.metric, unit=task.unit, higher_is_better=task.higher_is_better)


class LeaderboardEntry(BaseModel):
    rank: int  # ties share a rank (1, 1, 3)
    pseudonym: str
    metric_value: float


def waiting(view: SubmissionView) -> str:
    """A queued submission's place and estimated wait, as every page says it."""
    if view.queue_position is None:
        return "dispatched, waiting for a worker"
    place = f"place {view.queue_position} in line"
    if view.superseded_by is not None:
        return f"superseded by #{view.superseded_by}; {place}, graded after everything else"
    if view.wait_estimate is None:
        return f"{place}, no estimate yet"
    return f"{place}, about {max(1, round(view.wait_estimate / timedelta(minutes=1)))} min"


def submission_view(submission: Submission, policy: Policy, places: dict[int, QueuePlace],
                    counting: Submission | None) -> SubmissionView:
    latest = submission.gradings[-1]
    result = result_grading(submission)
    at = submission.submitted_at
    place = places.get(latest.id)
    return SubmissionView(
        id=submission.id, assignment_id=submission.assignment_id, filename=submission.filename,
        submitted_at=at, due=policy.due, days_late=policy.days_late(at), late_days=policy.late_days_used(at),
        state=latest.state, stage=latest.stage, queue_position=place.place if place else None,
        superseded_by=place.superseded_by if place else None, wait_estimate=place.estimate if place else None,
        total=result.total if result else None, max_total=result.max_total if result else None,
        penalty=policy.penalty(at), final=policy.final(submission),
        metric_value=result.metric_value if result else None, counts=submission is counting,
        graded_by=result.id if result else None,
    )


def submission_views(db: Session, policy: Policy, submissions: Sequence[Submission],
                     order: QueueOrder) -> list[SubmissionView]:
    """Views of one student's submissions to one assignment (in any order), newest first; `order` is the queue's."""
    ordered = sorted(submissions, key=lambda s: s.id)
    counting, positions = policy.counting(ordered), queue_places(db, order)
    return [submission_view(s, policy, positions, counting) for s in reversed(ordered)]


def submissions_of(db: Session, course: Course, person: Person, offered: OfferedAssignment) -> list[SubmissionView]:
    """A person's submissions to one assignment, newest first."""
    submissions = db.scalars(select(Submission).where(
        Submission.person_id == person.id, Submission.assignment_id == offered.id)).all()
    return submission_views(db, policies_for(db, course, person.id)[offered.id], submissions, course.queue.order)


def grade_rows(db: Session, course: Course, offered: OfferedAssignment) -> list[GradeRow]:
    """Every student on the roster with their counting submission of one assignment, by login."""
    students = db.scalars(select(Person).where(Person.role == Role.STUDENT).order_by(Person.login)).all()
    by_person: dict[int, list[Submission]] = {}
    for submission in db.scalars(select(Submission).where(Submission.assignment_id == offered.id)
                                 .order_by(Submission.id)):
        by_person.setdefault(submission.person_id, []).append(submission)
    positions = queue_places(db, course.queue.order)
    policies, default = class_policies(db, course), course_policies(course)
    rows = []
    for student in students:
        submissions = by_person.get(student.id, [])
        policy = policies.get(student.id, default)[offered.id]
        counting = policy.counting(submissions)
        view = submission_view(counting, policy, positions, counting) if counting else None
        busy = [s for s in submissions if s.gradings[-1].state != GradingState.DONE]
        pending = submission_view(busy[-1], policy, positions, counting) if busy else None
        rows.append(GradeRow(login=student.login, name=student.name, email=student.email,
                             submissions=len(submissions), counting=view, pending=pending))
    return rows


class QueueEntry(BaseModel):
    """One grading not finished yet, for the TAs' queue page: whose submission, why it was queued, where it stands."""

    login: str
    name: str
    reason: str  # "upload", "regrade" or "regrade all"
    requested_at: datetime
    submission: SubmissionView


def queue_entries(db: Session, course: Course) -> list[QueueEntry]:
    """Every grading under way, then every queued one in dispatch order (grader.service.ordering)."""
    with_submission = selectinload(Grading.submission)  # a deadline's queue is hundreds long: no query per row
    gradings = db.scalars(select(Grading).where(Grading.state != GradingState.DONE).order_by(Grading.id).options(
        with_submission.selectinload(Submission.person), with_submission.selectinload(Submission.gradings))).all()
    places = queue_places(db, course.queue.order)
    policies, default = class_policies(db, course), course_policies(course)
    offered = {assignment.id for assignment in course.assignments}
    entries = []
    for grading in gradings:
        submission = grading.submission
        if submission.assignment_id not in offered:  # dropped from course.toml since: it has no policy
            continue
        policy = policies.get(submission.person_id, default)[submission.assignment_id]
        view = submission_view(submission, policy, places, None)
        entries.append(QueueEntry(login=submission.person.login, name=submission.person.name,
                                  reason=reason_name(grading.reason), requested_at=grading.requested_at,
                                  submission=view))
    return sorted(entries, key=lambda entry: (entry.submission.queue_position or 0, entry.requested_at))


def leaderboard(db: Session, offered: OfferedAssignment) -> list[LeaderboardEntry]:
    """The best credited metric on the hidden test images (an accuracy, or for a reconstruction an error, lowest
    best) of every student who chose a pseudonym, best first."""
    metric = metric_info(load_assignment(offered.id))
    sign = -1.0 if metric is not None and not metric.higher_is_better else 1.0
    best: dict[str, float] = {}
    submissions = db.scalars(select(Submission).join(Person).where(
        Submission.assignment_id == offered.id, Person.pseudonym.is_not(None)))
    for submission in submissions:
        result = result_grading(submission)
        if result is not None and result.metric_value is not None and submission.person.pseudonym:
            pseudonym = submission.person.pseudonym
            best[pseudonym] = max(sign * result.metric_value, best.get(pseudonym, -math.inf))
    return ranked(best, sign)


def ranked(best: dict[str, float], sign: float = 1.0) -> list[LeaderboardEntry]:
    """Best first (ties by pseudonym); equal scores share the rank of the first of them. `best` holds each
    pseudonym's metric times `sign`, so that higher is better (-1 for an error)."""
    entries: list[LeaderboardEntry] = []
    ordered = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    for place, (pseudonym, score) in enumerate(ordered, start=1):
        tied = place > 1 and ordered[place - 2][1] == score
        entries.append(LeaderboardEntry(rank=entries[-1].rank if tied else place, pseudonym=pseudonym,
                                        metric_value=sign * score))
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
