"""Evaluation stage: outputs from a fresh sandbox that sees only unlabeled images; the task's metric here.

The test labels never leave the grader's process, and the stage sees no training data, runs under a CPU limit
and loads the kept checkpoint with torch's own loader, so it cannot train any further. The grader also makes
the perturbed copy
(a horizontal flip or a one-pixel shift) itself and hands the stage both copies shuffled together,
so the stage cannot tell which image is which, nor skip or fake the perturbation; it returns one output
per image (logits, or an image), and the grader puts them back in order and scores them against targets it
alone holds (grader.tasks).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from grader.context import GradingContext
from grader.models import Failure, FailureKind, Metrics
from grader.protocol import EvalSpec, FailureRecord, read_record, write_spec
from grader.sandbox import python_stage
from grader.stage import StageOutcome, from_record, stage_failure
from grader.tasks import Task, compute_metrics, read_outputs, task_of

IMAGES_FILE = "images.npy"


def perturb(images: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """A horizontal flip, or a one-pixel shift (edge-padded) whose direction the seed picks, of (N, 3, 32, 32)."""
    if kind == "hflip":
        return images[..., ::-1]
    dy, dx = [(0, 1), (1, 0), (0, -1), (-1, 0)][seed % 4]
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    return padded[..., 1 - dy : 33 - dy, 1 - dx : 33 - dx]


def shuffled_pair(images: np.ndarray, perturbed: np.ndarray, key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Both copies in one array, in an order fixed by `key`, and the permutation that made it."""
    both = np.concatenate([images, perturbed])
    order = np.random.default_rng(list(key)).permutation(len(both))
    return np.ascontiguousarray(both[order]), order


def run_evaluation(ctx: GradingContext, checkpoint: Path) -> StageOutcome[Metrics]:
    """Score the trained model on the hidden test images and their perturbed copy."""
    training, metric = ctx.assignment.training, ctx.assignment.metric
    if training is None or metric is None:
        raise ValueError(f"{ctx.assignment.id} has no [training] or [metric]: nothing to evaluate")
    workdir = ctx.stage_dir("evaluation")
    shutil.copy(checkpoint, workdir / "checkpoint.pt")
    images = np.asarray(ctx.data.test.images)
    perturbed = perturb(images, metric.perturbation, ctx.assignment.seed)
    both, order = shuffled_pair(images, perturbed, (ctx.assignment.seed, int(ctx.sha256[:16], 16)))
    np.save(workdir / IMAGES_FILE, both)
    spec = EvalSpec(assignment_id=ctx.assignment.id, module=ctx.assignment.submission.module,
                    seed=ctx.assignment.seed, threads=ctx.threads, images=IMAGES_FILE, mean=ctx.data.mean,
                    std=ctx.data.std, batch_size=training.eval_batch_size, device=ctx.device.torch_name)
    write_spec(workdir, spec)
    limits = ctx.limits(ctx.assignment.limits.eval_seconds, cpu_seconds=ctx.assignment.limits.eval_cpu_seconds)
    sandbox = ctx.sandbox.run(python_stage("grader.harness.evaluation", [], workdir, limits))  # sees no data mount
    task = task_of(ctx.assignment)
    outputs = read_outputs(workdir / spec.logits, task.output_shape(len(both)))
    if isinstance(outputs, np.ndarray):
        unshuffled = np.empty_like(outputs)
        unshuffled[order] = outputs
        return StageOutcome(_scored(ctx, task, (images, perturbed), unshuffled))
    if (record := read_record(workdir / spec.failure, FailureRecord)) is not None:
        failure = from_record("evaluation", record)
        message = f"Evaluating the trained model failed: {failure.message[:400]}"
        return StageOutcome(failures=[failure.model_copy(update={"message": message})])
    if outputs:
        return StageOutcome(failures=[Failure(stage="evaluation", kind=FailureKind.WRONG_OUTPUT, message=outputs)])
    return StageOutcome(failures=[stage_failure("evaluation", sandbox, "evaluating the trained model")])



def _scored(ctx: GradingContext, task: Task, copies: tuple[np.ndarray, np.ndarray], outputs: np.ndarray) -> Metrics:
    """The metric of `outputs` (the test images', then their perturbed copies'), against targets made here."""
    labels, count = np.asarray(ctx.data.test.labels), len(copies[0])
    original, perturbed = (task.targets(copy, labels, ctx.data.mean, ctx.data.std) for copy in copies)
    perturbation = ctx.assignment.metric.perturbation if ctx.assignment.metric else ""
    return compute_metrics(task, perturbation, (original, perturbed), (outputs[:count], outputs[count:]))
