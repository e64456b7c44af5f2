"""The JSON API under /api/: the same actions as the pages, for scripts and LMS integrations.

Authenticate with `Authorization: Bearer TOKEN` (the login token); cookies are not accepted here, so the API
needs no CSRF token. Students reach only their own submissions; /api/ta/ is for TAs. Every refusal is an
`ApiError`; the status codes a route can answer with are declared here, those of every route on the router.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, HTTPException, Path, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from grader.config import load_assignment
from grader.models import Report
from grader.reports import read_report_json
from grader.reports.files import REPORT_JSON
from grader.service.api_errors import API_PREFIX, Responses, error_responses
from grader.service.auth import ApiPerson, ApiStudent, ApiTa
from grader.service.context import Database, Service, ServiceContext
from grader.service.exports import class_canvas_csv, write_class_gradebook
from grader.service.ordering import Reason
from grader.service.people import PSEUDONYM, PSEUDONYM_MAX, PseudonymTaken, change_pseudonym
from grader.service.policy import policies_for, result_grading
from grader.service.release import (
    LEADERBOARD_WITHHELD,
    leaderboard_released,
    publication,
    released_to,
    shown_submissions,
    withhold,
)
from grader.service.routers.shared import (
    CSV_TYPE,
    any_submission,
    csv_download,
    offered_or_404,
    own_submission,
    released_or_403,
)
from grader.service.storage import UploadRefused, read_chunks, report_dir
from grader.service.submissions import accept_upload, request_regrade
from grader.service.tables import Role, Submission, utcnow
from grader.service.views import (
    GradeRow,
    LeaderboardEntry,
    MetricInfo,
    StudentReport,
    SubmissionView,
    grade_rows,
    leaderboard,
    metric_info,
    student_report,
    submission_view,
)
from grader.service.waiting import queue_places

router = APIRouter(prefix=API_PREFIX, tags=["api"], responses=error_responses(401, 403, 404, 413, 422))
UPLOAD_ERRORS = error_responses(400, 415, 429)
CSV_RESPONSE: Responses = {200: {"description": "A CSV file.", "content": {CSV_TYPE.split(";")[0]: {
    "schema": {"type": "string"}}}}}
MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL; a larger one is refused before the database sees it
SubmissionId = Annotated[int, Path(ge=1, le=MAX_ID, description="A submission's number.")]
AssignmentId = Annotated[str, Path(description="The id of an assignment the course offers.")]


class Me(BaseModel):
    login: str
    name: str
    role: Role
    pseudonym: str | None


class AssignmentInfo(BaseModel):
    id: str
    title: str
    max_points: float
    due: datetime  # yours: an extension's when you have one
    hard_deadline: datetime
    extended: bool
    late_penalty_per_day: float
    late_days_used: int  # of your late days for the term, those this assignment uses
    submissions_per_day: int
    counts: Literal["latest", "best"]
    leaderboard: bool
    open: bool
    metric: MetricInfo | None  # what `metric_value` of its submissions and leaderboard holds; None: no model scored


class Pseudonym(BaseModel):
    pseudonym: str = Field(
        max_length=PSEUDONYM_MAX, pattern=f"^(?:|{PSEUDONYM.pattern})$",
        description=f"Words of letters, digits and _ . - one space apart, 3 to {PSEUDONYM_MAX} characters; empty for "
                    "none (off the leaderboards).")


class Regraded(BaseModel):
    queued: int


def _view(db: Database, context: ServiceContext, submission: Submission) -> SubmissionView:
    offered = offered_or_404(context, submission.assignment_id)
    policy = policies_for(db, context.course, submission.person_id)[offered.id]
    mine = [s for s in submission.person.submissions if s.assignment_id == submission.assignment_id]
    return submission_view(submission, policy, queue_places(db, context.course.queue.order), policy.counting(mine))


def _student_view(db: Database, context: ServiceContext, submission: Submission) -> SubmissionView:
    """A submission as its student sees it: without scores until the assignment releases them."""
    offered = offered_or_404(context, submission.assignment_id)
    shown = released_to(db, offered, policies_for(db, context.course, submission.person_id)[offered.id])
    return withhold([_view(db, context, submission)], shown)[0]


def _report(context: ServiceContext, submission: Submission) -> Report:
    result = result_grading(submission)
    if result is None:
        raise HTTPException(404, "This submission has not been graded yet.")
    return read_report_json(report_dir(context.settings.reports_dir, result.id) / REPORT_JSON)


@router.get("/me")
def me(person: ApiPerson) -> Me:
    return Me(login=person.login, name=person.name, role=person.role, pseudonym=person.pseudonym)


@router.put("/me/pseudonym", responses=error_responses(400, 409))
def put_pseudonym(body: Pseudonym, person: ApiStudent, db: Database) -> Me:
    """Choose the name shown on leaderboards; an empty one takes you off them."""
    try:
        change_pseudonym(db, person, body.pseudonym)
    except PseudonymTaken as exc:
        raise HTTPException(409, str(exc)) from None
    return me(person)


@router.get("/assignments")
def assignments(person: ApiPerson, db: Database, context: Service) -> list[AssignmentInfo]:
    """The offered assignments with your own deadlines (an extension's, when you have one) and late days."""
    now, policies = utcnow(), policies_for(db, context.course, person.id)
    infos = []
    for offered in context.course.assignments:
        assignment, policy = load_assignment(offered.id), policies[offered.id]
        infos.append(AssignmentInfo(
            id=offered.id, title=assignment.title, max_points=assignment.total_points, due=policy.due,
            hard_deadline=policy.hard_deadline, extended=policy.extension is not None,
            late_penalty_per_day=offered.late_penalty_per_day, late_days_used=policy.late_days,
            submissions_per_day=offered.submissions_per_day, counts=offered.counts, leaderboard=offered.leaderboard,
            open=not policy.closed(now), metric=metric_info(assignment)))
    return infos


@router.post("/assignments/{assignment_id}/submissions", status_code=201, responses=UPLOAD_ERRORS)
def hand_in(assignment_id: AssignmentId, file: Annotated[UploadFile, File()], person: ApiStudent, db: Database,
            context: Service) -> SubmissionView:
    """Hand in a .py, .ipynb, .zip or .tar.gz; answered once the file and its queued grading are stored."""
    offered = offered_or_404(context, assignment_id)
    try:
        submission = accept_upload(db, context.settings, context.course, person, offered, file.filename or "",
                                   read_chunks(file.file))
    except UploadRefused as exc:
        raise HTTPException(exc.status_code, str(exc)) from None
    context.wake_jobs()
    return _student_view(db, context, submission)


@router.get("/assignments/{assignment_id}/submissions")
def my_submissions(assignment_id: AssignmentId, person: ApiStudent, db: Database,
                   context: Service) -> list[SubmissionView]:
    """Your submissions to one assignment, newest first, with their grading status."""
    return shown_submissions(db, context.course, person, offered_or_404(context, assignment_id))


@router.get("/assignments/{assignment_id}/leaderboard")
def get_leaderboard(assignment_id: AssignmentId, person: ApiPerson, db: Database,
                    context: Service) -> list[LeaderboardEntry]:
    offered = offered_or_404(context, assignment_id)
    if not offered.leaderboard:
        raise HTTPException(404, "This assignment has no leaderboard.")
    if person.role is Role.STUDENT and not leaderboard_released(db, offered):
        raise HTTPException(403, LEADERBOARD_WITHHELD)
    return leaderboard(db, offered)


@router.get("/submissions/{submission_id}")
def my_submission(submission_id: SubmissionId, person: ApiStudent, db: Database, context: Service) -> SubmissionView:
    return _student_view(db, context, own_submission(db, person, submission_id))


@router.get("/submissions/{submission_id}/report")
def my_report(submission_id: SubmissionId, person: ApiStudent, db: Database, context: Service) -> StudentReport:
    """The student's view of the newest grading of one of your submissions."""
    submission = own_submission(db, person, submission_id)
    released_or_403(context, db, submission)
    return student_report(_report(context, submission), _view(db, context, submission))


@router.get("/ta/assignments/{assignment_id}/grades")
def class_grades(assignment_id: AssignmentId, person: ApiTa, db: Database, context: Service) -> list[GradeRow]:
    """Every student on the roster with their counting submission and grade after the late penalty."""
    return grade_rows(db, context.course, offered_or_404(context, assignment_id))


@router.get("/ta/assignments/{assignment_id}/grades.csv", response_class=Response, responses=CSV_RESPONSE)
def grades_csv(assignment_id: AssignmentId, person: ApiTa, db: Database, context: Service) -> Response:
    """The grader's grades.csv over every student's counting submission."""
    folder = write_class_gradebook(db, context.settings, context.course, offered_or_404(context, assignment_id))
    return csv_download((folder / "grades.csv").read_text(encoding="utf-8"), f"{assignment_id}-grades.csv")


@router.get("/ta/assignments/{assignment_id}/canvas.csv", response_class=Response, responses=CSV_RESPONSE)
def canvas(assignment_id: AssignmentId, person: ApiTa, db: Database, context: Service) -> Response:
    """A Canvas gradebook import: grades after the late penalty, matched by SIS user id."""
    offered = offered_or_404(context, assignment_id)
    text = class_canvas_csv(grade_rows(db, context.course, offered), offered, publication(db, offered.id) is not None)
    return csv_download(text, f"{offered.id}-canvas.csv")


@router.post("/ta/assignments/{assignment_id}/regrade")
def regrade_assignment(assignment_id: AssignmentId, person: ApiTa, db: Database, context: Service) -> Regraded:
    """Queue every submission of an assignment for grading again (those not already waiting), at the lowest
    priority: after every student upload and single regrade."""
    offered = offered_or_404(context, assignment_id)
    queued = request_regrade(db, db.scalars(select(Submission).where(Submission.assignment_id == offered.id)),
                             Reason.REGRADE_ALL)
    context.wake_jobs()
    return Regraded(queued=queued)


@router.get("/ta/submissions/{submission_id}")
def any_submission_view(submission_id: SubmissionId, person: ApiTa, db: Database, context: Service) -> SubmissionView:
    return _view(db, context, any_submission(db, submission_id))


@router.get("/ta/submissions/{submission_id}/report")
def full_report(submission_id: SubmissionId, person: ApiTa, db: Database, context: Service) -> Report:
    """The whole report.json of a submission's newest grading, hidden-check details included."""
    return _report(context, any_submission(db, submission_id))


@router.post("/ta/submissions/{submission_id}/regrade")
def regrade_submission(submission_id: SubmissionId, person: ApiTa, db: Database, context: Service) -> Regraded:
    queued = request_regrade(db, [any_submission(db, submission_id)])
    context.wake_jobs()
    return Regraded(queued=queued)
