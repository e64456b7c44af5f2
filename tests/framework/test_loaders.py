"""The training loader's batch-at-once transforms give exactly the per-sample results."""

from __future__ import annotations

import pytest
import torch
from torchvision import transforms

from grader.harness.loaders import batch_version, train_loader

TRANSFORMS = {
    "flip": lambda: transforms.RandomHorizontalFlip(),
    "flip p=0.3": lambda: transforms.RandomHorizontalFlip(p=0.3),
    "compose of one flip": lambda: transforms.Compose([transforms.RandomHorizontalFlip()]),
    "empty compose": lambda: transforms.Compose([]),
}


def batches(transform, per_sample: bool) -> list[torch.Tensor]:
    images, labels = torch.randn(300, 3, 32, 32, generator=torch.Generator().manual_seed(1)), torch.arange(300)
    loader = train_loader(images, labels, 64, seed=0, transform=transform)
    if per_sample:
        loader.dataset.batch_transform = None
    torch.manual_seed(7)
    return [x for x, _ in loader]


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_batch_transform_matches_per_sample_bit_for_bit(name: str) -> None:
    make = TRANSFORMS[name]
    assert batch_version(make()) is not None
    fast, slow = batches(make(), per_sample=False), batches(make(), per_sample=True)
    assert len(fast) == len(slow) == 5
    assert all(torch.equal(a, b) for a, b in zip(fast, slow, strict=True))


def test_flips_happen_and_other_transforms_stay_per_sample() -> None:
    flipped = batches(transforms.RandomHorizontalFlip(p=1.0), per_sample=False)
    plain = batches(None, per_sample=False)
    assert all(torch.equal(a, b.flip(-1)) for a, b in zip(flipped, plain, strict=True))
    assert batch_version(transforms.RandomVerticalFlip()) is None
    assert batch_version(transforms.Compose([transforms.RandomHorizontalFlip()] * 2)) is None
    assert batch_version(None) is None
