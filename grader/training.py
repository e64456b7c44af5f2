"""Training stage: the grader-owned harness trains the submission under the device's time budget.

The harness checkpoints after every epoch; if an epoch overruns the budget plus the grace
period the sandbox kills it and the last checkpoint stands.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from grader.context import GradingContext
from grader.harness.submission import read_events
from grader.interface import stage_failure
from grader.models import EpochRecord, Failure, FailureKind, TrainingResult
from grader.sandbox import Mount, SandboxResult, python_stage, run

PROGRESS_FILE = "progress.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
FAILURE_SENTENCES = {
    "nan_loss": FailureKind.NAN_LOSS,
    "out_of_memory": FailureKind.OUT_OF_MEMORY,
    "wrong_output": FailureKind.WRONG_OUTPUT,
    "too_many_parameters": FailureKind.TOO_MANY_PARAMETERS,
    "forbidden_layer": FailureKind.FORBIDDEN_LAYER,
    "file_too_large": FailureKind.FILE_TOO_LARGE,
}


@dataclass
class TrainingOutcome:
    """The training record, the checkpoint to evaluate (None when no epoch finished) and any failure."""

    result: TrainingResult
    checkpoint: Path | None
    failure: Failure | None


def run_training(ctx: GradingContext, on_epoch: Callable[[int, int], None] | None = None) -> TrainingOutcome:
    """Train in the sandbox; `on_epoch(done, planned)` is called as epochs finish."""
    training = ctx.assignment.training
    assert training is not None
    budget = training.budget_seconds[ctx.device.kind]
    workdir = ctx.stage_dir("training")
    images = Mount(ctx.data.train.images_path, Path("/data/train-images.npy"))
    labels = Mount(ctx.data.train.labels_path, Path("/data/train-labels.npy"))
    spec = {
        "submission": "submission", "module": ctx.assignment.submission.module,
        "images": str(images.inside), "labels": str(labels.inside),
        "mean": ctx.data.mean, "std": ctx.data.std, "seed": ctx.assignment.seed,
        "device": ctx.device.torch_name, "threads": ctx.threads, "budget_seconds": budget,
        "max_parameters": training.max_parameters, "allowed_layers": training.allowed_layers,
        "progress": PROGRESS_FILE, "checkpoint": CHECKPOINT_FILE,
    }
    (workdir / "spec.json").write_text(json.dumps(spec))
    progress_path = workdir / PROGRESS_FILE
    watcher = _EpochWatcher(progress_path, on_epoch)
    stage = python_stage("grader.harness.train", ["spec.json"], workdir, ctx.limits(budget + training.grace_seconds),
                         mounts=[images, labels], gpu_index=ctx.device.gpu_index, on_poll=watcher.poll)
    sandbox = run(stage)
    events = read_events(progress_path)
    start = next((e for e in events if e["event"] == "start"), {})
    epochs = [record for e in events if e["event"] == "epoch" and (record := _epoch_record(e))]
    end = next((e for e in reversed(events) if e["event"] in ("stopped", "failed")), None)
    failure = None
    if end is None:
        stopped = "killed"
        failure = _killed(sandbox, epochs)
    elif end["event"] == "failed":
        stopped = "failed"
        failure = _failed(end, ctx.assignment.limits.file_size_mb)
    else:
        stopped = end.get("reason") if end.get("reason") in ("completed", "budget") else "killed"
    checkpoint = workdir / CHECKPOINT_FILE
    usable = checkpoint.is_file() and epochs and stopped != "failed"
    result = TrainingResult(
        device=ctx.device.describe(), epochs_planned=int(start.get("epochs", 0)), epochs=epochs,
        stopped=stopped, budget_seconds=budget, parameters=int(start.get("parameters", 0)), seconds=sandbox.seconds,
    )
    return TrainingOutcome(result=result, checkpoint=checkpoint if usable else None, failure=failure)


def _killed(sandbox: SandboxResult, epochs: list[EpochRecord]) -> Failure:
    """Why the stage ended without saying so; the checkpoint of the last finished epoch still counts."""
    failure = stage_failure("training", sandbox, "training the model")
    if not epochs:
        return failure
    kept = f"; the model saved after epoch {epochs[-1].epoch} was evaluated."
    return failure.model_copy(update={"message": failure.message.removesuffix(".") + kept})


def _failed(end: dict, file_size_mb: int) -> Failure:
    """The failure the harness reported, in one sentence."""
    kind = FAILURE_SENTENCES.get(str(end.get("kind")), FailureKind.EXCEPTION)
    if kind == FailureKind.FILE_TOO_LARGE:
        message = f"Training failed: the submission wrote a file larger than the {file_size_mb} MB limit."
    else:
        message = f"Training failed: {str(end.get('message'))[:400]}"
    return Failure(stage="training", kind=kind, message=message, details=str(end.get("details", ""))[-4000:])


def _epoch_record(event: dict) -> EpochRecord | None:
    """The epoch an event describes; None for a malformed line (the progress file is in student reach)."""
    try:
        return EpochRecord.model_validate({k: event[k] for k in ("epoch", "loss", "train_accuracy", "seconds")})
    except (KeyError, ValidationError):
        return None


class _EpochWatcher:
    """Tells the caller about finished epochs by reading the progress file between watchdog polls."""

    def __init__(self, path: Path, on_epoch: Callable[[int, int], None] | None) -> None:
        self.path, self.on_epoch, self.seen = path, on_epoch, -1

    def poll(self) -> None:
        if self.on_epoch is None or not self.path.is_file():
            return
        events = read_events(self.path)
        planned = next((int(e.get("epochs", 0)) for e in events if e["event"] == "start"), 0)
        done = sum(1 for e in events if e["event"] == "epoch")
        if done != self.seen:
            self.seen = done
            self.on_epoch(done, planned)
