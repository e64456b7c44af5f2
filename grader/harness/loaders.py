"""The batches a submission trains and is evaluated on, built from the cached uint8 tensors.

Normalization is done once on the whole tensor, not per image; the optional student
`train_transform` is applied per sample to the normalized (3, 32, 32) float tensor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


def normalize(images: np.ndarray | torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) to float32 scaled to [0, 1] and standardized per channel."""
    pixels = torch.as_tensor(np.asarray(images)).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return pixels.sub_(mean_t).div_(std_t)


class TransformedTensors(Dataset):
    """(image, label) pairs with a per-sample transform applied to the image."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[index]), self.labels[index]


def train_loader(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    seed: int,
    transform: Callable | None = None,
) -> DataLoader:
    """Shuffled batches of normalized training images, in an order fixed by `seed`."""
    dataset = TransformedTensors(images, labels, transform) if transform else TensorDataset(images, labels)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)


def eval_loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> DataLoader:
    """Batches in order, for evaluation."""
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)
