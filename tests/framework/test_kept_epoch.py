"""The score does not hinge on the last epoch: the grader keeps the epoch with the best validation accuracy
(or the last, where an assignment says so), and its validation images are held out from training for everyone.

Graded for real by the whole engine: the split's tests on the synthetic data, the kept epoch's on the real data,
where every epoch's model scores differently on the test images, so evaluating another epoch than the kept one
changes the numbers compared.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from grader.batch import BatchOptions, discover, run_batch
from grader.config import Assignment, load_assignment
from grader.context import TRAINING_MOUNTS, load_grading_data
from grader.data import HeldOut, hold_out, load_split, validation_indices
from grader.models import Report
from grader.pipeline import GradeOptions, grade
from tests.framework.declared import CIFAR2

# Appended to the a2 reference: in the grader's training (not in the hidden checks, which call train_one_epoch
# too) the last epoch multiplies the learning rate by `factor`, which throws the trained model off.
SPIKE = """
EPOCHS = {epochs}
_train = train_one_epoch
_calls = 0


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    global _calls
    import sys
    if sys.modules["__main__"].__spec__.name == "grader.harness.training":
        _calls += 1
        if _calls == EPOCHS:
            for group in optimizer.param_groups:
                group["lr"] *= {factor}
    return _train(model, loader, loss_fn, optimizer, device)
"""
# On the real data x1000 (Adam at lr 0.5) drops the last epoch's validation accuracy from about 0.81 to 0.69; the
# synthetic images are so easy that only a reversed learning rate (gradient ascent) throws the model off.
REAL_SPIKE, SYNTHETIC_SPIKE = 1000, -1000
SPIKED_EPOCHS = 4
# Appended to the a2 reference: a wider fully connected network without batch norm, dropout, weight decay or flips,
# trained by Adam at a high learning rate: on the real data its training accuracy climbs every epoch while its
# validation accuracy peaks at epoch 5 (0.851) and falls back (0.819 at epoch 6).
OVERFIT = """
EPOCHS = 6
BATCH_SIZE = 64
del train_transform


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 2))


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)
"""
# Appended to the a2 reference: each epoch of the grader's training records the pixels and labels of every image
# its loader yields, checks them against the split the test computed (EXPECTED), and checks that the stage sees
# no validation labels. It returns the number of images seen as its "loss" (the report shows it), so a test
# can tell that the audit ran; any breach raises, which fails the training.
AUDIT = """
EPOCHS = 2
BATCH_SIZE = {batch_size}
del train_transform  # batches as the loader yields them, so their pixels can be matched
EXPECTED = {expected}
_train = train_one_epoch


def _pixels(image):
    import hashlib
    import numpy as np
    mean, std = (np.array(EXPECTED[k], dtype=np.float64)[:, None, None] for k in ("mean", "std"))
    pixels = np.rint((image.double().numpy() * std + mean) * 255).astype(np.uint8)
    return hashlib.sha1(pixels.tobytes()).hexdigest()


def _audit(seen):
    import hashlib, os
    import numpy as np
    keys = [key for key, _ in seen]
    if len(set(keys)) != len(keys):
        raise AssertionError("an image came twice in one epoch")
    if held := set(keys) & set(EXPECTED["validation"]):
        raise AssertionError(f"trained on {{len(held)}} held-out images")
    if dict(seen) != EXPECTED["fit"]:
        raise AssertionError("the epoch's images and labels are not the grader's fit split")
    if sorted(os.listdir("/data")) != EXPECTED["mounts"]:
        raise AssertionError(f"the training stage sees {{sorted(os.listdir('/data'))}}")
    if any(os.path.exists(path) for path in EXPECTED["hidden"]):
        raise AssertionError("the training stage can reach the validation labels")
    mounted = np.load("/data/validation-images.npy")
    if [hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest() for image in mounted] != EXPECTED["validation"]:
        raise AssertionError("the mounted validation images are not the held-out ones")


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    import sys
    seen = []

    def batches():
        for images, labels in loader:
            seen.extend((_pixels(image), int(label)) for image, label in zip(images, labels))
            yield images, labels

    loss = _train(model, batches(), loss_fn, optimizer, device)
    if sys.modules["__main__"].__spec__.name != "grader.harness.training":
        return loss
    _audit(seen)
    return float(len(seen))
"""


def reference_with(assignment: Assignment, folder: Path, extra: str) -> Path:
    folder.mkdir(parents=True)
    module = assignment.submission.files[0]
    (folder / module).write_text((assignment.solution_dir / module).read_text() + extra)
    return folder


def keeping_last(assignment: Assignment) -> Assignment:
    training = assignment.training
    validation = training.validation.model_copy(update={"keep": "last"})
    return assignment.model_copy(update={"training": training.model_copy(update={"validation": validation})})


def epochs_of(report: Report) -> list[tuple]:
    """Every epoch's record but its seconds."""
    return [(e.epoch, e.loss, e.train_metric, e.validation_metric) for e in report.training.epochs]


def validation_metric(report: Report, epoch: int | None) -> float:
    return next(e.validation_metric for e in report.training.epochs if e.epoch == epoch)


def pixel_key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes(), usedforsecurity=False).hexdigest()


def expected_split(held: HeldOut, mean: list[float], std: list[float]) -> dict:
    """What the audit compares with: the fit images' labels by pixels, the held-out pixels in order, the training
    stage's mounts and the host paths of the validation labels."""
    hidden = [held.validation.labels_path, held.validation.labels_path.parent]
    return {"fit": {pixel_key(i): int(label) for i, label in zip(held.fit.images, held.fit.labels, strict=True)},
            "validation": [pixel_key(image) for image in held.validation.images], "mean": mean, "std": std,
            "mounts": sorted(path.name for path in TRAINING_MOUNTS), "hidden": [str(path) for path in hidden]}


def test_the_split_is_the_same_in_every_run_and_disjoint(synthetic_cifar: Path, isolated_cache: Path,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catches a split drawn anew per run or per process (another cache, another order), one that holds out an
    image it also trains on, or one that ignores its seed."""
    validation = load_assignment("a2_ffn").training.validation
    train = load_split(synthetic_cifar, "train", CIFAR2)
    first = hold_out(train, validation.fraction, validation.seed)
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "another-cache"))
    again = hold_out(load_split(synthetic_cifar, "train", CIFAR2), validation.fraction, validation.seed)
    assert [part.fingerprint for part in (first.fit, first.validation)] == [
        part.fingerprint for part in (again.fit, again.validation)]
    assert np.array_equal(first.validation.images, again.validation.images)
    assert np.array_equal(first.validation.labels, again.validation.labels)
    fit = {pixel_key(image) for image in first.fit.images}
    held = {pixel_key(image) for image in first.validation.images}
    assert not fit & held and len(fit) + len(held) == len(train.labels) == len(fit | held)
    assert len(held) == int(len(train.labels) * validation.fraction)
    indices = validation_indices(len(train.labels), validation.fraction, validation.seed)
    assert not np.array_equal(indices, validation_indices(len(train.labels), validation.fraction, validation.seed + 1))


@pytest.mark.slow
def test_no_epoch_trains_on_the_held_out_images_and_every_submission_gets_the_same(
        synthetic_cifar: Path, isolated_cache: Path, tmp_path: Path) -> None:
    """Inside the training stage, every epoch's loader yields exactly the fit images with their labels, never a
    held-out one; the mounted validation images are the held-out ones, the same for two submissions that batch
    differently; no validation label is visible there. Catches a leak of the held-out images or their labels into
    training, a split that depends on the submission, and the audit not running at all (its count is the loss)."""
    assignment = load_assignment("a2_ffn")
    data = load_grading_data(synthetic_cifar, CIFAR2)
    held = data.held_out(assignment.training.validation)
    expected = json.dumps(expected_split(held, data.mean, data.std))
    folder = tmp_path / "class"
    for name, batch_size in (("ann", 16), ("bob", 50)):
        reference_with(assignment, folder / name, AUDIT.format(batch_size=batch_size, expected=expected))
    reports = run_batch(assignment, discover(folder), tmp_path / "out", BatchOptions(workers=1,
                                                                                     data_root=synthetic_cifar))
    for report in reports:
        assert report.failures == [], report.failures
        assert [e.loss for e in report.training.epochs] == [float(len(held.fit.labels))] * 2
        assert report.training.validation_images == len(held.validation.labels)


@pytest.mark.slow
def test_keep_last_evaluates_the_last_epoch(synthetic_cifar: Path, isolated_cache: Path, tmp_path: Path) -> None:
    """An assignment that keeps the last epoch evaluates it even when an earlier one validated better (a reversed
    learning rate in the last epoch makes the model answer wrongly). Catches a grader that ignores `keep = "last"`
    and keeps the best epoch anyway (which scores 1.0 on this easy data)."""
    assignment = keeping_last(load_assignment("a2_ffn"))
    extra = SPIKE.format(epochs=4, factor=SYNTHETIC_SPIKE) + "\nBATCH_SIZE = 16\n"
    spiked = reference_with(assignment, tmp_path / "spiked", extra)
    report = grade(assignment, spiked, tmp_path / "out", GradeOptions(data_root=synthetic_cifar))
    training = report.training
    assert training.keep == "last" and training.kept_epoch == 4 == len(training.epochs)
    best = max(e.validation_metric for e in training.epochs)
    assert validation_metric(report, 4) < best, "the control: the spike threw the last epoch off"
    assert report.metrics.value < 0.5, "the spiked last epoch, not an earlier one (1.0), was evaluated"
    assert "evaluated the model of epoch 4, the last epoch, as this assignment scores" in (
        tmp_path / "out" / "report.md").read_text()


@pytest.mark.real_data
@pytest.mark.slow
def test_a_destabilized_last_epoch_scores_as_the_stable_run(data_root: Path, tmp_path: Path) -> None:
    """A learning-rate spike in the last epoch costs nothing: the grader keeps an earlier epoch, and the submission
    scores exactly what the same code without the spike earns when it stops one epoch earlier. Catches evaluating
    the last epoch (the spiked model validates at about 0.69), and evaluating another checkpoint than the one kept
    (every epoch's model scores differently on the test images)."""
    assignment = load_assignment("a2_ffn")
    folder = tmp_path / "class"
    reference_with(assignment, folder / "spiked", SPIKE.format(epochs=SPIKED_EPOCHS, factor=REAL_SPIKE))
    reference_with(assignment, folder / "stable", f"\nEPOCHS = {SPIKED_EPOCHS - 1}\n")
    reports = {r.submission.student_id: r for r in run_batch(assignment, discover(folder), tmp_path / "out",
                                                             BatchOptions(workers=1, data_root=data_root))}
    spiked, stable = reports["spiked"], reports["stable"]
    assert spiked.failures == stable.failures == []
    assert epochs_of(spiked)[:-1] == epochs_of(stable), "the same training up to the spike"
    kept = spiked.training.kept_epoch
    assert validation_metric(spiked, SPIKED_EPOCHS) < validation_metric(spiked, kept) - 0.05, "the control"
    assert kept == stable.training.kept_epoch < SPIKED_EPOCHS
    assert spiked.metrics == stable.metrics and spiked.score.total == stable.score.total


@pytest.mark.real_data
@pytest.mark.slow
def test_an_overfitting_run_keeps_the_epoch_before_it(data_root: Path, tmp_path: Path) -> None:
    """A model that goes on fitting its training images while its validation accuracy falls is evaluated at its
    best validation epoch, and the report's table and sentence say which. Catches keeping the last epoch, keeping
    the epoch with the best training accuracy, and a report that marks another epoch than the one evaluated."""
    assignment = load_assignment("a2_ffn")
    submission = reference_with(assignment, tmp_path / "overfit", OVERFIT)
    report = grade(assignment, submission, tmp_path / "out", GradeOptions(data_root=data_root))
    training, last = report.training, report.training.epochs[-1]
    kept = next(e for e in training.epochs if e.epoch == training.kept_epoch)
    assert report.failures == [] and training.stopped == "completed"
    assert kept.epoch < last.epoch and kept.validation_metric > last.validation_metric
    assert kept.train_metric < last.train_metric, "the control: it kept fitting its training images"
    assert kept.validation_metric == max(e.validation_metric for e in training.epochs)
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert f"| {kept.epoch} (kept) |" in markdown and markdown.count("(kept)") == 1
    assert (f"evaluated the model of epoch {kept.epoch}, the epoch with the highest validation accuracy "
            f"({kept.validation_metric:.4f})") in markdown
