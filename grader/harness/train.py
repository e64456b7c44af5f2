"""In-sandbox training stage: train the student's model with the student's own functions.

Usage: python -m grader.harness.train (reads spec.json: a TrainSpec)
Progress goes to the progress file (one typed JSON line per event) and the weights after every
finished epoch to the checkpoint, so a kill mid-epoch still leaves the last good epoch. The budget
is counted on the spec's clock: on CPU the CPU time of this process (and any it reaped) divided by
the threads it was given, so other jobs on a busy machine do not eat into it; on a GPU wall time.
"""

from __future__ import annotations

import errno
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from grader.architecture import layer_problems, size_problem
from grader.files import atomic_file
from grader.harness.loaders import normalize, train_loader
from grader.harness.probe import describe_model, probe_images
from grader.harness.submission import exit_now, import_submission, trimmed_traceback
from grader.models import FailureKind
from grader.protocol import (
    Budget,
    EpochDone,
    FailureRecord,
    TrainFailed,
    TrainSpec,
    TrainStart,
    TrainStopped,
    append_record,
    read_spec,
)


class Progress:
    """Appends one JSON line per event to the progress file, flushed at once."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: object) -> None:
        append_record(self._file, record)

    def fail(self, kind: FailureKind, message: str, details: str = "") -> None:
        self.write(TrainFailed(failure=FailureRecord(kind=kind, message=message, details=details)))


class BudgetClock:
    """Budget seconds used since the clock was made, on the budget's own clock."""

    def __init__(self, budget: Budget, threads: int) -> None:
        self.budget, self.threads = budget, threads
        self.start = self._now()

    def _now(self) -> float:
        if self.budget.clock == "wall":
            return time.monotonic()
        times = os.times()
        return (times.user + times.system + times.children_user + times.children_system) / self.threads

    def used(self) -> float:
        return self._now() - self.start

    def exhausted(self) -> bool:
        return self.used() >= self.budget.seconds


class RecordingLoss(nn.Module):
    """Cross-entropy that also counts correct predictions, so train accuracy costs no extra pass."""

    def __init__(self) -> None:
        super().__init__()
        self.loss = nn.CrossEntropyLoss()
        self.correct = self.seen = 0

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if logits.ndim == 2 and logits.shape[0] == targets.shape[0]:
                self.correct += int((logits.argmax(dim=1) == targets).sum())
                self.seen += int(targets.shape[0])
        return self.loss(logits, targets)

    def accuracy_and_reset(self) -> float:
        accuracy = self.correct / self.seen if self.seen else 0.0
        self.correct = self.seen = 0
        return accuracy


def make_reproducible(seed: int) -> None:
    """The same seed, and the deterministic kernels where torch has a choice, for the same model every time."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def save_checkpoint(model: nn.Module, path: Path) -> None:
    with atomic_file(path) as file:
        torch.save(model.state_dict(), file)


def train(spec: TrainSpec, progress: Progress) -> None:
    torch.set_num_threads(spec.threads)
    make_reproducible(spec.seed)
    device = torch.device(spec.device)
    module = import_submission(Path(spec.submission), spec.module)
    model = module.build_model().to(device)
    description = describe_model(model, probe_images(spec.seed).to(device))
    epochs = int(module.EPOCHS)
    progress.write(TrainStart(epochs=epochs, device=str(device), model=description))
    if problem := size_problem(description, spec.training):
        return progress.fail(FailureKind.TOO_MANY_PARAMETERS, problem)
    if problems := layer_problems(description, spec.training, spec.assignment_id):
        return progress.fail(FailureKind.FORBIDDEN_LAYER, " ".join(problems))
    optimizer = module.make_optimizer(model)
    loss_fn = RecordingLoss()
    transform = module.train_transform() if hasattr(module, "train_transform") else None
    images = normalize(np.load(spec.images, mmap_mode="r"), spec.mean, spec.std)
    labels = torch.as_tensor(np.load(spec.labels))
    loader = train_loader(images, labels, int(module.BATCH_SIZE), spec.seed, transform)
    clock = BudgetClock(spec.budget, spec.threads)
    for epoch in range(1, epochs + 1):
        if clock.exhausted():
            return progress.write(TrainStopped(reason="budget", budget_used=clock.used()))
        epoch_start = time.monotonic()
        model.train()
        returned = module.train_one_epoch(model, loader, loss_fn, optimizer, device)
        if not isinstance(returned, (float, int, torch.Tensor)):
            return progress.fail(FailureKind.WRONG_OUTPUT, f"train_one_epoch returned {type(returned).__name__}, "
                                 "not the mean loss as a float.")
        loss = float(returned)
        if not math.isfinite(loss):
            return progress.fail(FailureKind.NAN_LOSS, f"The training loss became {loss} in epoch {epoch}.")
        save_checkpoint(model, Path(spec.checkpoint))
        progress.write(EpochDone(epoch=epoch, loss=loss, train_accuracy=loss_fn.accuracy_and_reset(),
                                 seconds=time.monotonic() - epoch_start, budget_used=clock.used()))
    progress.write(TrainStopped(reason="completed", budget_used=clock.used()))


def main() -> None:
    spec = read_spec(TrainSpec)
    progress = Progress(Path(spec.progress))
    try:
        train(spec, progress)
    except BaseException as exc:  # noqa: BLE001 - whatever student code raises becomes the report
        progress.fail(failure_kind(exc), f"{type(exc).__name__}: {str(exc)[:300]}", trimmed_traceback(exc))


def failure_kind(exc: BaseException) -> FailureKind:
    """The failure kind of an exception out of student code: GPU memory, the file size limit, or any other."""
    if "out of memory" in str(exc).lower():
        return FailureKind.OUT_OF_MEMORY
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return FailureKind.FILE_TOO_LARGE
    return FailureKind.EXCEPTION


if __name__ == "__main__":
    main()
    exit_now()
