"""Fixtures for the framework's own tests: a small synthetic CIFAR tree and an isolated tensor cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grader.data import CIFAR10_CLASSES
from tests.framework.declared import CIFAR2


def make_cifar_tree(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """A CIFAR-10 layout of random 32x32 PNGs; airplanes are bright and birds dark, so a model can learn them."""
    rng = np.random.default_rng(seed)
    root.chmod(0o755)  # pytest makes its temp dirs private; the sandbox's unprivileged user reads this tree
    for split, count in per_class.items():
        for label, name in enumerate(CIFAR10_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            n = count if name in CIFAR2.classes else 2
            for i in range(n):
                base = 170 if label == 0 else 70
                pixels = np.clip(rng.normal(base, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(scope="session")
def synthetic_cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny separable CIFAR tree: 64 train and 32 test images per CIFAR-2 class."""
    return make_cifar_tree(tmp_path_factory.mktemp("cifar"), {"train": 64, "test": 32})


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh tensor cache, so tests neither read nor pollute the user's."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRADER_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def other_synthetic_cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same layout with other random images: a data set whose fingerprint differs from `synthetic_cifar`'s."""
    return make_cifar_tree(tmp_path_factory.mktemp("other-cifar"), {"train": 64, "test": 32}, seed=1)
