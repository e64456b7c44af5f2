"""The batch gradebook: `grades.csv`, and `summary.md` / `summary.html` with plots, from many reports.

`grades.csv` has one row per report: the fixed columns of `LEADING` and `trailing` around one column
per score item (named after `ScoreItem.name`; a name that clashes with a fixed column gets `_points`). The
first two trailing columns are the task's metric and its value on the perturbed copies, named by the task's key
(accuracy and perturbed_accuracy; mse and perturbed_mse).
A batch adds the columns of `STUDENT` after "student_id": the student's name and whether the LMS download
marked the submission late. The "report" column points at each student's TA view, relative to the gradebook
folder; by default a student's reports are expected in `<out_dir>/<student_id>/`.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.config import Assignment
from grader.errors import GraderError
from grader.files import clear_stale_temps, write_atomic
from grader.lms import Submission
from grader.models import Report, SimilarityResult
from grader.reports import plots
from grader.reports.render import VIEW_STEMS, shown
from grader.reports.templating import render
from grader.tasks import TASK_TYPES

LEADING = ["student_id", "sha256", "total", "max_total", "percent"]
STUDENT = ["name", "late"]
TRAILING = ["flagged_for_review", "integrity", "failure_kinds", "seconds", "report"]
SCORES_PNG = "scores.png"
ACCURACY_PNG = "accuracy.png"


@dataclass
class FailureCount:
    """How many submissions failed in one way, with one of their sentences as an example."""

    kind: str
    submissions: int
    example: str


@dataclass
class BatchSummary:
    """The numbers behind `summary.md`: scores, accuracies, failures and flagged submissions."""

    count: int
    max_total: float
    totals: list[float]
    percents: list[float]
    accuracies: list[float]
    failures: list[FailureCount]
    flagged: list[str]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.totals) if self.totals else None

    @property
    def median(self) -> float | None:
        return statistics.median(self.totals) if self.totals else None


def score_columns(reports: Sequence[Report], assignment: Assignment) -> list[str]:
    """Score item names: the assignment's check groups first, then others in the order reports show them."""
    names = [group.name for group in assignment.checks]
    names += [item.name for report in reports for item in report.score.items]
    return list(dict.fromkeys(names))


def trailing(key: str) -> list[str]:
    """The columns after the score items, the metric's named by the task's `key`."""
    return [key, f"perturbed_{key}", *TRAILING]


def metric_key(assignment: Assignment) -> str:
    """The task's key of the assignment's metric, which names its columns."""
    return TASK_TYPES[assignment.metric.task if assignment.metric else "classification"].key


def _column(name: str, key: str) -> str:
    return f"{name}_points" if name in LEADING + STUDENT + trailing(key) else name


def _report_link(report: Report, folder: Path | None, out_dir: Path) -> str:
    html = f"{VIEW_STEMS['ta']}.html"
    if folder is None:
        return f"{report.submission.student_id}/{html}"
    return Path(os.path.relpath(Path(folder) / html, out_dir)).as_posix()


def gradebook_row(report: Report, names: Sequence[str], link: str, key: str,
                  student: Submission | None = None) -> dict[str, object]:
    """One `grades.csv` row; metrics columns are empty when the submission was not evaluated."""
    points = {item.name: round(item.points, 4) for item in report.score.items}
    metrics = report.metrics
    known = {"name": student.name, "late": str(student.late).lower()} if student else {}
    return {
        "student_id": report.submission.student_id,
        **known,
        "sha256": report.submission.sha256,
        "total": round(report.score.total, 4),
        "max_total": round(report.score.max_total, 4),
        "percent": round(report.score.percent, 2),
        **{_column(name, key): points.get(name, "") for name in names},
        key: round(metrics.value, 4) if metrics else "",
        f"perturbed_{key}": round(metrics.perturbed_value, 4) if metrics else "",
        "flagged_for_review": str(report.flagged_for_review).lower() if metrics else "",
        "integrity": ";".join(f"{finding.rule}:{finding.action}" for finding in report.integrity),
        "failure_kinds": ";".join(str(failure.kind) for failure in report.failures),
        "seconds": round(report.seconds, 1),
        "report": link,
    }


def grades_csv(rows: Sequence[dict[str, object]], names: Sequence[str], key: str, students: bool = False) -> str:
    """The CSV text of the gradebook rows, with the `STUDENT` columns when the rows have them."""
    buffer = io.StringIO()
    leading = [LEADING[0], *STUDENT, *LEADING[1:]] if students else LEADING
    fields = [*leading, *(_column(name, key) for name in names), *trailing(key)]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def summarize(reports: Sequence[Report], assignment: Assignment) -> BatchSummary:
    """Count, scores, accuracies, failures by kind and flagged submissions of a batch."""
    kinds = Counter(kind for report in reports for kind in dict.fromkeys(f.kind for f in report.failures))
    examples: dict[str, str] = {}
    for failure in (f for report in reports for f in report.failures):
        examples.setdefault(failure.kind, failure.message)
    return BatchSummary(
        count=len(reports),
        max_total=assignment.total_points,
        totals=[report.score.total for report in reports],
        percents=[report.score.percent for report in reports],
        accuracies=[report.metrics.value for report in reports if report.metrics],
        failures=[FailureCount(str(kind), n, examples[kind]) for kind, n in kinds.most_common()],
        flagged=[r.submission.student_id for r in reports if r.flagged_for_review],
    )


def write_gradebook(
    reports: Sequence[Report], assignment: Assignment, out_dir: Path, report_dirs: Sequence[Path] | None = None,
    students: Mapping[str, Submission] | None = None,
    similarity: SimilarityResult | None = None,
) -> list[Path]:
    """Write `grades.csv`, `summary.md`, `summary.html` and their plots into `out_dir`; `students` (by student
    id) adds their names and late flags; the summaries list the similar pairs of `similarity` (its views in
    `out_dir/_similarity/`)."""
    if report_dirs is not None and len(report_dirs) != len(reports):
        raise GraderError(f"Got {len(reports)} reports but {len(report_dirs)} report folders.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_stale_temps(out_dir)
    folders = report_dirs if report_dirs is not None else [None] * len(reports)
    links = [_report_link(report, folder, out_dir) for report, folder in zip(reports, folders, strict=True)]
    names = score_columns(reports, assignment)
    key = metric_key(assignment)
    rows = [gradebook_row(report, names, link, key, students.get(report.submission.student_id) if students else None)
            for report, link in zip(reports, links, strict=True)]
    summary = summarize(reports, assignment)
    pngs = {SCORES_PNG: plots.score_histogram(summary.percents)} if summary.percents else {}
    if summary.accuracies:
        name = TASK_TYPES[assignment.metric.task].metric if assignment.metric else "accuracy"
        pngs[ACCURACY_PNG] = plots.accuracy_distribution(summary.accuracies, assignment.metric, name)
    written = [write_atomic(out_dir / name, png) for name, png in pngs.items()]
    written.append(write_atomic(out_dir / "grades.csv", grades_csv(rows, names, key, students is not None)))
    task = TASK_TYPES[assignment.metric.task if assignment.metric else "classification"]
    common = {"assignment": assignment, "summary": summary, "rows": rows, "similarity": similarity, "key": key,
              "task": task, "show": shown(task)}
    md = render("summary.md.j2", images={name: name for name in pngs}, **common)
    html = render("summary.html.j2", images={n: plots.data_uri(png) for n, png in pngs.items()}, **common)
    written.append(write_atomic(out_dir / "summary.md", md))
    written.append(write_atomic(out_dir / "summary.html", html))
    return written
