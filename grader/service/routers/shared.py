"""What the page and API routers share: finding what a request names, with the access rules applied."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy.orm import Session

from grader.config import load_assignment
from grader.course import OfferedAssignment
from grader.reports import read_report_json
from grader.reports.files import REPORT_JSON
from grader.reports.render import HandIn, View, render_handed_in
from grader.service.context import ServiceContext
from grader.service.pages import REPORT_CSP
from grader.service.policy import policies_for, result_grading
from grader.service.release import release_sentence, released_to
from grader.service.storage import report_dir, upload_path
from grader.service.tables import Person, Submission
from grader.service.views import lateness, submission_view

CSV_TYPE = "text/csv; charset=utf-8"


def offered_or_404(context: ServiceContext, assignment_id: str) -> OfferedAssignment:
    offered = context.course.offered(assignment_id)
    if offered is None:
        raise HTTPException(404, f"The course offers no assignment called {assignment_id!r}.")
    return offered


def own_submission(db: Session, person: Person, submission_id: int) -> Submission:
    """The person's own submission; someone else's is as unknown as one that does not exist."""
    submission = db.get(Submission, submission_id)
    if submission is None or submission.person_id != person.id:
        raise HTTPException(404, "There is no such submission of yours.")
    return submission


def any_submission(db: Session, submission_id: int) -> Submission:
    submission = db.get(Submission, submission_id)
    if submission is None:
        raise HTTPException(404, f"There is no submission #{submission_id}.")
    return submission


def released_or_403(context: ServiceContext, db: Session, submission: Submission) -> None:
    """Refuse a student their scores or report of a submission before the assignment releases them."""
    offered = offered_or_404(context, submission.assignment_id)
    policy = policies_for(db, context.course, submission.person_id)[offered.id]
    if not released_to(db, offered, policy):
        raise HTTPException(403, release_sentence(context.course, offered, policy))


def graded_report(context: ServiceContext, db: Session, submission: Submission, view: View) -> HTMLResponse:
    """The HTML report (student or TA view) of a submission's newest finished grading, with the uploaded file's
    name, the course's time zone and the grade after the late penalty as the policy is now."""
    result = result_grading(submission)
    if result is None:
        raise HTTPException(404, "This submission has not been graded yet.")
    course, offered = context.course, offered_or_404(context, submission.assignment_id)
    folder = report_dir(context.settings.reports_dir, result.id)
    report = read_report_json(folder / REPORT_JSON)
    shown = submission_view(submission, policies_for(db, course, submission.person_id)[offered.id], {}, None)
    hand_in = HandIn(filename=submission.filename, submitted=course.show_time(submission.submitted_at),
                     graded=course.show_time(report.graded_at), lateness=lateness(shown),
                     grade=report.score.total * (1 - shown.penalty))
    html = render_handed_in(report, load_assignment(offered.id), folder, view, hand_in)
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP})


def stored_file(context: ServiceContext, submission: Submission) -> FileResponse:
    path = upload_path(context.settings.uploads_dir, submission.sha256, submission.stored_name)
    return FileResponse(path, media_type="application/octet-stream", filename=submission.filename)


def csv_download(text: str, name: str) -> Response:
    return Response(text, media_type=CSV_TYPE, headers={"Content-Disposition": f'attachment; filename="{name}"'})
