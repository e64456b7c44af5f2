"""Check your accuracy locally, trained the way the grader trains: `python check_accuracy.py CIFAR10_FOLDER`.

CIFAR10_FOLDER holds `train/<class>/*.jpg` (or .png). The script reads this folder's assignment.toml and your
module, normalizes the airplane (label 0) and bird (label 1) training images with their per-channel mean and
std as the grader does, holds out a fifth of them as your own validation split, and trains on the rest with
the grader's settings: the assignment's seed and CPU threads, your BATCH_SIZE, EPOCHS and train_transform,
batches shuffled in an order fixed by the seed, `model.train()` before each epoch. Then it prints the accuracy
on your validation split. With --all it trains on every training image, as the grader does, and skips it.
In a notebook next to this file: `import check_accuracy, __main__; check_accuracy.check("cifar10", __main__)`.
Needs Python 3.11 or later, torch, torchvision, numpy and pillow; not the grader.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import time
import tomllib
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

HERE = Path(__file__).resolve().parent
LABELS = {"airplane": 0, "bird": 1}
SUFFIXES = (".png", ".jpg", ".jpeg")


def load_images(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 3, 32, 32) and int64 labels of train/airplane and train/bird, each class in sorted order."""
    files = [(path, label) for name, label in LABELS.items()
             for path in sorted((root / "train" / name).iterdir()) if path.suffix.lower() in SUFFIXES]
    images = np.stack([np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
                       for path, _ in files])
    return images, np.array([label for _, label in files], dtype=np.int64)


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
    """(image, label) pairs; `transform` (your train_transform) gets each normalized (3, 32, 32) image."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform=None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        return (self.transform(image) if self.transform else image), self.labels[index]


def train_loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int, transform=None) -> DataLoader:
    """Shuffled batches in an order fixed by `seed`, as the grader builds them."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(Images(images, labels, transform), batch_size=batch_size, shuffle=True, generator=generator)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    """The fraction of `images` the model classifies right, in eval mode and without gradients."""
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(images[i: i + batch_size]).argmax(dim=1)
                               for i in range(0, len(images), batch_size)])
    return (predicted == labels).float().mean().item()


def check(data: Path, module: ModuleType | None = None, all_images: bool = False) -> float | None:
    """Train as the grader does and return the accuracy on your validation split (None with `all_images`).

    `module` holds your definitions; by default this folder's module. In a notebook, pass the notebook's own:
    `import check_accuracy, __main__; check_accuracy.check("path/to/cifar10", __main__)`.
    """
    config = tomllib.loads((HERE / "assignment.toml").read_text())
    seed, threads = config["seed"], config["limits"]["threads"]
    budget = config["training"]["budget_seconds"]["cpu"]

    images, labels = load_images(Path(data))
    mean, std = channel_stats(images)  # of every training image, whatever is held out below
    print(f"{len(labels)} training images; normalization mean {np.round(mean, 4).tolist()}, "
          f"std {np.round(std, 4).tolist()}")
    held_out = np.zeros(len(labels), dtype=bool)
    if not all_images:
        held_out[np.random.default_rng(seed).permutation(len(labels))[: len(labels) // 5]] = True

    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if module is None:
        sys.path.insert(0, str(HERE))
        module = importlib.import_module(config["submission"]["module"])
    model = module.build_model()
    optimizer = module.make_optimizer(model)
    transform = module.train_transform() if hasattr(module, "train_transform") else None
    normalized, targets = normalize(images, mean, std), torch.as_tensor(labels)
    loader = train_loader(normalized[~held_out], targets[~held_out], module.BATCH_SIZE, seed, transform)
    device, loss_fn = torch.device("cpu"), nn.CrossEntropyLoss()

    used, warned = 0.0, False
    for epoch in range(1, module.EPOCHS + 1):
        if used >= budget and not warned:
            warned = True
            print(f"On a machine as fast as this one the grader would stop here, and score the model of epoch "
                  f"{epoch - 1}: the {budget:g} s budget is used up.")
        started = time.process_time()
        model.train()
        loss = module.train_one_epoch(model, loader, loss_fn, optimizer, device)
        used += (time.process_time() - started) / threads  # CPU seconds per thread, as the grader counts them
        print(f"epoch {epoch}: loss {float(loss):.4f}; budget used {used:.0f} of {budget:g} s")
    if all_images:
        return None
    result = accuracy(model, normalized[held_out], targets[held_out], config["training"]["eval_batch_size"])
    print(f"Accuracy on your validation split ({held_out.sum()} images): {result:.4f}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="the CIFAR-10 folder that holds train/airplane and train/bird")
    parser.add_argument("--all", action="store_true", help="train on every training image, as the grader does")
    args = parser.parse_args()
    check(args.data, all_images=args.all)


if __name__ == "__main__":
    main()
