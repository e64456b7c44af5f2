"""The same score anywhere: worker count, a busy machine and the CPU budget do not change what a submission earns.

Graded for real on the synthetic data; the busy machine is made by CPU-burning processes this test starts and
ends by PID.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from grader.batch import BatchOptions, discover, run_batch
from grader.config import Assignment, load_assignment
from grader.models import Report
from grader.pipeline import GradeOptions, grade

pytestmark = pytest.mark.slow

BURN = "import time\nuntil = time.time() + {seconds}\nwhile time.time() < until:\n    pass\n"
# Appended to the reference: each epoch of the grader's training first burns `cpu` seconds of CPU time (the
# hidden checks, which call train_one_epoch too, are left alone).
SLOW_EPOCHS = """
EPOCHS = {epochs}
_train = train_one_epoch


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    import sys, time
    if sys.modules["__main__"].__spec__.name == "grader.harness.training":
        until = time.process_time() + {cpu}
        while time.process_time() < until:
            pass
    return _train(model, loader, loss_fn, optimizer, device)
"""


@contextmanager
def cpu_hogs(count: int = 2, seconds: float = 600) -> Iterator[None]:
    """`count` processes burning a CPU each (bounded by `seconds`), ended by PID on the way out."""
    hogs = [subprocess.Popen([sys.executable, "-c", BURN.format(seconds=seconds)]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def submission(assignment: Assignment, folder: Path, extra: str) -> Path:
    folder.mkdir(parents=True)
    module = assignment.submission.files[0]
    (folder / module).write_text((assignment.solution_dir / module).read_text() + extra)
    return folder


def fingerprint(report: Report) -> tuple:
    """What must not change, bit for bit: the test accuracy, the epochs completed, every epoch's loss and validation
    accuracy (and the model's as built), and the epoch kept."""
    assert report.failures == [] and report.metrics is not None, report.failures
    training = report.training
    return (report.metrics.value, report.metrics.confusion, training.stopped,
            [(e.epoch, e.loss, e.train_metric, e.validation_metric) for e in training.epochs],
            training.kept_epoch, training.untrained_metric)


def with_budget(assignment: Assignment, seconds: float) -> Assignment:
    training = assignment.training.model_copy(update={"budget_seconds": {"cpu": seconds}, "grace_seconds": 3.0})
    return assignment.model_copy(update={"training": training})


def test_workers_and_a_busy_machine_do_not_change_the_model(synthetic_cifar: Path, tmp_path: Path) -> None:
    assignment = load_assignment("a2_ffn")
    folder = tmp_path / "class"
    for name in ("ann", "bob"):
        submission(assignment, folder / name, "\nEPOCHS = 4\n")
    reports = {}
    for workers in (1, 2):
        graded = run_batch(assignment, discover(folder), tmp_path / f"out-{workers}",
                           BatchOptions(workers=workers, data_root=synthetic_cifar))
        reports[f"{workers} worker(s)"] = [fingerprint(r) for r in graded]
    with cpu_hogs():
        busy = grade(assignment, folder / "ann", tmp_path / "busy", GradeOptions(data_root=synthetic_cifar))
    reports["beside two CPU hogs"] = [fingerprint(busy)] * 2
    first = reports["1 worker(s)"][0]
    assert first[2] == "completed" and len(first[3]) == 4 and first[4] is not None
    assert all(result == first for results in reports.values() for result in results), reports


def test_a_busy_machine_does_not_cut_a_run_the_budget_allows(synthetic_cifar: Path, tmp_path: Path) -> None:
    # Each epoch burns about 1.2 CPU seconds (0.6 budget seconds at 2 threads): 5 epochs fit a 6 s budget.
    assignment = with_budget(load_assignment("a2_ffn"), 6.0)
    slow = submission(assignment, tmp_path / "slow", SLOW_EPOCHS.format(epochs=5, cpu=1.2))
    with cpu_hogs():
        report = grade(assignment, slow, tmp_path / "out", GradeOptions(data_root=synthetic_cifar))
    assert report.failures == [] and report.training.stopped == "completed" and len(report.training.epochs) == 5
    assert report.training.seconds > 6.0, "the hogs slowed it past a wall-clock budget of 6 s (the control)"
    assert report.training.budget_clock == "cpu" and report.training.budget_used < 6.0


def test_a_run_past_its_cpu_budget_is_cut_and_told_so(synthetic_cifar: Path, tmp_path: Path) -> None:
    # Each epoch burns about 4 CPU seconds (2 budget seconds): a 5 s budget stops the epochs after the third.
    assignment = with_budget(load_assignment("a2_ffn"), 5.0)
    heavy = submission(assignment, tmp_path / "heavy", SLOW_EPOCHS.format(epochs=10, cpu=4))
    report = grade(assignment, heavy, tmp_path / "out", GradeOptions(data_root=synthetic_cifar))
    assert report.training.stopped == "budget" and len(report.training.epochs) == 3
    assert report.training.budget_used >= 5.0
    assert report.metrics is not None, "the model of the last finished epoch is evaluated"
    assert any(note.startswith("Training used") and "CPU budget" in note for note in report.notes), report.notes
    assert "stopped at the time budget" in (tmp_path / "out" / "report.md").read_text()
