"""The service's database rows (SQLAlchemy 2 typed mappings): people, their login sessions, submissions, their
gradings with the times of their stages, extensions, published assignments and regrade requests."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import DateTime, Dialect, Enum, ForeignKey, Index, Integer, String, TypeDecorator, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from grader.service.ordering import Reason


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database (SQLite stores it naive, and gives it back aware)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Role(StrEnum):
    STUDENT = "student"
    TA = "ta"


class RequestState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class GradingState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


def _enum(kind: type[StrEnum]) -> Enum:
    return Enum(kind, native_enum=False, length=16, values_callable=lambda members: [m.value for m in members])


class Person(Base):
    """A student or TA from the roster; they log in with a token whose hash alone is stored."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role))
    token_id: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    pseudonym: Mapped[str | None] = mapped_column(String(40), unique=True)  # and unique in lower case
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    submissions: Mapped[list[Submission]] = relationship(back_populates="person")

    __table_args__ = (Index("uq_people_pseudonym_lower", func.lower(pseudonym), unique=True),)


class LoginSession(Base):
    """A browser's login: its cookie names it; logging out or a reissued token ends it on the server."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's session secret
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Submission(Base):
    """One upload: its file is `uploads/<sha256[:2]>/<sha256>/<stored_name>`; `filename` is for display only."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    assignment_id: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    stored_name: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    person: Mapped[Person] = relationship(back_populates="submissions")
    gradings: Mapped[list[Grading]] = relationship(back_populates="submission", order_by="Grading.id")


class Grading(Base):
    """One grading of a submission (a regrade is another one); its reports are in `reports/<id>/`."""

    __tablename__ = "gradings"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    state: Mapped[GradingState] = mapped_column(_enum(GradingState), index=True)
    stage: Mapped[str] = mapped_column(String(100), default="queued")
    reason: Mapped[int] = mapped_column(Integer, default=Reason.UPLOAD)  # a grader.service.ordering.Reason
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # handed to the cluster; None while queued
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a worker's first stage
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    total: Mapped[float | None]
    max_total: Mapped[float | None]
    metric_value: Mapped[float | None]  # the credited metric the assignment's task declares (grader.tasks)

    submission: Mapped[Submission] = relationship(back_populates="gradings")
    stages: Mapped[list[GradingStage]] = relationship(order_by="GradingStage.id")


class GradingStage(Base):
    """When a grading's worker reported a stage ("checks", "training epoch 3/10", ...), for the TA's timeline."""

    __tablename__ = "grading_stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    grading_id: Mapped[int] = mapped_column(ForeignKey("gradings.id"), index=True)
    stage: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Extension(Base):
    """A student's own deadlines for one assignment, granted by a TA; revoked ones are kept, with who and when."""

    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    assignment_id: Mapped[str] = mapped_column(String(64))
    due: Mapped[datetime] = mapped_column(UTCDateTime)
    hard_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: the course's gap after `due`
    reason: Mapped[str] = mapped_column(String(500), default="")
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship()


class Publication(Base):
    """A TA published an assignment's scores and reports (for `release = "when_published"`); unpublishing deletes
    the row."""

    __tablename__ = "publications"

    assignment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    published_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RegradeRequest(Base):
    """A student's request to regrade one graded submission; its thread is its messages, the reason first."""

    __tablename__ = "regrade_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    state: Mapped[RequestState] = mapped_column(_enum(RequestState), index=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    submission: Mapped[Submission] = relationship()
    messages: Mapped[list[RegradeMessage]] = relationship(order_by="RegradeMessage.id")


class RegradeMessage(Base):
    """One message of a regrade request's thread, by the student or a TA."""

    __tablename__ = "regrade_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("regrade_requests.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    body: Mapped[str] = mapped_column(String(2000))
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[Person] = relationship()
