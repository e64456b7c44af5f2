"""Evaluation stage: logits from a fresh sandbox that sees only unlabeled images; metrics here.

The test labels never leave the grader's process, and the stage sees no training data, runs under a CPU limit
and loads the kept checkpoint with torch's own loader, so it cannot train any further. The grader also makes
the perturbed copy
(a horizontal flip or a one-pixel shift) itself and hands the stage both copies shuffled together,
so the stage cannot tell which image is which, nor skip or fake the perturbation; it returns one row
of logits per image, and the grader puts them back in order and scores them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from grader.config import Metric
from grader.context import GradingContext
from grader.data import CIFAR2_CLASSES
from grader.logits import accuracy, read_logits
from grader.models import Failure, FailureKind, Metrics
from grader.protocol import EvalSpec, FailureRecord, read_record, write_spec
from grader.sandbox import python_stage
from grader.stage import StageOutcome, from_record, stage_failure

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
    both, order = shuffled_pair(images, perturb(images, metric.perturbation, ctx.assignment.seed),
                                (ctx.assignment.seed, int(ctx.sha256[:16], 16)))
    np.save(workdir / IMAGES_FILE, both)
    spec = EvalSpec(assignment_id=ctx.assignment.id, module=ctx.assignment.submission.module,
                    seed=ctx.assignment.seed, threads=ctx.threads, images=IMAGES_FILE, mean=ctx.data.mean,
                    std=ctx.data.std, batch_size=training.eval_batch_size, device=ctx.device.torch_name)
    write_spec(workdir, spec)
    limits = ctx.limits(ctx.assignment.limits.eval_seconds, cpu_seconds=ctx.assignment.limits.eval_cpu_seconds)
    sandbox = ctx.sandbox.run(python_stage("grader.harness.evaluation", [], workdir, limits))  # sees no data mount
    logits = read_logits(workdir / spec.logits, len(both), len(CIFAR2_CLASSES))
    if isinstance(logits, np.ndarray):
        unshuffled = np.empty_like(logits)
        unshuffled[order] = logits
        labels = np.asarray(ctx.data.test.labels)
        return StageOutcome(compute_metrics(metric, labels, unshuffled[: len(images)], unshuffled[len(images):]))
    if (record := read_record(workdir / spec.failure, FailureRecord)) is not None:
        failure = from_record("evaluation", record)
        message = f"Evaluating the trained model failed: {failure.message[:400]}"
        return StageOutcome(failures=[failure.model_copy(update={"message": message})])
    if logits:
        return StageOutcome(failures=[Failure(stage="evaluation", kind=FailureKind.WRONG_OUTPUT, message=logits)])
    return StageOutcome(failures=[stage_failure("evaluation", sandbox, "evaluating the trained model")])


def compute_metrics(metric: Metric, labels: np.ndarray, logits: np.ndarray, perturbed: np.ndarray) -> Metrics:
    """Accuracy, per-class accuracy, confusion matrix and the perturbation gap, from labels held here."""
    classes = len(CIFAR2_CLASSES)
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (labels, logits.argmax(axis=1)), 1)
    test_accuracy, perturbed_accuracy = accuracy(logits, labels), accuracy(perturbed, labels)
    return Metrics(
        accuracy=test_accuracy,
        per_class_accuracy={name: float(confusion[i, i] / max(confusion[i].sum(), 1))
                            for i, name in enumerate(CIFAR2_CLASSES)},
        confusion=confusion.tolist(),
        perturbed_accuracy=perturbed_accuracy,
        perturbation=metric.perturbation,
        perturbation_gap=test_accuracy - perturbed_accuracy,
        samples=len(labels),
    )
