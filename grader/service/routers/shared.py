"""What the page and API routers share: finding what a request names, with the access rules applied."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from grader.course import OfferedAssignment
from grader.reports.render import VIEW_STEMS, View
from grader.service.context import ServiceContext
from grader.service.pages import report_file
from grader.service.policy import result_grading
from grader.service.storage import report_dir, upload_path
from grader.service.tables import Person, Submission

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


def graded_report(context: ServiceContext, submission: Submission, view: View) -> FileResponse:
    """The HTML report (student or TA view) of a submission's newest finished grading."""
    result = result_grading(submission)
    if result is None:
        raise HTTPException(404, "This submission has not been graded yet.")
    return report_file(report_dir(context.settings.reports_dir, result.id) / f"{VIEW_STEMS[view]}.html")


def stored_file(context: ServiceContext, submission: Submission) -> FileResponse:
    path = upload_path(context.settings.uploads_dir, submission.sha256, submission.stored_name)
    return FileResponse(path, media_type="application/octet-stream", filename=submission.filename)


def csv_download(text: str, name: str) -> Response:
    return Response(text, media_type=CSV_TYPE, headers={"Content-Disposition": f'attachment; filename="{name}"'})
