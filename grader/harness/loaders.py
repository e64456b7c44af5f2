"""The batches a submission trains and is evaluated on, built from the cached uint8 tensors, and the grader's own
forward pass over images (validation and evaluation).

Normalization is done once on the whole tensor, not per image; the optional student
`train_transform` is applied per sample to the normalized (3, 32, 32) float tensor, or once per
batch when it is a transform whose batch version gives exactly the per-sample results.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

Transform = Callable[[torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


def normalize(images: np.ndarray | torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) to float32 scaled to [0, 1] and standardized per channel."""
    pixels = torch.from_numpy(np.asarray(images, dtype=np.float32)).div_(255.0)  # a fresh, writable float copy
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return pixels.sub_(mean_t).div_(std_t)


class TensorBatches(Dataset[Batch]):
    """(image, target) pairs that the DataLoader fetches a whole batch at a time, by tensor indexing: the target
    is the label, or without labels (reconstruction) a copy of the image as transformed.

    Fetching per sample and collating costs more than a small model's step; `__getitems__`
    lets the DataLoader take each batch with one index operation instead.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, transform: Transform | None = None) -> None:
        self.images, self.labels, self.transform = images, labels, transform
        self.batch_transform = batch_version(transform)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Batch:
        image = self.images[index]
        image = self.transform(image) if self.transform else image
        return image, image.clone() if self.labels is None else self.labels[index]

    def __getitems__(self, indices: list[int]) -> Batch:
        index = torch.as_tensor(indices)
        images = self.images[index]
        if self.batch_transform is not None:
            images = self.batch_transform(images)
        elif self.transform:
            images = torch.stack([self.transform(image) for image in images])
        return images, images.clone() if self.labels is None else self.labels[index]


def batch_version(transform: Transform | None) -> Transform | None:
    """A whole-batch equivalent of `transform`, drawing the same random numbers in the same order, if known.

    RandomHorizontalFlip draws torch.rand(1) per image; torch.rand(n) draws the same n numbers on the CPU
    generator, so flipping the images whose number is below p gives the per-sample results exactly.
    """
    if transform is None:
        return None
    from torchvision import transforms  # here, so the evaluation stage does not pay for importing it

    # torchvision ships no types: isinstance makes the transform Any, `type(...) is` keeps subclasses out.
    if isinstance(transform, transforms.Compose) and type(transform) is transforms.Compose \
            and len(transform.transforms) <= 1:
        if not transform.transforms:
            return lambda images: images
        transform = transform.transforms[0]
    flip_type = transforms.RandomHorizontalFlip
    if not isinstance(transform, flip_type) or type(transform) is not flip_type:
        return None

    def flip(images: torch.Tensor) -> torch.Tensor:
        chosen = torch.rand(len(images)) < transform.p
        images[chosen] = images[chosen].flip(-1)  # a fresh copy from indexing, so in place is safe
        return images

    return flip


def _batch_as_is(batch: Batch) -> Batch:
    return batch


def train_loader(
    images: torch.Tensor,
    labels: torch.Tensor | None,
    batch_size: int,
    seed: int,
    transform: Transform | None = None,
) -> DataLoader[Batch]:
    """Shuffled batches of normalized training images and their targets (labels, or the images when `labels` is
    None), in an order fixed by `seed`."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorBatches(images, labels, transform), batch_size=batch_size, shuffle=True,
                      generator=generator,
                      collate_fn=_batch_as_is)  # type: ignore[arg-type]  # gets __getitems__'s batch, not a list


@torch.no_grad()
def logits_of(model: torch.nn.Module, images: torch.Tensor, batch_size: int, device: torch.device) -> np.ndarray:
    """The model's outputs for `images`, batch by batch in order, as float32 on the CPU."""
    batches = [model(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(batches).numpy()
