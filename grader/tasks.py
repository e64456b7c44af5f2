"""The task an assignment's model performs: what it outputs, what the outputs are scored against, and how.

Stages hand back outputs only; the targets (the labels, or for reconstruction the images themselves) are made
and kept here, in the grader's process. `[metric] task` picks the task; the training loss the harness hands
train_one_epoch comes from the same name (grader.harness.losses).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from grader.config import Assignment
from grader.models import Metrics, TaskName


class Task(Protocol):
    """One kind of model output and its metric; `higher_is_better` sets the direction of every comparison."""

    # Read-only: the tasks are frozen dataclasses.
    @property
    def name(self) -> TaskName: ...
    @property
    def key(self) -> str: ...
    @property
    def metric(self) -> str: ...
    @property
    def threshold_format(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def higher_is_better(self) -> bool: ...

    def output_shape(self, samples: int) -> tuple[int, ...]:
        """The shape of the outputs the model must return for `samples` images."""
        ...

    def targets(self, images: np.ndarray, labels: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
        """What the outputs for these uint8 images, which the model sees normalized by mean and std, are scored
        against."""
        ...

    def score(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The metric of `outputs` against `targets`."""
        ...

    def chance(self, targets: np.ndarray) -> float | None:
        """The metric of a model that ignores its input, where the task has one."""
        ...

    def breakdown(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, object]:
        """The task's extra fields of `Metrics` (per-class accuracy and the confusion matrix)."""
        ...


@dataclass(frozen=True)
class Classification:
    """Logits of shape (N, classes), scored by accuracy against the labels."""

    classes: tuple[str, ...]
    name: TaskName = "classification"
    key: str = "accuracy"  # the score item's and grades.csv's name for the metric
    metric: str = "accuracy"
    threshold_format: str = ".2f"  # how reports write the credit curve's ends
    unit: str = ""
    higher_is_better: bool = True

    def output_shape(self, samples: int) -> tuple[int, ...]:
        return samples, len(self.classes)

    def targets(self, images: np.ndarray, labels: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
        return labels

    def score(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        return float((outputs.argmax(axis=1) == targets).mean())

    def chance(self, targets: np.ndarray) -> float | None:
        return float(np.bincount(targets).max() / len(targets)) if len(targets) else 0.0

    def breakdown(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, object]:
        count = len(self.classes)
        confusion = np.zeros((count, count), dtype=int)
        np.add.at(confusion, (targets, outputs.argmax(axis=1)), 1)
        per_class = {name: float(confusion[i, i] / max(confusion[i].sum(), 1)) for i, name in enumerate(self.classes)}
        return {"per_class_accuracy": per_class, "confusion": confusion.tolist()}


@dataclass(frozen=True)
class Reconstruction:
    """Images of the input's shape, scored by the mean squared error against the input as the model saw it."""

    name: TaskName = "reconstruction"
    key: str = "mse"
    metric: str = "mean squared error"
    threshold_format: str = ".4f"
    unit: str = "per pixel and channel, on the scale the model sees"
    higher_is_better: bool = False

    def output_shape(self, samples: int) -> tuple[int, ...]:
        return samples, 3, 32, 32

    def targets(self, images: np.ndarray, labels: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
        return normalized(images, mean, std)

    def score(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        return float(np.mean((outputs.astype(np.float64) - targets) ** 2))

    def chance(self, targets: np.ndarray) -> float | None:
        return None

    def breakdown(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, object]:
        return {}


TaskType = type[Classification] | type[Reconstruction]
TASK_TYPES: dict[TaskName, TaskType] = {
    "classification": Classification, "reconstruction": Reconstruction}


def task_of(assignment: Assignment) -> Task:
    """The task `[metric] task` declares, over the classes `[data]` declares."""
    if assignment.metric is None or assignment.data is None:
        raise ValueError(f"{assignment.id} has no [metric] or [data]: it scores no model")
    if assignment.metric.task == "reconstruction":
        return Reconstruction()
    return Classification(assignment.data.classes)


def gain(task: Task, value: float, than: float) -> float:
    """How much better `value` is than `than`, in the task's direction (negative: worse)."""
    return value - than if task.higher_is_better else than - value


def normalized(images: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """uint8 (N, 3, H, W) as the model sees them: scaled to [0, 1] and standardized per channel, as float32."""
    channels = (1, 3, 1, 1)
    scaled = np.asarray(images, dtype=np.float32) / np.float32(255.0)
    mean_, std_ = (np.asarray(values, dtype=np.float32).reshape(channels) for values in (mean, std))
    return (scaled - mean_) / std_


def read_outputs(path: Path, shape: tuple[int, ...]) -> np.ndarray | str:
    """The outputs a stage wrote, or the sentence saying why they are unusable ("" when there are none)."""
    if not path.is_file():
        return ""
    if path.stat().st_size > int(np.prod(shape)) * 8 + 4096:
        return f"The model's output is far larger than the expected shape {shape}."
    try:
        outputs: np.ndarray = np.load(path, allow_pickle=False)
    except (ValueError, OSError):
        return "The model's output could not be read back as an array."
    if outputs.shape != shape:
        return f"For {shape[0]} images the model returned outputs of shape {tuple(outputs.shape)}, expected {shape}."
    if not np.issubdtype(outputs.dtype, np.floating) or not np.isfinite(outputs).all():
        return "The model returned outputs that are not finite numbers (NaN or infinity)."
    return outputs


def compute_metrics(task: Task, perturbation: str, targets: tuple[np.ndarray, np.ndarray],
                    outputs: tuple[np.ndarray, np.ndarray]) -> Metrics:
    """The metric on the test images and on their perturbed copies (targets and outputs in that order)."""
    value, perturbed = task.score(outputs[0], targets[0]), task.score(outputs[1], targets[1])
    return Metrics.model_validate({
        "task": task.name, "name": task.metric, "unit": task.unit, "higher_is_better": task.higher_is_better,
        "value": value, "perturbed_value": perturbed, "perturbation": perturbation,
        "perturbation_gap": gain(task, value, perturbed), "samples": len(targets[0]),
        **task.breakdown(outputs[0], targets[0]),
    })
