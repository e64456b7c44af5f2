"""The handouts' check_accuracy.py: self-contained, yet it normalizes, batches and trains exactly as the grader."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from torchvision import transforms

from grader.config import load_assignment
from grader.data import hold_out, load_split
from grader.harness.loaders import normalize, train_loader
from grader.pipeline import GradeOptions, grade

SCRIPTS = [load_assignment(i).folder / "check_accuracy.py" for i in ("a2_ffn", "a3_cnn")]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_accuracy", SCRIPTS[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_handout_has_the_same_script() -> None:
    assert len({path.read_text() for path in SCRIPTS}) == 1


def test_images_and_normalization_are_the_graders(script: ModuleType, synthetic_cifar: Path,
                                                  isolated_cache: Path) -> None:
    images, labels = script.load_images(synthetic_cifar)
    split = load_split(synthetic_cifar, "train")
    assert np.array_equal(images, split.images) and np.array_equal(labels, split.labels)
    mean, std = script.channel_stats(images)
    assert (mean, std) == split.channel_stats()
    assert torch.equal(script.normalize(images, mean, std), normalize(np.array(split.images), mean, std))


def test_the_validation_split_is_the_graders(script: ModuleType, synthetic_cifar: Path, isolated_cache: Path) -> None:
    """The script holds out the very images the grader holds out, so both print the same validation accuracy."""
    validation = load_assignment("a2_ffn").training.validation
    images, labels = script.load_images(synthetic_cifar)
    held_out = script.validation_split(len(labels), validation.fraction, validation.seed)
    graders = hold_out(load_split(synthetic_cifar, "train"), validation.fraction, validation.seed)
    assert np.array_equal(images[held_out], graders.validation.images)
    assert np.array_equal(images[~held_out], graders.fit.images)
    assert np.array_equal(labels[~held_out], graders.fit.labels)
    assert 0 < held_out.sum() < len(labels)


def test_the_images_are_contiguous_so_view_flattening_works(script: ModuleType, synthetic_cifar: Path) -> None:
    """The book's models flatten with .view; a channels-last batch would make them raise here but not there."""
    images, _ = script.load_images(synthetic_cifar)
    batch = script.normalize(images, [0.5] * 3, [0.25] * 3)[:4]
    assert batch.is_contiguous() and batch.view(4, -1).shape == (4, 3 * 32 * 32)


@pytest.mark.parametrize("transform", [None, transforms.RandomHorizontalFlip()], ids=["plain", "flip"])
def test_batches_are_the_graders(script: ModuleType, transform) -> None:
    images, labels = torch.randn(50, 3, 32, 32), torch.arange(50)
    ours = script.train_loader(images, labels, 8, seed=3, transform=transform)
    graders = train_loader(images.clone(), labels, 8, seed=3, transform=transform)
    for epoch in range(2):  # the second epoch too: the shuffling generator carries on
        torch.manual_seed(epoch)  # a flip draws from the global generator, in both
        ours_batches = list(ours)
        torch.manual_seed(epoch)
        for (x, y), (gx, gy) in zip(ours_batches, graders, strict=True):
            assert torch.equal(x, gx) and torch.equal(y, gy)


@pytest.mark.slow
def test_it_trains_as_the_grader_does(synthetic_cifar: Path, isolated_cache: Path, tmp_path: Path) -> None:
    """Per epoch the loss, training and validation accuracy are the grader's, to the printed digits, and the
    script names the epoch the grader kept."""
    assignment = load_assignment("a2_ffn")
    report = grade(assignment, assignment.solution_dir / "ffn.py", tmp_path / "out",
                   GradeOptions(data_root=synthetic_cifar, student_id="dana"))
    folder = tmp_path / "handout"
    shutil.copytree(assignment.folder, folder)
    shutil.copy(assignment.solution_dir / "ffn.py", folder / "ffn.py")
    run = subprocess.run([sys.executable, "check_accuracy.py", str(synthetic_cifar)], cwd=folder,
                         capture_output=True, text=True, timeout=600, check=True)
    pattern = r"^epoch \d+: loss ([\d.]+); training accuracy ([\d.]+); validation accuracy ([\d.]+);"
    printed = [tuple(map(float, row)) for row in re.findall(pattern, run.stdout, re.MULTILINE)]
    assert printed == [(round(e.loss, 4), round(e.train_accuracy, 4), round(e.validation_accuracy, 4))
                       for e in report.training.epochs]
    assert f"before training: validation accuracy {report.training.untrained_accuracy:.4f}" in run.stdout
    assert f"The grader would keep epoch {report.training.kept_epoch} " in run.stdout


def test_grader_data_info_prints_the_normalization(synthetic_cifar: Path, isolated_cache: Path) -> None:
    """The constants the handouts quote come from `grader data info`."""
    mean, std = load_split(synthetic_cifar, "train").channel_stats()
    info = subprocess.run([str(Path(sys.executable).with_name("grader")), "data", "info", "--data-dir",
                           str(synthetic_cifar)], capture_output=True, text=True, check=True, timeout=120)
    assert f"normalization: mean {[round(m, 4) for m in mean]}, std {[round(s, 4) for s in std]}" in info.stdout


def test_a_notebook_passes_its_own_definitions(script: ModuleType, synthetic_cifar: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`check(data, __main__)` trains what a notebook defined, and scores it on the grader's validation images."""
    notebook = ModuleType("__main__")
    exec((load_assignment("a2_ffn").solution_dir / "ffn.py").read_text() + "\nEPOCHS = 2\n", vars(notebook))  # noqa: S102
    accuracy = script.check(synthetic_cifar, notebook)
    assert accuracy > 0.9  # bright airplanes, dark birds
    printed = capsys.readouterr().out
    assert "12 validation images (the grader's)" in printed and "The grader would keep epoch" in printed
