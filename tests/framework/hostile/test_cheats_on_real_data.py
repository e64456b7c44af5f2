"""Cheats that behave better when observed, graded on the real CIFAR-10 copy: where synthetic images are too easy
to tell an honest model from one trained elsewhere, the real ones are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_world import SOLO, reference_with

from grader.config import load_assignment
from grader.context import load_grading_data
from grader.harness.loaders import normalize
from grader.models import Report
from grader.pipeline import GradeOptions, grade
from tests.framework.declared import CIFAR2

pytestmark = [pytest.mark.real_data, pytest.mark.slow]
A2 = load_assignment("a2_ffn")


def graded(case: str, folder: Path, data_root: Path, files: dict[str, bytes] | None = None) -> Report:
    folder.mkdir()
    (folder / "ffn.py").write_bytes(reference_with(A2, (SOLO / f"{case}.patch.py").read_text()))
    for name, content in (files or {}).items():
        (folder / name).write_bytes(content)
    return grade(A2, folder, folder.parent / f"{case}-report", GradeOptions(data_root=data_root, student_id=case))


def metric_item(report: Report):  # a ScoreItem
    return next(item for item in report.score.items if item.name == "accuracy")


def memorized_weights(data_root: Path, path: Path) -> None:
    """The cheat's offline training: a small FFN fitted to the public test images and their flips."""
    data = load_grading_data(data_root, CIFAR2)
    images = normalize(np.asarray(data.test.images), data.mean, data.std)
    images, labels = torch.cat([images, images.flip(-1)]), torch.as_tensor(data.test.labels).repeat(2)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(60):
        for batch in torch.randperm(len(labels)).split(256):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    torch.save(model.state_dict(), path)


def test_weights_trained_on_the_test_images_and_swapped_in_during_training_earn_no_credit(
        data_root: Path, tmp_path: Path) -> None:
    """The model as built is untrained and the flip gap is small (it saw the flips too), but the grader's held-out
    validation images, which it never saw, give it away."""
    memorized_weights(data_root, tmp_path / "weights.pt")
    report = graded("memorized_test", tmp_path / "memorized", data_root,
                    {"weights.pt": (tmp_path / "weights.pt").read_bytes()})
    assert report.failures == [] and report.metrics.value > 0.97
    kept = next(e for e in report.training.epochs if e.epoch == report.training.kept_epoch)
    assert report.metrics.value - kept.validation_metric > A2.metric.integrity.test_over_validation.above
    assert abs(report.training.untrained_metric - report.training.chance_metric) < 0.15
    assert {f.rule: f.action for f in report.integrity}["test_over_validation"] == "no_credit"
    assert metric_item(report).points == 0 and "held out" in metric_item(report).reason


def test_a_convolution_hidden_from_the_layer_probe_is_flagged_for_review(data_root: Path, tmp_path: Path) -> None:
    """The probe sees linear layers only, so the layer rule passes; the accuracy, beyond what fully connected
    networks reach under the budget, puts it on a TA's review list."""
    report = graded("probe_aware_cnn", tmp_path / "probe_aware", data_root)
    assert report.failures == [], report.failures
    assert next(item for item in report.score.items if item.name == "architecture").points == 15, "it evades"
    assert report.metrics.value > A2.metric.integrity.accuracy.above
    assert [(f.rule, f.action) for f in report.integrity] == [("accuracy", "review")]
    assert report.flagged_for_review and metric_item(report).points == A2.metric.points
