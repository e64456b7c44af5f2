"""In-sandbox training stage: train the student's model with the student's own functions.

Usage: python -m grader.harness.training (reads spec.json: a TrainSpec)
Progress goes to the progress file (one typed JSON line per event), the weights after every finished epoch
to a checkpoint of its own, and the logits of the held-out validation images (no labels here) after every
epoch, and once before the first for the model as built; the grader scores those logits and keeps the
checkpoint it will evaluate. The budget is counted on the spec's clock: on CPU the CPU time of this process
(and any it reaped) divided by the threads it was given, so other jobs on a busy machine do not eat into it;
on a GPU wall time. The validation passes are the grader's work: their time is counted apart.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn
from torch.utils.data import DataLoader

from grader.architecture import layer_problems, size_problem
from grader.files import atomic_file
from grader.harness.loaders import Batch, logits_of, normalize, train_loader
from grader.harness.probe import describe_model, probe_images
from grader.harness.submission import exit_now, import_submission, trimmed_traceback
from grader.models import FailureKind, TaskName
from grader.protocol import (
    Budget,
    EpochDone,
    FailureRecord,
    TrainFailed,
    TrainSpec,
    TrainStart,
    TrainStopped,
    Untrained,
    append_record,
    read_spec,
)


class Progress:
    """Appends one JSON line per event to the progress file, flushed at once."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: BaseModel) -> None:
        append_record(self._file, record)

    def fail(self, kind: FailureKind, message: str, details: str = "") -> None:
        self.write(TrainFailed(failure=FailureRecord(kind=kind, message=message, details=details)))


class BudgetClock:
    """Budget seconds used since the clock was made, on the budget's own clock, less the validation passes."""

    def __init__(self, budget: Budget, threads: int, validation_share: float) -> None:
        self.budget, self.threads = budget, threads
        self.validation_limit = validation_share * budget.seconds
        self.validation = 0.0
        self.start = self._now()

    def _now(self) -> float:
        if self.budget.clock == "wall":
            return time.monotonic()
        times = os.times()
        return (times.user + times.system + times.children_user + times.children_system) / self.threads

    def used(self) -> float:
        return self._now() - self.start - self.validation

    def exhausted(self) -> bool:
        return self.used() >= self.budget.seconds or self.validation >= self.validation_limit

    @contextlib.contextmanager
    def not_counted(self) -> Iterator[None]:
        """Time spent inside is the grader's (a validation pass), not the student's."""
        started = self._now()
        try:
            yield
        finally:
            self.validation += self._now() - started


class RecordingLoss(nn.Module):
    """The task's loss, which also sums the task's training metric over the batches, so it costs no extra pass:
    classification: cross-entropy, and the share of rows whose largest logit is the label's; reconstruction: the
    mean squared error, and the same error."""

    def __init__(self, task: TaskName) -> None:
        super().__init__()
        self.task = task
        self.loss = nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()
        self.total, self.seen = 0.0, 0

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss: torch.Tensor = self.loss(outputs, targets)
        with torch.no_grad():
            if self.task == "reconstruction":
                self.total += float(loss) * int(targets.shape[0])
                self.seen += int(targets.shape[0])
            elif outputs.ndim == 2 and outputs.shape[0] == targets.shape[0]:
                self.total += int((outputs.argmax(dim=1) == targets).sum())
                self.seen += int(targets.shape[0])
        return loss

    def metric_and_reset(self) -> float:
        metric = self.total / self.seen if self.seen else 0.0
        self.total, self.seen = 0.0, 0
        return metric


def make_reproducible(seed: int) -> None:
    """The same seed, and the deterministic kernels where torch has a choice, for the same model every time."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def save_checkpoint(model: nn.Module, path: Path) -> None:
    path.parent.mkdir(exist_ok=True)
    with atomic_file(path) as file:
        torch.save(nn.Module.state_dict(model), file)


class Validator:
    """The grader's forward pass over the held-out images, which leaves the training exactly as it was."""

    def __init__(self, spec: TrainSpec, clock: BudgetClock, device: torch.device) -> None:
        self.spec, self.clock, self.device = spec, clock, device
        self.images = normalize(np.load(spec.validation_images), spec.mean, spec.std)

    def __call__(self, model: nn.Module, epoch: int) -> None:
        """Write the validation logits of `epoch`."""
        path = Path(self.spec.logits(epoch))
        path.parent.mkdir(exist_ok=True)
        with self.clock.not_counted(), _random_state_kept(self.device), unchanged(model):
            model.eval()
            logits = logits_of(model, self.images, self.spec.training.eval_batch_size, self.device)
        with atomic_file(path) as file:
            np.save(file, logits)


CHANGED_WHILE_MEASURED = ("The model changed its own weights while the grader examined it (its layers, or its "
                          "validation accuracy, in eval mode without gradients): a model may train only in "
                          "train_one_epoch.")


@contextlib.contextmanager
def unchanged(model: nn.Module) -> Iterator[None]:
    """The grader's own look at the model must leave it as it was: a model that trains itself meanwhile trains where
    the budget does not look (a validation pass), or before the grader measured it untrained (the layer probe)."""
    before = weights_digest(model)
    yield
    if weights_digest(model) != before:
        raise ChangedWhileMeasured(CHANGED_WHILE_MEASURED)


class ChangedWhileMeasured(Exception):
    """The model trained itself during a validation pass."""


def weights_digest(model: nn.Module) -> str:
    """A digest of every parameter and buffer, as torch's own state_dict lists them."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in nn.Module.state_dict(model).items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def _random_state_kept(device: torch.device) -> Iterator[None]:
    """Whatever the model draws in eval mode, training goes on from the random state it left."""
    python, numpy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield
    random.setstate(python)
    np.random.set_state(numpy)


def train(spec: TrainSpec, progress: Progress) -> None:
    # The budget counts from here: whatever the submission computes at import or in build_model is its training.
    clock = BudgetClock(spec.budget, spec.threads, spec.training.validation.budget_share)
    torch.set_num_threads(spec.threads)
    make_reproducible(spec.seed)
    device = torch.device(spec.device)
    module = import_submission(Path(spec.submission), spec.module)
    model = module.build_model().to(device)
    with unchanged(model):
        description = describe_model(model, probe_images(spec.seed).to(device))
    epochs = int(module.EPOCHS)
    progress.write(TrainStart(epochs=epochs, device=str(device), model=description))
    if problem := size_problem(description, spec.training):
        return progress.fail(FailureKind.TOO_MANY_PARAMETERS, problem)
    if problems := layer_problems(description, spec.training, spec.assignment_id):
        return progress.fail(FailureKind.FORBIDDEN_LAYER, " ".join(problems))
    validate = Validator(spec, clock, device)
    validate(model, 0)
    progress.write(Untrained())
    optimizer = module.make_optimizer(model)
    transform = module.train_transform() if hasattr(module, "train_transform") else None
    images = normalize(np.load(spec.images, mmap_mode="r"), spec.mean, spec.std)
    labels = torch.as_tensor(np.load(spec.labels)) if spec.task == "classification" else None
    loader = train_loader(images, labels, int(module.BATCH_SIZE), spec.seed, transform)
    run_epochs(spec, progress, Run(module, model, loader, optimizer, validate, epochs))


@dataclass
class Run:
    """One submission's training: its module and model, what they train with, and the grader's validation."""

    module: ModuleType
    model: nn.Module
    loader: DataLoader[Batch]
    optimizer: torch.optim.Optimizer
    validate: Validator
    epochs: int


def run_epochs(spec: TrainSpec, progress: Progress, run: Run) -> None:
    """Epoch after epoch while budget is left; an epoch that ends past the budget and its grace does not count."""
    model, validate, clock, loss_fn = run.model, run.validate, run.validate.clock, RecordingLoss(spec.task)
    for epoch in range(1, run.epochs + 1):
        if clock.exhausted():
            return progress.write(TrainStopped(reason="budget", budget_used=clock.used()))
        epoch_start = time.monotonic()
        model.train()
        returned = run.module.train_one_epoch(model, run.loader, loss_fn, run.optimizer, validate.device)
        if not isinstance(returned, (float, int, torch.Tensor)):
            return progress.fail(FailureKind.WRONG_OUTPUT, f"train_one_epoch returned {type(returned).__name__}, "
                                 "not the mean loss as a float.")
        loss = float(returned)
        if not math.isfinite(loss):
            return progress.fail(FailureKind.NAN_LOSS, f"The training loss became {loss} in epoch {epoch}.")
        if clock.used() > spec.budget.seconds + spec.training.grace_seconds:
            return progress.write(TrainStopped(reason="overran", budget_used=clock.used()))
        save_checkpoint(model, Path(spec.checkpoint(epoch)))
        seconds = time.monotonic() - epoch_start
        validate(model, epoch)
        progress.write(EpochDone(epoch=epoch, loss=loss, train_metric=loss_fn.metric_and_reset(),
                                 seconds=seconds, budget_used=clock.used(), validation_used=clock.validation))
    progress.write(TrainStopped(reason="completed", budget_used=clock.used()))


def main() -> None:
    spec = read_spec(TrainSpec)
    progress = Progress(Path(spec.progress))
    try:
        train(spec, progress)
    except ChangedWhileMeasured as exc:
        progress.fail(FailureKind.CHANGED_WHILE_MEASURED, str(exc))
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
