"""Check your model's score locally, trained the way the grader trains: `python check_accuracy.py CIFAR10_FOLDER`.

CIFAR10_FOLDER holds `train/<class>/*.jpg` (or .png). The script reads this folder's assignment.toml and your
module, normalizes the training images of the classes its [data] declares (label i: classes[i]) as the grader does
(with their per-channel mean and std, unless [data] gives them), holds out the same validation images as the
grader, and trains on the rest with the grader's settings: the assignment's seed and CPU threads, your BATCH_SIZE,
EPOCHS and train_transform, batches shuffled in an order fixed by the seed, `model.train()` before each epoch, and
the loss of the task its [metric] declares (classification: cross-entropy against the labels, scored by accuracy;
reconstruction: the mean squared error against the image itself, lower is better).
Before the first epoch and after each it prints the validation score (and per epoch the loss, training score
and budget used, the validation passes not counted), then the epoch the grader would keep and score. Before the
first epoch one training batch goes forward and backward, so a shape error shows in seconds (the model is left as
it was). The budget is counted as the grader counts it: CPU seconds per thread of this process and its children,
with the grader's thread count and CPU settings (run as a script, it restarts itself with them before importing
torch).
In a notebook next to this file: `import check_accuracy, __main__; check_accuracy.check("cifar10", __main__)`
(the notebook's process then keeps its own CPU settings: the budget can count several times more on a busy machine,
and the scores can drift from the grader's after a few epochs; it says so when it runs).
Needs Python 3.11 or later, torch, torchvision, numpy and pillow; not the grader.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import io
import os
import random
import sys
import time
import tomllib
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
CONFIG = tomllib.loads((HERE / "assignment.toml").read_text())
# Pins torch's, MKL's and oneDNN's CPU kernels as the grader does (its grader/sandbox.py CPU_KERNELS).
CPU_KERNELS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}


def grader_cpu_environment(threads: int, cpu_kernels: str) -> dict[str, str]:
    """The grader's CPU settings (its grader/sandbox.py cpu_environment), read when torch and libgomp load."""
    return {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        # Waiting threads spin only briefly: libgomp's default spin burns CPU time, 4-6x the budget on a busy machine.
        "GOMP_SPINCOUNT": "1000",
        "MALLOC_TOP_PAD_": str(256 * 2**20),
    } | CPU_KERNELS.get(cpu_kernels, {})


GRADER_ENVIRONMENT = grader_cpu_environment(CONFIG["limits"]["threads"], CONFIG["limits"]["cpu_kernels"])
OWN_SETTINGS = any(os.environ.get(key) != value for key, value in GRADER_ENVIRONMENT.items())
if __name__ == "__main__" and os.name == "posix" and OWN_SETTINGS:
    os.execve(sys.executable, [sys.executable, *sys.argv], os.environ | GRADER_ENVIRONMENT)

import numpy as np  # noqa: E402 - imported only once the grader's CPU settings are in place
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

DATA = CONFIG["data"]  # the classes (label i: classes[i]), split, subset and normalization the grader uses
RECONSTRUCTION = CONFIG["metric"]["task"] == "reconstruction"  # the target is the image itself, not its label
METRIC = "mean squared error" if RECONSTRUCTION else "accuracy"
LABELS = {name: label for label, name in enumerate(DATA["classes"])}
SUFFIXES = (".png", ".jpg", ".jpeg")


class DataFolderError(FileNotFoundError):
    """The data folder lacks a declared class's training images."""


def load_images(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 3, 32, 32) and int64 labels of the training split's declared classes, each class in sorted
    order (its first train_per_class images where assignment.toml limits them)."""
    split = root / DATA.get("train_split", "train")
    files = [(path, label) for name, label in LABELS.items()
             for path in class_files(split, name)[: DATA.get("train_per_class")]]
    images = np.stack([np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
                       for path, _ in files])
    # Contiguous (N, 3, 32, 32) as the grader's, so a model that flattens with .view works here as it does there.
    return np.ascontiguousarray(images), np.array([label for _, label in files], dtype=np.int64)


def class_files(split: Path, name: str) -> list[Path]:
    """The image files of one class folder, sorted; one sentence when there are none."""
    folder = split / name
    files = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in SUFFIXES] if folder.is_dir() else []
    if not files:
        # A common slip: the path of train/ itself, where the data folder that holds it was asked for.
        given = split.parent.name
        hint = f" (give the folder that holds {given}/, not {given}/ itself)" if (split.parent / name).is_dir() else ""
        raise DataFolderError(f"{folder} holds no .png, .jpg or .jpeg image{hint}: the data folder must hold "
                              f"{split.name}/<class>/ for the classes {', '.join(LABELS)}.")
    return files


def import_submission(name: str) -> ModuleType:
    """This folder's module, imported as Python imports it, its top-level code run."""
    if not (HERE / f"{name}.py").is_file():
        sys.exit(f"check_accuracy.py: there is no {name}.py beside this script in {HERE}: put your {name}.py here, "
                 "or in a notebook run check_accuracy.check(DATA, __main__) as README.md says.")
    sys.path.insert(0, str(HERE))
    try:
        return importlib.import_module(name)
    except Exception:
        print(f"Importing {name}.py failed, with the traceback below. Python runs a module's top-level code, "
              "which the grader leaves out: a .py downloaded from a notebook must lose its data loading, training "
              "and check cells first.", file=sys.stderr)
        raise


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) std of the pixels scaled to [0, 1], as the grader computes them."""
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for channel in range(3):
        counts = np.bincount(images[:, channel].reshape(-1), minlength=256).astype(np.float64)
        mean = counts @ values / counts.sum()
        means.append(float(mean))
        stds.append(float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum())))
    return means, stds


def normalize(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """The whole uint8 tensor to float32 in [0, 1], standardized per channel (not image by image)."""
    pixels = torch.as_tensor(images).float().div_(255.0)
    return pixels.sub_(torch.tensor(mean).view(1, 3, 1, 1)).div_(torch.tensor(std).view(1, 3, 1, 1))


class Images(Dataset):
    """(image, target) pairs, the target the label or, without labels (reconstruction), a copy of the image as
    transformed; `transform` (your train_transform) gets each normalized (3, 32, 32) image."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, transform=None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        image = self.transform(image) if self.transform else image
        return image, image.clone() if self.labels is None else self.labels[index]


def train_loader(images: torch.Tensor, labels: torch.Tensor | None, batch_size: int, seed: int,
                 transform=None) -> DataLoader:
    """Shuffled batches in an order fixed by `seed`, as the grader builds them."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(Images(images, labels, transform), batch_size=batch_size, shuffle=True, generator=generator)


def validation_split(count: int, fraction: float, seed: int) -> np.ndarray:
    """A mask of the images the grader holds out: the first int(count * fraction) of a permutation fixed by seed."""
    held_out = np.zeros(count, dtype=bool)
    held_out[np.random.default_rng(seed).permutation(count)[: int(count * fraction)]] = True
    return held_out


class CountingLoss(nn.Module):
    """The grader's loss, which also sums the training score: cross-entropy and the right predictions, or (for
    reconstruction) the mean squared error and that same error."""

    def __init__(self) -> None:
        super().__init__()
        self.loss = nn.MSELoss() if RECONSTRUCTION else nn.CrossEntropyLoss()
        self.total, self.seen = 0.0, 0

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = self.loss(outputs, targets)
        with torch.no_grad():
            if RECONSTRUCTION:
                self.total += float(loss) * int(targets.shape[0])
                self.seen += int(targets.shape[0])
            elif outputs.ndim == 2 and outputs.shape[0] == targets.shape[0]:
                self.total += int((outputs.argmax(dim=1) == targets).sum())
                self.seen += int(targets.shape[0])
        return loss

    def score_and_reset(self) -> float:
        score = self.total / self.seen if self.seen else 0.0
        self.total, self.seen = 0.0, 0
        return score


def one_batch_first(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int,
                    transform=None) -> None:
    """A forward and backward pass on the first training batch, so a shape error shows before any epoch; the
    model (weights, BatchNorm statistics, gradients) and the random number generators are left as they were."""
    state, python, numpy = copy.deepcopy(model.state_dict()), random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            pairs = [Images(images, labels, transform)[i] for i in range(min(batch_size, len(images)))]
            model.train()
            outputs = model(torch.stack([image for image, _ in pairs]))
            CountingLoss()(outputs, torch.stack([target for _, target in pairs])).backward()
    except Exception:
        print("One training batch failed before the first epoch; the grader would fail the same way:", file=sys.stderr)
        raise
    finally:
        model.load_state_dict(state)
        model.zero_grad(set_to_none=True)
        random.setstate(python)
        np.random.set_state(numpy)


def cpu_seconds_per_thread(threads: int) -> float:
    """CPU time of this process and the children it reaped (DataLoader workers), per thread: the grader's clock."""
    times = os.times()
    return (times.user + times.system + times.children_user + times.children_system) / threads


def score(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    """The grader's validation score of `images`: the fraction the model classifies right, or (reconstruction) the
    mean squared error to the images, in eval mode and without gradients; like the grader's validation pass, it
    leaves the random number generators as it found them."""
    python, numpy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        model.eval()
        outputs = torch.cat([model(images[i: i + batch_size]).float() for i in range(0, len(images), batch_size)])
    random.setstate(python)
    np.random.set_state(numpy)
    if RECONSTRUCTION:
        return ((outputs.double() - images.double()) ** 2).mean().item()
    return (outputs.argmax(dim=1) == labels).float().mean().item()


def check(data: Path, module: ModuleType | None = None) -> float:
    """Train as the grader does and return the validation score (accuracy, or the mean squared error) of the epoch
    the grader would keep.

    `module` holds your definitions; by default this folder's module. In a notebook, pass the notebook's own:
    `import check_accuracy, __main__; check_accuracy.check("path/to/cifar10", __main__)`.
    """
    config = CONFIG
    seed, threads, training = config["seed"], config["limits"]["threads"], config["training"]
    budget, grace, validation = training["budget_seconds"]["cpu"], training["grace_seconds"], training["validation"]

    images, labels = load_images(Path(data))
    # Declared in assignment.toml, or of every training image, the held-out ones included, as the grader's.
    mean, std = (DATA["mean"], DATA["std"]) if "mean" in DATA else channel_stats(images)
    print(f"{len(labels)} training images; normalization mean {np.round(mean, 4).tolist()}, "
          f"std {np.round(std, 4).tolist()}")
    held_out = validation_split(len(labels), validation["fraction"], validation["seed"])

    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if OWN_SETTINGS:
        print("This Python was started without the grader's CPU settings, which torch reads when it loads: "
              "the budget can count several times more and the scores can drift from the grader's after a few epochs "
              "(run as a script, it restarts with them).")
    module = module or import_submission(config["submission"]["module"])
    model = module.build_model()
    normalized, targets = normalize(images, mean, std), torch.as_tensor(labels)
    val_images, val_labels = normalized[held_out], targets[held_out]
    fit_labels = None if RECONSTRUCTION else targets[~held_out]
    scores = {0: score(model, val_images, val_labels, training["eval_batch_size"])}
    print(f"{held_out.sum()} validation images (the grader's); before training: validation {METRIC} {scores[0]:.4f}")
    transform = module.train_transform() if hasattr(module, "train_transform") else None
    one_batch_first(model, normalized[~held_out], fit_labels, module.BATCH_SIZE, transform)
    # The grader's clock starts here and leaves out its validation passes.
    started, validating = cpu_seconds_per_thread(threads), 0.0
    optimizer = module.make_optimizer(model)
    loader = train_loader(normalized[~held_out], fit_labels, module.BATCH_SIZE, seed, transform)
    device, loss_fn = torch.device("cpu"), CountingLoss()

    used = 0.0
    for epoch in range(1, module.EPOCHS + 1):
        if used >= budget:
            print(f"On a machine as fast as this one the grader would stop here: the {budget:g} s budget is used up.")
            break
        wall = time.monotonic()
        model.train()
        loss = module.train_one_epoch(model, loader, loss_fn, optimizer, device)
        used = cpu_seconds_per_thread(threads) - started - validating
        if used > budget + grace:
            print(f"Epoch {epoch} ended past the budget and its {grace:g} s grace: the grader would not count it.")
            break
        torch.save(model.state_dict(), io.BytesIO())  # the grader's checkpoint, on its clock too
        wall = time.monotonic() - wall
        validation_started = cpu_seconds_per_thread(threads)
        scores[epoch] = score(model, val_images, val_labels, training["eval_batch_size"])
        validating += cpu_seconds_per_thread(threads) - validation_started
        used = cpu_seconds_per_thread(threads) - started - validating
        print(f"epoch {epoch}: loss {float(loss):.4f}; training {METRIC} {loss_fn.score_and_reset():.4f}; "
              f"validation {METRIC} {scores[epoch]:.4f}; budget used {used:.1f} of {budget:g} s "
              f"(this epoch: {wall:.1f} s of wall time)")
    trained = {epoch: score for epoch, score in scores.items() if epoch > 0}
    if not trained:
        print("No epoch finished: the grader would have no model to score.")
        return scores[0]
    better = -1 if RECONSTRUCTION else 1  # the best epoch: the highest accuracy or the lowest error (ties: the later)
    kept = max(trained, key=lambda e: (better * trained[e], e)) if validation["keep"] == "best" else max(trained)
    print(f"The grader would keep epoch {kept} (validation {METRIC} {trained[kept]:.4f}) and score it on the hidden "
          "test images.")
    return trained[kept]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the CIFAR-10 folder that holds train/<class>/ for each class")
    args = parser.parse_args()
    try:
        check(args.data)
    except DataFolderError as exc:
        sys.exit(f"check_accuracy.py: {exc}")


if __name__ == "__main__":
    main()
