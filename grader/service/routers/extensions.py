"""Extensions for TAs: on the pages (grant one on the student's page, revoke it there, list every one) and in the
API under /api/ta/extensions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from grader.errors import GraderError
from grader.service.api_errors import API_PREFIX, error_responses
from grader.service.auth import ApiTa, CsrfChecked, TaPage
from grader.service.context import Database, Service
from grader.service.extensions import (
    REASON_CHARS,
    ExtensionView,
    UnknownStudent,
    grant,
    in_course_zone,
    list_extensions,
    parse_moment,
    revoke,
)
from grader.service.pages import flash, render
from grader.service.people import LOGIN
from grader.service.routers.shared import offered_or_404

router = APIRouter(prefix="/ta", include_in_schema=False)
api_router = APIRouter(prefix=f"{API_PREFIX}/ta/extensions", tags=["api"],
                       responses=error_responses(401, 403, 404, 413, 422))


Login = Annotated[str, Path(pattern=f"^{LOGIN.pattern}$", description="A student's id on the roster.")]


class ExtensionRequest(BaseModel):
    """A student's own deadlines; times without a UTC offset are in the course's time zone."""

    due: datetime
    hard_deadline: datetime | None = None  # None: the course's gap between due date and hard deadline
    reason: str = Field("", max_length=REASON_CHARS)


class Revoked(BaseModel):
    revoked: int


def _student_page(assignment_id: str, login: str) -> RedirectResponse:
    return RedirectResponse(f"/ta/assignments/{assignment_id}/students/{login}", status_code=303)


@router.get("/extensions", response_class=HTMLResponse)
def all_extensions(request: Request, person: TaPage, db: Database, context: Service) -> Response:
    return render(request, "ta_extensions.html.j2", person, extensions=list_extensions(db, context.course))


@router.post("/assignments/{assignment_id}/students/{login}/extension", dependencies=[CsrfChecked])
def grant_extension(request: Request, assignment_id: str, login: str, person: TaPage, db: Database,
                    context: Service, due: Annotated[str, Form(max_length=40)],
                    hard_deadline: Annotated[str, Form(max_length=40)] = "",
                    reason: Annotated[str, Form(max_length=REASON_CHARS)] = "") -> RedirectResponse:
    """Give the student their own deadlines (times without an offset are in the course's time zone)."""
    offered, course = offered_or_404(context, assignment_id), context.course
    try:
        hard = parse_moment(hard_deadline, course) if hard_deadline.strip() else None
        granted = grant(db, course, login, offered.id, parse_moment(due, course), hard, reason, person.login)
    except GraderError as exc:
        flash(request, str(exc), error=True)
    else:
        flash(request, f"{login} is now due {course.show_time(granted.due)}; their grades follow the extension.")
    return _student_page(offered.id, login)


@router.post("/assignments/{assignment_id}/students/{login}/extension/revoke", dependencies=[CsrfChecked])
def revoke_extension(request: Request, assignment_id: str, login: str, person: TaPage, db: Database,
                     context: Service) -> RedirectResponse:
    offered = offered_or_404(context, assignment_id)
    try:
        revoked = revoke(db, login, offered.id, person.login)
    except GraderError as exc:
        flash(request, str(exc), error=True)
    else:
        flash(request, f"Revoked {login}'s extension; the course's deadlines apply again." if revoked
              else f"{login} has no extension of this assignment.")
    return _student_page(offered.id, login)


@api_router.get("")
def api_list(person: ApiTa, db: Database, context: Service, assignment: str | None = None) -> list[ExtensionView]:
    """Every extension, revoked ones too, newest first; of one assignment when given."""
    if assignment is not None:
        offered_or_404(context, assignment)  # an id the course does not offer never reaches the database
    return list_extensions(db, context.course, assignment)


@api_router.put("/{assignment_id}/{login}", responses=error_responses(400))
def api_grant(assignment_id: str, login: Login, body: ExtensionRequest, person: ApiTa, db: Database,
              context: Service) -> ExtensionView:
    """Give a student their own deadlines for one assignment (their earlier extension of it is revoked)."""
    course = context.course
    hard = in_course_zone(body.hard_deadline, course) if body.hard_deadline else None
    due = in_course_zone(body.due, course)
    try:
        granted = grant(db, course, login, assignment_id, due, hard, body.reason, person.login)
    except UnknownStudent as exc:
        raise HTTPException(404, str(exc)) from None
    except GraderError as exc:
        raise HTTPException(422, str(exc)) from None
    return next(view for view in list_extensions(db, course, assignment_id) if view.id == granted.id)


@api_router.delete("/{assignment_id}/{login}")
def api_revoke(assignment_id: str, login: Login, person: ApiTa, db: Database, context: Service) -> Revoked:
    """Revoke a student's extension of one assignment; the course's deadlines apply to them again."""
    offered_or_404(context, assignment_id)
    try:
        return Revoked(revoked=revoke(db, login, assignment_id, person.login))
    except GraderError as exc:
        raise HTTPException(404, str(exc)) from None
