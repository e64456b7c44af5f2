"""One submission's report as markdown and self-contained HTML, in a student view and a TA view.

Files written into the submission's output folder:

- `report.md`, `report.html`: the student view. Per check group only points and the reason;
  no hidden-check names (nodeids), check messages, details or tracebacks.
- `report-ta.md`, `report-ta.html`: the TA view. Every hidden check with its outcome, message and
  trimmed details, failure details, the "flagged for review" notice and the sandbox warning.
- `training.png`, `confusion.png`: the plots, linked from both markdown files (when there is data).

The HTML files embed the plots as `data:` URIs and load nothing from outside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.config import Assignment
from grader.models import CheckResult, Report, TrainingResult
from grader.reports import plots
from grader.reports.files import write_atomic
from grader.reports.templating import percent, render
from grader.tasks import TASK_TYPES, TaskType

View = Literal["student", "ta"]
VIEW_STEMS: dict[View, str] = {"student": "report", "ta": "report-ta"}
TRAINING_PNG = "training.png"
CONFUSION_PNG = "confusion.png"
PERTURBED = {"hflip": "horizontally flipped", "shift": "shifted"}  # config.Metric.perturbation, in words
STOPPED = {
    "completed": "completed",
    "budget": "stopped at the time budget",
    "overran": "stopped: its last epoch ran past the budget and its grace",
    "killed": "was killed by the sandbox",
    "failed": "failed",
}
RLIMITS_WARNING = (
    "Student code ran under resource limits only, without bubblewrap isolation: "
    "it could read the files and use the network that the grader's user can."
)


@dataclass
class CheckGroupView:
    """The hidden checks of one check group, for the TA view."""

    name: str
    title: str
    checks: list[CheckResult]


BUSY_RATIO = 1.5  # wall time beyond this multiple of the CPU time per thread: other work slowed the machine


def budget_used(training: TrainingResult) -> str:
    """How much of which budget the training used, in words."""
    share = f"{training.budget_used:.1f} of its {training.budget_seconds:g} s"
    if training.budget_clock == "cpu":
        return (f"{share} CPU budget (CPU seconds per thread it was given; other jobs on the machine do not count)"
                f"{busy_machine(training)}")
    return f"{share} time budget"


def busy_machine(training: TrainingResult) -> str:
    """A clause when other work slowed the machine: the training's wall time well beyond its CPU time per thread."""
    cpu = training.budget_used + training.validation_seconds
    if cpu <= 0 or training.seconds < BUSY_RATIO * cpu:
        return ""
    return (f"; the machine was busy with other work, so its wall time was {training.seconds / cpu:.1f} times "
            "its CPU time per thread, which did not cost it any budget")


def submission_plots(report: Report, assignment: Assignment) -> dict[str, bytes]:
    """The report's plots as PNG bytes by file name; a plot without data is left out."""
    pngs = {}
    if report.training is not None and report.training.epochs:
        task = task_of_report(assignment)
        pngs[TRAINING_PNG] = plots.training_curve(report.training, task.metric, task.higher_is_better)
    if report.metrics is not None and report.metrics.confusion:
        pngs[CONFUSION_PNG] = plots.confusion_matrix(report.metrics)
    return pngs


def check_groups(report: Report, assignment: Assignment) -> list[CheckGroupView]:
    """Checks grouped in the assignment's group order; groups the assignment does not know come last."""
    titles = {group.name: group.title for group in assignment.checks}
    names = list(titles) + [c.group for c in report.checks if c.group not in titles]
    groups = [
        CheckGroupView(name, titles.get(name, name), [c for c in report.checks if c.group == name])
        for name in dict.fromkeys(names)
    ]
    return [group for group in groups if group.checks]


def task_of_report(assignment: Assignment) -> TaskType:
    """The task whose metric the reports name (classification for an assignment that trains nothing)."""
    return TASK_TYPES[assignment.metric.task if assignment.metric else "classification"]


def shown(task: TaskType) -> Callable[[float], str]:
    """How a report writes the task's metric: an accuracy as a percentage, an error with four decimals."""
    return percent if task.higher_is_better else "{:.4f}".format


def flag_notices(report: Report, task: TaskType) -> list[str]:
    """The TA's sentences for each integrity finding: what the grader measured, and what it did about it."""
    heads = {"no_credit": f"No {task.metric} credit", "review": "Flagged for review"}
    return [f"{heads[f.action]} ({f.rule.replace('_', ' ')} {f.value:.3f}, limit {f.limit:.3f}): {f.message}"
            for f in report.integrity]


def kept_sentence(training: TrainingResult, task: TaskType) -> str:
    """Which epoch's model was evaluated, and why."""
    if training.kept_epoch is None:
        return ""
    held = f"The grader held out {training.validation_images:,} training images as its validation split"
    kept = next(e for e in training.epochs if e.epoch == training.kept_epoch)
    accuracy = f"{kept.validation_metric:.4f}" if kept.validation_metric is not None else "unknown"
    best = "highest" if task.higher_is_better else "lowest"
    why = (f"the epoch with the {best} validation {task.metric}" if training.keep == "best"
           else "the last epoch, as this assignment scores")
    return (f"{held} and evaluated the model of epoch {training.kept_epoch}, {why} ({accuracy}); the validation "
            f"passes took {training.validation_seconds:.1f} s, not counted in the budget.")


@dataclass(frozen=True)
class HandIn:
    """What a submission service adds when it shows a report: the name the student uploaded, the times in the
    course's zone, and the grade after the late penalty under the policy as it is now."""

    filename: str
    submitted: str
    graded: str
    lateness: str  # "on time", or e.g. "2 day(s) late (1 late day used), -10.0%"
    grade: float


def context(report: Report, assignment: Assignment, view: View, images: dict[str, str],
            hand_in: HandIn | None = None) -> dict[str, object]:
    """Everything a submission template needs."""
    ta, task = view == "ta", task_of_report(assignment)
    return {
        "hand_in": hand_in,
        "report": report,
        "assignment": assignment,
        "ta": ta,
        "images": images,
        "groups": check_groups(report, assignment) if ta else [],
        "flags": flag_notices(report, task) if ta else [],
        "task": task,
        "show": shown(task),
        "sandbox_warning": RLIMITS_WARNING if ta and report.environment.sandbox == "rlimits" else None,
        "stopped": STOPPED,
        "budget_used": budget_used(report.training) if report.training else "",
        "kept": kept_sentence(report.training, task) if report.training else "",
        "perturbed": PERTURBED,
        "max_gap": assignment.metric.integrity.perturbation_gap.above if assignment.metric else None,
    }


def render_handed_in(report: Report, assignment: Assignment, out_dir: Path, view: View, hand_in: HandIn) -> str:
    """`view`'s HTML of a report folder that `render_submission` wrote, with what the service adds; the plots are
    the folder's PNGs, not drawn again."""
    pngs = {name: out_dir / name for name in (TRAINING_PNG, CONFUSION_PNG) if (out_dir / name).is_file()}
    images = {name: plots.data_uri(path.read_bytes()) for name, path in pngs.items()}
    return render("submission.html.j2", **context(report, assignment, view, images, hand_in))


def render_submission(
    report: Report, assignment: Assignment, out_dir: Path, view: View, pngs: dict[str, bytes] | None = None
) -> list[Path]:
    """Write `view`'s markdown and HTML (and the plot PNGs) into `out_dir`; `pngs` reuses drawn plots."""
    if view not in VIEW_STEMS:
        raise ValueError(f"view must be 'student' or 'ta', not {view!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = submission_plots(report, assignment) if pngs is None else pngs
    written = [write_atomic(out_dir / name, png) for name, png in pngs.items()]
    md = render("submission.md.j2", **context(report, assignment, view, {name: name for name in pngs}))
    html_images = {name: plots.data_uri(png) for name, png in pngs.items()}
    html = render("submission.html.j2", **context(report, assignment, view, html_images))
    stem = VIEW_STEMS[view]
    written.append(write_atomic(out_dir / f"{stem}.md", md))
    written.append(write_atomic(out_dir / f"{stem}.html", html))
    return written
