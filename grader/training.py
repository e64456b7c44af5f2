"""Training stage: the grader-owned harness trains the submission under the device's budget.

The harness checkpoints after every epoch and writes the outputs for the held-out validation images (their
targets stay here) before the first epoch and after each; `Keeper` scores them as they come and keeps the
checkpoint to evaluate: the best epoch by the task's validation metric (ties: the later) or the last, as the
assignment says. What the test images score never influences that choice: they are evaluated once, on the kept epoch.
An epoch that ends past the budget plus the grace period does not count, and a stage that runs past its limit
is killed; the kept checkpoint of the epochs before stands. On CPU the budget is CPU time per thread given (a
busy machine does not shorten it) with a wall-clock safety limit; on a GPU it is wall time. The layer rule is
judged here again on the model the harness described, since the harness's own refusal runs in the
submission's process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader.architecture import layer_problems, size_problem
from grader.config import Validation
from grader.context import TRAIN_IMAGES, TRAIN_LABELS, TRAINING_MOUNTS, VALIDATION_IMAGES, GradingContext
from grader.models import EpochRecord, Failure, FailureKind, StopReason, TrainingResult
from grader.protocol import (
    TRAIN_EVENTS,
    Budget,
    EpochDone,
    TrainFailed,
    TrainSpec,
    TrainStart,
    TrainStopped,
    Untrained,
    read_records,
    write_spec,
)
from grader.sandbox import SandboxResult, python_stage
from grader.stage import StageOutcome, from_record, stage_failure
from grader.tasks import Task, gain, read_outputs, task_of

FORGED = "The training records were altered (epochs without a model description), so the model was not evaluated."


@dataclass
class TrainedModel:
    """The training record, and the checkpoint to evaluate (None when no epoch finished)."""

    result: TrainingResult
    checkpoint: Path | None


def budget_of(ctx: GradingContext) -> Budget:
    training = ctx.assignment.training
    if training is None:
        raise ValueError(f"{ctx.assignment.id} has no [training]: nothing to train")
    return Budget(clock="cpu" if ctx.device.kind == "cpu" else "wall", seconds=training.budget_seconds[ctx.device.kind])


def run_training(ctx: GradingContext, on_epoch: Callable[[int, int], None] | None = None) -> StageOutcome[TrainedModel]:
    """Train in the sandbox; `on_epoch(done, planned)` is called as epochs finish."""
    training = ctx.assignment.training
    if training is None:
        raise ValueError(f"{ctx.assignment.id} has no [training]: nothing to train")
    budget = budget_of(ctx)
    workdir = ctx.stage_dir("training")
    spec = TrainSpec(
        assignment_id=ctx.assignment.id, module=ctx.assignment.submission.module, seed=ctx.assignment.seed,
        threads=ctx.threads, images=str(ctx.mounted(TRAIN_IMAGES)), labels=str(ctx.mounted(TRAIN_LABELS)),
        validation_images=str(ctx.mounted(VALIDATION_IMAGES)), mean=ctx.data.mean, std=ctx.data.std,
        device=ctx.device.torch_name, budget=budget, training=training, task=task_of(ctx.assignment).name)
    write_spec(workdir, spec)
    kind = ctx.device.kind
    cpu_seconds = training.stage_seconds(kind) if budget.clock == "cpu" else None
    limits = ctx.limits(training.wall_limit(kind), cpu_seconds=cpu_seconds)
    task, validation = task_of(ctx.assignment), ctx.data.held_out(training.validation).validation
    targets = task.targets(np.asarray(validation.images), np.asarray(validation.labels), ctx.data.mean, ctx.data.std)
    keeper = Keeper(workdir, spec, task, targets, training.validation, on_epoch)
    sandbox = ctx.sandbox.run(python_stage("grader.harness.training", [], workdir, limits, on_poll=keeper.poll,
                                           sees=frozenset(TRAINING_MOUNTS)))
    keeper.poll()
    return _outcome(ctx, spec, keeper, sandbox)


def _outcome(ctx: GradingContext, spec: TrainSpec, keeper: Keeper,
             sandbox: SandboxResult) -> StageOutcome[TrainedModel]:
    events = read_records(keeper.workdir / spec.progress, TRAIN_EVENTS)
    start = next((e for e in events if isinstance(e, TrainStart)), None)
    epochs = [EpochRecord(epoch=e.epoch, loss=e.loss, train_metric=e.train_metric, seconds=e.seconds,
                          validation_metric=keeper.scores.get(e.epoch))
              for e in events if isinstance(e, EpochDone)]
    end = next((e for e in reversed(events) if isinstance(e, TrainStopped | TrainFailed)), None)
    stopped, failures = _stopped(ctx, spec, end, sandbox, keeper.kept)
    failures += [f for f in _rule_failures(ctx, start, epochs) if f.kind not in {x.kind for x in failures}]
    done = next((e for e in reversed(events) if isinstance(e, EpochDone)), None)
    result = TrainingResult(
        device=ctx.device.describe(), epochs_planned=start.epochs if start else 0, epochs=epochs, stopped=stopped,
        budget_seconds=spec.budget.seconds, budget_clock=spec.budget.clock,
        budget_used=_budget_used(spec, end, sandbox), parameters=start.model.parameter_count if start else 0,
        seconds=sandbox.seconds, validation_images=len(keeper.targets),
        validation_seconds=done.validation_used if done else 0.0, untrained_metric=keeper.scores.get(0),
        chance_metric=keeper.task.chance(keeper.targets), keep=keeper.validation.keep, kept_epoch=keeper.kept,
        model_changed=keeper.changed)
    checkpoint = keeper.workdir / spec.checkpoint(keeper.kept) if keeper.kept is not None else None
    usable = checkpoint is not None and checkpoint.is_file() and start is not None
    return StageOutcome(TrainedModel(result, checkpoint if usable else None), failures)


def _stopped(ctx: GradingContext, spec: TrainSpec, end: TrainStopped | TrainFailed | None, sandbox: SandboxResult,
             kept: int | None) -> tuple[StopReason, list[Failure]]:
    """Why training stopped, and the failure that says so to the student, if it was one."""
    if isinstance(end, TrainFailed):
        return "failed", [_failed(from_record("training", end.failure), ctx.assignment.limits.file_size_mb)]
    if isinstance(end, TrainStopped):
        return end.reason, [_overran(spec, end, kept)] if end.reason == "overran" else []
    return "killed", [_killed(sandbox, kept)]


def _rule_failures(ctx: GradingContext, start: TrainStart | None, epochs: list[EpochRecord]) -> list[Failure]:
    """The layer rule and the parameter limit, judged here on the model the harness described."""
    training = ctx.assignment.training
    if training is None:
        raise ValueError(f"{ctx.assignment.id} has no [training]: nothing to train")
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


def _killed(sandbox: SandboxResult, kept: int | None) -> Failure:
    """Why the stage ended without saying so; the kept checkpoint of the finished epochs still counts."""
    failure = stage_failure("training", sandbox, "training the model")
    return _with_kept(failure, kept)


def _overran(spec: TrainSpec, end: TrainStopped, kept: int | None) -> Failure:
    grace = spec.training.grace_seconds
    failure = Failure(stage="training", kind=FailureKind.TIMEOUT,
                      message=f"The last epoch ended after {end.budget_used:.0f} s of the {spec.budget.seconds:g} s "
                              f"budget, past its {grace:g} s grace, so it does not count.")
    return _with_kept(failure, kept)


def _with_kept(failure: Failure, kept: int | None) -> Failure:
    if kept is None:
        return failure
    return failure.model_copy(
        update={"message": failure.message.removesuffix(".") + f"; the model saved after epoch {kept} was evaluated."})


def _failed(failure: Failure, file_size_mb: int) -> Failure:
    """The failure the harness reported, as one sentence for the student."""
    if failure.kind == FailureKind.FILE_TOO_LARGE:
        message = f"Training failed: the submission wrote a file larger than the {file_size_mb} MB limit."
    elif failure.kind == FailureKind.CHANGED_WHILE_MEASURED:
        message = f"Training stopped: {failure.message[:1].lower()}{failure.message[1:]}"
    elif failure.kind in (FailureKind.TOO_MANY_PARAMETERS, FailureKind.FORBIDDEN_LAYER):
        message = f"Training refused: {failure.message[:1].lower()}{failure.message[1:]}"
    else:
        message = f"Training failed: {failure.message[:400]}"
    return failure.model_copy(update={"message": message})


@dataclass
class Keeper:
    """Scores each epoch's validation outputs as the harness writes them and keeps one checkpoint: the best so far
    by the task's metric (ties: the later) or the last, as `validation.keep` says; the others are deleted at once."""

    workdir: Path
    spec: TrainSpec
    task: Task
    targets: np.ndarray
    validation: Validation
    on_epoch: Callable[[int, int], None] | None = None
    scores: dict[int, float | None] = field(default_factory=dict)  # epoch (0: as built) -> validation metric
    kept: int | None = None
    changed: bool = True  # the kept epoch's outputs differ from the untrained model's
    _untrained: np.ndarray | None = None
    _seen: tuple[int, int] = (-1, -1)

    def poll(self) -> None:
        events = read_records(self.workdir / self.spec.progress, TRAIN_EVENTS)
        if 0 not in self.scores and any(isinstance(e, Untrained) for e in events):
            self._untrained = self._score(0)
        done = [e.epoch for e in events if isinstance(e, EpochDone)]
        for epoch in done:
            if epoch not in self.scores and epoch > 0:
                self._consider(epoch, self._score(epoch))
        planned = next((e.epochs for e in events if isinstance(e, TrainStart)), 0)
        if self.on_epoch is not None and planned and (len(done), planned) != self._seen:
            self._seen = (len(done), planned)
            self.on_epoch(len(done), planned)

    def _score(self, epoch: int) -> np.ndarray | None:
        outputs = read_outputs(self.workdir / self.spec.logits(epoch), self.task.output_shape(len(self.targets)))
        if not isinstance(outputs, np.ndarray):
            self.scores[epoch] = None
            return None
        self.scores[epoch] = self.task.score(outputs, self.targets)
        return outputs

    def _consider(self, epoch: int, logits: np.ndarray | None) -> None:
        """Keep `epoch` if it is at least as good as the kept one; while no epoch's outputs were usable, keep the
        latest, so that the evaluation says what is wrong with the model's output."""
        score = self.scores[epoch]
        best = self.scores.get(self.kept) if self.kept is not None else None
        if best is None or (score is not None and (self.validation.keep == "last"
                                                   or gain(self.task, score, best) >= 0)):
            self._drop(self.kept)
            self.kept = epoch
            self.changed = self._untrained is None or logits is None or not np.array_equal(logits, self._untrained)
        else:
            self._drop(epoch)

    def _drop(self, epoch: int | None) -> None:
        if epoch is not None:
            (self.workdir / self.spec.checkpoint(epoch)).unlink(missing_ok=True)
