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
from grader.sandbox import cpu_environment
from tests.framework.declared import CIFAR2

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
    split = load_split(synthetic_cifar, "train", CIFAR2)
    assert np.array_equal(images, split.images) and np.array_equal(labels, split.labels)
    mean, std = script.channel_stats(images)
    assert (mean, std) == split.channel_stats()
    assert torch.equal(script.normalize(images, mean, std), normalize(np.array(split.images), mean, std))


def test_the_validation_split_is_the_graders(script: ModuleType, synthetic_cifar: Path, isolated_cache: Path) -> None:
    """The script holds out the very images the grader holds out, so both print the same validation accuracy."""
    validation = load_assignment("a2_ffn").training.validation
    images, labels = script.load_images(synthetic_cifar)
    held_out = script.validation_split(len(labels), validation.fraction, validation.seed)
    graders = hold_out(load_split(synthetic_cifar, "train", CIFAR2), validation.fraction, validation.seed)
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
    assert printed == [(round(e.loss, 4), round(e.train_metric, 4), round(e.validation_metric, 4))
                       for e in report.training.epochs]
    assert f"before training: validation accuracy {report.training.untrained_metric:.4f}" in run.stdout
    assert f"The grader would keep epoch {report.training.kept_epoch} " in run.stdout


def test_grader_data_info_prints_the_normalization(synthetic_cifar: Path, isolated_cache: Path) -> None:
    """The constants the handouts quote come from `grader data info`."""
    mean, std = load_split(synthetic_cifar, "train", CIFAR2).channel_stats()
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


@pytest.mark.parametrize("assignment_id", ["a2_ffn", "a3_cnn"])
def test_it_computes_with_the_graders_cpu_settings(script: ModuleType, assignment_id: str) -> None:
    """Thread counts, GOMP_SPINCOUNT and the kernels every grading stage gets, which the script sets before torch."""
    limits = load_assignment(assignment_id).limits
    expected = cpu_environment(limits.threads, limits.cpu_kernels)
    assert script.grader_cpu_environment(limits.threads, limits.cpu_kernels) == expected
    assert script.grader_cpu_environment(3, "native") == cpu_environment(3, "native")


def test_run_as_a_script_it_restarts_with_the_graders_settings(tmp_path: Path) -> None:
    folder = tmp_path / "handout"
    shutil.copytree(load_assignment("a2_ffn").folder, folder)
    probe = "import os, sys; print(os.environ['GOMP_SPINCOUNT'], os.environ['OMP_NUM_THREADS']); sys.exit(0)"
    source = (folder / "check_accuracy.py").read_text()
    (folder / "probe.py").write_text(source.replace("import numpy as np  #", probe + "\nimport numpy as np  #"))
    run = subprocess.run([sys.executable, "probe.py", "data"], cwd=folder, capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "GOMP_SPINCOUNT": "300000"})
    assert run.stdout.split() == ["1000", str(load_assignment("a2_ffn").limits.threads)], run.stderr


BOOK_CH7 = """
class Chapter7(nn.Module):  # the book's ch. 7 network, images flattened with .view
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(3072, 512), nn.Tanh(), nn.Linear(512, 2))

    def forward(self, x):
        return self.layers(x.view(x.shape[0], -1))

def build_model():
    return Chapter7()
"""
BOOK_CH8 = """
class Chapter8(nn.Module):  # the book's ch. 8 Net, flattened with .view(-1, 8 * 8 * 8)
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 8, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(8 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        out = nn.functional.max_pool2d(torch.tanh(self.conv1(x)), 2)
        out = nn.functional.max_pool2d(torch.tanh(self.conv2(out)), 2)
        return self.fc2(torch.tanh(self.fc1(out.view(-1, 8 * 8 * 8))))

def build_model():
    return Chapter8()
"""


def student_module(assignment_id: str, definitions: str) -> ModuleType:
    """The reference's module with the book's model in place of its own, trained for two epochs."""
    assignment = load_assignment(assignment_id)
    module = ModuleType("__main__")
    source = (assignment.solution_dir / assignment.submission.files[0]).read_text()
    exec(source + definitions + "\nEPOCHS = 2\n", vars(module))  # noqa: S102
    return module


@pytest.mark.parametrize(("assignment_id", "book"), [("a2_ffn", BOOK_CH7), ("a3_cnn", BOOK_CH8)], ids=["ch7", "ch8"])
def test_the_books_view_flattening_models_train_to_the_end(assignment_id: str, book: str, synthetic_cifar: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("check_" + assignment_id, load_assignment(assignment_id).folder /
                                                  "check_accuracy.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.check(synthetic_cifar, student_module(assignment_id, book)) > 0.5
    printed = capsys.readouterr().out
    assert "epoch 2: loss" in printed and "The grader would keep epoch" in printed


def test_a_shape_error_in_training_shows_before_the_first_epoch(script: ModuleType, synthetic_cifar: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A crop in train_transform changes the shape only in training: it fails on one batch, before any epoch."""
    module = student_module("a2_ffn", "\ndef train_transform():\n    return transforms.RandomCrop(28)\n")
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        script.check(synthetic_cifar, module)
    captured = capsys.readouterr()
    assert "before the first epoch; the grader would fail the same way" in captured.err
    assert "epoch 1:" not in captured.out


def test_the_first_batch_leaves_the_model_as_it_was(script: ModuleType) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4), torch.nn.BatchNorm1d(4),
                                torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
    images = torch.randn(8, 3, 2, 2)
    before, rng = {k: v.clone() for k, v in model.state_dict().items()}, torch.get_rng_state()
    script.one_batch_first(model, images, torch.arange(8) % 2, 4, transform=lambda image: image * torch.rand(1))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and torch.equal(rng, torch.get_rng_state())
