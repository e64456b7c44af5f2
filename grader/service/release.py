"""When students see their scores and reports: per assignment, `release` in course.toml says `immediately`, `after_due`
(the student's own due date, an extension's included) or `when_published` (a TA publishes and may unpublish).
Until then the student sees that a submission was graded, not its score, report or leaderboard place; TAs always
see everything. Hidden-check details are never shown to students, released or not (grader.service.views)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.course import Course, OfferedAssignment
from grader.service.policy import Policy, policies_for
from grader.service.tables import Extension, Person, Publication, utcnow
from grader.service.views import GradeRow, SubmissionView, submissions_of

LEADERBOARD_WITHHELD = "The leaderboard is shown once every student's scores of this assignment are."
WITHHELD = {"total": None, "max_total": None, "final": None, "metric_value": None, "graded_by": None, "counts": False,
            "released": False}


def publication(db: Session, assignment_id: str) -> Publication | None:
    return db.get(Publication, assignment_id)


def publish(db: Session, offered: OfferedAssignment, by: str) -> Publication:
    """Show the assignment's scores and reports to its students (kept when published already)."""
    existing = publication(db, offered.id)
    if existing is not None:
        return existing
    published = Publication(assignment_id=offered.id, published_by=by, published_at=utcnow())
    db.add(published)
    db.commit()
    return published


def unpublish(db: Session, offered: OfferedAssignment) -> bool:
    """Withhold the assignment's scores and reports again; whether they were published."""
    existing = publication(db, offered.id)
    if existing is not None:
        db.delete(existing)
        db.commit()
    return existing is not None


def released(offered: OfferedAssignment, due: datetime, published: bool, now: datetime) -> bool:
    """Whether a student whose due date is `due` sees their scores of the assignment at `now`."""
    if offered.release == "after_due":
        return now >= max(offered.due, due)
    return offered.release == "immediately" or published


def withheld_logins(rows: Sequence[GradeRow], offered: OfferedAssignment, published: bool) -> set[str]:
    """The students of a class table whose counting grade is not released to them yet (the TA table marks it, the
    Canvas CSV leaves it blank)."""
    now = utcnow()
    return {row.login for row in rows if row.counting and not released(offered, row.counting.due, published, now)}


def released_to(db: Session, offered: OfferedAssignment, policy: Policy) -> bool:
    """Whether the student of this policy sees their scores of the assignment now."""
    return released(offered, policy.due, publication(db, offered.id) is not None, utcnow())


def leaderboard_released(db: Session, offered: OfferedAssignment) -> bool:
    """Whether the leaderboard is shown: once every student's scores are, the latest extension included."""
    extended = db.scalars(select(Extension.due).where(Extension.assignment_id == offered.id,
                                                      Extension.revoked_at.is_(None))).all()
    return released(offered, max([offered.due, *extended]), publication(db, offered.id) is not None, utcnow())


def withhold(views: Sequence[SubmissionView], shown: bool) -> list[SubmissionView]:
    """The views as the student sees them: without scores, metric, report or which counts until released."""
    return list(views) if shown else [view.model_copy(update=WITHHELD) for view in views]


def release_sentence(course: Course, offered: OfferedAssignment, policy: Policy) -> str:
    """When the student will see their scores and reports, in one sentence."""
    if offered.release == "after_due":
        return (f"Scores and reports are shown after the due date, "
                f"{course.show_time(max(offered.due, policy.due))}.")
    return "Scores and reports are shown once the TAs publish them."


def shown_submissions(db: Session, course: Course, person: Person, offered: OfferedAssignment) -> list[SubmissionView]:
    """A student's submissions to one assignment as they see them, newest first."""
    policy = policies_for(db, course, person.id)[offered.id]
    return withhold(submissions_of(db, course, person, offered), released_to(db, offered, policy))
