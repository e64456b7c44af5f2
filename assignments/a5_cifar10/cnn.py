"""Assignment 5: a convolutional classifier for all ten CIFAR-10 classes (label i: the i-th class of
assignment.toml's [data], airplane = 0, automobile = 1, ..., truck = 9).

The grader imports this file, builds your model and optimizer, and trains it itself for EPOCHS
epochs of BATCH_SIZE images using your `train_one_epoch`; then it scores the model on hidden images.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

# How many passes over the training images the grader makes, and how many images go in one batch.
EPOCHS = ...
BATCH_SIZE = ...


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """One stage of the network: a 3x3 convolution and an activation, then 2x2 max-pooling to halve the side."""
    raise NotImplementedError(
        "conv_block: return nn.Sequential(nn.Conv2d(..., kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)); "
        "an nn.BatchNorm2d after the convolution helps."
    )


def build_model() -> nn.Module:
    """A convolutional network mapping images (N, 3, 32, 32) to logits (N, 10), one per class."""
    raise NotImplementedError(
        "build_model: stack a few conv_block()s, then nn.Flatten() and nn.Linear(..., 10) for the ten logits."
    )


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer that updates the model's parameters."""
    raise NotImplementedError("make_optimizer: return an optimizer over model.parameters(), e.g. torch.optim.Adam.")


def train_transform() -> transforms.Compose:
    """Optional augmentation, applied to each normalized training image (3, 32, 32) on the fly."""
    return transforms.Compose([])  # no augmentation yet; try transforms.RandomHorizontalFlip()


def train_one_epoch(
    model: nn.Module, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> float:
    """Train for one pass over `loader` and return the mean training loss of its batches."""
    raise NotImplementedError(
        "train_one_epoch: for each batch, move it to device, zero the gradients, compute the loss, "
        "call backward() and step the optimizer; return the mean loss."
    )


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> float:
    """The model's accuracy on `loader`, a float in [0, 1], computed in eval mode without gradients."""
    raise NotImplementedError(
        "evaluate: call model.eval(), predict each batch under torch.no_grad() with argmax, "
        "and return correct / total."
    )
