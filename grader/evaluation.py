"""Evaluation stage: logits from a fresh sandbox that sees only unlabeled images; metrics here.

The validation labels never leave the grader's process: the sandbox gets an images-only array
and the checkpoint, returns logits, and accuracy is computed against labels only this side holds.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.context import GradingContext
from grader.data import CIFAR2_CLASSES
from grader.interface import stage_failure
from grader.models import Failure, FailureKind, Metrics
from grader.sandbox import Mount, python_stage, run


@dataclass
class EvaluationOutcome:
    metrics: Metrics | None
    failure: Failure | None


def run_evaluation(ctx: GradingContext, checkpoint: Path) -> EvaluationOutcome:
    """Score the trained model on the hidden validation set (and its perturbed copy)."""
    training, metric = ctx.assignment.training, ctx.assignment.metric
    assert training is not None and metric is not None
    workdir = ctx.stage_dir("evaluation")
    shutil.copy(checkpoint, workdir / "checkpoint.pt")
    images = Mount(ctx.data.val.images_path, Path("/data/val-images.npy"))
    spec = {
        "submission": "submission", "module": ctx.assignment.submission.module, "checkpoint": "checkpoint.pt",
        "images": str(images.inside), "mean": ctx.data.mean, "std": ctx.data.std, "seed": ctx.assignment.seed,
        "perturbation": metric.perturbation, "batch_size": training.eval_batch_size,
        "device": ctx.device.torch_name, "threads": ctx.threads, "out": ".",
    }
    (workdir / "spec.json").write_text(json.dumps(spec))
    limits = ctx.limits(ctx.assignment.limits.eval_seconds)
    stage = python_stage("grader.harness.evaluate", ["spec.json"], workdir, limits,
                         mounts=[images], gpu_index=ctx.device.gpu_index)
    sandbox = run(stage)
    samples = len(ctx.data.val.labels)
    logits, perturbed = (_read_logits(workdir / name, samples) for name in ("logits.npy", "perturbed_logits.npy"))
    if isinstance(logits, np.ndarray) and isinstance(perturbed, np.ndarray):
        return EvaluationOutcome(metrics=compute_metrics(ctx, logits, perturbed), failure=None)
    failure_file = workdir / "failure.json"
    if failure_file.is_file():
        record = _json_or_empty(failure_file)
        return EvaluationOutcome(None, Failure(
            stage="evaluation", kind=FailureKind.EXCEPTION,
            message=f"Evaluating the trained model failed: {str(record.get('message'))[:400]}",
            details=str(record.get("details", ""))[-4000:]))
    problem = next((p for p in (logits, perturbed) if isinstance(p, str) and p), None)
    if problem:
        return EvaluationOutcome(None, Failure(stage="evaluation", kind=FailureKind.WRONG_OUTPUT, message=problem))
    return EvaluationOutcome(None, stage_failure("evaluation", sandbox, "evaluating the trained model"))


def _json_or_empty(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _read_logits(path: Path, samples: int) -> np.ndarray | str:
    """The logits array, or the sentence saying why it is unusable."""
    if not path.is_file():
        return ""
    if path.stat().st_size > samples * len(CIFAR2_CLASSES) * 8 + 4096:
        return f"The model's output is far larger than logits of shape ({samples}, 2)."
    try:
        logits = np.load(path, allow_pickle=False)
    except (ValueError, OSError):
        return "The model's output could not be read back as an array of logits."
    if logits.shape != (samples, len(CIFAR2_CLASSES)):
        return f"The model returned logits of shape {tuple(logits.shape)}, expected ({samples}, 2)."
    if not np.issubdtype(logits.dtype, np.floating) or not np.isfinite(logits).all():
        return "The model returned logits that are not finite numbers (NaN or infinity)."
    return logits


def compute_metrics(ctx: GradingContext, logits: np.ndarray, perturbed: np.ndarray) -> Metrics:
    """Accuracy, per-class accuracy, confusion matrix and the perturbation gap, from labels held here."""
    metric = ctx.assignment.metric
    assert metric is not None
    labels = np.asarray(ctx.data.val.labels)
    predicted = logits.argmax(axis=1)
    classes = len(CIFAR2_CLASSES)
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    accuracy = float((predicted == labels).mean())
    perturbed_accuracy = float((perturbed.argmax(axis=1) == labels).mean())
    gap = accuracy - perturbed_accuracy
    return Metrics(
        accuracy=accuracy,
        per_class_accuracy={name: float(confusion[i, i] / max(confusion[i].sum(), 1))
                            for i, name in enumerate(CIFAR2_CLASSES)},
        confusion=confusion.tolist(),
        perturbed_accuracy=perturbed_accuracy,
        perturbation=metric.perturbation,
        perturbation_gap=gap,
        flagged_for_review=gap > metric.max_perturbation_gap,
        samples=len(labels),
    )
