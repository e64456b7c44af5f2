"""The book's deeper FFN (Deep Learning with PyTorch, ch. 7) graded by the real a2 assignment on the real data.

The book reports 0.80-0.82 validation accuracy after 100 epochs; the a2 budget decides how many run here. The same
code is graded twice: as a2 scores it (the best epoch by validation accuracy) and, stopped after as many epochs
as the first run trained, as if a2 kept the last epoch, so the table shows what keeping the best epoch changed.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

from bench.common import Config, Result, Table
from grader.config import Assignment, load_assignment
from grader.models import Report
from grader.pipeline import GradeOptions, grade
from grader.reports.render import kept_sentence

NAME = "book"
SUBMISSION = Path(__file__).parent / "submissions" / "book_deeper_ffn.py"
BOOK = (0.80, 0.82)  # the book's validation accuracy for this model
TOLERANCE = 0.02
QUICK_EPOCHS = 2


def keeping_last(assignment: Assignment) -> Assignment:
    """`assignment` with its validation split's keep set to "last"."""
    training = assignment.training
    validation = training.validation.model_copy(update={"keep": "last"})
    return assignment.model_copy(update={"training": training.model_copy(update={"validation": validation})})


def submission(folder: Path, module: str, epochs: int | None) -> Path:
    """The book's submission as `module`.py in `folder`, with EPOCHS overridden when `epochs` is given."""
    folder.mkdir(parents=True)
    source = SUBMISSION.read_text()
    if epochs is not None:
        source += f"\nEPOCHS = {epochs}  # bench override\n"
    (folder / f"{module}.py").write_text(source)
    return folder


def cpu_seconds() -> float:
    """CPU seconds of this process: the grader's own work (the sandboxed stages are counted by the harness)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_grade(assignment: Assignment, folder: Path, out: Path, cfg: Config) -> tuple[Report, dict[str, float]]:
    """The report of one grade, with its wall and CPU seconds and the 1-minute load average around it; the training
    stage's CPU seconds are the harness's own count (budget and validation passes, all threads)."""
    load, wall, cpu = os.getloadavg()[0], time.perf_counter(), cpu_seconds()
    report = grade(assignment, folder, out, GradeOptions(data_root=cfg.data_root))
    training = report.training
    threads = assignment.limits.threads
    stage_cpu = (training.budget_used + training.validation_seconds) * threads if training else 0.0
    return report, {"wall s": time.perf_counter() - wall, "training stage CPU s": stage_cpu,
                    "grader process CPU s": cpu_seconds() - cpu, "load before": load,
                    "load after": os.getloadavg()[0]}


def epoch_rows(best: Report, last: Report) -> list[dict[str, object]]:
    """Per epoch: the first grade's loss and accuracies, and whether the keep-last grade trained the same."""
    others = {e.epoch: e for e in last.training.epochs}
    rows = []
    for e in best.training.epochs:
        same = others.get(e.epoch) is not None and others[e.epoch].validation_metric == e.validation_metric
        rows.append({"epoch": f"{e.epoch}{' (kept)' if e.epoch == best.training.kept_epoch else ''}",
                     "loss": e.loss, "train accuracy": e.train_metric, "validation accuracy": e.validation_metric,
                     "s": e.seconds, "same in keep-last grade": "yes" if same else "no"})
    return rows


def summary_rows(best: Report, last: Report, times: dict[str, dict[str, float]]) -> list[dict[str, object]]:
    training, kept = best.training, best.training.kept_epoch
    by_epoch = {e.epoch: e.validation_metric for e in training.epochs}
    measures: dict[str, object] = {
        "epochs run / planned": f"{len(training.epochs)} / {training.epochs_planned} ({training.stopped})",
        "budget used (CPU s per thread)": f"{training.budget_used:.1f} of {training.budget_seconds:g}",
        "kept epoch": kept,
        "validation accuracy, kept epoch": by_epoch.get(kept),
        "validation accuracy, last epoch": training.epochs[-1].validation_metric if training.epochs else None,
        "test accuracy (kept epoch)": best.metrics.value if best.metrics else None,
        "score": f"{best.score.total:g} / {best.score.max_total:g}",
        "test accuracy had a2 kept the last epoch": last.metrics.value if last.metrics else None,
        "that grade's kept epoch and score": f"{last.training.kept_epoch}, {last.score.total:g}",
    }
    for name, measured in times.items():
        measures |= {f"{name}: {key}": value for key, value in measured.items()}
    return [{"measure": name, "value": value} for name, value in measures.items()]


def run(cfg: Config) -> Result:
    assignment = load_assignment("a2_ffn")
    module = assignment.submission.module
    with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
        work = Path(tmp)
        first = submission(work / "best", module, QUICK_EPOCHS if cfg.quick else None)
        best, best_times = timed_grade(assignment, first, work / "out-best", cfg)
        again = submission(work / "last", module, len(best.training.epochs) if best.training else 1)
        last, last_times = timed_grade(keeping_last(assignment), again, work / "out-last", cfg)
    accuracy = best.metrics.value if best.metrics else 0.0
    low, high = BOOK[0] - TOLERANCE, BOOK[1] + TOLERANCE
    notes = [kept_sentence(best.training) if best.training else "no training",
             f"target: within {TOLERANCE} of the book's {BOOK[0]:.2f}-{BOOK[1]:.2f} ({low:.2f}-{high:.2f}): "
             f"{'met' if low <= accuracy <= high else 'NOT met'} ({accuracy:.4f})"]
    notes += [f"{f.stage}: {f.message}" for f in best.failures + last.failures]
    title = f"the book's deeper FFN on a2 ({cfg.device}{', --quick' if cfg.quick else ''})"
    return Result(NAME, [Table(f"{title}: summary", summary_rows(best, last, {"graded": best_times,
                                                                                "keep-last copy": last_times})),
                         Table(f"{title}: per epoch", epoch_rows(best, last))], notes)
