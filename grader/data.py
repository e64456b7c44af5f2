"""Image-folder trees on disk, and the decoded tensors of the classes an assignment's `[data]` declares.

Layout: `<root>/<split>/<class>/<image>.{png,jpg}` (CIFAR-10: `train/` and `test/`). Students only ever get the
training split; the declared classes' images of the test split are the hidden test images, and a share of the
training split is held out for validation (`hold_out`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from grader.config import Data
from grader.errors import GraderError
from grader.files import atomic_file, write_atomic

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DATA_DIR_ENV = "GRADER_DATA_DIR"
CACHE_DIR_ENV = "GRADER_CACHE_DIR"


def cache_dir() -> Path:
    """The per-user cache: prepared data and decoded tensors."""
    return Path(os.environ.get(CACHE_DIR_ENV) or platformdirs.user_cache_dir("grader"))


def default_data_root() -> Path:
    return cache_dir() / "cifar10"


def resolve_data_root(flag: Path | None = None) -> Path:
    """The data root: `--data-dir`, else $GRADER_DATA_DIR, else the cache; it must hold train/ and test/."""
    root = flag or (Path(os.environ[DATA_DIR_ENV]) if os.environ.get(DATA_DIR_ENV) else default_data_root())
    if not all((root / split).is_dir() for split in SPLITS):
        raise GraderError(
            f"No CIFAR-10 data at {root}: pass --data-dir, set {DATA_DIR_ENV}, "
            f"or run `grader data prepare` to download it into {default_data_root()}."
        )
    return root.resolve()


def image_files(root: Path, split: str, classes: tuple[str, ...],
                per_class: int | None = None) -> list[tuple[Path, int]]:
    """(path, label) of the images of `classes` in one split (the first `per_class` of each, by name); labels
    follow `classes` order."""
    files = []
    for label, name in enumerate(classes):
        folder = root / split / name
        if not folder.is_dir():
            present = sorted(p.name for p in (root / split).iterdir() if p.is_dir())
            raise GraderError(f"The data at {root} has no {split}/{name} folder for the class {name!r} of the "
                              f"assignment's [data] classes; its {split}/ holds: {', '.join(present)}.")
        images = [(p, label) for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        files += images[:per_class]
    return files


@dataclass(frozen=True)
class SplitTensors:
    """Decoded images (N, 3, 32, 32) uint8 and labels (N,) int64, memory-mapped from the cache."""

    images: np.ndarray
    labels: np.ndarray
    images_path: Path
    labels_path: Path
    fingerprint: str

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the pixels scaled to [0, 1], from a histogram of the 256 byte values."""
        values = np.arange(256, dtype=np.float64) / 255.0
        means, stds = [], []
        for channel in range(3):
            counts = np.bincount(self.images[:, channel].reshape(-1), minlength=256).astype(np.float64)
            mean = counts @ values / counts.sum()
            means.append(float(mean))
            stds.append(float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum())))
        return means, stds


def _stat_key(files: list[tuple[Path, int]]) -> str:
    digest = hashlib.sha256()
    for path, label in files:
        stat = path.stat()
        digest.update(f"{path}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _content_fingerprint(root: Path, files: list[tuple[Path, int]]) -> str:
    digest = hashlib.sha256()
    for path, label in files:
        digest.update(f"{path.relative_to(root).as_posix()}|{label}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _decode(files: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    images = np.empty((len(files), 3, 32, 32), dtype=np.uint8)
    for i, (path, _) in enumerate(files):
        try:
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except OSError:  # PIL's UnidentifiedImageError and truncated-file errors are OSErrors
            raise GraderError(f"{path} is not a readable image; replace or remove it.") from None
        if array.shape != (32, 32, 3):
            raise GraderError(f"{path} is {array.shape[1]}x{array.shape[0]}, not a 32x32 CIFAR image.")
        images[i] = array.transpose(2, 0, 1)
    return images, np.array([label for _, label in files], dtype=np.int64)


def _save_array(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as file:  # world-readable: sandboxes and containers read the cache as other users
        np.save(file, array)


def _read_index(path: Path) -> dict[str, str]:
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def _index_path() -> Path:
    """The tensor cache's index: a key of each split's files as they are (names, sizes, times) -> its fingerprint."""
    return cache_dir() / "tensors" / "index.json"


def combined_fingerprint(train: str, test: str) -> str:
    """The fingerprint of an assignment's data, as reports record it and cluster nodes compare it."""
    return f"train:{train},test:{test}"


def stored_fingerprint(root: Path, data: Data) -> str:
    """The declared data's fingerprint without loading it: read from the tensor cache's index, which `load_split`
    fills. Where the index does not know a split's files as they are now (never loaded, or changed since), that
    split is loaded once, as grading would, which stores its fingerprint for the next call."""
    index = _read_index(_index_path())

    def split_fingerprint(split: str) -> str:
        found = index.get(_stat_key(image_files(root, split, data.classes, data.per_class(split))))
        return found or load_split(root, split, data).fingerprint

    return combined_fingerprint(split_fingerprint(data.train_split), split_fingerprint(data.test_split))


def load_split(root: Path, split: str, data: Data) -> SplitTensors:
    """The declared classes' images of one split, decoded once and cached under a fingerprint of the source files
    and their labels."""
    files = image_files(root, split, data.classes, data.per_class(split))
    index_path = _index_path()
    tensors = index_path.parent
    tensors.mkdir(parents=True, exist_ok=True)
    index = _read_index(index_path)
    key = _stat_key(files)
    fingerprint = index.get(key) or _content_fingerprint(root, files)
    images_path = tensors / f"{split}-{fingerprint}-images.npy"
    labels_path = tensors / f"{split}-{fingerprint}-labels.npy"
    if not (images_path.is_file() and labels_path.is_file()):
        images, labels = _decode(files)
        _save_array(images_path, images)
        _save_array(labels_path, labels)
    if index.get(key) != fingerprint:
        index[key] = fingerprint
        # A read-only cache (a container's mount) still serves the tensors; it just cannot learn the new key.
        with contextlib.suppress(OSError):
            write_atomic(index_path, json.dumps(index))
    return SplitTensors(
        images=np.load(images_path, mmap_mode="r"),
        labels=np.load(labels_path),
        images_path=images_path,
        labels_path=labels_path,
        fingerprint=fingerprint,
    )


@dataclass(frozen=True)
class HeldOut:
    """The training images a submission trains on (`fit`), and those the grader holds out (`validation`)."""

    fit: SplitTensors
    validation: SplitTensors


def validation_indices(count: int, fraction: float, seed: int) -> np.ndarray:
    """Which of `count` training images are held out, sorted: the first int(count * fraction) of a permutation fixed
    by `seed` (the handouts' check_accuracy.py draws the same)."""
    return np.sort(np.random.default_rng(seed).permutation(count)[: int(count * fraction)])


def hold_out(train: SplitTensors, fraction: float, seed: int) -> HeldOut:
    """Split the training tensors into fit and validation parts, cached beside them."""
    held = np.zeros(len(train.labels), dtype=bool)
    held[validation_indices(len(train.labels), fraction, seed)] = True
    name = f"{fraction:g}s{seed}"
    return HeldOut(fit=_subset(train, ~held, f"fit{name}"), validation=_subset(train, held, f"validation{name}"))


def _subset(split: SplitTensors, chosen: np.ndarray, name: str) -> SplitTensors:
    fingerprint = f"{split.fingerprint}-{name}"
    images_path = split.images_path.with_name(f"train-{fingerprint}-images.npy")
    labels_path = split.labels_path.with_name(f"train-{fingerprint}-labels.npy")
    if not (images_path.is_file() and labels_path.is_file()):
        _save_array(images_path, np.ascontiguousarray(split.images[chosen]))
        _save_array(labels_path, split.labels[chosen])
    return SplitTensors(images=np.load(images_path, mmap_mode="r"), labels=np.load(labels_path),
                        images_path=images_path, labels_path=labels_path, fingerprint=fingerprint)


def prepare(root: Path) -> Path:
    """Download the official CIFAR-10 through torchvision and write it to `root` as PNG files."""
    from torchvision.datasets import CIFAR10

    if all((root / split).is_dir() for split in SPLITS):
        return root
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download, tempfile.TemporaryDirectory(dir=root) as staging:
        try:
            sets = {split: CIFAR10(download, train=split == "train", download=True) for split in SPLITS}
        except (OSError, RuntimeError) as exc:
            raise GraderError(
                f"Could not download CIFAR-10 ({exc.__class__.__name__}); when offline, pass --data-dir "
                f"or set {DATA_DIR_ENV} to a copy in the train/<class>/*.png layout."
            ) from None
        for split, dataset in sets.items():
            counts = dict.fromkeys(CIFAR10_CLASSES, 0)
            for image, label in dataset:
                name = CIFAR10_CLASSES[label]
                folder = Path(staging) / split / name
                folder.mkdir(parents=True, exist_ok=True)
                image.save(folder / f"{counts[name]:04d}.png")
                counts[name] += 1
        for split in SPLITS:
            shutil.move(Path(staging) / split, root / split)
    return root
