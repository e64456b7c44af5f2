"""Reports: render a graded `Report` into files for students, TAs and Gradescope.

`write_all` writes one submission's folder; `gradebook.write_gradebook` writes a batch's
`grades.csv` and summary. File names per view are documented in `grader.reports.render`.
"""

from __future__ import annotations

from pathlib import Path

from grader.config import Assignment
from grader.models import Report
from grader.reports.files import (
    REPORT_JSON,
    install_report_folder,
    read_report_json,
    start_report_folder,
    write_atomic,
    write_report_json,
)
from grader.reports.gradebook import write_gradebook
from grader.reports.gradescope import gradescope_results, write_gradescope_results
from grader.reports.render import render_submission, submission_plots

__all__ = [
    "REPORT_JSON",
    "gradescope_results",
    "install_report_folder",
    "read_report_json",
    "render_submission",
    "write_all",
    "write_atomic",
    "write_gradebook",
    "write_report_json",
]


def write_all(report: Report, assignment: Assignment, out_dir: Path) -> list[Path]:
    """Write both views, the plots, `results.json` and, last, `report.json` (the batch's "done" marker)."""
    out_dir = start_report_folder(out_dir)
    pngs = submission_plots(report, assignment)
    written = [*render_submission(report, assignment, out_dir, "student", pngs)]
    written += render_submission(report, assignment, out_dir, "ta", pngs)
    written.append(write_gradescope_results(report, out_dir))
    written.append(write_report_json(report, out_dir))
    return list(dict.fromkeys(written))
