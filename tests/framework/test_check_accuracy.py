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
from grader.harness.loaders import logits_of, normalize, train_loader
from grader.pipeline import GradeOptions, grade
from grader.sandbox import cpu_environment
from grader.tasks import task_of
from tests.framework.declared import CIFAR2

SCRIPTS = [load_assignment(i).folder / "check_accuracy.py"
           for i in ("a2_ffn", "a3_cnn", "a4_autoencoder", "a5_cifar10")]


def script_of(assignment_id: str) -> ModuleType:
    """An assignment's check_accuracy.py, imported (it reads the assignment.toml beside it)."""
    spec = importlib.util.spec_from_file_location("check_" + assignment_id,
                                                  load_assignment(assignment_id).folder / "check_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return script_of("a2_ffn")


@pytest.fixture(scope="module")
def reconstruction_script() -> ModuleType:
    return script_of("a4_autoencoder")


def test_every_handout_has_the_same_script() -> None:
    """One script for both tasks: it reads the task from the assignment.toml beside it."""
    assert len({path.read_text() for path in SCRIPTS}) == 1


def test_reconstruction_images_and_validation_error_are_the_graders(reconstruction_script: ModuleType,
                                                                    synthetic_cifar: Path) -> None:
    """For a4 the script loads the ten classes' images, normalizes them as declared, holds out the grader's
    validation images and measures the grader's validation error (the mean squared error to the image itself)."""
    assignment = load_assignment("a4_autoencoder")
    data, validation = assignment.data, assignment.training.validation
    images, _ = reconstruction_script.load_images(synthetic_cifar)
    held_out = reconstruction_script.validation_split(len(images), validation.fraction, validation.seed)
    graders = hold_out(load_split(synthetic_cifar, "train", data), validation.fraction, validation.seed)
    assert np.array_equal(images[held_out], graders.validation.images)
    val = reconstruction_script.normalize(images[held_out], data.mean, data.std)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1), torch.nn.Sigmoid())
    outputs = logits_of(model.eval(), val, 7, torch.device("cpu"))
    task = task_of(assignment)
    expected = task.score(outputs, task.targets(graders.validation.images, graders.validation.labels, data.mean,
                                                data.std))
    assert reconstruction_script.score(model, val, None, 7) == pytest.approx(expected, rel=1e-9)
    assert task.metric == reconstruction_script.METRIC


def test_reconstruction_batches_target_the_images_as_transformed(reconstruction_script: ModuleType) -> None:
    """Without labels each batch's target is its images after the transform, as the grader's loader gives them."""
    images = torch.randn(20, 3, 32, 32)
    flip = transforms.RandomHorizontalFlip()
    ours = reconstruction_script.train_loader(images, None, 8, seed=3, transform=flip)
    graders = train_loader(images.clone(), None, 8, seed=3, transform=flip)
    torch.manual_seed(0)
    ours_batches = list(ours)
    torch.manual_seed(0)
    for (x, y), (gx, gy) in zip(ours_batches, graders, strict=True):
        assert torch.equal(x, gx) and torch.equal(y, gy) and torch.equal(x, y)


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
@pytest.mark.parametrize("assignment_id", ["a2_ffn", "a4_autoencoder"])
def test_it_trains_as_the_grader_does(assignment_id: str, synthetic_cifar: Path, isolated_cache: Path,
                                      tmp_path: Path) -> None:
    """Per epoch the loss, training and validation score (accuracy, or the mean squared error) are the grader's,
    to the printed digits, and the script names the epoch the grader kept."""
    assignment = load_assignment(assignment_id)
    solution = assignment.solution_dir / assignment.submission.files[0]
    report = grade(assignment, solution, tmp_path / "out", GradeOptions(data_root=synthetic_cifar, student_id="dana"))
    folder = tmp_path / "handout"
    shutil.copytree(assignment.folder, folder)
    shutil.copy(solution, folder / solution.name)
    run = subprocess.run([sys.executable, "check_accuracy.py", str(synthetic_cifar)], cwd=folder,
                         capture_output=True, text=True, timeout=600, check=True)
    metric = task_of(assignment).metric
    pattern = rf"^epoch \d+: loss ([\d.]+); training {metric} ([\d.]+); validation {metric} ([\d.]+);"
    printed = [tuple(map(float, row)) for row in re.findall(pattern, run.stdout, re.MULTILINE)]
    assert printed and printed == [(round(e.loss, 4), round(e.train_metric, 4), round(e.validation_metric, 4))
                                   for e in report.training.epochs]
    assert f"before training: validation {metric} {report.training.untrained_metric:.4f}" in run.stdout
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
    assert "started without the grader's CPU settings" in printed  # pytest's, as a notebook's own process


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


def run_script(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "check_accuracy.py", *args], cwd=folder, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("given", ["missing", "train"])
def test_a_wrong_data_folder_is_one_sentence(given: str, synthetic_cifar: Path) -> None:
    """The folder that lacks train/<class>/, or train/ itself, which a student easily passes instead."""
    run = run_script(load_assignment("a2_ffn").folder, str(synthetic_cifar / given))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith(f"check_accuracy.py: {synthetic_cifar / given / 'train' / 'airplane'} holds no .png")
    assert ("(give the folder that holds train/, not train/ itself)" in line) == (given == "train")


def test_a_missing_module_is_one_sentence(tmp_path: Path, synthetic_cifar: Path) -> None:
    """The script run from a folder without the student's module (a notebook left unexported, a wrong folder)."""
    folder = tmp_path / "handout"
    shutil.copytree(load_assignment("a2_ffn").folder, folder)
    (folder / "ffn.py").unlink()
    run = run_script(folder, str(synthetic_cifar))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith(f"check_accuracy.py: there is no ffn.py beside this script in {folder}")


def test_a_py_exported_from_a_notebook_says_its_top_level_code_ran(tmp_path: Path, synthetic_cifar: Path) -> None:
    """The grader leaves a notebook's training and check cells out; Python's import, which the script uses, runs
    them: the student's traceback comes with the sentence that says why."""
    folder = tmp_path / "handout"
    shutil.copytree(load_assignment("a2_ffn").folder, folder)
    reference = (load_assignment("a2_ffn").solution_dir / "ffn.py").read_text()
    (folder / "ffn.py").write_text(reference + "\n# In[9]:\n\n\nhistory = train_one_epoch(build_model(), loader)\n")
    run = run_script(folder, str(synthetic_cifar))
    assert run.returncode == 1 and "Importing ffn.py failed" in run.stderr
    assert run.stderr.rstrip().endswith("NameError: name 'loader' is not defined")  # the notebook's own data cell
    assert "started without the grader's CPU settings" not in run.stdout  # restarted with them


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
    assert script_of(assignment_id).check(synthetic_cifar, student_module(assignment_id, book)) > 0.5
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


def test_for_reconstruction_it_keeps_the_epoch_of_lowest_error(reconstruction_script: ModuleType,
                                                               synthetic_cifar: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Lower is better: the epoch kept is the one of the lowest validation error, below the untrained model's."""
    error = reconstruction_script.check(synthetic_cifar, student_module("a4_autoencoder", ""))
    printed = capsys.readouterr().out
    untrained = float(re.search(r"before training: validation mean squared error ([\d.]+)", printed)[1])
    epochs = [float(e) for e in re.findall(r"^epoch \d+: .*; validation mean squared error ([\d.]+);", printed,
                                           re.MULTILINE)]
    assert len(epochs) == 2 and round(error, 4) == min(epochs) < untrained
    assert "training mean squared error" in printed and "accuracy" not in printed
