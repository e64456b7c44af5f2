"""Student pages: the assignments, handing in, live status of one's own submissions, reports and the leaderboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from grader.config import load_assignment
from grader.course import Course, OfferedAssignment
from grader.service.auth import AnyPage, CsrfChecked, StudentPage
from grader.service.context import Database, Service
from grader.service.pages import flash, render, templates
from grader.service.people import change_pseudonym
from grader.service.policy import late_days_left, policies_for
from grader.service.regrade_requests import list_requests
from grader.service.release import (
    LEADERBOARD_WITHHELD,
    leaderboard_released,
    release_sentence,
    released_to,
    shown_submissions,
)
from grader.service.routers.shared import (
    graded_report,
    offered_or_404,
    own_submission,
    released_or_403,
    stored_file,
)
from grader.service.storage import UploadRefused, read_chunks
from grader.service.submissions import accept_upload
from grader.service.tables import Person, Role, utcnow
from grader.service.views import leaderboard

router = APIRouter(include_in_schema=False)


@router.get("/assignments", response_class=HTMLResponse)
def assignments(request: Request, person: StudentPage, db: Database, context: Service) -> Response:
    policies, rows = policies_for(db, context.course, person.id), []
    for offered in context.course.assignments:
        view = next((v for v in shown_submissions(db, context.course, person, offered) if v.counts), None)
        rows.append({"offered": offered, "policy": policies[offered.id], "title": load_assignment(offered.id).title,
                     "counting": view})
    return render(request, "assignments.html.j2", person, rows=rows, late_days=late_days_left(context.course, policies))


def assignment_page(request: Request, person: Person, db: Session, course: Course, offered: OfferedAssignment,
                    message: str | None = None, status_code: int = 200) -> Response:
    policies = policies_for(db, course, person.id)
    policy = policies[offered.id]
    release = None if released_to(db, offered, policy) else release_sentence(course, offered, policy)
    shown = {"message": message} if message else {}  # else a flashed sentence (a refused regrade request)
    return render(request, "assignment.html.j2", person, status_code, offered=offered, policy=policy, **shown,
                  title=load_assignment(offered.id).title, open=not policy.closed(utcnow()),
                  late_days=late_days_left(course, policies), release=release,
                  submissions=shown_submissions(db, course, person, offered),
                  requests=list_requests(db, person, assignment_id=offered.id))


@router.get("/assignments/{assignment_id}", response_class=HTMLResponse)
def assignment(request: Request, assignment_id: str, person: StudentPage, db: Database, context: Service) -> Response:
    return assignment_page(request, person, db, context.course, offered_or_404(context, assignment_id))


@router.get("/assignments/{assignment_id}/rows", response_class=HTMLResponse)
def submission_rows(request: Request, assignment_id: str, person: StudentPage, db: Database,
                    context: Service) -> Response:
    """The submissions table's rows, which the page fetches while a grading is under way."""
    offered = offered_or_404(context, assignment_id)
    return templates().TemplateResponse(request, "submission_rows.html.j2", {
        "course": context.course, "offered": offered,
        "submissions": shown_submissions(db, context.course, person, offered)})


@router.post("/assignments/{assignment_id}/submissions", dependencies=[CsrfChecked])
def hand_in(request: Request, assignment_id: str, person: StudentPage, db: Database, context: Service,
            file: Annotated[UploadFile, File()]) -> Response:
    offered = offered_or_404(context, assignment_id)
    try:
        submission = accept_upload(db, context.settings, context.course, person, offered, file.filename or "",
                                   read_chunks(file.file))
    except UploadRefused as exc:
        return assignment_page(request, person, db, context.course, offered, str(exc), exc.status_code)
    context.wake_jobs()
    # The table below updates itself (static/status.js) while this message stays: say it as of the upload.
    flash(request, f"Received {submission.filename} as submission #{submission.id}; it was queued for grading, "
                   "and its status below updates by itself.")
    return RedirectResponse(f"/assignments/{assignment_id}", status_code=303)


@router.get("/submissions/{submission_id}/report")
def student_report(submission_id: int, person: StudentPage, db: Database, context: Service) -> HTMLResponse:
    submission = own_submission(db, person, submission_id)
    released_or_403(context, db, submission)
    return graded_report(context, db, submission, "student")


@router.get("/submissions/{submission_id}/download")
def student_download(submission_id: int, person: StudentPage, db: Database, context: Service) -> FileResponse:
    return stored_file(context, own_submission(db, person, submission_id))


@router.get("/assignments/{assignment_id}/leaderboard", response_class=HTMLResponse)
def leaderboard_page(request: Request, assignment_id: str, person: AnyPage, db: Database,
                     context: Service) -> Response:
    offered = offered_or_404(context, assignment_id)
    if not offered.leaderboard:
        raise HTTPException(404, "This assignment has no leaderboard.")
    if person.role is Role.STUDENT and not leaderboard_released(db, offered):
        raise HTTPException(403, LEADERBOARD_WITHHELD)
    return render(request, "leaderboard.html.j2", person, offered=offered, title=load_assignment(offered.id).title,
                  entries=leaderboard(db, offered))


@router.post("/pseudonym", dependencies=[CsrfChecked])
def set_pseudonym(request: Request, person: StudentPage, db: Database, context: Service,
                  pseudonym: Annotated[str, Form(max_length=200)] = "", back: Annotated[str, Form()] = "") -> Response:
    offered = offered_or_404(context, back)
    try:
        change_pseudonym(db, person, pseudonym)
    except ValueError as exc:
        flash(request, str(exc), error=True)
    else:
        flash(request, f"Your pseudonym is now {person.pseudonym}." if person.pseudonym
              else "You are off the leaderboard.")
    return RedirectResponse(f"/assignments/{offered.id}/leaderboard", status_code=303)
