"""Exports for TAs: the grader's `grades.csv` and class summary over the counting submissions, and a Canvas
gradebook CSV with each student's grade after the late penalty (from the policy as it is now)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from grader.config import load_assignment
from grader.course import Course, OfferedAssignment
from grader.models import Report, SimilarityResult
from grader.reports import read_report_json, write_gradebook
from grader.reports.canvas import CanvasRow, canvas_csv
from grader.reports.files import REPORT_JSON
from grader.service.release import withheld_logins
from grader.service.settings import ServiceSettings
from grader.service.storage import make_private, report_dir
from grader.service.views import GradeRow, grade_rows
from grader.similarity import run_similarity


def counting_reports(settings: ServiceSettings, rows: list[GradeRow]) -> tuple[list[Report], list[Path]]:
    """The report of every student's counting submission, with its folder."""
    folders = [report_dir(settings.reports_dir, row.counting.graded_by)
               for row in rows if row.counting and row.counting.graded_by is not None]
    return [read_report_json(folder / REPORT_JSON) for folder in folders], folders


def write_class_gradebook(db: Session, settings: ServiceSettings, course: Course, offered: OfferedAssignment) -> Path:
    """`grades.csv` and `summary.html` (as `grader batch` writes them, similar pairs included) in
    `exports/<assignment>/`."""
    reports, folders = counting_reports(settings, grade_rows(db, course, offered))
    out_dir = settings.exports_dir / offered.id
    assignment = load_assignment(offered.id)
    similarity = run_similarity(assignment, folders, out_dir)
    write_gradebook(reports, assignment, out_dir, folders, similarity=similarity)
    make_private(settings.exports_dir)
    return out_dir


def class_canvas_csv(rows: list[GradeRow], offered: OfferedAssignment, published: bool) -> str:
    """The Canvas gradebook of the class: students matched by SIS user id (their login), grades after the late
    penalty; a grade the assignment does not yet release to its student is left blank (students see Canvas)."""
    withheld = withheld_logins(rows, offered, published)
    return canvas_csv([CanvasRow(student=row.name, sis_user_id=row.login, sis_login_id=row.email,
                                 grade=row.counting.final if row.counting and row.login not in withheld else None)
                       for row in rows], load_assignment(offered.id))


def class_similarity(db: Session, settings: ServiceSettings, course: Course,
                     offered: OfferedAssignment) -> SimilarityResult:
    """The similar pairs among the counting submissions, their views in `exports/<assignment>/_similarity/`."""
    _, folders = counting_reports(settings, grade_rows(db, course, offered))
    return run_similarity(load_assignment(offered.id), folders, settings.exports_dir / offered.id)
