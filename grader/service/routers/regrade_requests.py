"""Regrade requests on the pages (a student asks from their assignment page; both sides write in the thread; TAs
list and resolve them at /ta/regrade-requests) and in the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from grader.errors import GraderError
from grader.service.api_errors import API_PREFIX, error_responses
from grader.service.auth import AnyPage, ApiPerson, ApiStudent, ApiTa, CsrfChecked, StudentPage, TaPage
from grader.service.context import Database, Service
from grader.service.pages import flash, render
from grader.service.regrade_requests import (
    MESSAGE_CHARS,
    RegradeRequestView,
    list_requests,
    open_request,
    reply,
    request_view,
    resolve,
    visible_request,
)
from grader.service.routers.api import MAX_ID, SubmissionId
from grader.service.routers.shared import offered_or_404, own_submission, released_or_403
from grader.service.tables import Person, RegradeRequest, RequestState

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix=API_PREFIX, tags=["api"], responses=error_responses(400, 401, 403, 404, 409, 413, 422))
RequestId = Annotated[int, Path(ge=1, le=MAX_ID, description="A regrade request's number.")]
Text = Annotated[str, Form(max_length=MESSAGE_CHARS)]


class Message(BaseModel):
    body: str = Field(min_length=1, max_length=MESSAGE_CHARS, pattern=r"\S")  # not only white space


class Resolution(BaseModel):
    answer: str = Field("", max_length=MESSAGE_CHARS)


def _visible_or_404(db: Session, person: Person, request_id: int) -> RegradeRequest:
    request = visible_request(db, person, request_id)
    if request is None:
        raise HTTPException(404, f"There is no regrade request #{request_id} of yours.")
    return request


def _thread(request_id: int) -> RedirectResponse:
    return RedirectResponse(f"/regrade-requests/{request_id}", status_code=303)


@router.post("/regrade-requests", dependencies=[CsrfChecked])
def ask(request: Request, submission_id: Annotated[int, Form()], person: StudentPage, db: Database,
        context: Service, reason: Text = "") -> RedirectResponse:
    """A student's request for one of their graded submissions (chosen on the assignment page)."""
    submission = own_submission(db, person, submission_id)
    released_or_403(context, db, submission)
    try:
        opened = open_request(db, person, submission, reason)
    except GraderError as exc:
        flash(request, str(exc), error=True)
        return RedirectResponse(f"/assignments/{submission.assignment_id}", status_code=303)
    flash(request, f"Your regrade request for submission #{submission.id} was sent to the TAs.")
    return _thread(opened.id)


@router.get("/regrade-requests/{request_id}", response_class=HTMLResponse)
def thread(request: Request, request_id: int, person: AnyPage, db: Database) -> Response:
    view = request_view(_visible_or_404(db, person, request_id))
    return render(request, "regrade_request.html.j2", person, thread=view)


@router.post("/regrade-requests/{request_id}/messages", dependencies=[CsrfChecked])
def write(request: Request, request_id: int, person: AnyPage, db: Database, body: Text = "") -> RedirectResponse:
    try:
        reply(db, _visible_or_404(db, person, request_id), person, body)
    except GraderError as exc:
        flash(request, str(exc), error=True)
    return _thread(request_id)


@router.post("/regrade-requests/{request_id}/resolve", dependencies=[CsrfChecked])
def close(request: Request, request_id: int, person: TaPage, db: Database, answer: Text = "") -> RedirectResponse:
    try:
        resolve(db, _visible_or_404(db, person, request_id), person, answer)
    except GraderError as exc:
        flash(request, str(exc), error=True)
    else:
        flash(request, f"Resolved request #{request_id}.")
    return _thread(request_id)


@router.get("/ta/regrade-requests", response_class=HTMLResponse)
def ta_list(request: Request, person: TaPage, db: Database) -> Response:
    return render(request, "ta_regrade_requests.html.j2", person, requests=list_requests(db, person))


@api_router.post("/submissions/{submission_id}/regrade-requests", status_code=201)
def api_ask(submission_id: SubmissionId, body: Message, person: ApiStudent, db: Database,
            context: Service) -> RegradeRequestView:
    """Ask for one of your graded submissions to be looked at again, with the reason."""
    submission = own_submission(db, person, submission_id)
    released_or_403(context, db, submission)
    try:
        return request_view(open_request(db, person, submission, body.body))
    except GraderError as exc:
        raise HTTPException(409, str(exc)) from None


@api_router.get("/regrade-requests")
def api_list(person: ApiPerson, db: Database, context: Service, state: RequestState | None = None,
             assignment: str | None = None) -> list[RegradeRequestView]:
    """Your regrade requests (every one for a TA) with their threads, open ones first."""
    if assignment is not None:
        offered_or_404(context, assignment)  # an id the course does not offer never reaches the database
    return list_requests(db, person, state, assignment)


@api_router.get("/regrade-requests/{request_id}")
def api_thread(request_id: RequestId, person: ApiPerson, db: Database) -> RegradeRequestView:
    return request_view(_visible_or_404(db, person, request_id))


@api_router.post("/regrade-requests/{request_id}/messages")
def api_write(request_id: RequestId, body: Message, person: ApiPerson, db: Database) -> RegradeRequestView:
    """Write in an open request's thread (its student, or a TA)."""
    request = _visible_or_404(db, person, request_id)
    try:
        reply(db, request, person, body.body)
    except GraderError as exc:
        raise HTTPException(409, str(exc)) from None
    return request_view(request)


@api_router.post("/ta/regrade-requests/{request_id}/resolve")
def api_resolve(request_id: RequestId, body: Resolution, person: ApiTa, db: Database) -> RegradeRequestView:
    """Close a request, with a last answer when given."""
    request = _visible_or_404(db, person, request_id)
    try:
        resolve(db, request, person, body.answer)
    except GraderError as exc:
        raise HTTPException(409, str(exc)) from None
    return request_view(request)
