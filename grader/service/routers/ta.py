"""TA pages: the class per assignment, every student's submissions, TA reports, regrades and exports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from grader.config import load_assignment
from grader.models import SIMILARITY_DIR
from grader.reports.gradebook import summarize
from grader.service.auth import CsrfChecked, TaPage, csrf_token
from grader.service.context import Database, Service
from grader.service.exports import class_canvas_csv, class_similarity, counting_reports, write_class_gradebook
from grader.service.extensions import list_extensions
from grader.service.ordering import Reason
from grader.service.pages import flash, render, report_file, templates
from grader.service.policy import late_days_left, policies_for
from grader.service.release import publication, withheld_logins
from grader.service.routers.shared import (
    CSV_TYPE,
    any_submission,
    csv_download,
    graded_report,
    offered_or_404,
    stored_file,
)
from grader.service.storage import report_dir
from grader.service.submissions import request_regrade
from grader.service.tables import Grading, GradingState, Person, RegradeRequest, RequestState, Role, Submission
from grader.service.views import grade_rows, queue_entries, submission_views, timelines
from grader.similarity import load_result

router = APIRouter(prefix="/ta", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def class_overview(request: Request, person: TaPage, db: Database, context: Service) -> Response:
    rows = []
    for offered in context.course.assignments:
        students, submissions = db.execute(select(func.count(func.distinct(Submission.person_id)), func.count())
                                           .where(Submission.assignment_id == offered.id)).one()
        rows.append({"id": offered.id, "title": load_assignment(offered.id).title, "due": offered.due,
                     "students": students, "submissions": submissions})
    states = {state: count for state, count in db.execute(select(Grading.state, func.count()).group_by(Grading.state))}
    on_roster = db.scalar(select(func.count()).select_from(Person).where(Person.role == Role.STUDENT))
    open_requests = db.scalar(select(func.count()).select_from(RegradeRequest)
                              .where(RegradeRequest.state == RequestState.OPEN))
    return render(request, "ta_home.html.j2", person, rows=rows, students=on_roster, open_requests=open_requests,
                  queued=states.get(GradingState.QUEUED, 0), running=states.get(GradingState.RUNNING, 0))


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, person: TaPage, db: Database, context: Service) -> Response:
    """Every grading under way or queued, with its place and estimate."""
    return render(request, "ta_queue.html.j2", person, entries=queue_entries(db, context.course))


@router.get("/assignments/{assignment_id}", response_class=HTMLResponse)
def class_assignment(request: Request, assignment_id: str, person: TaPage, db: Database,
                     context: Service) -> Response:
    offered = offered_or_404(context, assignment_id)
    assignment = load_assignment(offered.id)
    rows = grade_rows(db, context.course, offered)
    reports, _ = counting_reports(context.settings, rows)
    published = publication(db, offered.id)
    return render(request, "ta_assignment.html.j2", person, offered=offered, title=assignment.title, rows=rows,
                  summary=summarize(reports, assignment) if reports else None, published=published,
                  withheld=withheld_logins(rows, offered, published is not None))


@router.get("/assignments/{assignment_id}/rows", response_class=HTMLResponse)
def class_assignment_rows(request: Request, assignment_id: str, person: TaPage, db: Database,
                          context: Service) -> Response:
    """The class table's rows, which the page fetches while a grading is queued or under way."""
    offered = offered_or_404(context, assignment_id)
    rows = grade_rows(db, context.course, offered)
    withheld = withheld_logins(rows, offered, publication(db, offered.id) is not None)
    return templates().TemplateResponse(request, "ta_grade_rows.html.j2", {
        "course": context.course, "offered": offered, "rows": rows, "withheld": withheld})


@router.get("/assignments/{assignment_id}/students/{login}", response_class=HTMLResponse)
def student_submissions(request: Request, assignment_id: str, login: str, person: TaPage, db: Database,
                        context: Service) -> Response:
    offered = offered_or_404(context, assignment_id)
    student = student_or_404(db, login)
    policies = policies_for(db, context.course, student.id)
    mine = [s for s in student.submissions if s.assignment_id == offered.id]
    return render(request, "ta_student.html.j2", person, offered=offered, student=student,
                  title=load_assignment(offered.id).title, policy=policies[offered.id],
                  late_days=late_days_left(context.course, policies),
                  extensions=[e for e in list_extensions(db, context.course, offered.id) if e.login == student.login],
                  submissions=submission_views(db, policies[offered.id], mine, context.course.queue.order),
                  timelines=timelines(mine))


@router.get("/assignments/{assignment_id}/students/{login}/rows", response_class=HTMLResponse)
def student_submission_rows(request: Request, assignment_id: str, login: str, person: TaPage, db: Database,
                            context: Service) -> Response:
    """A student's submissions table's rows, which the page fetches while a grading is queued or under way."""
    offered = offered_or_404(context, assignment_id)
    student = student_or_404(db, login)
    mine = [s for s in student.submissions if s.assignment_id == offered.id]
    policy = policies_for(db, context.course, student.id)[offered.id]
    return templates().TemplateResponse(request, "ta_submission_rows.html.j2", {
        "course": context.course, "offered": offered, "csrf": csrf_token(request),
        "submissions": submission_views(db, policy, mine, context.course.queue.order)})


def student_or_404(db: Database, login: str) -> Person:
    student = db.scalar(select(Person).where(Person.login == login))
    if student is None:
        raise HTTPException(404, f"There is no student {login!r} on the roster.")
    return student


@router.get("/assignments/{assignment_id}/summary")
def class_summary(assignment_id: str, person: TaPage, db: Database, context: Service) -> FileResponse:
    folder = write_class_gradebook(db, context.settings, context.course, offered_or_404(context, assignment_id))
    return report_file(folder / "summary.html")


@router.get("/assignments/{assignment_id}/similarity", response_class=HTMLResponse)
def similarity(request: Request, assignment_id: str, person: TaPage, db: Database, context: Service) -> Response:
    offered = offered_or_404(context, assignment_id)
    return render(request, "ta_similarity.html.j2", person, offered=offered, title=load_assignment(offered.id).title,
                  result=class_similarity(db, context.settings, context.course, offered))


@router.get("/assignments/{assignment_id}/_similarity/{name}")
def similarity_view(assignment_id: str, name: str, person: TaPage, context: Service) -> FileResponse:
    """A side-by-side view of the latest comparison; also where the class summary's `_similarity/...` links land."""
    folder = context.settings.exports_dir / offered_or_404(context, assignment_id).id
    result = load_result(folder)
    if result is None or f"{SIMILARITY_DIR}/{name}" not in {pair.view for pair in result.pairs}:
        raise HTTPException(404, "There is no such comparison; open the assignment's similarity page first.")
    return report_file(folder / SIMILARITY_DIR / name)


@router.get("/reports/{grading_id}/report-ta.html")
def summary_link(grading_id: int, person: TaPage, db: Database, context: Service) -> FileResponse:
    """Where the class summary's links (`../../reports/<grading>/report-ta.html`, as on disk) land."""
    grading = db.get(Grading, grading_id)
    if grading is None or grading.state != GradingState.DONE:
        raise HTTPException(404, f"There is no finished grading #{grading_id}.")
    return report_file(report_dir(context.settings.reports_dir, grading.id) / "report-ta.html")


@router.get("/assignments/{assignment_id}/grades.csv")
def grades(assignment_id: str, person: TaPage, db: Database, context: Service) -> FileResponse:
    folder = write_class_gradebook(db, context.settings, context.course, offered_or_404(context, assignment_id))
    return FileResponse(folder / "grades.csv", media_type=CSV_TYPE, filename=f"{assignment_id}-grades.csv")


@router.get("/assignments/{assignment_id}/canvas.csv")
def canvas(assignment_id: str, person: TaPage, db: Database, context: Service) -> Response:
    offered = offered_or_404(context, assignment_id)
    text = class_canvas_csv(grade_rows(db, context.course, offered), offered, publication(db, offered.id) is not None)
    return csv_download(text, f"{offered.id}-canvas.csv")


@router.post("/assignments/{assignment_id}/regrade", dependencies=[CsrfChecked])
def regrade_all(request: Request, assignment_id: str, person: TaPage, db: Database, context: Service,
                confirm: Annotated[str, Form(max_length=10)] = "") -> Response:
    """Asks to confirm first (a page with the count); once confirmed, queues them at the lowest priority."""
    offered = offered_or_404(context, assignment_id)
    submissions = db.scalars(select(Submission).where(Submission.assignment_id == offered.id)).all()
    if confirm != "yes":
        return render(request, "ta_regrade_confirm.html.j2", person, offered=offered, count=len(submissions),
                      title=load_assignment(offered.id).title)
    queued = request_regrade(db, submissions, Reason.REGRADE_ALL)
    context.wake_jobs()
    flash(request, f"Queued {queued} submission(s) for regrading, after every student upload.")
    return RedirectResponse(f"/ta/assignments/{offered.id}", status_code=303)


@router.get("/submissions/{submission_id}/report")
def ta_report(submission_id: int, person: TaPage, db: Database, context: Service) -> HTMLResponse:
    return graded_report(context, db, any_submission(db, submission_id), "ta")


@router.get("/submissions/{submission_id}/download")
def ta_download(submission_id: int, person: TaPage, db: Database, context: Service) -> FileResponse:
    return stored_file(context, any_submission(db, submission_id))


@router.post("/submissions/{submission_id}/regrade", dependencies=[CsrfChecked])
def regrade_one(request: Request, submission_id: int, person: TaPage, db: Database,
                context: Service) -> RedirectResponse:
    submission = any_submission(db, submission_id)
    queued = request_regrade(db, [submission])
    context.wake_jobs()
    flash(request, f"Queued submission #{submission.id} for regrading." if queued
          else f"Submission #{submission.id} is already waiting for or under grading.")
    return RedirectResponse(f"/ta/assignments/{submission.assignment_id}/students/{submission.person.login}",
                            status_code=303)

