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
        # BEGIN SOLUTION NO PROMPT
        folder = Path(root) / split
        if not folder.is_dir():
            raise FileNotFoundError(f"No {split!r} split: {folder} is not a folder.")
        self.transform = transform
        self.samples: list[tuple[Path, int]] = []
        for name, label in sorted(label_map.items()):
            class_dir = folder / name
            if not class_dir.is_dir():
                raise ValueError(f"label_map has class {name!r} but {class_dir} is not a folder.")
            paths = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            self.samples += [(path, label) for path in paths]
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError(
            "CifarImageFolder.__init__: store transform, then list (path, label_map[class]) for every "
            ".png/.jpg/.jpeg file in <root>/<split>/<class>/ of each class in label_map, sorted. Open no "
            "image here. Raise FileNotFoundError if <root>/<split> is missing, ValueError if a class folder is."
        )
        """ # END PROMPT

    def __len__(self) -> int:
        """The number of indexed images."""
        # BEGIN SOLUTION NO PROMPT
        return len(self.samples)
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("CifarImageFolder.__len__: return how many images __init__ indexed.")
        """ # END PROMPT

    def __getitem__(self, index: int) -> tuple[Image.Image | torch.Tensor, int]:
        """Decode image `index` now and return it (transformed, if a transform was given) with its label."""
        # BEGIN SOLUTION NO PROMPT
        path, label = self.samples[index]
        with Image.open(path) as image:
            image = image.convert("RGB")
        return (self.transform(image) if self.transform else image), label
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError(
            "CifarImageFolder.__getitem__: open the image at `index` with PIL, .convert('RGB') it, apply "
            "self.transform if there is one, and return (image, label) with label a Python int."
        )
        """ # END PROMPT


def channel_stats(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std, tensors of shape (3,), over all pixels of a dataset of PIL images."""
    # BEGIN SOLUTION NO PROMPT
    # One pass, summing in float64: E[x^2] - E[x]^2 loses nothing that matters for pixels in [0, 1].
    sums = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    count = 0
    for index in range(len(dataset)):
        raw = torch.frombuffer(bytearray(dataset[index][0].tobytes()), dtype=torch.uint8)
        pixels = raw.view(-1, 3).to(torch.float64) / 255  # (height * width, RGB), scaled like ToTensor
        sums += pixels.sum(dim=0)
        squares += pixels.square().sum(dim=0)
        count += pixels.shape[0]
    mean = sums / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return mean.float(), std.float()
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError(
        "channel_stats: return (mean, std), two float tensors of shape (3,), over every pixel of every image "
        "scaled to [0, 1] as transforms.ToTensor() does (population std over all pixels, not an average of "
        "per-image statistics)."
    )
    """ # END PROMPT


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, num_workers: int = 0) -> DataLoader:
    """A DataLoader over `dataset` with these settings."""
    # BEGIN SOLUTION NO PROMPT
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("make_loader: return a torch.utils.data.DataLoader with these settings.")
    """ # END PROMPT
