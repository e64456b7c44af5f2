"""Assignment 1: a PyTorch Dataset over CIFAR-10 image files, restricted to CIFAR-2 (airplane = 0, bird = 1).

The images live in `<root>/<split>/<class>/*.png|jpg|jpeg`. The Dataset lists them once and
decodes an image only when it is asked for, so creating it is instant even for 10,000 images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

CIFAR2_LABELS = {"airplane": 0, "bird": 1}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class CifarImageFolder(Dataset):
    """The images of the classes in `label_map`, as (PIL RGB image or transform(image), label) pairs."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        label_map: dict[str, int] = CIFAR2_LABELS,
        transform: Callable | None = None,
    ) -> None:
        raise NotImplementedError(
            "CifarImageFolder.__init__: store transform, then list (path, label_map[class]) for every "
            ".png/.jpg/.jpeg file in <root>/<split>/<class>/ of each class in label_map, sorted. Open no "
            "image here. Raise FileNotFoundError if <root>/<split> is missing, ValueError if a class folder is."
        )

    def __len__(self) -> int:
        """The number of indexed images."""
        raise NotImplementedError("CifarImageFolder.__len__: return how many images __init__ indexed.")

    def __getitem__(self, index: int) -> tuple[Image.Image | torch.Tensor, int]:
        """Decode image `index` now and return it (transformed, if a transform was given) with its label."""
        raise NotImplementedError(
            "CifarImageFolder.__getitem__: open the image at `index` with PIL, .convert('RGB') it, apply "
            "self.transform if there is one, and return (image, label) with label a Python int."
        )


def channel_stats(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std, tensors of shape (3,), over all pixels of a dataset of PIL images."""
    raise NotImplementedError(
        "channel_stats: return (mean, std), two float tensors of shape (3,), over every pixel of every image "
        "scaled to [0, 1] as transforms.ToTensor() does (population std over all pixels, not an average of "
        "per-image statistics)."
    )


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int = 0) -> DataLoader:
    """A DataLoader over `dataset` with these settings."""
    raise NotImplementedError("make_loader: return a torch.utils.data.DataLoader with these settings.")
