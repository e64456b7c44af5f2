"""Per-student extensions: granted (replacing the student's earlier one), listed and revoked by TAs, from the
command line or the TA pages, each with who and when."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.course import Course
from grader.errors import GraderError
from grader.service.policy import Policy
from grader.service.tables import Extension, Person, Role, utcnow

REASON_CHARS = 500


class ExtensionView(BaseModel):
    """An extension as TAs see it: whose, which assignment, the deadlines it gives, and its history."""

    id: int
    login: str
    name: str
    assignment_id: str
    due: datetime
    hard_deadline: datetime  # the effective one (the course's gap after `due` when none was given)
    reason: str
    granted_by: str
    granted_at: datetime
    revoked_by: str | None
    revoked_at: datetime | None


def parse_moment(text: str, course: Course) -> datetime:
    """An ISO 8601 date and time; without a UTC offset it is in the course's time zone."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise GraderError(f"{text!r} is not a date and time; write it as 2026-12-24T23:59 (in "
                          f"{course.timezone}) or with an offset, 2026-12-24T23:59+01:00.") from None
    return in_course_zone(moment, course)


def in_course_zone(moment: datetime, course: Course) -> datetime:
    """A moment without a UTC offset is in the course's time zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=course.zone)


class UnknownStudent(GraderError):
    """The login names no student on the roster."""


def _storable(moment: datetime) -> datetime:
    """The moment in UTC, as the database keeps it; one sentence when it is out of range there."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise GraderError(f"The date {moment.isoformat()} is out of range.") from None


def grant(db: Session, course: Course, login: str, assignment_id: str, due: datetime,
          hard_deadline: datetime | None, reason: str, by: str) -> Extension:
    """Give a student their own deadlines for one assignment; their earlier extension of it is revoked."""
    student = db.scalar(select(Person).where(Person.login == login, Person.role == Role.STUDENT))
    if student is None:
        raise UnknownStudent(f"No student with the id {login!r} is on the roster.")
    due = _storable(due)
    hard_deadline = _storable(hard_deadline) if hard_deadline is not None else None
    if course.offered(assignment_id) is None:
        raise GraderError(f"The course offers no assignment called {assignment_id!r}.")
    if hard_deadline is not None and hard_deadline < due:
        raise GraderError(f"The hard deadline {course.show_time(hard_deadline)} is before the due date "
                          f"{course.show_time(due)}.")
    if len(reason) > REASON_CHARS:
        raise GraderError(f"The reason has {len(reason)} characters; keep it to {REASON_CHARS}.")
    for earlier in _active(db, student.id, assignment_id):
        earlier.revoked_by, earlier.revoked_at = by, utcnow()
    extension = Extension(person_id=student.id, assignment_id=assignment_id, due=due, hard_deadline=hard_deadline,
                          reason=reason.strip(), granted_by=by, granted_at=utcnow())
    db.add(extension)
    db.commit()
    return extension


def revoke(db: Session, login: str, assignment_id: str, by: str) -> int:
    """Revoke a student's extension of one assignment; returns how many were active (0 or 1)."""
    student = db.scalar(select(Person).where(Person.login == login))
    if student is None:
        raise UnknownStudent(f"No student with the id {login!r} is on the roster.")
    active = _active(db, student.id, assignment_id)
    for extension in active:
        extension.revoked_by, extension.revoked_at = by, utcnow()
    db.commit()
    return len(active)


def _active(db: Session, person_id: int, assignment_id: str) -> list[Extension]:
    return list(db.scalars(select(Extension).where(
        Extension.person_id == person_id, Extension.assignment_id == assignment_id, Extension.revoked_at.is_(None))))


def list_extensions(db: Session, course: Course, assignment_id: str | None = None) -> list[ExtensionView]:
    """Every extension (revoked ones too), newest first; of one assignment when given."""
    query = select(Extension).order_by(Extension.id.desc())
    if assignment_id is not None:
        query = query.where(Extension.assignment_id == assignment_id)
    views = []
    for extension in db.scalars(query):
        offered = course.offered(extension.assignment_id)
        hard = Policy.of(offered, extension).hard_deadline if offered else extension.hard_deadline or extension.due
        views.append(ExtensionView(
            id=extension.id, login=extension.person.login, name=extension.person.name,
            assignment_id=extension.assignment_id, due=extension.due, hard_deadline=hard, reason=extension.reason,
            granted_by=extension.granted_by, granted_at=extension.granted_at, revoked_by=extension.revoked_by,
            revoked_at=extension.revoked_at))
    return views
