"""Regrade requests: a student asks, with a reason, for one graded submission (whose scores they can see) to be
looked at again; the student and TAs write in its thread; a TA resolves it (regrading, when warranted, is the TA's
own regrade button). One open request per submission."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.errors import GraderError
from grader.service.policy import result_grading
from grader.service.tables import Person, RegradeMessage, RegradeRequest, RequestState, Role, Submission, utcnow

MESSAGE_CHARS = 2000


class MessageView(BaseModel):
    author: str  # the author's name
    role: Role
    body: str
    written_at: datetime


class RegradeRequestView(BaseModel):
    """A request with its whole thread, the student's reason first."""

    id: int
    submission_id: int
    assignment_id: str
    login: str
    name: str
    state: RequestState
    opened_at: datetime
    resolved_by: str | None
    resolved_at: datetime | None
    messages: list[MessageView]


def _checked_body(body: str) -> str:
    text = body.strip()
    if not text:
        raise GraderError("Write a message: say what should be looked at again and why.")
    if len(text) > MESSAGE_CHARS:
        raise GraderError(f"The message has {len(text)} characters; keep it to {MESSAGE_CHARS}.")
    return text


def open_request(db: Session, student: Person, submission: Submission, reason: str) -> RegradeRequest:
    """A student's request for their graded (and released) submission, with the reason as its first message."""
    text = _checked_body(reason)
    if result_grading(submission) is None:
        raise GraderError(f"Submission #{submission.id} has not been graded yet; ask once it has.")
    if db.scalar(select(RegradeRequest.id).where(RegradeRequest.submission_id == submission.id,
                                                 RegradeRequest.state == RequestState.OPEN)) is not None:
        raise GraderError(f"Submission #{submission.id} already has an open regrade request; write in its thread.")
    request = RegradeRequest(submission_id=submission.id, state=RequestState.OPEN, opened_at=utcnow())
    db.add(request)
    db.flush()
    db.add(RegradeMessage(request_id=request.id, author_id=student.id, body=text, written_at=utcnow()))
    db.commit()
    return request


def reply(db: Session, request: RegradeRequest, author: Person, body: str) -> None:
    """A message in an open request's thread, by its student or a TA."""
    text = _checked_body(body)
    if request.state is RequestState.RESOLVED:
        raise GraderError("This request is resolved; open a new one if something is still wrong.")
    db.add(RegradeMessage(request_id=request.id, author_id=author.id, body=text, written_at=utcnow()))
    db.commit()
    db.refresh(request)


def resolve(db: Session, request: RegradeRequest, ta: Person, answer: str) -> None:
    """A TA closes the request, with a last answer when given."""
    if request.state is RequestState.RESOLVED:
        raise GraderError(f"Request #{request.id} is resolved already.")
    if answer.strip():
        db.add(RegradeMessage(request_id=request.id, author_id=ta.id, body=_checked_body(answer), written_at=utcnow()))
    request.state, request.resolved_by, request.resolved_at = RequestState.RESOLVED, ta.login, utcnow()
    db.commit()
    db.refresh(request)


def visible_request(db: Session, person: Person, request_id: int) -> RegradeRequest | None:
    """The request if the person may see it: their own, or any for a TA."""
    request = db.get(RegradeRequest, request_id)
    if request is None or (person.role is not Role.TA and request.submission.person_id != person.id):
        return None
    return request


def request_view(request: RegradeRequest) -> RegradeRequestView:
    student = request.submission.person
    return RegradeRequestView(
        id=request.id, submission_id=request.submission_id, assignment_id=request.submission.assignment_id,
        login=student.login, name=student.name, state=request.state, opened_at=request.opened_at,
        resolved_by=request.resolved_by, resolved_at=request.resolved_at,
        messages=[MessageView(author=m.author.name, role=m.author.role, body=m.body, written_at=m.written_at)
                  for m in request.messages])


def list_requests(db: Session, person: Person, state: RequestState | None = None,
                  assignment_id: str | None = None) -> list[RegradeRequestView]:
    """The requests a person may see (a student's own, every one for a TA), open ones first, then newest first."""
    query = select(RegradeRequest).join(Submission)
    if person.role is not Role.TA:
        query = query.where(Submission.person_id == person.id)
    if state is not None:
        query = query.where(RegradeRequest.state == state)
    if assignment_id is not None:
        query = query.where(Submission.assignment_id == assignment_id)
    requests = db.scalars(query.order_by(RegradeRequest.state, RegradeRequest.id.desc())).all()
    return [request_view(request) for request in requests]
