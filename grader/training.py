"""Training stage: the grader-owned harness trains the submission under the device's budget.

The harness checkpoints after every epoch; if training overruns the budget plus the grace period
the sandbox kills it and the last checkpoint stands. On CPU the budget is CPU time per thread given
(a busy machine does not shorten it) with a wall-clock safety limit; on a GPU it is wall time.
The layer rule is judged here again on the model the harness described, since the harness's own
refusal runs in the submission's process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.architecture import layer_problems, size_problem
from grader.context import TRAIN_IMAGES, TRAIN_LABELS, GradingContext
from grader.models import EpochRecord, Failure, FailureKind, TrainingResult
from grader.protocol import (
    TRAIN_EVENTS,
    Budget,
    EpochDone,
    TrainFailed,
    TrainSpec,
    TrainStart,
    TrainStopped,
    read_records,
    write_spec,
)
from grader.sandbox import SandboxResult, python_stage
from grader.stage import StageOutcome, from_record, stage_failure

FORGED = "The training records were altered (epochs without a model description), so the model was not evaluated."


@dataclass
class TrainedModel:
    """The training record, and the checkpoint to evaluate (None when no epoch finished)."""

    result: TrainingResult
    checkpoint: Path | None


def budget_of(ctx: GradingContext) -> Budget:
    training = ctx.assignment.training
    assert training is not None
    clock = "cpu" if ctx.device.kind == "cpu" else "wall"
    return Budget(clock=clock, seconds=training.budget_seconds[ctx.device.kind])


def run_training(ctx: GradingContext, on_epoch: Callable[[int, int], None] | None = None) -> StageOutcome[TrainedModel]:
    """Train in the sandbox; `on_epoch(done, planned)` is called as epochs finish."""
    training = ctx.assignment.training
    assert training is not None
    budget = budget_of(ctx)
    workdir = ctx.stage_dir("training")
    spec = TrainSpec(
        assignment_id=ctx.assignment.id, module=ctx.assignment.submission.module, seed=ctx.assignment.seed,
        threads=ctx.threads, images=str(ctx.mounted(TRAIN_IMAGES)), labels=str(ctx.mounted(TRAIN_LABELS)),
        mean=ctx.data.mean, std=ctx.data.std, device=ctx.device.torch_name, budget=budget, training=training)
    write_spec(workdir, spec)
    kind = ctx.device.kind
    cpu_seconds = training.limit_seconds(kind) if budget.clock == "cpu" else None
    limits = ctx.limits(training.wall_limit(kind), cpu_seconds=cpu_seconds)
    watcher = _EpochWatcher(workdir / spec.progress, on_epoch)
    sandbox = ctx.sandbox.run(python_stage("grader.harness.train", [], workdir, limits, on_poll=watcher.poll))
    watcher.poll()
    return _outcome(ctx, spec, workdir, sandbox)


def _outcome(ctx: GradingContext, spec: TrainSpec, workdir: Path, sandbox: SandboxResult) -> StageOutcome[TrainedModel]:
    events = read_records(workdir / spec.progress, TRAIN_EVENTS)
    start = next((e for e in events if isinstance(e, TrainStart)), None)
    epochs = [EpochRecord(epoch=e.epoch, loss=e.loss, train_accuracy=e.train_accuracy, seconds=e.seconds)
              for e in events if isinstance(e, EpochDone)]
    end = next((e for e in reversed(events) if isinstance(e, TrainStopped | TrainFailed)), None)
    failures = []
    if isinstance(end, TrainFailed):
        stopped = "failed"
        failures.append(_failed(from_record("training", end.failure), ctx.assignment.limits.file_size_mb))
    elif isinstance(end, TrainStopped):
        stopped = end.reason
    else:
        stopped = "killed"
        failures.append(_killed(sandbox, epochs))
    failures += [f for f in _rule_failures(ctx, start, epochs) if f.kind not in {x.kind for x in failures}]
    result = TrainingResult(
        device=ctx.device.describe(), epochs_planned=start.epochs if start else 0, epochs=epochs, stopped=stopped,
        budget_seconds=spec.budget.seconds, budget_clock=spec.budget.clock,
        budget_used=_budget_used(spec, end, sandbox), parameters=start.model.parameter_count if start else 0,
        seconds=sandbox.seconds)
    checkpoint = workdir / spec.checkpoint
    usable = checkpoint.is_file() and bool(epochs) and start is not None
    return StageOutcome(TrainedModel(result, checkpoint if usable else None), failures)


def _rule_failures(ctx: GradingContext, start: TrainStart | None, epochs: list[EpochRecord]) -> list[Failure]:
    """The layer rule and the parameter limit, judged here on the model the harness described."""
    training = ctx.assignment.training
    assert training is not None
    if start is None:
        return [Failure(stage="training", kind=FailureKind.TAMPERING, message=FORGED)] if epochs else []
    failures = []
    if problem := size_problem(start.model, training):
        failures.append(Failure(stage="training", kind=FailureKind.TOO_MANY_PARAMETERS, message=problem))
    if problems := layer_problems(start.model, training, ctx.assignment.id):
        failures.append(Failure(stage="training", kind=FailureKind.FORBIDDEN_LAYER, message=" ".join(problems)))
    return failures


def _budget_used(spec: TrainSpec, end: TrainStopped | TrainFailed | None, sandbox: SandboxResult) -> float:
    """Budget seconds used, as the harness counted them, or as the host measured a stage it had to stop."""
    if isinstance(end, TrainStopped):
        return end.budget_used
    return sandbox.cpu_seconds / spec.threads if spec.budget.clock == "cpu" else sandbox.seconds


def _killed(sandbox: SandboxResult, epochs: list[EpochRecord]) -> Failure:
    """Why the stage ended without saying so; the checkpoint of the last finished epoch still counts."""
    failure = stage_failure("training", sandbox, "training the model")
    if not epochs:
        return failure
    kept = f"; the model saved after epoch {epochs[-1].epoch} was evaluated."
    return failure.model_copy(update={"message": failure.message.removesuffix(".") + kept})


def _failed(failure: Failure, file_size_mb: int) -> Failure:
    """The failure the harness reported, as one sentence for the student."""
    if failure.kind == FailureKind.FILE_TOO_LARGE:
        message = f"Training failed: the submission wrote a file larger than the {file_size_mb} MB limit."
    elif failure.kind in (FailureKind.TOO_MANY_PARAMETERS, FailureKind.FORBIDDEN_LAYER):
        message = f"Training refused: {failure.message[:1].lower()}{failure.message[1:]}"
    else:
        message = f"Training failed: {failure.message[:400]}"
    return failure.model_copy(update={"message": message})


class _EpochWatcher:
    """Tells the caller about finished epochs by reading the progress file between watchdog polls."""

    def __init__(self, path: Path, on_epoch: Callable[[int, int], None] | None) -> None:
        self.path, self.on_epoch, self.seen = path, on_epoch, (-1, -1)

    def poll(self) -> None:
        if self.on_epoch is None:
            return
        events = read_records(self.path, TRAIN_EVENTS)
        planned = next((e.epochs for e in events if isinstance(e, TrainStart)), 0)
        done = sum(1 for e in events if isinstance(e, EpochDone))
        if planned and (done, planned) != self.seen:
            self.seen = (done, planned)
            self.on_epoch(done, planned)
