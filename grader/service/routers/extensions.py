"""TA pages for extensions: grant one to a student on their page, revoke it there, and list every one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from grader.errors import GraderError
from grader.service.auth import CsrfChecked, TaPage
from grader.service.context import Database, Service
from grader.service.extensions import REASON_CHARS, grant, list_extensions, parse_moment, revoke
from grader.service.pages import flash, render
from grader.service.routers.shared import offered_or_404

router = APIRouter(prefix="/ta", include_in_schema=False)


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
