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
EPOCHS = 6  # SOLUTION
BATCH_SIZE = 32  # SOLUTION


class Autoencoder(nn.Module):
    """Images (N, 3, 32, 32) through `encoder` to a smaller code, and through `decoder` back to (N, 3, 32, 32)."""

    def __init__(self) -> None:
        super().__init__()
        # BEGIN SOLUTION NO PROMPT
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=3, stride=2, padding=1), nn.ReLU(),  # 32 x 16 x 16
            nn.Conv2d(32, 16, kernel_size=3, stride=2, padding=1), nn.ReLU(),  # 16 x 8 x 8 = 1,024 numbers
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(16, 32, kernel_size=4, stride=2, padding=1), nn.ReLU(),  # 32 x 16 x 16
            nn.ConvTranspose2d(32, 3, kernel_size=4, stride=2, padding=1), nn.Sigmoid(),  # 3 x 32 x 32 in [0, 1]
        )
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError(
            "Autoencoder: set self.encoder to nn.Conv2d layers with stride 2 that shrink the image, and "
            "self.decoder to nn.ConvTranspose2d layers that grow it back to (3, 32, 32)."
        )
        """ # END PROMPT

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))


def build_model() -> nn.Module:
    """The autoencoder the grader trains."""
    return Autoencoder()


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer that updates the model's parameters."""
    # BEGIN SOLUTION NO PROMPT
    return torch.optim.Adam(model.parameters(), lr=2e-3)
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError("make_optimizer: return an optimizer over model.parameters(), e.g. torch.optim.Adam.")
    """ # END PROMPT


def train_one_epoch(
    model: nn.Module, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> float:
    """Train for one pass over `loader`, whose batches are (images, targets) with the targets the images
    themselves, and return the mean training loss of its batches."""
    # BEGIN SOLUTION NO PROMPT
    model.train()
    total, batches = 0.0, 0
    for images, targets in loader:
        images, targets = images.to(device), targets.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), targets)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    return total / batches
    # END SOLUTION
    """ # BEGIN PROMPT
    raise NotImplementedError(
        "train_one_epoch: for each batch, move it to device, zero the gradients, compute loss_fn(model(images), "
        "targets), call backward() and step the optimizer; return the mean loss."
    )
    """ # END PROMPT
