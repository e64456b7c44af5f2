"""Assignment 4: a convolutional autoencoder for CIFAR-10 images (all ten classes).

The grader imports this file, builds your model and optimizer, and trains it itself for EPOCHS epochs of
BATCH_SIZE images using your `train_one_epoch`, with the mean squared error between the model's output and the
input image as `loss_fn`; then it measures that error on hidden test images. The images come with pixels in
[0, 1] (no further normalization).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

# How many passes over the training images the grader makes, and how many images go in one batch.
EPOCHS = ...
BATCH_SIZE = ...


class Autoencoder(nn.Module):
    """Images (N, 3, 32, 32) through `encoder` to a smaller code, and through `decoder` back to (N, 3, 32, 32)."""

    def __init__(self) -> None:
        super().__init__()
        raise NotImplementedError(
            "Autoencoder: set self.encoder to nn.Conv2d layers with stride 2 that shrink the image, and "
            "self.decoder to nn.ConvTranspose2d layers that grow it back to (3, 32, 32)."
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))


def build_model() -> nn.Module:
    """The autoencoder the grader trains."""
    return Autoencoder()


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer that updates the model's parameters."""
    raise NotImplementedError("make_optimizer: return an optimizer over model.parameters(), e.g. torch.optim.Adam.")


def train_one_epoch(
    model: nn.Module, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> float:
    """Train for one pass over `loader`, whose batches are (images, targets) with the targets the images
    themselves, and return the mean training loss of its batches."""
    raise NotImplementedError(
        "train_one_epoch: for each batch, move it to device, zero the gradients, compute loss_fn(model(images), "
        "targets), call backward() and step the optimizer; return the mean loss."
    )
